"""Executions over HTTP: run by soul, hash or alias (202 queued, 200 finished within `wait`), read one, list,
cancel; every refusal with its status and `{code, detail}`; the health endpoint's sandbox layers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from guardian.shortcuts import assign_perm

from beings.evolution import being_evolve
from beings.models import BaseBeing, Execution
from beings.souls import services as soul_services
from luxsite.tests.fixtures import logged_in
from luxsite.tests.helpers import post

# Production asks for evidence before a promotion; these tests promote to set the scene, the gate is tested on its own.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("promotion_evidence_waived")]

ECHO = "def run(a=1, b=2):\n    print('adding', a, b)\n    return a + b\n"
GREET = "VERSION = 'v1'\n\ndef run():\n    return VERSION\n"
GREET_V2 = GREET.replace("VERSION = 'v1'\n", "VERSION = 'v1'\nVERSION = 'v2'\n")
LAYERS = {"rlimits", "network", "user", "landlock", "seccomp"}
EXECUTION_KEYS = {
    "id",
    "being",
    "alias",
    "hash",
    "version",
    "environment",
    "args",
    "kwargs",
    "status",
    "result",
    "error",
    "output",
    "output_truncated",
    "queued_at",
    "started_at",
    "finished_at",
    "duration_ms",
    "worker",
    "queue",
    "attempts",
    "priority",
    "parent",
    "root",
    "depth",
    "limits",
    "layers",
    "calls",
    "summons",
    "actor",
    "contents_hidden",
    "replay_of",
}


@pytest.fixture
def echo(make_being: Callable[..., BaseBeing]) -> BaseBeing:
    return make_being("echo", genesis={"source": ECHO})


def execute_url(being: BaseBeing) -> str:
    return f"/api/beings/{being.soul}/execute"


def assert_refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "detail"} and body["code"] == code and body["detail"]


# --- running ------------------------------------------------------------------------------------------


def test_execute_queues_a_run_and_answers_202(api, alice, echo):
    """Without `wait` the run is recorded queued and returned at once with everything it will carry."""
    response = post(api, execute_url(echo), {"args": [5], "kwargs": {"b": 7}})
    assert response.status_code == 202
    body = response.json()
    assert set(body) == EXECUTION_KEYS
    assert (body["status"], body["being"], body["hash"], body["version"]) == ("queued", str(echo.soul), echo.hash, 1)
    assert (body["args"], body["kwargs"], body["actor"], body["environment"], body["queue"]) == (
        [5],
        {"b": 7},
        "alice",
        "",
        "cpu",
    )
    assert (body["result"], body["error"], body["started_at"], body["parent"], body["depth"]) == (
        None,
        None,
        None,
        None,
        0,
    )
    assert Execution.objects.get(pk=body["id"]).actor_id == alice.pk


def test_execute_with_a_token(client, bearer, echo):
    """A bearer token works as well as a session."""
    response = client.post(execute_url(echo), "{}", content_type="application/json", headers=bearer)
    assert response.status_code == 202


def test_execute_an_older_version_by_hash(api, alice, make_being):
    """`hash` runs that version of the being, rebuilt from its lineage."""
    being = make_being("greet", genesis={"source": GREET})
    first = being.hash
    being_evolve(being=being, source=GREET_V2, actor=alice)
    body = post(api, execute_url(being), {"hash": first[:12]}).json()
    assert (body["hash"], body["version"]) == (first, 1)


@pytest.mark.django_db(transaction=True)
def test_wait_answers_200_with_the_outcome_when_the_run_finishes(celery_worker, api, echo):
    """With `wait` the answer is 200 with the result, output and timings once a worker has run it."""
    response = post(api, execute_url(echo), {"args": [40], "wait": 20})
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["result"], body["output"], body["worker"]) == (
        "succeeded",
        42,
        "adding 40 2\n",
        celery_worker.name,
    )
    assert set(body["layers"]) == LAYERS and body["duration_ms"] > 0
    assert api.get(f"/api/executions/{body['id']}").json() == body


@pytest.mark.django_db(transaction=True)
def test_wait_shorter_than_the_run_answers_202(celery_worker, api, make_being):
    """A run still going when `wait` runs out is answered 202 with its current status."""
    slow = make_being(
        "slow",
        genesis={
            "source": (
                "from datetime import datetime, timedelta\n\n"
                "def run():\n"
                "    end = datetime.now() + timedelta(seconds=2)\n"
                "    while datetime.now() < end:\n"
                "        pass\n"
                "    return 'late'\n"
            )
        },
    )
    response = post(api, execute_url(slow), {"wait": 0.3})
    assert response.status_code == 202
    assert response.json()["status"] in ("queued", "running")
    finished = post(api, execute_url(slow), {"wait": 20})
    assert (finished.status_code, finished.json()["result"]) == (200, "late")


def test_execute_a_soul_by_hash(api, alice, make_being):
    """POST /api/souls/{hash}/execute runs the exact version the hash names, an ancestor included."""
    being = make_being("greet", genesis={"source": GREET})
    first = being.hash
    being_evolve(being=being, source=GREET_V2, actor=alice)
    body = post(api, f"/api/souls/{first}/execute", {"kwargs": {}}).json()
    assert (body["being"], body["hash"], body["version"]) == (str(being.soul), first, 1)


def test_execute_an_alias_in_production_runs_the_promoted_hash(api, alice, make_being):
    """POST /api/aliases/{alias}/execute?environment=production runs the pinned hash, not the newest version."""
    alice.user_permissions.add(Permission.objects.get(codename="promote_soul"))
    alice = User.objects.get(pk=alice.pk)
    being = make_being("greet", genesis={"source": GREET})
    soul_services.soul_promote(hash=being.hash, actor=alice)
    being_evolve(being=being, source=GREET_V2, actor=alice)
    production = post(api, "/api/aliases/greet/execute?environment=production").json()
    development = post(api, "/api/aliases/greet/execute").json()
    assert (production["hash"], production["version"], production["environment"]) == (being.hash, 1, "production")
    assert (development["version"], development["environment"]) == (2, "")


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("ECHO", {"args": {"a": 1}}, 422, "invalid"),
        ("ECHO", {"kwargs": [1]}, 422, "invalid"),
        ("ECHO", {"wait": 31}, 422, "invalid"),
        ("ECHO", {"wait": -1}, 422, "invalid"),
        ("ECHO", {"unknown": 1}, 422, "invalid"),
        ("ECHO", "{not json", 400, "malformed_json"),
        ("ECHO", {"kwargs": {"a": "\u0000"}}, 422, "execution_input_invalid"),
        ("ECHO", '{"args": [NaN]}', 422, "execution_input_invalid"),
        ("ECHO", '{"kwargs": {"a": [Infinity]}}', 422, "execution_input_invalid"),
        ("ECHO", {"kwargs": {"a": "x" * 300_000}}, 413, "document_too_large"),
        ("ECHO", {"hash": "123"}, 422, "hash_invalid"),
        ("ECHO", {"hash": "0" * 64}, 404, "soul_not_found"),
        ("DATA", {}, 409, "not_runnable"),
        ("VIEW_ONLY", {}, 403, "permission_denied"),
        ("HIDDEN", {}, 404, "being_not_found"),
        ("/api/beings/00000000-0000-4000-8000-000000000000/execute", {}, 404, "being_not_found"),
        ("/api/beings/not-a-soul/execute", {}, 422, "invalid"),
        (f"/api/souls/{'f' * 64}/execute", {}, 404, "soul_not_found"),
        ("/api/souls/abc/execute", {}, 422, "hash_invalid"),
        ("SOUL_WITH_HASH", {"hash": "0" * 64}, 422, "invalid"),
        ("/api/aliases/nobody/execute", {}, 404, "alias_not_found"),
        ("/api/aliases/echo/execute?environment=production", {}, 404, "not_promoted"),
        ("/api/aliases/echo/execute?environment=moon", {}, 422, "environment_unknown"),
        ("/api/aliases/echo/execute?environment=production", {"hash": "0" * 64}, 422, "target_invalid"),
    ],
)
def test_execute_refusals(api, bob, make_being, echo, unchanged, path, body, status, code):
    """Every bad request is refused with its status and code, and records nothing."""
    data = make_being("facts", kind="data")
    view_only = make_being("shared", actor=bob)
    assign_perm("view_basebeing", User.objects.get(username="alice"), view_only)
    hidden = make_being("hidden", actor=bob)
    path = {
        "ECHO": execute_url(echo),
        "DATA": execute_url(data),
        "VIEW_ONLY": execute_url(view_only),
        "HIDDEN": execute_url(hidden),
        "SOUL_WITH_HASH": f"/api/souls/{echo.hash}/execute",
    }.get(path, path)
    before = Execution.objects.count()
    with unchanged():
        assert_refused(post(api, path, body), status, code)
    assert Execution.objects.count() == before


def test_anonymous_requests_are_401(client, echo):
    """Every executions route needs a session or a token."""
    execution_id = uuid.uuid4()
    for response in (
        post(client, execute_url(echo)),
        post(client, f"/api/souls/{echo.hash}/execute"),
        post(client, "/api/aliases/echo/execute"),
        client.get("/api/executions"),
        client.get(f"/api/executions/{execution_id}"),
        post(client, f"/api/executions/{execution_id}/cancel"),
    ):
        assert_refused(response, 401, "not_authenticated")


# --- reading and cancelling ---------------------------------------------------------------------------


def test_read_one_execution(api, bob_api, echo):
    """Its starter reads a run; for someone else it does not exist (404, as an unknown id); a malformed one 422."""
    execution_id = post(api, execute_url(echo)).json()["id"]
    body = api.get(f"/api/executions/{execution_id}").json()
    assert (body["id"], body["status"]) == (execution_id, "queued")
    assert_refused(bob_api.get(f"/api/executions/{execution_id}"), 404, "execution_not_found")
    assert_refused(api.get(f"/api/executions/{uuid.uuid4()}"), 404, "execution_not_found")
    assert_refused(api.get("/api/executions/nope"), 422, "invalid")


def test_list_executions_with_filters_and_pages(api, make_being, echo, django_assert_num_queries):
    """Newest first, filtered by being, status and environment, a page at a time, in a fixed number of queries."""
    other = make_being("other", genesis={"source": ECHO})
    ids = [post(api, execute_url(being)).json()["id"] for being in (echo, other, echo)]
    post(api, f"/api/executions/{ids[0]}/cancel")
    with django_assert_num_queries(6):  # session, user, global permissions (2), groups, the page
        page = api.get("/api/executions?limit=2").json()
    assert [item["id"] for item in page["items"]] == [ids[2], ids[1]]
    rest = api.get(f"/api/executions?limit=2&after={page['next']}").json()
    assert ([item["id"] for item in rest["items"]], rest["next"]) == ([ids[0]], None)
    assert [i["id"] for i in api.get(f"/api/executions?being={echo.soul}").json()["items"]] == [ids[2], ids[0]]
    assert [i["id"] for i in api.get("/api/executions?status=killed").json()["items"]] == [ids[0]]
    assert len(api.get("/api/executions?environment=development").json()["items"]) == 3
    assert api.get("/api/executions?environment=production").json()["items"] == []


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("status=sleeping", 422, "invalid"),
        ("limit=0", 422, "invalid"),
        ("limit=501", 422, "invalid"),
        ("being=not-a-soul", 422, "invalid"),
        ("environment=moon", 422, "environment_unknown"),
        ("after=garbage", 400, "invalid_cursor"),
    ],
)
def test_list_refusals(api, query, status, code):
    """Bad filters and cursors are refused with their status and code."""
    assert_refused(api.get(f"/api/executions?{query}"), status, code)


def test_list_of_a_being_one_may_not_view_is_404(api, make_being, bob):
    """Listing the runs of a being one may not view is 404 being_not_found, as if it did not exist."""
    hidden = make_being("hidden", actor=bob)
    assert_refused(api.get(f"/api/executions?being={hidden.soul}"), 404, "being_not_found")


def test_cancel_a_queued_execution(api, bob_api, echo):
    """A queued run cancelled is killed with who cancelled it; again is 409; someone else's or unknown is 404."""
    execution_id = post(api, execute_url(echo)).json()["id"]
    assert_refused(post(bob_api, f"/api/executions/{execution_id}/cancel"), 404, "execution_not_found")
    response = post(api, f"/api/executions/{execution_id}/cancel")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["error"]) == (
        "killed",
        {"type": "Cancelled", "message": "cancelled by alice", "traceback": ""},
    )
    assert_refused(post(api, f"/api/executions/{execution_id}/cancel"), 409, "execution_finished")
    assert_refused(post(api, f"/api/executions/{uuid.uuid4()}/cancel"), 404, "execution_not_found")


def test_the_owner_of_a_being_sees_runs_others_started_but_only_their_starter_cancels(api, bob, make_being):
    """Runs of a being you own are yours to see, not to stop: the starter (or a superuser) cancels them."""
    shared = make_being("shared")
    assign_perm("view_basebeing", bob, shared)
    assign_perm("beings.execute_being", bob, shared)
    execution_id = post(logged_in(bob), execute_url(shared)).json()["id"]
    seen = api.get(f"/api/executions/{execution_id}").json()
    assert (seen["actor"], seen["contents_hidden"]) == ("bob", True)
    refused = post(api, f"/api/executions/{execution_id}/cancel")
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    cancelled = post(logged_in(bob), f"/api/executions/{execution_id}/cancel").json()
    assert (cancelled["status"], cancelled["error"]["message"]) == ("killed", "cancelled by bob")


# --- documentation and health ------------------------------------------------------------------------


def test_every_route_is_in_the_openapi_document(api):
    """The run, read, list and cancel routes are documented with their error responses."""
    paths = api.get("/api/openapi.json").json()["paths"]
    for path in ("/api/beings/{soul}/execute", "/api/souls/{hash}/execute", "/api/aliases/{alias}/execute"):
        assert {"200", "202", "401", "403", "404", "409", "413", "422"} <= set(paths[path]["post"]["responses"])
    assert {"200", "401", "403", "404"} <= set(paths["/api/executions/{id}"]["get"]["responses"])
    assert {"200", "400", "401", "422"} <= set(paths["/api/executions"]["get"]["responses"])
    assert {"200", "403", "404", "409"} <= set(paths["/api/executions/{id}/cancel"]["post"]["responses"])


def test_health_reports_the_sandbox_layers(client):
    """The health endpoint says, without login, which sandbox layers hold on this host."""
    body = client.get("/api/health").json()
    assert (body["status"], body["database"], body["sandbox_error"]) == ("ok", True, None)
    assert set(body["sandbox"]) == LAYERS
    assert all(layer["in_force"] and layer["detail"] for layer in body["sandbox"].values())
    assert body["sandbox_strict"] is False
