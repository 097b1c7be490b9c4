"""The lessons page at /chronos/lessons/, the lessons section of the being page, and the lessons admin."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from beings.models import BaseBeing
from chronos.lessons.services import failure_record, lesson_add
from chronos.models import Lesson
from luxsite.tests.fixtures import logged_in

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = "/chronos/lessons/"


def test_the_page_searches_by_a_polish_inflection_and_filters(root: User) -> None:
    """?q=migracja lists the lesson about migracji and not the others; an open-only filter hides resolved ones."""
    lesson_add(situation="Błąd podczas migracji danych")
    lesson_add(situation="Disk full while exporting")
    client = logged_in(root)
    page = client.get(PAGE, {"q": "migracja"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "Błąd podczas migracji danych" in text and "Disk full" not in text
    assert "Disk full" in client.get(PAGE).content.decode()


def test_bad_filters_are_a_400_with_the_reason(root: User) -> None:
    """A soul that is not a UUID is refused by the form, an inverted range by the selector; the page says why."""
    client = logged_in(root)
    page = client.get(PAGE, {"being": "not-a-uuid"})
    assert page.status_code == 400 and "valid UUID" in page.content.decode()
    inverted = client.get(PAGE, {"since": "2026-02-01", "until": "2026-01-01"})
    assert inverted.status_code == 422 and "since is after until" in inverted.content.decode()


def test_each_user_sees_only_the_lessons_they_may_read(bob: User, make_being: Callable[..., BaseBeing]) -> None:
    """Bob's page lists lessons about his beings, not alice's; signed out, the page asks to sign in."""
    failure_record(operation="execution", error=ValueError("x"), being=make_being("alices-being"))
    failure_record(operation="execution", error=KeyError("y"), being=make_being("bobs-being", actor=bob))
    text = logged_in(bob).get(PAGE).content.decode()
    assert "KeyError" in text and "ValueError" not in text
    assert logged_in(bob).get(PAGE).context["may_add"] is False
    from django.test import Client

    assert Client().get(PAGE).status_code == 302


def test_add_and_resolve_on_the_page(alice: User, bob: User, make_being: Callable[..., BaseBeing]) -> None:
    """With the permissions, the page adds a lesson about her being and resolves it; without, a 403 (404 for bob's)."""
    being = make_being("importer")
    refused = logged_in(alice).post(PAGE, {"situation": "no permission"})
    assert refused.status_code == 403 and not Lesson.objects.exists()
    alice.user_permissions.add(*Permission.objects.filter(codename__in=["add_lesson", "change_lesson"]))
    client = logged_in(User.objects.get(pk=alice.pk))
    hidden = make_being("his", actor=bob)
    assert client.post(PAGE, {"situation": "x", "being": str(hidden.soul)}).status_code == 404
    added = client.post(
        PAGE, {"situation": "cache before the import", "tags": "perf, Import", "being": str(being.soul)}
    )
    assert added.status_code == 302
    lesson = Lesson.objects.get()
    assert lesson.tags == ["perf", "import"] and lesson.actor_id == alice.pk and lesson.being_id == being.soul
    empty = client.post(PAGE, {"situation": ""})
    assert empty.status_code == 400 and Lesson.objects.count() == 1
    resolved = client.post(reverse("chronos_lesson_resolve", args=[lesson.pk]))
    assert resolved.status_code == 302
    lesson.refresh_from_db()
    assert lesson.resolved_at is not None
    assert "resolved" in client.get(PAGE).content.decode()


def test_the_being_page_shows_its_lessons(api: object, alice: User, make_being: Callable[..., BaseBeing]) -> None:
    """The being page has a Lessons section with the open failure, its class and count, and a link to the rest."""
    being = make_being("shown")
    for _ in range(3):
        failure_record(operation="execution", error=ZeroDivisionError("x"), being=being)
    page = logged_in(alice).get(reverse("being_detail", args=[being.soul]))
    text = page.content.decode()
    assert page.status_code == 200
    assert 'id="lessons"' in text and "ZeroDivisionError" in text and "1 open" in text
    assert f"{PAGE}?being={being.soul}" in text
    quiet = make_being("quiet", genesis={"source": "def run():\n    return 0\n"})
    assert (
        "No lessons about this being"
        in logged_in(alice).get(reverse("being_detail", args=[quiet.soul])).content.decode()
    )


def test_the_admin_lists_lessons_read_only_and_resolves_them(root: User) -> None:
    """The admin lists and searches lessons; it adds, changes and deletes none; its action resolves them."""
    lesson = lesson_add(situation="admin sees me", tags=["admin"])
    client = logged_in(root)
    listing = client.get("/admin/chronos/lesson/", {"q": "admin sees"})
    assert listing.status_code == 200 and "admin sees me" in listing.content.decode()
    assert client.get("/admin/chronos/lesson/add/").status_code == 403
    response = client.post(
        "/admin/chronos/lesson/", {"action": "resolve_lessons", "_selected_action": [lesson.pk]}, follow=True
    )
    assert "1 lesson resolved." in response.content.decode()
    lesson.refresh_from_db()
    assert lesson.resolved_at is not None
