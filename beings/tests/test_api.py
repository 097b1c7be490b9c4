"""The beings API: statuses, bodies, auth, filters, pagination, import, and bad input that changes nothing."""

import json
import uuid

import pytest
from django.test import Client
from guardian.shortcuts import assign_perm

from beings.models import BaseBeing
from luxsite.models import ApiToken
from luxsite.tests.fixtures import logged_in
from luxsite.tests.helpers import post

pytestmark = pytest.mark.django_db

SOURCE = "def run(name):\n    return f'hello {name}'\n"


def test_create_returns_201_with_the_being(api):
    """POST /api/beings/ answers 201 with the stored being."""
    response = post(
        api,
        "/api/beings/",
        {
            "genesis": {"name": "greet", "type": "function", "source": SOURCE},
            "tags": ["demo"],
            "attributes": {"team": "a"},
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "greet"
    assert body["kind"] == "function"
    assert body["tags"] == ["demo"]
    assert body["energy_level"] == 0
    assert body["attributes"] == {"team": "a"}
    assert BaseBeing.objects.filter(soul=body["soul"]).exists()


def test_bearer_token_authenticates(alice, bearer):
    """A bearer token acts as its user and records when it was used."""
    response = post(Client(), "/api/beings/", {"genesis": {"name": "t", "type": "data"}}, **bearer)
    assert response.status_code == 201
    being = BaseBeing.objects.get(soul=response.json()["soul"])
    assert alice.has_perm("beings.change_basebeing", being)
    assert ApiToken.objects.get(user=alice).last_used_at is not None


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer lux_wrong"}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}],
)
def test_missing_or_wrong_credentials_are_401(headers, unchanged):
    """Without valid credentials every endpoint answers 401 in the error shape."""
    client = Client()
    with unchanged():
        assert client.get("/api/beings/", headers=headers).json() == {
            "code": "not_authenticated",
            "detail": "log in or send Authorization: Bearer <token>",
        }
        response = post(client, "/api/beings/", {"genesis": {"name": "x", "type": "data"}}, **headers)
    assert response.status_code == 401


def test_revoked_token_is_refused(alice, bearer):
    """A revoked token no longer authenticates."""
    from luxsite.tokens import token_revoke

    token_revoke(token=ApiToken.objects.get(user=alice))
    assert Client().get("/api/beings/", headers=bearer).status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{not json", 400, "malformed_json"),
        ({"genesis": "text"}, 422, "invalid"),
        ({"genesis": {"name": "x", "type": "data"}, "energy_level": "lots"}, 422, "invalid"),
        ({"genesis": {"name": "x", "type": "data"}, "tags": [1, 2]}, 422, "invalid"),
        ({"genesis": {"name": "x", "type": "data"}, "unknown": 1}, 422, "invalid"),
        ({"tags": []}, 422, "invalid"),
        ({"genesis": {"name": "x"}}, 422, "genesis_invalid"),
        ({"genesis": {"name": "x", "type": "robot"}}, 422, "genesis_invalid"),
        ({"genesis": {"name": "x", "type": "function", "source": "def run(:"}}, 422, "source_syntax_error"),
        ({"genesis": {"name": "x", "type": "data", "blob": "x" * 300_000}}, 413, "document_too_large"),
        (
            {"genesis": {"name": "x", "type": "data"}, "tags": ["t"] * 0 + [f"t{i}" for i in range(70)]},
            422,
            "tags_invalid",
        ),
    ],
)
def test_bad_create_bodies_are_refused_and_change_nothing(api, unchanged, body, status, code):
    """Malformed JSON, wrong types, unknown fields, oversize and unparsable documents each get their status."""
    with unchanged():
        response = post(api, "/api/beings/", body)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert set(response.json()) == {"code", "detail"}
    assert response.json()["detail"]


def test_request_over_the_body_limit_is_413(api, settings, unchanged):
    """A body larger than LUXOS_MAX_REQUEST_BYTES is refused before it is parsed."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    with unchanged():
        response = post(api, "/api/beings/", {"genesis": {"name": "x", "type": "data", "pad": "x" * 2000}})
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


def test_unknown_soul_is_404(api):
    """A soul no being has answers 404."""
    response = api.get(f"/api/beings/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["code"] == "being_not_found"


def test_malformed_soul_is_422(api):
    """A path that is not a UUID is refused as invalid."""
    assert api.get("/api/beings/not-a-uuid").status_code == 422


def test_someone_elses_being_does_not_exist_for_you(bob_api, make_being, unchanged):
    """Bob may not read, change or delete alice's being: he gets what an unknown soul gets, word for word."""
    being = make_being()
    unknown = uuid.uuid4()
    with unchanged():
        responses = [
            bob_api.get(f"/api/beings/{being.soul}"),
            bob_api.patch(f"/api/beings/{being.soul}", {"tags": ["bob"]}, content_type="application/json"),
            bob_api.delete(f"/api/beings/{being.soul}"),
        ]
    assert [r.status_code for r in responses] == [404, 404, 404]
    assert {r.json()["code"] for r in responses} == {"being_not_found"}
    missing = bob_api.get(f"/api/beings/{unknown}").json()
    assert responses[0].json()["detail"].replace(str(being.soul), "S") == missing["detail"].replace(str(unknown), "S")


def test_a_being_you_may_view_but_not_change_is_403(bob, bob_api, make_being, unchanged):
    """What bob may see but not act on is a 403, not a 404."""
    being = make_being()
    assign_perm("view_basebeing", bob, being)
    with unchanged():
        response = bob_api.patch(f"/api/beings/{being.soul}", {"tags": ["bob"]}, content_type="application/json")
        deleted = bob_api.delete(f"/api/beings/{being.soul}")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert deleted.status_code == 403


def test_an_owner_may_not_set_energy(api, root, make_being, unchanged):
    """Energy is earned by runs (it is the queue priority): an owner's create or PATCH setting it is a 422."""
    being = make_being()
    with unchanged():
        created = post(api, "/api/beings/", {"genesis": {"name": "pushy", "type": "data"}, "energy_level": 99})
        patched = api.patch(f"/api/beings/{being.soul}", {"energy_level": 99}, content_type="application/json")
    assert (created.status_code, created.json()["code"]) == (422, "energy_not_writable")
    assert (patched.status_code, patched.json()["code"]) == (422, "energy_not_writable")
    assert "only a superuser" in patched.json()["detail"]
    as_root = logged_in(root).patch(f"/api/beings/{being.soul}", {"energy_level": 9}, content_type="application/json")
    assert (as_root.status_code, as_root.json()["energy_level"]) == (200, 9)


def test_patch_and_delete_own_being(api, make_being):
    """The owner can change and then delete a being."""
    being = make_being()
    response = api.patch(
        f"/api/beings/{being.soul}", {"tags": ["x"], "energy_level": 0}, content_type="application/json"
    )
    assert response.status_code == 200
    assert (response.json()["tags"], response.json()["energy_level"]) == (["x"], 0)
    assert api.delete(f"/api/beings/{being.soul}").status_code == 204
    assert not BaseBeing.objects.filter(soul=being.soul).exists()


def test_deleting_a_linked_being_is_409(api, make_being, make_link, unchanged):
    """A being with relationships cannot be deleted."""
    a, b = make_being("a"), make_being("b")
    make_link(a, b)
    with unchanged():
        response = api.delete(f"/api/beings/{a.soul}")
    assert response.status_code == 409
    assert response.json()["code"] == "being_has_relationships"


def test_list_shows_only_what_the_user_may_view(api, bob_api, bob, root, make_being):
    """Each user lists their own beings; a superuser lists all."""
    mine = make_being("mine")
    theirs = make_being("theirs", actor=bob)
    alice_souls = {item["soul"] for item in api.get("/api/beings/").json()["items"]}
    bob_souls = {item["soul"] for item in bob_api.get("/api/beings/").json()["items"]}
    assert alice_souls == {str(mine.soul)}
    assert bob_souls == {str(theirs.soul)}
    admin = Client()
    admin.force_login(root)
    all_souls = {item["soul"] for item in admin.get("/api/beings/?limit=500").json()["items"]}
    assert {str(mine.soul), str(theirs.soul)} <= all_souls


def names(response):
    assert response.status_code == 200, response.content
    return sorted(item["name"] for item in response.json()["items"])


def test_list_filters(api, make_being):
    """Tags (all/any), type, name, energy range and JSON containment each narrow the list."""
    make_being("a", tags=["x", "y"], energy_level=1, attributes={"team": "red", "tier": 1})
    make_being("b", tags=["x"], energy_level=5, attributes={"team": "blue"})
    make_being("c", kind="data", tags=["z"], energy_level=10, attributes={"team": "red", "tier": 2})
    assert names(api.get("/api/beings/?tags_all=x&tags_all=y")) == ["a"]
    assert names(api.get("/api/beings/?tags_any=y&tags_any=z")) == ["a", "c"]
    assert names(api.get("/api/beings/?type=data")) == ["c"]
    assert names(api.get("/api/beings/?name=b")) == ["b"]
    assert names(api.get("/api/beings/?energy_min=2&energy_max=10")) == ["b", "c"]
    assert names(api.get("/api/beings/", {"attributes": json.dumps({"team": "red"})})) == ["a", "c"]
    assert names(api.get("/api/beings/", {"attributes": json.dumps({"team": "red", "tier": 2})})) == ["c"]
    assert names(api.get("/api/beings/", {"genesis": json.dumps({"type": "function"})})) == ["a", "b"]


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("attributes=%7Bnope", 400, "malformed_json"),
        ("attributes=%5B1%5D", 400, "malformed_json"),
        ("after=%%%", 400, "invalid_cursor"),
        ("ordering=soul", 422, "invalid"),
        ("limit=0", 422, "invalid"),
        ("limit=501", 422, "invalid"),
        ("energy_min=low", 422, "invalid"),
    ],
)
def test_bad_list_queries_are_refused(api, query, status, code):
    """Malformed filters, cursors and limits get a clear error."""
    response = api.get(f"/api/beings/?{query}")
    assert (response.status_code, response.json()["code"]) == (status, code)


@pytest.mark.parametrize("ordering", ["created_at", "-created_at", "energy_level", "-energy_level"])
def test_keyset_pages_cover_everything_once_in_order(api, make_being, ordering):
    """Following `next` visits every being exactly once, in the requested order."""
    for i in range(7):
        make_being(f"b{i}", energy_level=i % 3)
    seen, cursor = [], None
    while True:
        query = {"ordering": ordering, "limit": 3, **({"after": cursor} if cursor else {})}
        body = api.get("/api/beings/", query).json()
        seen.extend(body["items"])
        cursor = body["next"]
        if cursor is None:
            break
    field = ordering.lstrip("-")
    keys = [(item[field], item["soul"]) for item in seen]
    assert keys == sorted(keys, reverse=ordering.startswith("-"))
    assert len({item["soul"] for item in seen}) == len(seen) == 7


def test_list_query_count_does_not_grow_with_results(api, make_being, django_assert_num_queries):
    """Listing runs a fixed number of queries however many beings come back."""
    for i in range(20):
        make_being(f"q{i}")
    # session, user, the user's global and group permissions, groups, the page
    with django_assert_num_queries(6):
        response = api.get("/api/beings/?limit=20")
    assert len(response.json()["items"]) == 20


def test_import_endpoint_creates_all_or_nothing(api, unchanged):
    """POST /api/beings/import stores every line, or none when one is bad."""
    good = "\n".join(json.dumps({"genesis": {"name": f"n{i}", "type": "data"}}) for i in range(3))
    response = api.post("/api/beings/import", good, content_type="application/x-ndjson")
    assert (response.status_code, response.json()) == (201, {"created": 3})
    bad = good + '\n{"genesis": {"name": "broken", "type": "function", "source": "def ("}}'
    with unchanged():
        response = api.post("/api/beings/import", bad, content_type="application/x-ndjson")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("line 4:")


def test_being_relationships_in_and_out(api, make_being, make_link):
    """A being's relationships can be listed by direction."""
    a, b, c = make_being("a"), make_being("b"), make_being("c")
    out_link = make_link(a, b, tags=["invokes"])
    in_link = make_link(c, a, tags=["reads"])

    def ids(direction):
        return {
            item["id"] for item in api.get(f"/api/beings/{a.soul}/relationships?direction={direction}").json()["items"]
        }

    assert ids("out") == {str(out_link.id)}
    assert ids("in") == {str(in_link.id)}
    assert ids("both") == {str(out_link.id), str(in_link.id)}


def test_openapi_documents_endpoints_and_errors(api):
    """The OpenAPI document lists the endpoints and their error shape; the docs page renders."""
    schema = Client().get("/api/openapi.json").json()
    assert {"/api/beings/", "/api/beings/{soul}", "/api/beings/import", "/api/relationships/"} <= set(schema["paths"])
    create = schema["paths"]["/api/beings/"]["post"]["responses"]
    assert {"201", "401", "409", "413", "422"} <= set(create)
    assert Client().get("/api/docs").status_code == 200


def test_health_needs_no_login():
    """The health endpoint answers without credentials."""
    health = Client().get("/api/health").json()
    assert (health["status"], health["database"]) == ("ok", True)
