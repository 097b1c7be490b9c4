"""Chronos over HTTP at ``/api/chronos/``: checkpoints, restore, timelines, diffs, stats, archives.

Every route answers staff, or who holds ``chronos.view_checkpoint`` (a diff shows everyone's rows),
and a 403 to anyone else; a write needs its own permission on top, which the service checks
(``chronos.restore_checkpoint`` to restore, ``chronos.switch_timeline`` to switch…). With
``ENABLE_CHRONOS`` off every route is a 409 ``chronos_disabled``. A checkpoint ``{ref}`` is its id,
a unique id prefix, or its name on the live timeline.
"""

from __future__ import annotations

import tempfile
from typing import Any, BinaryIO, cast

from django.conf import settings
from django.contrib.auth.models import PermissionsMixin
from django.http import FileResponse, HttpRequest
from ninja import File, Form, Query, Router, Status, UploadedFile

from chronos import selectors, services, transfer
from chronos.diffs import Diff
from chronos.guards import chronos_enabled
from chronos.models import Checkpoint, Timeline
from chronos.points import checkpoint_resolve, point_resolve, timeline_resolve
from chronos.retention import GcReport
from chronos.schemas import (
    CheckpointDetailOut,
    CheckpointIn,
    CheckpointOut,
    CheckpointPageOut,
    ForceIn,
    GcIn,
    GcOut,
    ImportIn,
    PinIn,
    PointsDiffOut,
    PointsDiffQuery,
    PreviewOut,
    StatsOut,
    SwitchPreviewOut,
    TimelineIn,
    TimelineOut,
    TravelOut,
)
from luxsite.api_schemas import ERRORS, described
from luxsite.errors import PermissionDenied
from luxsite.pagination import keyset_page
from luxsite.permissions import User

router = Router(tags=["chronos"])

VIEW_PERMISSION = "chronos.view_checkpoint"
# An export is kept in memory up to this size, then on disk, until the client has read it.
EXPORT_IN_MEMORY = 1024 * 1024
ARCHIVE_TYPES = {True: "application/gzip", False: "application/x-tar"}


def viewer_require(user: User) -> None:
    """Chronos is on, and ``user`` is staff or holds chronos.view_checkpoint: a 409 or a 403 otherwise."""
    chronos_enabled()
    staff = bool(getattr(user, "is_staff", False))
    allowed = isinstance(user, PermissionsMixin) and (staff or user.has_perm(VIEW_PERMISSION))
    if not (user.is_active and allowed):
        raise PermissionDenied(f"chronos is for staff, or for who holds {VIEW_PERMISSION}")


def checkpoint_get(request: HttpRequest, ref: str) -> Checkpoint:
    viewer_require(request.user)
    return checkpoint_resolve(ref)


def diff_counts(diff: Diff) -> list[dict[str, Any]]:
    return [{"table": table, "kind": kind, "count": count} for (table, kind), count in sorted(diff.stat.items())]


@router.get("/checkpoints", response={200: CheckpointPageOut, **ERRORS})
def checkpoint_list(
    request: HttpRequest,
    timeline: str | None = Query(None, description="Only this timeline's checkpoints."),
    after: str | None = Query(None, description="The `next` cursor of the previous page."),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    """Checkpoints, newest first, a page at a time."""
    viewer_require(request.user)
    checkpoints = selectors.checkpoint_list(timeline=timeline_resolve(timeline) if timeline is not None else None)
    return keyset_page(checkpoints, field="created_at", descending=True, after=after, limit=limit).as_dict()


@router.post(
    "/checkpoints",
    response={201: CheckpointOut, **ERRORS},
    openapi_extra=described({201: "Taken: a mark in the log, O(1) whatever the size of the tables."}),
)
def checkpoint_create(request: HttpRequest, payload: CheckpointIn) -> Status[Checkpoint]:
    """Take a checkpoint of the live timeline (or the one named) under a name (needs chronos.add_checkpoint)."""
    viewer_require(request.user)
    checkpoint = services.checkpoint_create(
        name=payload.name, description=payload.description, timeline=payload.timeline, actor=request.user
    )
    return Status(201, checkpoint)


@router.get("/checkpoints/{ref}", response={200: CheckpointDetailOut, **ERRORS})
def checkpoint_detail(request: HttpRequest, ref: str) -> dict[str, Any]:
    """A checkpoint with the changes made on its timeline since and their size."""
    checkpoint = checkpoint_get(request, ref)
    stats = selectors.checkpoint_stats(checkpoint)
    return {
        **CheckpointOut.from_orm(checkpoint).model_dump(),
        "stats": {"changes_since": stats.changes_since, "bytes_since": stats.bytes_since},
    }


@router.post("/checkpoints/{ref}/pin", response={200: CheckpointOut, **ERRORS})
def checkpoint_pin(request: HttpRequest, ref: str, payload: PinIn) -> Checkpoint:
    """Exempt a checkpoint from retention, or give it back to it (needs chronos.change_checkpoint)."""
    checkpoint = checkpoint_get(request, ref)
    return services.checkpoint_pin(checkpoint=checkpoint, pinned=payload.pinned, actor=request.user)


@router.delete("/checkpoints/{ref}", response={204: None, **ERRORS})
def checkpoint_delete(request: HttpRequest, ref: str) -> Status[None]:
    """Forget a checkpoint no timeline forks from (needs chronos.delete_checkpoint)."""
    checkpoint = checkpoint_get(request, ref)
    services.checkpoint_delete(checkpoint=checkpoint, actor=request.user)
    return Status(204, None)


@router.get("/checkpoints/{ref}/preview", response={200: PreviewOut, **ERRORS})
def checkpoint_restore_preview(
    request: HttpRequest, ref: str, limit: int = Query(20, ge=1, le=500, description="Rows shown.")
) -> dict[str, Any]:
    """What restoring the checkpoint would do, changing nothing (needs chronos.restore_checkpoint)."""
    checkpoint = checkpoint_get(request, ref)
    preview = services.checkpoint_restore_preview(checkpoint=checkpoint, actor=request.user, limit=limit)
    return {"checkpoint": preview.checkpoint, **_preview(preview)}


def _preview(preview: services.TravelPreview) -> dict[str, Any]:
    return {
        "stat": diff_counts(preview.diff),
        "total": preview.diff.total,
        "changes": preview.diff.changes,
        "entries": preview.diff.entries,
        "promotions_removed": preview.promotions_removed,
        "promotions_changed": preview.promotions_changed,
        "needs_force": preview.needs_force,
    }


@router.post("/checkpoints/{ref}/restore", response={200: TravelOut, **ERRORS})
def checkpoint_restore(request: HttpRequest, ref: str, payload: ForceIn) -> services.TravelReport:
    """Make beings and relationships exactly what they were at the checkpoint (needs chronos.restore_checkpoint).

    One transaction, after a safety checkpoint ``before-restore-<name>``; a 409 promoted_being_affected
    when it would delete the being behind an active promotion, unless ``force``.
    """
    checkpoint = checkpoint_get(request, ref)
    return services.checkpoint_restore(checkpoint=checkpoint, actor=request.user, force=payload.force)


@router.get("/timelines", response={200: list[TimelineOut], **ERRORS})
def timeline_list(request: HttpRequest) -> list[Timeline]:
    """Every timeline, oldest first; exactly one is live."""
    viewer_require(request.user)
    return list(selectors.timeline_list())


@router.post(
    "/timelines",
    response={201: TimelineOut, **ERRORS},
    openapi_extra=described({201: "Created, not live: switch to it to make it live."}),
)
def timeline_create(request: HttpRequest, payload: TimelineIn) -> Status[Timeline]:
    """Fork a timeline from a checkpoint, or from now on the live timeline (needs chronos.add_timeline)."""
    viewer_require(request.user)
    fork = checkpoint_resolve(payload.from_checkpoint, anywhere=True) if payload.from_checkpoint else None
    timeline = services.timeline_create(
        name=payload.name, from_checkpoint=fork, description=payload.description, actor=request.user
    )
    return Status(201, timeline)


@router.post(
    "/timelines/import",
    response={201: TimelineOut, **ERRORS},
    openapi_extra=described({201: "Verified and loaded as a new timeline, not live: switch to it to make it live."}),
)
def timeline_import(request: HttpRequest, payload: Form[ImportIn], file: File[UploadedFile]) -> Status[Timeline]:
    """Load a checkpoint archive as a new timeline forked from now (needs chronos.restore_checkpoint).

    Everything is verified first: a truncated archive, a wrong digest, a member outside the archive,
    an unknown format, an oversized member or a row the services would refuse is a 422, nothing changed.
    """
    viewer_require(request.user)
    timeline = services.checkpoint_import(
        source=cast(BinaryIO, file), timeline=payload.timeline, description=payload.description, actor=request.user
    )
    return Status(201, timeline)


@router.get("/timelines/{name}/preview", response={200: SwitchPreviewOut, **ERRORS})
def timeline_switch_preview(
    request: HttpRequest, name: str, limit: int = Query(20, ge=1, le=500, description="Rows shown.")
) -> dict[str, Any]:
    """What switching to the timeline would do, changing nothing (needs chronos.switch_timeline)."""
    preview = services.timeline_switch_preview(name=name, actor=request.user, limit=limit)
    return {"timeline": preview.timeline, "live": preview.live, **_preview(preview)}


@router.post("/timelines/{name}/switch", response={200: TravelOut, **ERRORS})
def timeline_switch(request: HttpRequest, name: str, payload: ForceIn) -> services.TravelReport:
    """Make a timeline live: the tables become its head (needs chronos.switch_timeline)."""
    viewer_require(request.user)
    return services.timeline_switch(name=name, actor=request.user, force=payload.force)


@router.delete("/timelines/{name}", response={204: None, **ERRORS})
def timeline_delete(request: HttpRequest, name: str) -> Status[None]:
    """Delete a timeline: never main, the live one, or one others fork from (needs chronos.switch_timeline)."""
    viewer_require(request.user)
    services.timeline_delete(name=name, actor=request.user)
    return Status(204, None)


@router.get("/diff", response={200: PointsDiffOut, **ERRORS}, by_alias=True)
def chronos_diff(request: HttpRequest, query: Query[PointsDiffQuery]) -> dict[str, Any]:
    """The rows that differ between two points, also across timelines, and for a changed row its JSON paths."""
    viewer_require(request.user)
    origin, target = point_resolve(query.from_point), point_resolve(query.to)
    diff = services.chronos_diff(origin, target, limit=query.limit, offset=query.offset)
    return {
        "from": query.from_point,
        "to": query.to,
        "stat": diff_counts(diff),
        "total": diff.total,
        "changes": diff.changes,
        "offset": diff.offset,
        "entries": diff.entries,
    }


@router.get("/stats", response={200: StatsOut, **ERRORS})
def chronos_stats(request: HttpRequest) -> dict[str, Any]:
    """The log's size, changes per timeline, checkpoints, and exported archives."""
    viewer_require(request.user)
    return selectors.chronos_stats()


@router.get(
    "/checkpoints/{ref}/export",
    response={**ERRORS},
    openapi_extra={
        "responses": {
            200: {
                "description": "The archive of the state at the checkpoint, named `<checkpoint id>.tar.gz` "
                "(`.tar` when CHRONOS_COMPRESS_SNAPSHOTS is false).",
                "content": {
                    kind: {"schema": {"type": "string", "format": "binary"}} for kind in ARCHIVE_TYPES.values()
                },
            }
        }
    },
)
def checkpoint_export(request: HttpRequest, ref: str) -> FileResponse:
    """Download the state at a checkpoint (not the live state) as a portable archive (needs chronos.view_checkpoint).

    The archive is written whole, in memory up to a megabyte and on disk beyond, before the first byte
    goes out: an export refused or failing is an error response, never a truncated download, and
    the export's snapshot of the tables is released at the database's pace, not the client's.
    """
    checkpoint = checkpoint_get(request, ref)
    compress = bool(settings.CHRONOS_COMPRESS_SNAPSHOTS)
    spool = tempfile.SpooledTemporaryFile(max_size=EXPORT_IN_MEMORY)  # noqa: SIM115  # FileResponse closes it
    try:
        services.checkpoint_export(
            checkpoint=checkpoint, target=cast(BinaryIO, spool), actor=request.user, compress=compress
        )
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return FileResponse(
        spool,
        as_attachment=True,
        filename=transfer.export_path(checkpoint, compress).name,
        content_type=ARCHIVE_TYPES[compress],
    )


@router.post("/gc", response={200: GcOut, **ERRORS})
def chronos_gc(request: HttpRequest, payload: GcIn) -> GcReport:
    """Remove the unpinned checkpoints beyond retention and the log nothing retained needs (chronos.delete_checkpoint).

    Retention also runs on beat; ``dry_run`` reports the same figures and removes nothing.
    """
    viewer_require(request.user)
    return services.chronos_gc(dry_run=payload.dry_run, actor=request.user)
