"""The home page: a dashboard of what the visitor may view."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from beings.selectors import being_counts, being_list
from relations.selectors import relationship_count

RECENT_BEINGS = 10


def home(request: HttpRequest) -> HttpResponse:
    """Welcome anonymous visitors; show a signed-in user counts per kind and their newest beings."""
    context: dict[str, Any] = {}
    if request.user.is_authenticated:
        counts = being_counts(user=request.user)
        context.update(
            counts=sorted(counts.items()),
            being_total=sum(counts.values()),
            relationship_total=relationship_count(user=request.user),
            recent_beings=being_list(user=request.user, limit=RECENT_BEINGS).items,
        )
    return render(request, "home.html", context)
