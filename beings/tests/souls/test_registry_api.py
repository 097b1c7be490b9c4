"""The registry API: versions by hash, aliases, promote/demote, environments; exact statuses and bodies, bad input."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from beings import genotype
from beings.evolution import being_evolve
from beings.models import BaseBeing, Promotion, SoulValidation
from beings.souls import selectors as soul_selectors
from beings.souls import services as soul_services
from beings.tests.souls.test_registry import fake_ancestors, lineage_tamper, tamper
from luxsite.tests.fixtures import logged_in
from luxsite.tests.helpers import post

# Production asks for evidence before a promotion; these tests promote to set the scene, the gate is tested on its own.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("promotion_evidence_waived")]

SOURCE = "def run():\n    return 'hi'\n"


@pytest.fixture(autouse=True)
def soul_log_dir(settings, tmp_path):
    settings.LUXOS_SOUL_LOG_DIR = tmp_path / "souls"


@pytest.fixture
def promoter(alice):
    alice.user_permissions.add(Permission.objects.get(codename="promote_soul"))
    return User.objects.get(pk=alice.pk)


@pytest.fixture
def greeter(alice, make_being):
    """alice's being at version 2: its first version is an ancestor."""
    being = make_being("greeter", genesis={"source": SOURCE})
    evolution = being_evolve(being=being, source=SOURCE + "A = 1\n", reason="more", actor=alice)
    return BaseBeing.objects.get(soul=evolution.being.soul)


def first_hash(being: BaseBeing) -> str:
    return being.genesis["ancestors"][0]["hash"]


def error(response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"code", "detail"}, body
    return response.status_code, body["code"]


# --- GET /api/souls/{hash} -----------------------------------------------------------------------------


def test_soul_by_full_hash_is_the_current_version_with_its_genotype(api, greeter):
    """The current version: alias, soul, version, kind, genotype, and no promotions yet."""
    response = api.get(f"/api/souls/{greeter.hash}")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "hash": greeter.hash,
        "alias": "greeter",
        "soul": str(greeter.soul),
        "version": 2,
        "kind": "evolution",
        "created_at": greeter.genesis["origin"]["at"],
        "is_current": True,
        "holder": str(greeter.soul),
        "genotype": genotype.genotype_of(greeter.genesis),
        "promotions": [],
    }
    assert genotype.soul_hash(body["genotype"]) == greeter.hash


def test_soul_by_prefix_finds_an_ancestor_and_where_it_runs(api, promoter, greeter):
    """A 12-character prefix of an old hash gives that exact version, its source rebuilt, and its promotions."""
    old = first_hash(greeter)
    soul_services.soul_promote(hash=old, environment="staging", actor=promoter)
    body = api.get(f"/api/souls/{old[:12]}").json()
    assert (body["hash"], body["version"], body["is_current"], body["kind"]) == (old, 1, False, "genesis")
    assert body["genotype"]["source"] == SOURCE
    assert [(p["environment"], p["alias"], p["promoted_by"]) for p in body["promotions"]] == [
        ("staging", "greeter", "alice")
    ]


@pytest.mark.parametrize(
    ("hash", "status", "code"),
    [
        ("not-a-hash", 422, "hash_invalid"),
        ("abc", 422, "hash_invalid"),
        ("ABCDEF0123456789", 404, "soul_not_found"),
        ("0" * 64, 404, "soul_not_found"),
        ("0" * 65, 422, "hash_invalid"),
        ("abcdef012345", 409, "hash_ambiguous"),
    ],
)
def test_soul_lookup_bad_hashes(api, greeter, hash, status, code):
    """Malformed hashes are 422, unknown ones 404, a prefix naming two versions 409."""
    fake_ancestors(greeter, ["abcdef012345" + "0" * 52, "abcdef012345" + "1" * 52])
    assert error(api.get(f"/api/souls/{hash}")) == (status, code)


def test_soul_of_someone_elses_being_is_not_found(bob_api, greeter):
    """Another user's version is invisible: 404, as if it did not exist."""
    assert error(bob_api.get(f"/api/souls/{greeter.hash}")) == (404, "soul_not_found")


# --- GET /api/aliases/{alias} --------------------------------------------------------------------------


def test_alias_is_the_newest_being_and_what_each_environment_runs(api, promoter, greeter, make_being):
    """The newest being named so, with the hash promoted in each environment (null where none)."""
    old = first_hash(greeter)
    soul_services.soul_promote(hash=old, actor=promoter)
    newer = make_being("greeter", genesis={"source": "def run():\n    return 'new'\n"})
    body = api.get("/api/aliases/greeter").json()
    assert body["soul"] == str(newer.soul)
    assert (body["alias"], body["hash"], body["version"], body["kind"]) == ("greeter", newer.hash, 1, "function")
    assert body["production"] == {"production": old, "staging": None}


@pytest.mark.parametrize("alias", ["nobody", "greeter%20x", quote("grüße")])
def test_unknown_alias_is_404(api, greeter, alias):
    """An alias no visible being has is 404 alias_not_found."""
    assert error(api.get(f"/api/aliases/{alias}")) == (404, "alias_not_found")


def test_alias_of_someone_elses_being_is_404(bob_api, greeter):
    """bob asking for alice's alias gets 404 alias_not_found: her being is as unknown to him as one nobody has."""
    assert error(bob_api.get("/api/aliases/greeter")) == (404, "alias_not_found")


# --- POST /api/souls/{hash}/promote and /demote ----------------------------------------------------------


def test_promote_answers_201_with_the_promotion(api, promoter, greeter):
    """201 with the stored event, its genotype copy, who and why."""
    response = post(api, f"/api/souls/{greeter.hash[:16]}/promote", {"note": "ship it"})
    assert response.status_code == 201
    body = response.json()
    promotion = Promotion.objects.get()
    assert body == {
        "id": promotion.pk,
        "environment": "production",
        "action": "promote",
        "hash": greeter.hash,
        "alias": "greeter",
        "soul": str(greeter.soul),
        "version": 2,
        "actor": "alice",
        "note": "ship it",
        "created_at": body["created_at"],
        "ends": None,
        "ends_hash": None,
        "ended_by": None,
        "override_reason": "",
        "evidence": None,
        "genotype": genotype.genotype_of(greeter.genesis),
    }
    assert promotion.created_at.isoformat().startswith(body["created_at"][:19])


def test_promote_another_hash_supersedes_and_demote_ends(api, promoter, greeter):
    """Promoting another hash names the one it ends; a demotion names the promotion it ends."""
    old = first_hash(greeter)
    first = post(api, f"/api/souls/{old}/promote", {"environment": "staging"}).json()
    second = post(api, f"/api/souls/{greeter.hash}/promote", {"environment": "staging", "note": "v2"}).json()
    assert (second["ends"], second["ends_hash"]) == (first["id"], old)
    demotion = post(api, f"/api/souls/{greeter.hash}/demote", {"environment": "staging", "note": "bad"})
    assert demotion.status_code == 201
    body = demotion.json()
    assert (body["action"], body["ends"], body["ends_hash"], body["note"], body["hash"]) == (
        "demote",
        second["id"],
        greeter.hash,
        "bad",
        greeter.hash,
    )
    assert list(soul_selectors.promotions_active(environment="staging")) == []


def test_promote_under_another_alias(api, promoter, greeter):
    """A promotion may name an alias other than the being's, and the promotion answers with it."""
    body = post(api, f"/api/souls/{greeter.hash}/promote", {"alias": "hello"}).json()
    assert body["alias"] == "hello"


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("promote", {"environment": "prod"}, 422, "environment_unknown"),
        ("promote", {"environment": 7}, 422, "invalid"),
        ("promote", {"note": "x" * 2001}, 422, "note_invalid"),
        ("promote", {"alias": ""}, 422, "alias_invalid"),
        ("promote", {"colour": "red"}, 422, "invalid"),
        ("promote", "{not json", 400, "malformed_json"),
        ("demote", {"environment": "moon"}, 422, "environment_unknown"),
        ("demote", {"alias": "x"}, 422, "invalid"),
        ("demote", {}, 409, "not_promoted"),
    ],
)
def test_promote_and_demote_bad_bodies(api, promoter, greeter, unchanged, path, body, status, code):
    """Bad bodies are refused with their error and nothing is written."""
    before = Promotion.objects.count()
    with unchanged():
        assert error(post(api, f"/api/souls/{greeter.hash}/{path}", body)) == (status, code)
    assert Promotion.objects.count() == before


@pytest.mark.parametrize(
    ("hash", "status", "code"),
    [("xyz", 422, "hash_invalid"), ("0" * 64, 404, "soul_not_found"), ("abcdef012345", 409, "hash_ambiguous")],
)
def test_promote_bad_hashes(api, promoter, greeter, hash, status, code):
    """A malformed hash is 422, an unknown one 404, a prefix two versions share 409; none promotes anything."""
    fake_ancestors(greeter, ["abcdef012345" + "0" * 52, "abcdef012345" + "1" * 52])
    assert error(post(api, f"/api/souls/{hash}/promote")) == (status, code)
    assert not Promotion.objects.exists()


def test_promote_twice_is_409(api, promoter, greeter):
    """Promoting the hash already active is 409 already_promoted, and only one promotion is stored."""
    assert post(api, f"/api/souls/{greeter.hash}/promote").status_code == 201
    assert error(post(api, f"/api/souls/{greeter.hash}/promote")) == (409, "already_promoted")
    assert Promotion.objects.count() == 1


def test_promote_and_demote_need_the_permission(api, bob_api, greeter, promoter):
    """Without beings.promote_soul: 403, whether or not the being is one's own."""
    alice = User.objects.get(username="alice")
    alice.user_permissions.clear()
    assert error(post(logged_in(alice), f"/api/souls/{greeter.hash}/promote")) == (403, "permission_denied")
    assert error(post(bob_api, f"/api/souls/{greeter.hash}/promote")) == (403, "permission_denied")
    assert error(post(bob_api, f"/api/souls/{greeter.hash}/demote")) == (403, "permission_denied")
    assert not Promotion.objects.exists()


def test_unauthenticated_registry_calls_are_401():
    """Every registry endpoint needs a session or a bearer token."""
    client = Client()
    h = "a" * 64
    for response in (
        client.get(f"/api/souls/{h}"),
        client.get("/api/aliases/x"),
        post(client, f"/api/souls/{h}/promote"),
        post(client, f"/api/souls/{h}/demote"),
        client.get("/api/environments/production/souls"),
        client.get("/api/environments/production/manifest"),
        post(client, "/api/environments/production/validate"),
        client.get("/api/environments/production/history"),
        client.get("/api/environments/production/at?alias=x&at=2024-01-01T00:00:00Z"),
    ):
        assert error(response) == (401, "not_authenticated")


def test_promote_with_a_bearer_token(promoter, greeter, bearer):
    """A script with alice's bearer token promotes, and the promotion is recorded as hers."""
    response = post(Client(), f"/api/souls/{greeter.hash}/promote", {"note": "ci"}, **bearer)
    assert response.status_code == 201
    assert response.json()["actor"] == "alice"


# --- environments ----------------------------------------------------------------------------------------


def test_environment_souls_lists_active_promotions_in_constant_queries(
    api, promoter, make_being, django_assert_num_queries
):
    """The active promotions by alias; the query count does not grow with their number."""
    beings = [make_being(f"b{i}", genesis={"source": f"def run():\n    return {i}\n"}) for i in range(6)]
    for being in beings[:2]:
        soul_services.soul_promote(hash=being.hash, actor=promoter)
    with django_assert_num_queries(5):  # session, user, its permissions and groups (promoter or not), promotions
        small = api.get("/api/environments/production/souls")
    for being in beings[2:]:
        soul_services.soul_promote(hash=being.hash, actor=promoter)
    soul_services.soul_demote(hash=beings[0].hash, actor=promoter)
    with django_assert_num_queries(5):
        large = api.get("/api/environments/production/souls")
    assert [item["alias"] for item in small.json()] == ["b0", "b1"]
    assert [item["alias"] for item in large.json()] == ["b1", "b2", "b3", "b4", "b5"]
    assert "genotype" not in large.json()[0]
    assert api.get("/api/environments/staging/souls").json() == []


def test_environment_manifest(api, promoter, greeter):
    """The manifest's digest is the sha256 of its souls' canonical JSON."""
    soul_services.soul_promote(hash=greeter.hash, actor=promoter)
    body = api.get("/api/environments/production/manifest").json()
    assert body["souls_count"] == 1 and body["environment"] == "production"
    spelled = json.dumps(body["souls"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert body["digest"] == hashlib.sha256(spelled.encode()).hexdigest()
    assert body["souls"][0]["hash"] == greeter.hash


def test_environment_validate(api, promoter, greeter):
    """200 with the stored result: ok, then failing with the problem named once the lineage is tampered with."""
    old = first_hash(greeter)
    soul_services.soul_promote(hash=old, actor=promoter)
    response = post(api, "/api/environments/production/validate")
    assert response.status_code == 200
    body = response.json()
    assert (body["ok"], body["checked"], body["problems"], body["door"], body["actor"]) == (True, 1, [], "api", "alice")
    lineage_tamper(greeter)
    body = post(api, "/api/environments/production/validate").json()
    assert body["ok"] is False
    assert [(p["hash"], p["alias"], p["version"]) for p in body["problems"]] == [(old, "greeter", 1)]
    assert body["problems"][0]["reason"].startswith("lineage mismatch")
    assert SoulValidation.objects.count() == 2


def test_environment_validate_reports_a_tampered_genotype(api, promoter, greeter):
    """A promotion's genotype copy tampered with in the database makes validation fail, naming that hash."""
    promotion = soul_services.soul_promote(hash=greeter.hash, actor=promoter)
    tamper(
        "UPDATE soul_promotions SET genotype = jsonb_set(genotype, '{source}', '\"evil\"') WHERE id = %s",
        [promotion.pk],
    )
    body = post(api, "/api/environments/production/validate").json()
    assert body["ok"] is False and body["problems"][0]["hash"] == greeter.hash


def test_environment_validate_needs_the_permission(bob_api):
    """Validating an environment without beings.promote_soul is 403, and no validation is stored."""
    assert error(post(bob_api, "/api/environments/production/validate")) == (403, "permission_denied")
    assert not SoulValidation.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/environments/moon/souls"),
        ("get", "/api/environments/moon/manifest"),
        ("post", "/api/environments/moon/validate"),
        ("get", "/api/environments/moon/history"),
        ("get", "/api/environments/moon/at?alias=x&at=2024-01-01T00:00:00Z"),
    ],
)
def test_unknown_environment_is_422(api, promoter, method, path):
    """Every environment route given an unknown environment is 422 environment_unknown, listing the real ones."""
    response = post(api, path) if method == "post" else api.get(path)
    assert error(response) == (422, "environment_unknown")
    assert "production, staging" in response.json()["detail"]


def test_environment_history_pages_newest_first(api, promoter, greeter, make_being):
    """The history of an environment, newest first, a page at a time, filtered by alias on request."""
    old = first_hash(greeter)
    soul_services.soul_promote(hash=old, actor=promoter)
    soul_services.soul_promote(hash=greeter.hash, actor=promoter)
    soul_services.soul_demote(hash=greeter.hash, actor=promoter)
    other = make_being("other", genesis={"source": "def run():\n    return 2\n"})
    soul_services.soul_promote(hash=other.hash, actor=promoter)
    soul_services.soul_promote(hash=other.hash, environment="staging", actor=promoter)
    first_page = api.get("/api/environments/production/history?limit=3").json()
    assert [(i["action"], i["alias"]) for i in first_page["items"]] == [
        ("promote", "other"),
        ("demote", "greeter"),
        ("promote", "greeter"),
    ]
    assert first_page["items"][1]["ended_by"] is None and first_page["items"][2]["ended_by"] is not None
    rest = api.get(f"/api/environments/production/history?limit=3&after={first_page['next']}").json()
    assert [(i["action"], i["hash"]) for i in rest["items"]] == [("promote", old)]
    assert rest["next"] is None
    greeter_only = api.get("/api/environments/production/history?alias=greeter").json()["items"]
    assert {i["alias"] for i in greeter_only} == {"greeter"} and len(greeter_only) == 3
    assert error(api.get("/api/environments/production/history?after=garbage")) == (400, "invalid_cursor")
    assert error(api.get("/api/environments/production/history?limit=0")) == (422, "invalid")


def test_environment_at_a_point_in_time(api, promoter, greeter):
    """Which hash an alias ran at a time; 404 when it ran none; bad or missing parameters 422."""
    old = first_hash(greeter)
    first = soul_services.soul_promote(hash=old, actor=promoter)
    second = soul_services.soul_promote(hash=greeter.hash, actor=promoter)

    def at(moment):
        return api.get("/api/environments/production/at", {"alias": "greeter", "at": moment.isoformat()})

    assert at(first.created_at).json()["hash"] == old
    assert at(second.created_at).json()["hash"] == greeter.hash
    assert at(second.created_at - timedelta(microseconds=1)).json()["hash"] == old
    assert error(at(first.created_at - timedelta(seconds=1))) == (404, "not_promoted")
    assert error(api.get("/api/environments/production/at?alias=greeter&at=yesterday")) == (422, "invalid")
    assert error(api.get("/api/environments/production/at?at=2024-01-01T00:00:00Z")) == (422, "invalid")


# --- OpenAPI -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "method", "success"),
    [
        ("/api/souls/{hash}", "get", "200"),
        ("/api/souls/{hash}/promote", "post", "201"),
        ("/api/souls/{hash}/demote", "post", "201"),
        ("/api/aliases/{alias}", "get", "200"),
        ("/api/environments/{environment}/souls", "get", "200"),
        ("/api/environments/{environment}/manifest", "get", "200"),
        ("/api/environments/{environment}/validate", "post", "200"),
        ("/api/environments/{environment}/history", "get", "200"),
        ("/api/environments/{environment}/at", "get", "200"),
    ],
)
def test_every_registry_route_is_documented_with_its_errors(api, path, method, success):
    """Each route documents its success schema and the error shape for 401, 403, 404, 409 and 422."""
    document = api.get("/api/openapi.json").json()
    operation = document["paths"][path][method]
    responses = operation["responses"]
    assert "$ref" in json.dumps(responses[success]["content"])
    for status in ("401", "403", "404", "409", "422"):
        assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    assert operation.get("description") or operation.get("summary")
