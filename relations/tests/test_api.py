"""The relationships API and services: linking, permissions, bad input that changes nothing."""

import json
import uuid

import pytest
from guardian.shortcuts import assign_perm, get_perms

from chronos.models import Change
from relations.models import Relationship

pytestmark = pytest.mark.django_db


def link(client, body):
    return client.post("/api/relationships/", json.dumps(body), content_type="application/json")


def test_link_creates_relationship_with_owner(api, alice, make_being):
    """Linking two beings answers 201; the creator owns the link and the change log names the api door."""
    a, b = make_being("a"), make_being("b")
    response = link(
        api,
        {
            "source_soul": str(a.soul),
            "target_soul": str(b.soul),
            "tags": ["invokes"],
            "genesis": {"type": "invokes"},
            "energy_level": 3,
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["source_soul"], body["target_soul"], body["tags"]) == (str(a.soul), str(b.soul), ["invokes"])
    relationship = Relationship.objects.get(id=body["id"])
    assert set(get_perms(alice, relationship)) == {"view_relationship", "change_relationship", "delete_relationship"}
    assert Change.objects.get(row_id=relationship.id).context["door"] == "api"


@pytest.mark.parametrize(
    ("make_body", "status", "code"),
    [
        (lambda a, b: {"source_soul": str(a), "target_soul": str(uuid.uuid4())}, 404, "being_not_found"),
        (lambda a, b: {"source_soul": str(uuid.uuid4()), "target_soul": str(b)}, 404, "being_not_found"),
        (lambda a, b: {"source_soul": str(a), "target_soul": str(a)}, 422, "self_link"),
        (lambda a, b: {"source_soul": "nope", "target_soul": str(b)}, 422, "invalid"),
        (lambda a, b: {"source_soul": str(a)}, 422, "invalid"),
        (lambda a, b: {"source_soul": str(a), "target_soul": str(b), "extra": 1}, 422, "invalid"),
        (lambda a, b: {"source_soul": str(a), "target_soul": str(b), "tags": ["x" * 65]}, 422, "tags_invalid"),
        (
            lambda a, b: {"source_soul": str(a), "target_soul": str(b), "attributes": {"x": "y" * 300_000}},
            413,
            "document_too_large",
        ),
    ],
)
def test_bad_links_are_refused_and_change_nothing(api, make_being, unchanged, make_body, status, code):
    """Missing beings, self links, wrong types and oversize documents each get their status."""
    a, b = make_being("a"), make_being("b")
    with unchanged():
        response = link(api, make_body(a.soul, b.soul))
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_cannot_link_from_someone_elses_being(bob, bob_api, make_being, unchanged):
    """Bob may not hang links on alice's beings: unseen they are not found, seen but not his a 403."""
    a, b = make_being("a"), make_being("b")
    with unchanged():
        response = link(bob_api, {"source_soul": str(a.soul), "target_soul": str(b.soul)})
    assert (response.status_code, response.json()["code"]) == (404, "being_not_found")
    assign_perm("view_basebeing", bob, a)
    assign_perm("view_basebeing", bob, b)
    with unchanged():
        response = link(bob_api, {"source_soul": str(a.soul), "target_soul": str(b.soul)})
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


def test_a_mutation_link_needs_change_on_both_ends(bob, bob_api, make_being, unchanged):
    """A mutation link claims the target descends from the source: bob may claim it only of beings he may change."""
    mine = make_being("bob-job", actor=bob)
    theirs = make_being("alice-job")
    assign_perm("view_basebeing", bob, theirs)
    for body in ({"genesis": {"type": "mutation"}}, {"tags": ["mutation"]}):
        with unchanged():
            response = link(bob_api, {"source_soul": str(mine.soul), "target_soul": str(theirs.soul), **body})
        assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
        assert "mutation link" in response.json()["detail"]
    plain = link(bob_api, {"source_soul": str(mine.soul), "target_soul": str(theirs.soul), "tags": ["uses"]})
    assert plain.status_code == 201
    also_mine = make_being("bob-next", actor=bob)
    claimed = link(bob_api, {"source_soul": str(mine.soul), "target_soul": str(also_mine.soul), "tags": ["mutation"]})
    assert claimed.status_code == 201


def test_links_are_visible_to_their_owner_only(api, bob_api, make_being, make_link):
    """Listing and reading a link needs view permission on it."""
    relationship = make_link(make_being("a"), make_being("b"))
    assert [item["id"] for item in api.get("/api/relationships/").json()["items"]] == [str(relationship.id)]
    assert bob_api.get("/api/relationships/").json()["items"] == []
    hidden = bob_api.get(f"/api/relationships/{relationship.id}")
    assert (hidden.status_code, hidden.json()["code"]) == (404, "relationship_not_found")
    assert api.get(f"/api/relationships/{uuid.uuid4()}").status_code == 404


def test_update_and_delete_link(api, make_being, make_link):
    """The owner can retag and then remove a link."""
    relationship = make_link(make_being("a"), make_being("b"))
    response = api.patch(f"/api/relationships/{relationship.id}", {"tags": ["strong"]}, content_type="application/json")
    assert (response.status_code, response.json()["tags"]) == (200, ["strong"])
    assert api.delete(f"/api/relationships/{relationship.id}").status_code == 204
    assert not Relationship.objects.filter(id=relationship.id).exists()


def test_someone_else_cannot_change_or_delete_a_link(bob_api, make_being, make_link, unchanged):
    """Changing or deleting alice's link is refused for bob."""
    relationship = make_link(make_being("a"), make_being("b"))
    with unchanged():
        patch = bob_api.patch(f"/api/relationships/{relationship.id}", {"tags": ["x"]}, content_type="application/json")
        delete = bob_api.delete(f"/api/relationships/{relationship.id}")
    assert (patch.status_code, delete.status_code) == (404, 404)
    assert patch.json()["code"] == delete.json()["code"] == "relationship_not_found"


def test_list_filters_by_tag(api, make_being, make_link):
    """tags_all narrows the relationship list."""
    a, b = make_being("a"), make_being("b")
    invokes = make_link(a, b, tags=["invokes"])
    make_link(b, a, tags=["reads"])
    assert [item["id"] for item in api.get("/api/relationships/?tags_all=invokes").json()["items"]] == [str(invokes.id)]
