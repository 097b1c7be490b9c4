"""The API's two ways in, with Django's CSRF protection enforced as a real browser or script meets it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from beings.models import BaseBeing

BODY = {"genesis": {"name": "from_outside", "type": "function", "source": "def run():\n    return 1\n"}}


@pytest.fixture
def strict_client() -> Client:
    """A client that, like a browser, gets no exemption from the CSRF check (Django's test client has one)."""
    return Client(enforce_csrf_checks=True)


@pytest.mark.django_db
def test_a_script_with_a_token_writes_without_any_csrf_token(strict_client: Client, bearer: dict[str, str]) -> None:
    """A script sending a bearer token creates a being with no CSRF token at all."""
    response = strict_client.post("/api/beings/", BODY, content_type="application/json", headers=bearer)
    assert response.status_code == 201, response.content
    assert BaseBeing.objects.filter(genesis__name="from_outside").exists()


@pytest.mark.django_db
def test_a_token_wins_over_a_session_cookie_that_comes_with_it(
    strict_client: Client, alice: User, bearer: dict[str, str]
) -> None:
    """A bearer token sent along with a session cookie is enough: the write needs no CSRF token."""
    strict_client.force_login(alice)
    response = strict_client.post("/api/beings/", BODY, content_type="application/json", headers=bearer)
    assert response.status_code == 201, response.content


@pytest.mark.django_db
def test_a_session_write_needs_the_csrf_token(strict_client: Client, alice: User) -> None:
    """A logged-in browser's write without the CSRF token is a 403 that creates nothing; with the token it is a 201."""
    strict_client.force_login(alice)
    refused = strict_client.post("/api/beings/", BODY, content_type="application/json")
    assert refused.status_code == 403
    assert refused.json() == {"code": "permission_denied", "detail": "CSRF check Failed"}
    assert not BaseBeing.objects.filter(genesis__name="from_outside").exists()

    strict_client.get("/admin/login/")  # sets the csrftoken cookie, as any page with a form does
    token = strict_client.cookies["csrftoken"].value
    accepted = strict_client.post("/api/beings/", BODY, content_type="application/json", headers={"X-CSRFToken": token})
    assert accepted.status_code == 201, accepted.content


@pytest.mark.django_db
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer lux_wrong"}])
def test_a_write_without_valid_credentials_is_401(strict_client: Client, headers: dict[str, str]) -> None:
    """A write with no credentials or a wrong token is a 401 saying how to authenticate."""
    response = strict_client.post("/api/beings/", BODY, content_type="application/json", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"code": "not_authenticated", "detail": "log in or send Authorization: Bearer <token>"}
