"""Dreams over HTTP at ``/api/chronos/dreams/``: start one, list them, show one, compare two.

Like every chronos route, each answers staff or who holds ``chronos.view_checkpoint``; starting a dream
needs ``chronos.add_dream`` on top, and the plan's own rights (executing and changing its beings).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from chronos.dreams import selectors, services
from chronos.dreams.schemas import DreamCompareOut, DreamDetailOut, DreamIn, DreamPageOut
from chronos.guards import viewer_require
from chronos.models import Dream
from luxsite.api_schemas import ERRORS, described
from luxsite.pagination import keyset_page

router = Router(tags=["chronos"])


@router.post(
    "",
    response={202: DreamDetailOut, **ERRORS},
    openapi_extra=described({202: "Queued (or scheduled): follow it with GET /api/chronos/dreams/{id}."}),
)
def dream_start(request: HttpRequest, payload: DreamIn) -> Status[Dream]:
    """Dream a plan on a timeline of its own, isolated from the live state; a bad plan is a 422 naming its step."""
    viewer_require(request.user)
    dream = services.dream_start(
        name=payload.name,
        plan=payload.plan,
        actor=request.user,
        seconds=payload.seconds,
        not_before=payload.not_before,
    )
    return Status(202, selectors.dream_get(dream.id))


@router.get("", response={200: DreamPageOut, **ERRORS})
def dream_list(
    request: HttpRequest,
    status: str | None = Query(None, description="Only dreams in this status."),
    after: str | None = Query(None, description="The `next` cursor of the previous page."),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    """Dreams, newest first, a page at a time."""
    viewer_require(request.user)
    dreams = selectors.dream_list(status=status)
    return keyset_page(dreams, field="created_at", descending=True, after=after, limit=limit).as_dict()


@router.get("/compare", response={200: DreamCompareOut, **ERRORS})
def dream_compare(
    request: HttpRequest,
    a: str = Query(..., description="A dream's id or id prefix."),
    b: str = Query(..., description="Another dream's id or id prefix."),
) -> dict[str, Any]:
    """Two dreams side by side: their outcomes, step by step, and which did better."""
    viewer_require(request.user)
    return services.dream_compare(selectors.dream_get(a), selectors.dream_get(b))


@router.get("/{ref}", response={200: DreamDetailOut, **ERRORS})
def dream_detail(request: HttpRequest, ref: str) -> Dream:
    """A dream with its plan and each step's outcome."""
    viewer_require(request.user)
    return selectors.dream_get(ref)
