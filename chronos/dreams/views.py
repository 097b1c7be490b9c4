"""Dream pages under /chronos/dreams/: the list with a compare form, one dream, two compared.

Who may look at chronos may look at dreams; starting one is the API's and the command's.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from chronos.diffs import chronos_diff
from chronos.dreams import selectors, services
from chronos.points import Cut, Point
from chronos.views import DIFF_PAGE, chronos_page, diff_shown
from luxsite.errors import DomainError

DREAMS_SHOWN = 100


@chronos_page
@require_GET
def dream_list(request: HttpRequest) -> HttpResponse:
    """The newest dreams, and a form to compare two of them."""
    dreams = list(selectors.dream_list()[:DREAMS_SHOWN])
    return render(request, "chronos/dreams/dream_list.html", {"dreams": dreams, "shown": DREAMS_SHOWN})


@chronos_page
@require_GET
def dream_detail(request: HttpRequest, id: uuid.UUID) -> HttpResponse:
    """A dream: its outcome step by step, and what it changed (the diff from its fork to its timeline's head)."""
    dream = selectors.dream_get(id)
    context: dict[str, Any] = {"dream": dream, "others": selectors.dream_list().exclude(id=dream.id)[:20]}
    if dream.timeline_id and dream.fork_id and dream.timeline and dream.fork:
        try:
            origin = Point(dream.fork.timeline, Cut.of(dream.fork), dream.fork.name)
            diff = chronos_diff(origin, Point(dream.timeline, None, dream.timeline.name), limit=DIFF_PAGE)
            context.update(diff_shown(diff))
        except DomainError as error:
            context["diff_error"] = error
    return render(request, "chronos/dreams/dream_detail.html", context)


@chronos_page
@require_GET
def dream_compare(request: HttpRequest) -> HttpResponse:
    """Two dreams side by side: ``?a=ID&b=ID``."""
    a, b = selectors.dream_get(request.GET.get("a", "")), selectors.dream_get(request.GET.get("b", ""))
    comparison = services.dream_compare(a, b)
    return render(request, "chronos/dreams/dream_compare.html", {"a": a, "b": b, "comparison": comparison})
