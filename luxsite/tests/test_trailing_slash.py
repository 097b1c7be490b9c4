"""Every API route answers with and without its trailing slash; no redirect ever turns a write into a read.

A client that follows a 301 (``urllib``, ``requests``, the test client with ``follow=True``) resends a POST
as a GET: before, ``POST /api/beings`` was redirected to ``/api/beings/`` and answered the list, 200, with
nothing created and nothing to say so.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.live_server_helper import LiveServer

from beings.models import BaseBeing
from luxsite.api import api as lux_api
from luxsite.tests.fixtures import BeingMaker

SOURCE = "def run(name):\n    return f'hello {name}'\n"
BODY = {"genesis": {"name": "slashless", "type": "function", "source": SOURCE}}


def documented_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation in the OpenAPI document, path as documented."""
    paths = lux_api.get_openapi_schema()["paths"]
    return [(method.upper(), path) for path, methods in paths.items() for method in methods]


def other_form(path: str) -> str:
    return path.removesuffix("/") if path.endswith("/") else path + "/"


@pytest.fixture
def greet(make_being: BeingMaker) -> BaseBeing:
    return make_being("greet", genesis={"source": SOURCE})


@pytest.fixture
def salute(make_being: BeingMaker) -> BaseBeing:
    """A being like greet, for the other form of a route, so a DELETE of one form leaves the other's being."""
    return make_being("salute", genesis={"source": SOURCE})


def filled(path: str, being: BaseBeing) -> str:
    """The documented path with its parameters naming alice's being (or nothing that exists)."""
    return path.format(
        soul=being.soul,
        hash=being.hash,
        alias=being.name,
        environment="production",
        id=uuid.uuid4(),
        relationship_id=uuid.uuid4(),
        conflict_id=1,
        ref="no-such-checkpoint",
        name="no-such-timeline",
    )


def call(client: Client, method: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
    """The request, following redirects; by default with a JSON body the route must refuse (or ignore)."""
    send = getattr(client, method.lower())
    data = json.dumps({"not": "a valid body", "limit": -1} if body is None else body)
    if method == "GET":
        return send(path, headers=headers, follow=True)
    return send(path, data, content_type="application/json", headers=headers, follow=True)


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), documented_operations())
def test_both_forms_of_every_route_reach_the_route_without_a_redirect(
    method: str, path: str, greet: BaseBeing, salute: BaseBeing, bearer: dict[str, str]
) -> None:
    """The form the document names and the other one answer the same, from the API, with no redirect."""
    client = Client()
    documented = call(client, method, filled(path, greet), bearer)
    url = other_form(filled(path, salute))
    other = call(client, method, url, bearer)
    assert other.redirect_chain == [], f"{method} {url} redirected"
    assert other.status_code == documented.status_code, (method, url, other.content)
    assert other["Content-Type"] == documented["Content-Type"]
    if documented.status_code >= 400:
        assert other.json()["code"] == documented.json()["code"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/beings", "/api/beings/"])
def test_a_create_posted_to_either_form_creates_the_being(path: str, bearer: dict[str, str]) -> None:
    """A POST to /api/beings, with or without its slash, creates the being (201) with no redirect on the way."""
    response = Client().post(path, BODY, content_type="application/json", headers=bearer, follow=True)
    assert response.redirect_chain == []
    assert response.status_code == 201, response.content
    assert BaseBeing.objects.filter(soul=response.json()["soul"], genesis__name="slashless").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("path", ["/api/nowhere", "/api/nowhere/", "/api/beings/not-a-soul/evolve/x"])
def test_an_unknown_api_path_is_a_404_in_the_error_shape(method: str, path: str, bearer: dict[str, str]) -> None:
    """A path the API does not have is a 404 ``not_found`` naming it, whatever the method or slash, never a redirect."""
    response = call(Client(), method, path, bearer, body={})
    assert response.redirect_chain == []
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert path in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/beings", "/api/beings/"])
def test_a_method_a_route_does_not_have_is_a_405_in_the_error_shape(path: str, bearer: dict[str, str]) -> None:
    """A method the route does not have is a 405 ``method_not_allowed`` whose Allow header names the ones it has."""
    response = Client().put(path, "{}", content_type="application/json", headers=bearer)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


@pytest.mark.django_db
def test_a_post_to_a_page_without_its_slash_is_never_redirected_as_a_get(alice: User) -> None:
    """Outside the API, Django still appends the slash, but a write is sent on with its method (308), not a 301."""
    client = Client()
    read = client.get("/souls")
    assert read.status_code == 301 and read["Location"] == "/souls/"
    client.force_login(alice)
    write = client.post("/souls/production/0123456789ab/promote", {"confirm": "yes"})
    assert write.status_code == 308 and write["Location"] == "/souls/production/0123456789ab/promote/"


@pytest.fixture
def live_bearer(live_server: LiveServer, transactional_db: None, bearer: dict[str, str]) -> dict[str, str]:
    return bearer


def http(live_server: LiveServer, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    """A real HTTP request through urllib, which follows redirects the way most clients do."""
    request = urllib.request.Request(
        live_server.url + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize("path", ["/api/beings", "/api/beings/"])
def test_a_real_client_posting_without_the_slash_creates_the_being(
    live_server: LiveServer, live_bearer: dict[str, str], path: str
) -> None:
    """urllib posting to either form over real HTTP creates the being, and the list then shows it."""
    status, body = http(live_server, "POST", path, BODY, live_bearer)
    assert status == 201, body
    assert body["name"] == "slashless" and "soul" in body
    status, page = http(live_server, "GET", "/api/beings?name=slashless", None, live_bearer)
    assert status == 200 and [item["soul"] for item in page["items"]] == [body["soul"]]


def test_a_real_client_evolving_with_a_trailing_slash_evolves(
    live_server: LiveServer, live_bearer: dict[str, str]
) -> None:
    """urllib posting an evolve to the path with a trailing slash evolves the being to version 2."""
    status, created = http(live_server, "POST", "/api/beings", BODY, live_bearer)
    assert status == 201
    evolve = {"source": SOURCE + "GREETING = 'hello'\n", "reason": "a constant"}
    status, body = http(live_server, "POST", f"/api/beings/{created['soul']}/evolve/", evolve, live_bearer)
    assert status == 200, body
    assert body["version"] == 2
