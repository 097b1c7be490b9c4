"""The API fuzzed from its own OpenAPI document: every operation, generated inputs, answers as documented.

schemathesis sends each operation of the document the live site serves at ``/api/openapi.json``
generated requests (valid and not) with alice's token, alice owning a few beings and a relationship.
Every answer must be no server error, with a status the operation documents and a body matching that
status's schema. Examples are few per operation so the run stays within a couple of minutes on two cores.

The document is built at collection from the API object (the live site serves that same document, as a
test checks): schemathesis's fixture-based loader sets a private attribute pytest 9 no longer has.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.test import Client
from hypothesis import HealthCheck, settings
from pytest_django.live_server_helper import LiveServer
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from beings.evolution import being_evolve
from beings.executions import selectors as execution_selectors
from beings.executions import services as execution_services
from luxsite.api import api
from luxsite.tests.fixtures import BeingMaker
from luxsite.tokens import token_create
from relations.services import relationship_link

# The bulk import takes JSON Lines: text on the wire, as schemathesis sends text/plain.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def owned(transactional_db: None, alice: User, make_being: BeingMaker) -> dict[str, str]:
    """Alice's objects, as path parameters: a function being at v2, a data being, a relationship, a run."""
    greet = make_being("greet", genesis={"source": "def run(name='x'):\n    return f'hello {name}'\n"})
    being_evolve(being=greet, source=greet.genesis["source"] + "N = 1\n", reason="a constant", actor=alice)
    greet.refresh_from_db()
    notes = make_being("notes", kind="data", attributes={"topic": "fuzz"})
    link = relationship_link(source=greet, target=notes, actor=alice, data={"tags": ["reads"]})
    run = execution_services.execution_start(
        target=execution_selectors.target_resolve(ref=str(greet.soul), user=alice), args=[], kwargs={}, actor=alice
    )
    return {
        "soul": str(greet.soul),
        "hash": greet.hash,
        "alias": "greet",
        "relationship_id": str(link.pk),
        "id": str(run.id),
        "environment": "production",
    }


@pytest.fixture
def alice_token(owned: dict[str, str], alice: User) -> str:
    _token, secret = token_create(user=alice, name="fuzz")
    return secret


DOCUMENT = api.get_openapi_schema()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_fuzzed_document_is_the_one_the_live_site_serves(live_server: LiveServer) -> None:
    """The document the fuzzing is generated from is exactly the one the live site serves at /api/openapi.json."""
    with urllib.request.urlopen(f"{live_server.url}/api/openapi.json", timeout=30) as response:
        assert json.loads(response.read()) == json.loads(json.dumps(DOCUMENT))


def bearer_of(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: Any, live_server: LiveServer, alice_token: str) -> None:
    """Generated path parameters: mostly objects that do not exist."""
    case.call_and_validate(base_url=live_server.url, headers=bearer_of(alice_token), checks=CHECKS, timeout=30)


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_on_alices_own_objects_answers_as_documented(
    case: Any, live_server: LiveServer, alice_token: str, owned: dict[str, str]
) -> None:
    """Path parameters naming alice's objects, so generated bodies and queries reach the services."""
    case.path_parameters.update({name: owned[name] for name in case.path_parameters if name in owned})
    if isinstance(case.body, dict) and "wait" in case.body:
        case.body["wait"] = 0  # no worker runs here: a wait would only sleep
    case.call_and_validate(base_url=live_server.url, headers=bearer_of(alice_token), checks=CHECKS, timeout=30)


# What the fuzz found, kept as plain tests.


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("/api/relationships/?tags_all=a%00b", "tags_all"),
        ("/api/beings/?tags_any=ok&tags_any=%00", "tags_any"),
        ("/api/beings/?name=x%00", "name"),
        ("/api/aliases/gr%00eet", "alias"),
        ("/api/environments/prod%00uction/souls", "environment"),
        ("/api/executions?environment=%00", "environment"),
    ],
)
def test_a_nul_character_in_a_query_or_path_parameter_is_a_422(path: str, where: str, bearer: dict[str, str]) -> None:
    """PostgreSQL text cannot hold a NUL: compared with a column it was a 500; now the parameter is named."""
    response = Client().get(path, headers=bearer)
    assert response.status_code == 422, response.content
    assert response.json() == {"code": "invalid", "detail": f"{where}: text may not contain a NUL character"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("attributes", "problem"),
    [
        ('{"key\\u0000": 1}', "NUL characters"),
        ('{"key": ["\\u0000"]}', "NUL characters"),
        ('{"key": "\\ud800"}', "lone surrogates"),
        ('{"key": NaN}', "NaN or an infinity"),
    ],
)
def test_a_document_jsonb_cannot_hold_is_a_422_on_create_and_update(
    api: Client, make_being: BeingMaker, unchanged: Any, attributes: str, problem: str
) -> None:
    """A NUL, a lone surrogate or NaN in attributes was a 500 from PostgreSQL (or from measuring the document)."""
    being = make_being("kept")
    with unchanged():
        updated = api.patch(
            f"/api/beings/{being.soul}", f'{{"attributes": {attributes}}}', content_type="application/json"
        )
        body = f'{{"genesis": {{"name": "x", "type": "data"}}, "attributes": {attributes}}}'
        created = api.post("/api/beings/", body, content_type="application/json")
    for response in (updated, created):
        assert response.status_code == 422, response.content
        assert response.json()["code"] == "genesis_invalid"
        assert problem in response.json()["detail"]


@pytest.mark.django_db
def test_a_time_with_any_offset_iso_allows_reads_the_promotion_then(api: Client) -> None:
    """PostgreSQL holds offsets up to 15:59; a time at -21:30 is read as the same instant in UTC."""
    response = api.get("/api/environments/production/at", {"alias": "greet", "at": "2030-09-16T08:10:30-21:30"})
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_promoted"
    beyond = api.get("/api/environments/production/at", {"alias": "greet", "at": "9999-12-31T23:00:00-21:30"})
    assert beyond.status_code == 422, beyond.content
    assert beyond.json()["code"] == "invalid"
