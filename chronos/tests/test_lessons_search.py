"""Lesson search: English full text and trigrams (Polish inflections), filters, who sees what, statistics."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.postgres.search import SearchQuery
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from beings.models import BaseBeing
from chronos.lessons.expressions import query_stems
from chronos.lessons.selectors import lesson_get, lessons_open, lessons_search, lessons_stats
from chronos.lessons.services import failure_record, lesson_add, lesson_resolve
from chronos.models import Lesson
from luxsite.tests.helpers import refused

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def library(root: User) -> dict[str, Lesson]:
    """A few lessons in Polish and English."""
    return {
        "migracji": lesson_add(situation="Nieudana próba migracji bazy danych", feedback="zrób kopię przed migracją"),
        "migration": lesson_add(situation="The schema migration locked the table for minutes"),
        "usunac": lesson_add(situation="Nie wolno usunąć aktywnej wersji", tags=["delete"]),
        "information": lesson_add(situation="The information page loaded slowly"),
        "hotfix": lesson_add(situation="A hot_patch skipped the tests", tags=["hotfix"]),
    }


def two_beings(make_being: Callable[..., BaseBeing]) -> tuple[BaseBeing, BaseBeing]:
    """Two beings with different code, so different hashes."""
    one = make_being("one", genesis={"source": "def run():\n    return 1\n"})
    two = make_being("two", genesis={"source": "def run():\n    return 2\n"})
    return one, two


def found(user: User, query: str, **filters: object) -> list[str]:
    return [lesson.situation for lesson in lessons_search(user=user, query=query, **filters)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("migracja", "migracji"),
        ("migrację", "migracji"),
        ("migracji", "migracji"),
        ("migrate", "migration"),
        ("migrations", "migration"),
        ("usunąć", "usunac"),
        ("usuń", "usunac"),
        ("hot_patch", "hotfix"),
    ],
)
def test_search_finds_polish_inflections_and_english_stems(
    root: User, library: dict[str, Lesson], query: str, expected: str
) -> None:
    """An inflected Polish word finds its lesson by trigrams; an English word finds its stem by full text."""
    results = lessons_search(user=root, query=query)
    assert results, f"{query!r} found nothing"
    assert results[0].pk == library[expected].pk


def test_search_does_not_match_a_word_inside_another(root: User, library: dict[str, Lesson]) -> None:
    """ "format" is not "information": no substring match."""
    assert found(root, "format") == []


def test_search_ranks_the_closer_lesson_first(root: User) -> None:
    """The lesson using the query's very word ranks above one only sharing part of it."""
    exact = lesson_add(situation="migracja skończyła się błędem")
    near = lesson_add(situation="migracji nie było")
    lesson_add(situation="nothing related at all")
    results = lessons_search(user=root, query="migracja")
    assert [lesson.pk for lesson in results] == [exact.pk, near.pk]
    assert results[0].rank > results[1].rank  # type: ignore[attr-defined]


def test_search_filters_by_being_hash_tag_and_time(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Every filter narrows the results: being, hash prefix, tag, since/until, open only."""
    one, two = two_beings(make_being)
    first = lesson_add(situation="timeout calling the api", being=one, tags=["net"])
    second = lesson_add(situation="timeout reading the disk", being=two, tags=["io"])
    Lesson.objects.filter(pk=second.pk).update(last_seen_at=timezone.now() - timedelta(days=3))
    assert {lesson.pk for lesson in lessons_search(user=root, query="timeout")} == {first.pk, second.pk}
    assert [lesson.pk for lesson in lessons_search(user=root, query="timeout", being=two)] == [second.pk]
    assert [lesson.pk for lesson in lessons_search(user=root, hash=one.hash[:12])] == [first.pk]
    assert [lesson.pk for lesson in lessons_search(user=root, tag="IO")] == [second.pk]
    recent = lessons_search(user=root, since=timezone.now() - timedelta(days=1))
    assert [lesson.pk for lesson in recent] == [first.pk]
    older = lessons_search(user=root, until=timezone.now() - timedelta(days=1))
    assert [lesson.pk for lesson in older] == [second.pk]
    lesson_resolve(lesson=first, actor=root)
    assert [lesson.pk for lesson in lessons_search(user=root, open_only=True)] == [second.pk]


@pytest.mark.parametrize(
    "filters",
    [
        {"since": timezone.now(), "until": timezone.now() - timedelta(days=1)},
        {"limit": 0},
        {"limit": 201},
        {"query": "x" * 201},
    ],
)
def test_search_refuses_bad_filters(root: User, filters: dict) -> None:
    """An inverted range, a limit out of bounds or an overlong query is a 422 naming the filter."""
    refused("lesson_filter_invalid", lambda: lessons_search(user=root, **filters))


def test_others_see_only_lessons_about_beings_they_may_view(
    alice: User, bob: User, make_being: Callable[..., BaseBeing]
) -> None:
    """Bob sees lessons about his beings; alice's beings, and lessons about no being, stay hidden from him."""
    hers = make_being("hers")
    his = make_being("his", actor=bob)
    mine = failure_record(operation="execution", error=ValueError("x"), being=hers)
    theirs = failure_record(operation="execution", error=ValueError("x"), being=his)
    failure_record(operation="restore", error="restore timed out")
    assert [lesson.pk for lesson in lessons_search(user=bob)] == [theirs.pk]
    assert [lesson.pk for lesson in lessons_search(user=alice)] == [mine.pk]
    refused("lesson_not_found", lambda: lesson_get(id=mine.pk, user=bob))
    bob.user_permissions.add(Permission.objects.get(codename="view_checkpoint"))
    bob = User.objects.get(pk=bob.pk)
    assert len(lessons_search(user=bob)) == 3


def test_search_is_a_single_query(root: User, library: dict[str, Lesson]) -> None:
    """A search of any size runs as one SQL statement (after the user's permissions are known)."""
    lessons_search(user=root, query="warm up")
    with CaptureQueriesContext(connection) as queries:
        lessons_search(user=root, query="migracja", tag="delete")
    assert len(queries) == 1


def test_search_uses_the_trigram_and_text_indexes(root: User, library: dict[str, Lesson]) -> None:
    """With sequential scans off, the plan of a search reads both GIN indexes of the migration."""
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            plan = (
                Lesson.objects.order_by()
                .filter(
                    Q(search_vector=SearchQuery("migracja", config="english"))
                    | Q(search_trigrams__contains=query_stems("migracja", share=0.6)[0])
                )
                .explain()
            )
        finally:
            cursor.execute("SET enable_seqscan = on")
    assert "chronos_lesson_trigrams" in plan and "chronos_lesson_search" in plan


def test_short_words_alone_search_by_full_text_only(root: User, library: dict[str, Lesson]) -> None:
    """A query of words too short to narrow by trigrams ("a", "of") does not list every lesson."""
    assert found(root, "of a") == []


def test_stats_count_lessons_occurrences_classes_and_tags(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Statistics: lessons, open ones, occurrences (counts), by operation, error class and tag."""
    being = make_being("stat")
    for _ in range(3):
        failure_record(operation="execution", error=ValueError("x"), being=being)
    failure_record(operation="restore", error="timed out")
    resolved = lesson_add(situation="by hand", tags=["manual-note"])
    lesson_resolve(lesson=resolved, actor=root)
    stats = lessons_stats(user=root).as_dict()
    assert (stats["lessons"], stats["open"], stats["occurrences"]) == (3, 2, 5)
    assert stats["by_operation"] == {"execution": 1, "manual": 1, "restore": 1}
    assert stats["by_error_class"][0] == {"error_class": "ValueError", "lessons": 1, "occurrences": 3}
    assert {"tag": "failure", "lessons": 2} in stats["by_tag"]


def test_lessons_open_by_being_or_hash(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Open lessons about given beings or hashes; resolved ones and other beings' are left out."""
    one, two = two_beings(make_being)
    open_one = failure_record(operation="execution", error=ValueError("x"), being=one)
    closed = failure_record(operation="evolution", error=ValueError("x"), being=one)
    lesson_resolve(lesson=closed, actor=root)
    by_hash = lesson_add(situation="about a hash", hash=two.hash)
    assert set(lessons_open(beings=[one])) == {open_one}
    assert set(lessons_open(hashes=[two.hash])) == {by_hash}
    assert set(lessons_open(beings=[one.soul], hashes=[two.hash])) == {open_one, by_hash}
    assert not lessons_open().exists()
