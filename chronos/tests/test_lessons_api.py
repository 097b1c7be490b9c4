"""The lessons API at /api/chronos/lessons/: search, add, resolve, prune, stats, with exact statuses and bodies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from beings.models import BaseBeing
from chronos.lessons.services import failure_record, lesson_add
from chronos.models import Lesson
from luxsite.tests.fixtures import logged_in
from luxsite.tests.helpers import post

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/chronos/lessons/"


def granted(user: User, *codenames: str) -> User:
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="chronos", codename__in=codenames))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def keeper(alice: User) -> Client:
    """Alice, who may add, resolve and prune lessons."""
    return logged_in(granted(alice, "add_lesson", "change_lesson", "delete_lesson"))


def test_add_then_find_it_by_a_polish_inflection(keeper: Client, make_being: Callable[..., BaseBeing]) -> None:
    """POST adds a lesson about alice's being (201); GET ?q= finds it by another form of the word, ranked."""
    being = make_being("migrator")
    body = {
        "situation": "Nieudana migracji bazy",
        "action": "migracja bez kopii",
        "result": "utracone dane",
        "feedback": "kopia przed migracją",
        "tags": ["DB", "db"],
        "being": str(being.soul),
    }
    response = post(keeper, URL, body)
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["tags"] == ["db"] and created["being"] == str(being.soul) and created["hash"] == being.hash
    assert (created["operation"], created["count"], created["error_class"]) == ("manual", 1, "")
    found = keeper.get(URL, {"q": "migrację"})
    assert found.status_code == 200
    [hit] = found.json()
    assert hit["id"] == created["id"] and hit["rank"] > 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"situation": ""}, 422, "lesson_invalid"),
        ({"situation": "x", "unknown": 1}, 422, "invalid"),
        ({"situation": "x", "tags": ["a" * 65]}, 422, "lesson_invalid"),
        ({"situation": "x\x00"}, 422, "invalid"),
        ({"situation": "x", "being": "00000000-0000-0000-0000-000000000000"}, 404, "being_not_found"),
    ],
)
def test_add_refuses_bad_input_with_its_code_and_writes_nothing(
    keeper: Client, body: dict[str, Any], status: int, code: str
) -> None:
    """Bad lessons are 4xx with a code and a detail, and leave no row."""
    response = post(keeper, URL, body)
    assert response.status_code == status, response.content
    assert response.json()["code"] == code and response.json()["detail"]
    assert not Lesson.objects.exists()


def test_add_needs_the_permission_and_a_being_you_may_view(
    keeper: Client, bob: User, make_being: Callable[..., BaseBeing]
) -> None:
    """Without chronos.add_lesson a 403; about bob's being, which alice may not view, a 404; nothing written."""
    theirs = make_being("his", actor=bob)
    refused = post(logged_in(bob), URL, {"situation": "x"})
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    hidden = post(keeper, URL, {"situation": "x", "being": str(theirs.soul)})
    assert hidden.status_code == 404 and hidden.json()["code"] == "being_not_found"
    assert not Lesson.objects.exists()


def test_list_shows_each_user_their_lessons_only(
    alice: User, bob: User, root: User, make_being: Callable[..., BaseBeing]
) -> None:
    """Bob lists the lessons about his beings; root lists every one; anonymous gets a 401."""
    hers, his = make_being("hers"), make_being("his", actor=bob)
    failure_record(operation="execution", error=ValueError("x"), being=hers)
    theirs = failure_record(operation="execution", error=ValueError("x"), being=his)
    assert [row["id"] for row in logged_in(bob).get(URL).json()] == [theirs.pk]
    assert len(logged_in(root).get(URL).json()) == 2
    assert Client().get(URL).status_code == 401
    hidden = Lesson.objects.exclude(pk=theirs.pk).get()
    assert logged_in(bob).get(f"{URL}{hidden.pk}").status_code == 404


def test_list_filters_and_refuses_bad_ones(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Filters by being, tag and open; a bad limit or an inverted range is a 422."""
    client = logged_in(root)
    being = make_being("filtered")
    about = lesson_add(situation="about it", being=being, tags=["x"])
    lesson_add(situation="about nothing", tags=["y"])
    assert [row["id"] for row in client.get(URL, {"being": str(being.soul)}).json()] == [about.pk]
    assert [row["id"] for row in client.get(URL, {"tag": "x", "open": "true"}).json()] == [about.pk]
    assert client.get(URL, {"limit": 0}).status_code == 422
    now = timezone.now()
    inverted = client.get(URL, {"since": now.isoformat(), "until": (now - timedelta(days=1)).isoformat()})
    assert inverted.status_code == 422 and inverted.json()["code"] == "lesson_filter_invalid"


def test_list_runs_a_fixed_number_of_queries(
    root: User, make_being: Callable[..., BaseBeing], django_assert_num_queries: Any
) -> None:
    """Listing 20 lessons costs the same queries as listing 2: the session, the user, and one search."""
    client = logged_in(root)
    for number in range(20):
        lesson_add(situation=f"lesson {number} about timeouts")
    client.get(URL, {"q": "timeout"})
    with django_assert_num_queries(3):
        response = client.get(URL, {"q": "timeout"})
    assert len(response.json()) == 20


def test_resolve_closes_a_lesson_once(keeper: Client, make_being: Callable[..., BaseBeing]) -> None:
    """POST …/resolve sets resolved_at and the feedback; the lesson no longer lists as open."""
    being = make_being("fixed")
    lesson = failure_record(operation="execution", error=ValueError("x"), being=being)
    response = post(keeper, f"{URL}{lesson.pk}/resolve", {"feedback": "guarded the input"})
    assert response.status_code == 200
    assert response.json()["resolved_at"] and response.json()["feedback"] == "guarded the input"
    assert keeper.get(URL, {"open": "true"}).json() == []
    assert post(keeper, f"{URL}999999/resolve", {}).status_code == 404


def test_prune_by_post_and_by_delete(keeper: Client, api: Client) -> None:
    """POST /prune and DELETE with query filters delete what matches and say how many; no filter is a 422."""
    old = lesson_add(situation="old", tags=["noise"])
    lesson_add(situation="new", tags=["noise"])
    lesson_add(situation="kept", tags=["signal"])
    Lesson.objects.filter(pk=old.pk).update(last_seen_at=timezone.now() - timedelta(days=40))
    response = post(keeper, f"{URL}prune", {"older_than_days": 30})
    assert (response.status_code, response.json()) == (200, {"deleted": 1})
    response = keeper.delete(f"{URL}?{urlencode({'tag': 'noise'})}")
    assert (response.status_code, response.json()) == (200, {"deleted": 1})
    nothing = post(keeper, f"{URL}prune", {})
    assert nothing.status_code == 422 and nothing.json()["code"] == "lesson_filter_invalid"
    assert list(Lesson.objects.values_list("situation", flat=True)) == ["kept"]


def test_prune_needs_the_delete_permission(bob: User) -> None:
    """Without chronos.delete_lesson a prune is a 403 and deletes nothing."""
    lesson_add(situation="kept", tags=["noise"])
    response = post(logged_in(bob), f"{URL}prune", {"tag": "noise"})
    assert response.status_code == 403
    assert Lesson.objects.count() == 1


def test_stats(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """GET /stats counts lessons, open ones and occurrences."""
    being = make_being("counted")
    for _ in range(2):
        failure_record(operation="execution", error=ValueError("x"), being=being)
    body = logged_in(root).get(f"{URL}stats").json()
    assert (body["lessons"], body["open"], body["occurrences"]) == (1, 1, 2)
    assert body["by_operation"] == {"execution": 1}


def test_the_routes_are_in_the_openapi_document(root: User) -> None:
    """Every lessons route is documented in the OpenAPI schema, with its error responses."""
    schema = logged_in(root).get("/api/openapi.json").json()
    paths = schema["paths"]
    assert {"get", "post", "delete"} <= set(paths["/api/chronos/lessons/"])
    for path in ("/api/chronos/lessons/stats", "/api/chronos/lessons/prune", "/api/chronos/lessons/{id}/resolve"):
        assert path in paths
    assert "422" in paths["/api/chronos/lessons/"]["post"]["responses"]


@pytest.mark.parametrize(
    "params",
    [
        {"until": "0488-02-27T18:21:03.0113-23:23"},
        {"since": "0001-01-01T00:00:00+23:00"},
        {"q": "}>\uf352", "hash": "'k", "tag": "basebeing"},
    ],
)
def test_list_answers_odd_but_valid_filters(root: User, params: dict[str, str]) -> None:
    """Far-off times with odd offsets and stray characters in the query are answered, never a 500."""
    lesson_add(situation="kept")
    response = logged_in(root).get(URL, params)
    assert response.status_code in (200, 422), response.content
    if response.status_code == 422:
        assert response.json()["code"] and response.json()["detail"]
