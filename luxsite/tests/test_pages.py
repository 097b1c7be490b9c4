"""The site around the pages: the favicon, the styled 404, and a dashboard whose names open the being page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from beings.evolution import being_evolve
from beings.models import BaseBeing

pytestmark = pytest.mark.django_db


def test_the_favicon_is_linked_and_favicon_ico_finds_it(client: Client) -> None:
    """Every page links an SVG icon that exists, and /favicon.ico (which browsers ask for anyway) leads to it."""
    page = client.get("/").content.decode()
    assert '<link rel="icon" type="image/svg+xml" href="/static/luxsite/favicon.svg">' in page
    assert finders.find("luxsite/favicon.svg")

    response = client.get("/favicon.ico")
    assert (response.status_code, response["Location"]) == (301, "/static/luxsite/favicon.svg")


def test_an_unknown_url_gets_the_sites_styled_404(client: Client, settings: Any) -> None:
    """With debug pages off, an address nothing answers is a 404 in the site's layout, naming the path."""
    settings.DEBUG = False

    response = client.get("/no/such/page/")

    content = response.content.decode()
    assert response.status_code == 404
    assert 'class="site-header"' in content
    assert "Page not found" in content
    assert "/no/such/page/" in content


def test_dashboard_names_open_the_being_page_and_mutants_are_told_apart(
    api: Client, alice: User, make_being: Callable[..., BaseBeing]
) -> None:
    """Each name opens its being page; a mutant sharing its parent's alias shows its short soul and its parent."""
    greet = make_being("greet", genesis={"source": "def run():\n    return 'hi'\n"})
    mutant = being_evolve(being=greet, source="def run():\n    return 'hello'\n", actor=alice).being

    content = api.get("/").content.decode()

    for being in (greet, mutant):
        page = reverse("being_detail", args=[being.soul])
        assert f'<a href="{page}" title="Versions, diffs, lineage and runs">greet</a>' in content
        assert f"{str(being.soul)[:8]}…" in content
    assert f'mutant of <a href="{reverse("being_detail", args=[greet.soul])}"' in content
    assert reverse("admin:beings_basebeing_change", args=[greet.soul]) not in content
