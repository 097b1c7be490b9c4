"""Merges over HTTP at ``/api/chronos/merges/``: preview, read, resolve each conflict, apply.

Like every chronos route: staff or ``chronos.view_checkpoint`` to look, and ``chronos.merge_timeline``
(checked by the services) to preview, resolve and apply. A merge ``{ref}`` is its id or a unique prefix.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Status

from chronos.guards import viewer_require
from chronos.merges import selectors, services
from chronos.merges.schemas import ConflictOut, ConflictResolveIn, MergeIn, MergeOut, MergeSummaryOut
from chronos.models import Merge, MergeConflict
from luxsite.api_schemas import ERRORS, described

router = Router(tags=["chronos"])

MERGES_LISTED = 100


@router.post(
    "",
    response={201: MergeOut, **ERRORS},
    openapi_extra=described({201: "Previewed: an open merge with its conflicts; nothing written to the tables."}),
)
def merge_preview(request: HttpRequest, payload: MergeIn) -> Status[Merge]:
    """Preview a three-way merge of `source` into `into` against their fork point (needs chronos.merge_timeline)."""
    viewer_require(request.user)
    merge = services.merge_preview(
        source=payload.source, into=payload.into, strategy=payload.strategy, actor=request.user
    )
    return Status(201, selectors.merge_get(merge.id))


@router.get("", response={200: list[MergeSummaryOut], **ERRORS})
def merge_list(
    request: HttpRequest, status: str | None = Query(None, description="open, applied, failed or abandoned.")
) -> list[Merge]:
    """The newest merges, each with its count of open conflicts."""
    viewer_require(request.user)
    return list(selectors.merge_list(status=status)[:MERGES_LISTED])


@router.get("/{ref}", response={200: MergeOut, **ERRORS})
def merge_detail(request: HttpRequest, ref: str) -> Merge:
    """A merge with its conflicts: base, ours and theirs at each path, and how each was resolved."""
    viewer_require(request.user)
    return selectors.merge_get(ref)


@router.post("/{ref}/conflicts/{conflict_id}", response={200: ConflictOut, **ERRORS})
def conflict_resolve(request: HttpRequest, ref: str, conflict_id: int, payload: ConflictResolveIn) -> MergeConflict:
    """Resolve one conflict: ours, theirs, or an edited value validated as a write (422 when refused)."""
    viewer_require(request.user)
    conflict = selectors.conflict_get(conflict_id, merge=selectors.merge_get(ref))
    return services.conflict_resolve(
        conflict=conflict, resolution=payload.resolution, value=payload.value, actor=request.user
    )


@router.post("/{ref}/apply", response={200: MergeOut, **ERRORS})
def merge_apply(request: HttpRequest, ref: str) -> Merge:
    """Apply the merge to the live timeline after a safety checkpoint: a 409 listing the open conflicts while any
    is left, a 409 merge_stale when a side changed since the preview."""
    viewer_require(request.user)
    merge = services.merge_apply(merge=selectors.merge_get(ref), actor=request.user)
    return selectors.merge_get(merge.id)
