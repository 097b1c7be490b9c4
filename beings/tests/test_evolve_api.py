"""Evolution and versions over HTTP: idempotent create, evolve (sync and through a real worker), versions, diff."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from guardian.shortcuts import assign_perm

from beings import kinds
from beings.evolution import being_evolve
from beings.genotype import soul_hash
from beings.models import BaseBeing
from beings.services import being_create
from beings.tasks import being_evolve_task
from luxsite.tests.helpers import post, wait_for
from relations.models import Relationship

pytestmark = pytest.mark.django_db

SOURCE = "def run(a, b):\n    total = a + b\n    return total\n"
GROWN = SOURCE + "\n\ndef double(x):\n    return 2 * x\n"  # 3 lines added to 3: above the 0.5 ratio
SMALL = SOURCE + "LIMIT = 10\n"  # one line added to three: an evolution
CHANGED = SOURCE.replace("a + b", "a - b")  # a line changed: a mutation
COSMETIC = SOURCE.replace("total = a + b", "total = a + b  # the sum")

WAIT_SECONDS = 20.0


def genotype_hash(source: str, kind: str = "function") -> str:
    return soul_hash({"type": kind, "language": "python", "entrypoint": "run", "source": source, "workload": "cpu"})


@pytest.fixture
def adder(make_being: Callable[..., BaseBeing]) -> BaseBeing:
    return make_being("adder", genesis={"source": SOURCE}, attributes={"team": "math"}, tags=["demo"])


def evolve_url(being: BaseBeing) -> str:
    return f"/api/beings/{being.soul}/evolve"


# --- create: 201 once, then 200 with the same being ----------------------------------------------------------------


def test_create_twice_answers_201_then_200_with_the_same_being(api: Client, unchanged: Callable[..., Any]) -> None:
    """The same genotype and alias again returns the existing being with 200 and writes nothing."""
    body = {"genesis": {"name": "adder", "type": "function", "source": SOURCE}}

    first = post(api, "/api/beings/", body)
    with unchanged():
        second = post(api, "/api/beings/", {**body, "tags": ["ignored"]})

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    assert first.json()["hash"] == genotype_hash(SOURCE)
    assert first.json()["version"] == 1


def test_create_with_another_alias_is_a_new_being(api: Client) -> None:
    """The same genotype under another alias is another being (201), with the same hash."""
    first = post(api, "/api/beings/", {"genesis": {"name": "adder", "type": "function", "source": SOURCE}})
    second = post(api, "/api/beings/", {"genesis": {"name": "summer", "type": "function", "source": SOURCE}})

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["soul"] != second.json()["soul"]
    assert first.json()["hash"] == second.json()["hash"]


def test_create_with_a_malformed_origin_is_refused(api: Client, unchanged: Callable[..., Any]) -> None:
    """A genesis.origin that is no object makes the versions unreadable: a 4xx with code and detail, nothing stored."""
    with unchanged():
        response = post(
            api,
            "/api/beings/",
            {"genesis": {"name": "adder", "type": "function", "source": SOURCE, "origin": "forged"}},
        )

    assert response.status_code == 422
    assert response.json() == {
        "code": "genesis_invalid",
        "detail": "genesis.origin must be an object whose kind, at, actor and reason are strings",
    }


def test_create_does_not_return_a_being_the_caller_may_not_view(api: Client, bob_api: Client) -> None:
    """Bob creating what alice already has gets a being of his own, not alice's."""
    body = {"genesis": {"name": "adder", "type": "function", "source": SOURCE}}

    alices = post(api, "/api/beings/", body)
    bobs = post(bob_api, "/api/beings/", body)

    assert (alices.status_code, bobs.status_code) == (201, 201)
    assert alices.json()["soul"] != bobs.json()["soul"]


def test_openapi_documents_every_status() -> None:
    """The OpenAPI document lists 200 and 201 for create, 200/201/202 for evolve, and the diff parameters."""
    document = Client().get("/api/openapi.json").json()
    paths, schemas = document["paths"], document["components"]["schemas"]

    create = paths["/api/beings/"]["post"]["responses"]
    evolve = paths["/api/beings/{soul}/evolve"]["post"]
    diff = paths["/api/beings/{soul}/diff"]["get"]
    assert {"200", "201", "401", "403", "404", "409", "413", "422"} <= set(create)
    assert {"200", "201", "202", "401", "403", "404", "409", "413", "422"} <= set(evolve["responses"])
    assert evolve["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/EvolveIn"}
    assert set(schemas["EvolveIn"]["properties"]) == {"source", "reason", "async"}
    assert {"from", "to", "unified", "added", "removed"} <= set(schemas["DiffOut"]["properties"])
    assert {parameter["name"] for parameter in diff["parameters"]} >= {"soul", "from", "to"}
    assert {"200", "404", "409", "422"} <= set(paths["/api/beings/{soul}/versions"]["get"]["responses"])


# --- evolve, synchronously -----------------------------------------------------------------------------------------


def test_evolve_with_a_small_addition_answers_200_with_the_next_version(api: Client, adder: BaseBeing) -> None:
    """Adding one line to three keeps the soul and answers 200 with version 2 and both hashes."""
    response = post(api, evolve_url(adder), {"source": SMALL, "reason": "a limit"})

    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in body if key != "being"} == {
        "kind": "evolution",
        "parent_soul": str(adder.soul),
        "from_hash": genotype_hash(SOURCE),
        "to_hash": genotype_hash(SMALL),
        "version": 2,
        "added": 1,
        "removed": 0,
        "changed": 0,
    }
    assert body["being"]["soul"] == str(adder.soul)
    assert (body["being"]["hash"], body["being"]["version"]) == (genotype_hash(SMALL), 2)
    assert body["being"]["genesis"]["source"] == SMALL
    adder.refresh_from_db()
    assert (adder.version, adder.hash) == (2, genotype_hash(SMALL))


def test_evolve_with_a_changed_line_answers_201_with_the_mutant(api: Client, adder: BaseBeing) -> None:
    """Changing a line makes a new being (201); the parent keeps its version and source."""
    before = BaseBeing.objects.get(pk=adder.pk).genesis

    response = post(api, evolve_url(adder), {"source": CHANGED, "reason": "subtract"})

    assert response.status_code == 201
    body = response.json()
    mutant = BaseBeing.objects.get(soul=body["being"]["soul"])
    assert mutant.soul != adder.soul
    assert (body["kind"], body["parent_soul"], body["version"]) == ("mutation", str(adder.soul), 1)
    assert (body["from_hash"], body["to_hash"]) == (genotype_hash(SOURCE), genotype_hash(CHANGED))
    assert (body["added"], body["removed"], body["changed"]) == (0, 0, 1)
    assert mutant.genesis["parent"] == {"soul": str(adder.soul), "version": 1, "hash": genotype_hash(SOURCE)}
    assert BaseBeing.objects.get(pk=adder.pk).genesis == before


def test_evolve_with_a_comment_only_is_cosmetic(api: Client, adder: BaseBeing) -> None:
    """A comment added to a line is a cosmetic evolution of the same being."""
    response = post(api, evolve_url(adder), {"source": COSMETIC})

    assert response.status_code == 200
    assert (response.json()["kind"], response.json()["being"]["soul"]) == ("cosmetic", str(adder.soul))
    assert response.json()["version"] == 2


@pytest.mark.parametrize("run_async", [False, True])
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"source": SOURCE}, 409, "nothing_changed"),
        ({"source": "def run(:\n    pass\n"}, 422, "source_syntax_error"),
        ({"source": "x = '\x00'\n"}, 422, "source_syntax_error"),
        ({"source": "x = '\ud800'\n"}, 422, "source_syntax_error"),
        ({"source": "x = 1\n" * 20_000}, 413, "document_too_large"),
        ({"reason": "no source"}, 422, "invalid"),
        ({"source": 42}, 422, "invalid"),
        ({"source": SMALL, "reason": "r" * 501}, 422, "invalid"),
        ({"source": SMALL, "colour": "blue"}, 422, "invalid"),
    ],
)
def test_bad_evolve_bodies_are_refused_and_change_nothing(
    api: Client,
    adder: BaseBeing,
    unchanged: Callable[..., Any],
    body: dict[str, Any],
    status: int,
    code: str,
    run_async: bool,
) -> None:
    """The same source, invalid or oversize Python and malformed bodies are refused, in both modes, writing nothing."""
    with unchanged():
        response = post(api, evolve_url(adder), {**body, "async": run_async})

    assert response.status_code == status
    assert response.json()["code"] == code
    assert set(response.json()) == {"code", "detail"}


def test_async_flag_must_be_a_boolean(api: Client, adder: BaseBeing, unchanged: Callable[..., Any]) -> None:
    """`async` that is not a boolean is a 422."""
    with unchanged():
        response = post(api, evolve_url(adder), {"source": SMALL, "async": "later"})

    assert response.status_code == 422
    assert response.json()["code"] == "invalid"
    assert "async" in response.json()["detail"]


def test_malformed_json_is_400(api: Client, adder: BaseBeing, unchanged: Callable[..., Any]) -> None:
    """A body that is not JSON is a 400."""
    with unchanged():
        response = post(api, evolve_url(adder), "{source:")

    assert (response.status_code, response.json()["code"]) == (400, "malformed_json")


@pytest.mark.parametrize("run_async", [False, True])
def test_evolve_of_someone_elses_being_is_404_or_403(
    bob_api: Client, bob: User, adder: BaseBeing, unchanged: Callable[..., Any], run_async: bool
) -> None:
    """Bob may not evolve alice's being: without any permission it does not exist for him; with view only, 403."""
    with unchanged():
        hidden = post(bob_api, evolve_url(adder), {"source": SMALL, "async": run_async})
    assign_perm("beings.view_basebeing", bob, adder)
    with unchanged():
        viewer = post(bob_api, evolve_url(adder), {"source": SMALL, "async": run_async})

    assert (hidden.status_code, hidden.json()["code"]) == (404, "being_not_found")
    assert (viewer.status_code, viewer.json()["code"]) == (403, "permission_denied")


@pytest.mark.parametrize("run_async", [False, True])
def test_core_beings_never_evolve(root: User, unchanged: Callable[..., Any], run_async: bool) -> None:
    """Even a superuser cannot evolve a core being: 409 core_being."""
    from luxsite.tests.fixtures import logged_in

    kernel = BaseBeing.objects.get(soul=kinds.core_soul("Kernel"))
    with unchanged():
        response = post(logged_in(root), evolve_url(kernel), {"source": "x = 1\n", "async": run_async})

    assert (response.status_code, response.json()["code"]) == (409, "core_being")


def test_evolve_of_an_unknown_or_malformed_soul(api: Client, unchanged: Callable[..., Any]) -> None:
    """An unknown soul is 404, a path that is not a UUID 422."""
    with unchanged():
        unknown = post(api, f"/api/beings/{uuid.uuid4()}/evolve", {"source": SMALL})
        malformed = post(api, "/api/beings/not-a-soul/evolve", {"source": SMALL})

    assert (unknown.status_code, unknown.json()["code"]) == (404, "being_not_found")
    assert malformed.status_code == 422


def test_evolve_without_credentials_is_401(adder: BaseBeing, unchanged: Callable[..., Any]) -> None:
    """Without a session or a token nothing evolves."""
    with unchanged():
        response = post(Client(), evolve_url(adder), {"source": SMALL})

    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")


# --- versions ------------------------------------------------------------------------------------------------------


def test_versions_list_own_and_inherited_versions_oldest_first(api: Client, alice: User, adder: BaseBeing) -> None:
    """A mutant lists its parent's versions (inherited, the parent's soul) before its own current one."""
    being_evolve(being=adder, source=SMALL, reason="", actor=alice)
    mutant = being_evolve(being=adder, source=SMALL.replace("a + b", "b + a"), reason="", actor=alice).being

    parent_versions = api.get(f"/api/beings/{adder.soul}/versions")
    mutant_versions = api.get(f"/api/beings/{mutant.soul}/versions")

    assert parent_versions.status_code == mutant_versions.status_code == 200
    shape = [
        (v["version"], v["hash"], v["kind"], v["soul"], v["inherited"], v["is_current"]) for v in mutant_versions.json()
    ]
    assert shape == [
        (1, genotype_hash(SOURCE), "genesis", str(adder.soul), True, False),
        (2, genotype_hash(SMALL), "evolution", str(adder.soul), True, False),
        (1, mutant.hash, "mutation", str(mutant.soul), False, True),
    ]
    assert [(v["version"], v["inherited"], v["is_current"]) for v in parent_versions.json()] == [
        (1, False, False),
        (2, False, True),
    ]
    assert all(v["created_at"] for v in mutant_versions.json())


def test_versions_take_the_same_queries_however_long_the_lineage(
    api: Client, alice: User, adder: BaseBeing, django_assert_num_queries: Any, django_assert_max_num_queries: Any
) -> None:
    """Listing versions costs a fixed number of queries: the lineage lives in one row."""
    with django_assert_max_num_queries(8) as short:  # session, user, being, its permission check
        api.get(f"/api/beings/{adder.soul}/versions")
    source = SOURCE
    for number in range(5):
        source += f"STEP_{number} = {number}\n"
        being_evolve(being=adder, source=source, reason="", actor=alice)
    with django_assert_num_queries(len(short.captured_queries)):
        response = api.get(f"/api/beings/{adder.soul}/versions")
    assert [v["version"] for v in response.json()] == [1, 2, 3, 4, 5, 6]


def test_versions_of_someone_elses_or_an_unknown_being(bob_api: Client, adder: BaseBeing) -> None:
    """Bob may not list alice's versions: her being is as unknown to him as a soul nobody has (404)."""
    hidden = bob_api.get(f"/api/beings/{adder.soul}/versions")
    assert (hidden.status_code, hidden.json()["code"]) == (404, "being_not_found")
    assert bob_api.get(f"/api/beings/{uuid.uuid4()}/versions").json()["code"] == "being_not_found"


# --- diff ----------------------------------------------------------------------------------------------------------


def test_diff_between_two_versions_by_prefix(api: Client, alice: User, adder: BaseBeing) -> None:
    """The diff of two versions, named by 12-character prefixes, is a labelled unified diff with its counts."""
    being_evolve(being=adder, source=SMALL, reason="", actor=alice)
    old, new = genotype_hash(SOURCE), genotype_hash(SMALL)

    response = api.get(f"/api/beings/{adder.soul}/diff", {"from": old[:12], "to": new[:12]})

    assert response.status_code == 200
    assert response.json() == {
        "from": {"hash": old, "version": 1},
        "to": {"hash": new, "version": 2},
        "unified": (
            f"--- {old[:12]} v1\n+++ {new[:12]} v2\n@@ -1,3 +1,4 @@\n"
            " def run(a, b):\n     total = a + b\n     return total\n+LIMIT = 10\n"
        ),
        "added": 1,
        "removed": 0,
    }


def test_diff_reaches_inherited_versions_and_lines_without_a_newline(
    api: Client, alice: User, make_being: Callable[..., BaseBeing]
) -> None:
    """A mutant's diff against its parent's first version works, and a last line without newline stays one line."""
    parent = make_being("tail", genesis={"source": "x = 1\ny = 2"})
    mutant = being_evolve(being=parent, source="x = 1\ny = 3", reason="", actor=alice).being

    response = api.get(f"/api/beings/{mutant.soul}/diff", {"from": parent.hash, "to": mutant.hash})

    assert response.status_code == 200
    assert response.json()["unified"].endswith(" x = 1\n-y = 2\n+y = 3\n")
    assert (response.json()["added"], response.json()["removed"]) == (1, 1)


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"to": "PLACEHOLDER"}, 422, "invalid"),
        ({"from": "PLACEHOLDER"}, 422, "invalid"),
        ({"from": "abc", "to": "PLACEHOLDER"}, 422, "hash_invalid"),
        ({"from": "zz" * 32, "to": "PLACEHOLDER"}, 422, "hash_invalid"),
        ({"from": "0" * 64, "to": "PLACEHOLDER"}, 404, "soul_not_found"),
        ({"from": "OTHER", "to": "PLACEHOLDER"}, 404, "soul_not_found"),
    ],
)
def test_bad_diff_queries(
    api: Client, adder: BaseBeing, make_being: Callable[..., BaseBeing], query: dict[str, str], status: int, code: str
) -> None:
    """Missing parameters, malformed hashes, and hashes that are not versions of this being are refused."""
    other = make_being("other", genesis={"source": "x = 1\n"})
    names = {"PLACEHOLDER": adder.hash, "OTHER": other.hash}
    response = api.get(f"/api/beings/{adder.soul}/diff", {key: names.get(value, value) for key, value in query.items()})

    assert response.status_code == status
    assert response.json()["code"] == code


def test_diff_of_someone_elses_being_is_404(bob_api: Client, adder: BaseBeing) -> None:
    """Bob may not read the diff of alice's being: for him it does not exist."""
    response = bob_api.get(f"/api/beings/{adder.soul}/diff", {"from": adder.hash, "to": adder.hash})

    assert (response.status_code, response.json()["code"]) == (404, "being_not_found")


# --- through a real worker -----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("transactional_db")
def test_async_evolve_runs_on_the_worker(celery_worker: Any, api: Client, adder: BaseBeing) -> None:
    """async=true answers 202 with a task id, and a worker gives the being its next version."""
    response = post(api, evolve_url(adder), {"source": SMALL, "reason": "later", "async": True})

    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    uuid.UUID(response.json()["task_id"])
    evolved = wait_for(lambda: BaseBeing.objects.filter(pk=adder.pk, genesis__contains={"version": 2}).first())
    assert evolved.hash == genotype_hash(SMALL)
    assert evolved.memories[-1]["reason"] == "later"
    assert evolved.memories[-1]["actor"] == "alice"
    result = being_evolve_task.AsyncResult(response.json()["task_id"]).get(timeout=WAIT_SECONDS)
    assert result == {"status": "evolution", "soul": str(adder.soul), "hash": genotype_hash(SMALL), "version": 2}


def delivered(request: str, *args: Any) -> dict[str, Any]:
    """One delivery of the evolve task with id ``request``, run here as a worker runs it."""
    being_evolve_task.push_request(id=request)  # type: ignore[call-arg]  # the stubs omit its keyword arguments
    try:
        return being_evolve_task(*args)
    finally:
        being_evolve_task.pop_request()


@pytest.mark.parametrize(("source", "kind"), [(SMALL, "evolution"), (CHANGED, "mutation")])
def test_the_same_task_twice_makes_one_version(alice: User, adder: BaseBeing, source: str, kind: str) -> None:
    """Two deliveries of one request (one task id, as a redelivery keeps it) make one new version, or one mutant."""
    args = (str(adder.soul), source, "twice", alice.pk)
    request = str(uuid.uuid4())

    results = [delivered(request, *args), delivered(request, *args)]

    adder.refresh_from_db()
    mutants = BaseBeing.objects.filter(genesis__contains={"parent": {"soul": str(adder.soul)}})
    if kind == "evolution":
        assert (adder.version, adder.hash, mutants.count()) == (2, genotype_hash(SOURCE + "LIMIT = 10\n"), 0)
        assert len(adder.genesis["ancestors"]) == 1
    else:
        assert (adder.version, mutants.count()) == (1, 1)
        assert Relationship.objects.filter(source=adder, tags__contains=["mutation"]).count() == 1
    holder = adder if kind == "evolution" else mutants.get()
    assert holder.genesis["origin"]["request"] == request
    assert [result["status"] for result in results] == [kind, "done"]
    assert {result["soul"] for result in results} == {str(holder.soul)}


def test_a_redelivery_after_later_versions_is_still_done(alice: User, adder: BaseBeing) -> None:
    """The request stays in the lineage entry once later versions replace its version: a late redelivery is done."""
    request = str(uuid.uuid4())
    delivered(request, str(adder.soul), SMALL, "first", alice.pk)
    being_evolve(being=adder, source=SMALL + "MORE = 1\n", reason="", actor=alice)

    again = delivered(request, str(adder.soul), SMALL, "first", alice.pk)

    adder.refresh_from_db()
    assert (again["status"], adder.version) == ("done", 3)


def test_a_request_is_not_done_by_a_being_someone_else_made(
    alice: User, root: User, adder: BaseBeing, unchanged: Callable[..., Any]
) -> None:
    """A being with the evolution's source and this parent, made by someone else first, does not stand in for it."""
    planted = being_create(
        data={
            "genesis": {
                "name": "adder",
                "type": "function",
                "source": CHANGED,
                "parent": {"soul": str(adder.soul), "version": 1, "hash": adder.hash},
            }
        },
        actor=root,
    )

    result = delivered(str(uuid.uuid4()), str(adder.soul), CHANGED, "mine", alice.pk)

    assert result["status"] == "mutation"
    assert result["soul"] not in {str(planted.soul), str(adder.soul)}
    assert BaseBeing.objects.get(soul=result["soul"]).genesis["origin"]["actor"] == "alice"


@pytest.mark.parametrize(
    ("soul", "actor", "code"),
    [
        ("ADDER", "GONE", "permission_denied"),
        ("UNKNOWN", "ALICE", "being_not_found"),
        ("ADDER", "BOB", "being_not_found"),
    ],
)
def test_the_task_refuses_what_the_service_would_and_writes_nothing(
    alice: User, bob: User, adder: BaseBeing, unchanged: Callable[..., Any], soul: str, actor: str, code: str
) -> None:
    """A task whose user was deleted meanwhile, whose being is gone, or whose user may not change it writes nothing."""
    souls = {"ADDER": str(adder.soul), "UNKNOWN": str(uuid.uuid4())}
    actors = {"ALICE": alice.pk, "BOB": bob.pk, "GONE": max(alice.pk, bob.pk) + 1000}

    with unchanged():
        result = being_evolve_task(souls[soul], SMALL, "", actors[actor])

    assert (result["status"], result["code"]) == ("refused", code)


@pytest.mark.parametrize("task", ["beings.tasks.being_evolve", "beings.tasks.souls_validate"])
def test_database_bound_tasks_are_routed_to_the_io_queue(task: str) -> None:
    """Evolutions and validations wait on the database: they must not hold a cpu worker's process."""
    from luxsite.celery import app

    assert app.amqp.router.route({}, task)["queue"].name == "io"
