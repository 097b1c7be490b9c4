"""The API's OpenAPI document and its Swagger UI: a document every parser accepts, and a docs page that renders.

Swagger UI reads the document as YAML, which refuses a key written twice; Python's ``json`` keeps the
last one silently, so the document is parsed here with duplicates refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from ninja import Schema
from openapi_spec_validator import validate
from playwright.sync_api import Page, Request, Route, expect
from pytest_django.live_server_helper import LiveServer

from luxsite.tests.browser import chromium_page, screenshot_on_failure


class DuplicateKey(ValueError):
    pass


def refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _value in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise DuplicateKey(f"keys written twice: {repeated}")
    return dict(pairs)


@pytest.fixture
def document(client: Client) -> dict[str, Any]:
    """openapi.json as served, parsed with every key written once or refused."""
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    parsed: dict[str, Any] = json.loads(response.content, object_pairs_hook=refuse_duplicates)
    return parsed


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def test_openapi_document_has_no_key_twice(document: dict[str, Any]) -> None:
    """Each status of an operation is listed once: a documented description and the response's schema are one entry."""
    create = document["paths"]["/api/beings/"]["post"]["responses"]
    assert set(create) >= {"200", "201"}
    assert "content" in create["201"] and "Created" in create["201"]["description"]


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("post", "/api/beings/", {"200", "201"}),
        ("post", "/api/beings/{soul}/evolve", {"200", "201", "202"}),
        ("post", "/api/beings/{soul}/execute", {"200", "202"}),
        ("post", "/api/souls/{hash}/execute", {"200", "202"}),
        ("post", "/api/aliases/{alias}/execute", {"200", "202"}),
    ],
)
def test_routes_with_several_successes_describe_each_once_with_its_schema(
    document: dict[str, Any], method: str, path: str, statuses: set[str]
) -> None:
    """The routes that answer more than one success say what each means, beside that response's body schema."""
    responses = document["paths"][path][method]["responses"]
    for status in statuses:
        assert "content" in responses[status], f"{method} {path} {status} lost its schema"
        assert responses[status]["description"] not in ("OK", "Created", "Accepted"), (
            f"{method} {path} {status} lost its description"
        )


def test_no_two_schemas_share_a_name() -> None:
    """Schemas are components by class name: two apps' classes of one name would silently document only one."""
    from luxsite.api import api

    api.get_openapi_schema()  # imports every router, and with them every schema
    seen: dict[str, str] = {}
    pending = list(Schema.__subclasses__())
    while pending:
        schema = pending.pop()
        pending += schema.__subclasses__()
        if not schema.__module__.startswith(("beings.", "relations.", "chronos.", "luxsite.")):
            continue
        where = f"{schema.__module__}.{schema.__qualname__}"
        assert seen.setdefault(schema.__name__, where) == where, f"{where} and {seen[schema.__name__]}"


def test_openapi_document_is_valid_openapi(document: dict[str, Any]) -> None:
    """The document the API serves passes the OpenAPI validator, so clients can be generated from it."""
    validate(document)


def test_every_operation_documents_the_error_shape(document: dict[str, Any]) -> None:
    """Every operation but the health check says its failures are ``{code, detail}``."""
    for method, path, operation in operations(document):
        if path == "/api/health":
            continue
        for status in ("400", "401", "403", "404", "422"):
            assert status in operation["responses"], f"{method} {path} does not document {status}"


@pytest.fixture
def docs_page(live_server: LiveServer, transactional_db: None) -> Iterator[tuple[Page, list[str]]]:
    """A Chromium page on the live site that may reach nothing but the site; the list of what it tried elsewhere."""
    elsewhere: list[str] = []
    origin = urlsplit(live_server.url).netloc

    def only_the_site(route: Route, request: Request) -> None:
        if urlsplit(request.url).netloc in ("", origin) or request.url.startswith("data:"):
            route.continue_()
        else:
            elsewhere.append(request.url)
            route.abort()

    with chromium_page(live_server.url) as page:
        page.route("**/*", only_the_site)
        yield page, elsewhere


def test_api_docs_render_the_operations_from_the_site_alone(docs_page: tuple[Page, list[str]]) -> None:
    """/api/docs lists the operations with Swagger UI served by the site itself (no CDN: CI and offline machines)."""
    page, elsewhere = docs_page
    with screenshot_on_failure(page):
        page.goto("/api/docs")
        create = page.locator(".opblock-post").filter(has_text="/api/beings/").filter(has_text="Being Create")
        expect(create.first).to_be_visible()
        expect(page.locator(".opblock-get").filter(has_text="/api/executions/{id}").first).to_be_visible()
        expect(page.get_by_text("Parser error")).to_have_count(0)
        expect(page.locator(".errors-wrapper")).to_have_count(0)
    assert elsewhere == []
