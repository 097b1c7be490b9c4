"""The home page (a dashboard of what the visitor may view) and the favicon browsers ask for at the root."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.http import require_GET

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


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``, which browsers fetch whatever the page links: the site's SVG icon."""
    return HttpResponsePermanentRedirect(static("luxsite/favicon.svg"))
