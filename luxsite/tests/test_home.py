"""The home page: a welcome for visitors, a dashboard of what a signed-in user may view."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from django.urls import reverse

from beings.exceptions import BeingNotFoundError
from beings.models import BaseBeing
from luxsite.errors import DomainErrorMiddleware
from relations.models import Relationship

pytestmark = pytest.mark.django_db


def test_anonymous_visitor_sees_welcome_with_login_link_and_no_beings(
    client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """A visitor who is not signed in is welcomed, offered a login link, and shown no being."""
    make_being("secret-adder")

    response = client.get("/")

    content = response.content.decode()
    assert response.status_code == 200
    assert f'href="{reverse("login")}?next=/"' in content
    assert "secret-adder" not in content
    assert "Kernel" not in content


def test_signed_in_user_sees_counts_and_own_newest_beings_only(
    api: Client,
    bob: User,
    make_being: Callable[..., BaseBeing],
    make_link: Callable[..., Relationship],
) -> None:
    """A signed-in user sees counts per kind, relationships and newest beings of their own, and nothing of others'."""
    adder, doubler = make_being("adder"), make_being("doubler")
    table = make_being("lookup-table", kind="data")
    make_link(adder, table, tags=["reads"])
    bobs = make_being("bobs-secret", actor=bob)
    make_link(bobs, make_being("bobs-other", actor=bob), actor=bob)

    response = api.get("/")

    content = response.content.decode()
    assert response.context["counts"] == [("data", 1), ("function", 2)]
    assert response.context["being_total"] == 3
    assert response.context["relationship_total"] == 1
    assert [being.name for being in response.context["recent_beings"]] == ["lookup-table", "doubler", "adder"]
    assert f'<a href="{reverse("being_detail", args=[doubler.soul])}"' in content
    assert "bobs-secret" not in content
    assert "Log out" in content


def test_dashboard_shows_at_most_ten_newest_beings(api: Client, make_being: Callable[..., BaseBeing]) -> None:
    """However many beings a user has, the dashboard lists the ten newest and counts them all."""
    for number in range(12):
        make_being(f"being-{number:02}")

    response = api.get("/")

    assert [being.name for being in response.context["recent_beings"]] == [f"being-{n:02}" for n in range(11, 1, -1)]
    assert response.context["being_total"] == 12


@pytest.mark.parametrize("beings", [2, 25])
def test_dashboard_query_count_does_not_grow_with_beings(
    api: Client,
    make_being: Callable[..., BaseBeing],
    make_link: Callable[..., Relationship],
    django_assert_num_queries: Any,
    beings: int,
) -> None:
    """The dashboard costs the same handful of queries whether a user has few beings or many."""
    made = [make_being(f"being-{number}", tags=["a", "b"]) for number in range(beings)]
    for source, target in itertools.pairwise(made):
        make_link(source, target)

    # session, user, the user's global and group permissions, groups, then counts, links, recent beings
    with django_assert_num_queries(8):
        response = api.get("/")

    assert response.status_code == 200


def test_domain_error_page_shows_code_detail_and_status(rf: RequestFactory, alice: User) -> None:
    """A domain error escaping an HTML view is rendered as a page with its status, code and detail."""
    request = rf.get("/somewhere/")
    request.user = alice

    response = DomainErrorMiddleware(lambda request: None).process_exception(  # type: ignore[arg-type, return-value]
        request, BeingNotFoundError("no being has soul 1234")
    )

    assert response is not None
    content = response.content.decode()
    assert response.status_code == 404
    assert "being_not_found" in content
    assert "no being has soul 1234" in content
