"""Lessons: added by hand, failures recorded classified and deduplicated (also under concurrency), resolved, pruned."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from beings.models import BaseBeing
from chronos.exceptions import CheckpointNotFoundError
from chronos.lessons.classification import error_class
from chronos.lessons.services import failure_analyze, failure_record, lesson_add, lesson_resolve, lessons_prune
from chronos.models import Lesson
from chronos.services import checkpoint_create
from luxsite.errors import PermissionDenied
from luxsite.tests.helpers import refused

pytestmark = pytest.mark.django_db(transaction=True)


def test_lesson_add_keeps_the_seeds_fields_and_cleans_tags(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """The seed's add_lesson(situation, action, result, feedback, tags) is stored with the being it concerns."""
    being = make_being("parser")
    lesson = lesson_add(
        situation="parsing a large file",
        action="streamed it",
        result="memory stayed flat",
        feedback="stream by default",
        tags=["Memory", "memory", " io "],
        being=being,
        actor=root,
    )
    lesson.refresh_from_db()
    assert (lesson.situation, lesson.action, lesson.result, lesson.feedback) == (
        "parsing a large file",
        "streamed it",
        "memory stayed flat",
        "stream by default",
    )
    assert lesson.tags == ["memory", "io"]
    assert lesson.being_id == being.soul and lesson.hash == being.hash
    assert lesson.operation == "manual" and lesson.count == 1 and lesson.actor_id == root.pk


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"situation": "  "}, "lesson_invalid"),
        ({"situation": "x", "tags": ["t" * 65]}, "lesson_invalid"),
        ({"situation": "x", "metadata": ["not", "an", "object"]}, "lesson_invalid"),
    ],
)
def test_lesson_add_refuses_bad_input_and_writes_nothing(root: User, fields: dict, code: str) -> None:
    """A lesson without a situation, with an overlong tag or non-object metadata is refused; no row is written."""
    refused(code, lambda: lesson_add(actor=root, **fields))
    assert Lesson.objects.count() == 0


def test_lesson_add_needs_the_add_permission(alice: User) -> None:
    """A user without chronos.add_lesson cannot add a lesson."""
    with pytest.raises(PermissionDenied):
        lesson_add(situation="x", actor=alice)
    assert Lesson.objects.count() == 0


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ZeroDivisionError("division by zero"), "ZeroDivisionError"),
        (CheckpointNotFoundError("gone"), "checkpoint_not_found"),
        ({"type": "KeyError", "message": "'x'"}, "KeyError"),
        ({"message": "", "traceback": "Traceback…\n  File x\nbeings.exceptions.Boom: no"}, "beings.exceptions.Boom"),
        ("run timed out after 5 s", "timeout"),
        ("Traceback (most recent call last):\nValueError: bad", "ValueError"),
        ("something odd", "execution_failed"),
        ({"type": "unknown"}, "execution_failed"),
        (None, "execution_failed"),
    ],
)
def test_error_class_is_never_unknown(error: object, expected: str) -> None:
    """Exceptions, error documents, tracebacks and plain messages all get a class; never "unknown" or empty."""
    assert error_class(operation="execution", error=error) == expected  # type: ignore[arg-type]


def test_the_same_failure_raises_a_count_not_a_row(make_being: Callable[..., BaseBeing]) -> None:
    """Two failures of one kind on one being and hash are one lesson with count 2 and a later last_seen_at."""
    being = make_being("flaky")
    first = failure_record(operation="evolution", error=ValueError("bad source"), being=being)
    second = failure_record(operation="evolution", error=ValueError("worse source"), being=being)
    other = failure_record(operation="evolution", error=KeyError("k"), being=being)
    assert first.pk == second.pk != other.pk
    assert second.count == 2 and second.last_seen_at >= first.last_seen_at
    assert second.result == "worse source" and second.error_class == "ValueError"
    assert "failure" in second.tags and "evolution" in second.tags
    assert Lesson.objects.count() == 2


def test_a_failure_without_a_being_is_deduplicated_too() -> None:
    """A restore failure concerning no being is still one lesson per error class (no being is one key, not many)."""
    for _ in range(3):
        failure_record(operation="restore", error=CheckpointNotFoundError("gone"))
    assert list(Lesson.objects.values_list("count", "error_class")) == [(3, "checkpoint_not_found")]


def test_a_resolved_lesson_is_not_reopened_by_a_new_failure(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """After resolving, the same failure opens a fresh lesson; the resolved one keeps its history."""
    being = make_being("fixed")
    old = failure_record(operation="execution", error=ValueError("x"), being=being)
    lesson_resolve(lesson=old, actor=root, feedback="fixed in v2")
    new = failure_record(operation="execution", error=ValueError("x"), being=being)
    assert new.pk != old.pk and new.count == 1
    old.refresh_from_db()
    assert old.resolved_at is not None and old.feedback == "fixed in v2"


def test_two_concurrent_failures_of_one_kind_leave_one_lesson_counting_two(
    make_being: Callable[..., BaseBeing],
) -> None:
    """Two threads recording the same failure at the same instant make one row with count 2, never two rows."""
    being = make_being("raced")
    barrier = threading.Barrier(2)
    ids: list[int] = []
    errors: list[BaseException] = []

    def record() -> None:
        try:
            barrier.wait(timeout=10)
            ids.append(failure_record(operation="execution", error=RuntimeError("boom"), being=being).pk)
        except BaseException as error:  # reported to the test below
            errors.append(error)
        finally:
            connection.close()

    for _round in range(5):
        threads = [threading.Thread(target=record) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    assert len(set(ids)) == 1
    assert list(Lesson.objects.values_list("count", flat=True)) == [10]


def test_failure_analyze_recommends_the_checkpoint_before(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """The seed's analyze_failure: a lesson, plus the checkpoint to restore, named in the lesson's feedback."""
    being = make_being("risky")
    checkpoint = checkpoint_create(name="before-risky", actor=root)
    analysis = failure_analyze(
        operation="evolution", error=ValueError("syntax"), checkpoint_before=checkpoint, being=being
    )
    assert analysis.checkpoint == checkpoint
    assert analysis.lesson.checkpoint_id == checkpoint.pk
    assert "before-risky" in analysis.recommendation and "before-risky" in analysis.lesson.feedback
    assert analysis.as_dict()["checkpoint"] == "before-risky"
    by_name = failure_analyze(operation="evolution", error=ValueError("syntax"), checkpoint_before="before-risky")
    assert by_name.checkpoint == checkpoint


def test_failure_record_refuses_an_unknown_operation() -> None:
    """Only the failure kinds a lesson knows are recorded."""
    refused("lesson_invalid", lambda: failure_record(operation="teleport", error="x"))
    assert Lesson.objects.count() == 0


def test_prune_by_age_tag_and_time_range(root: User) -> None:
    """Prune deletes exactly the lessons matching every filter given and says how many."""
    now = timezone.now()
    ancient = lesson_add(situation="ancient", tags=["old"])
    lesson_add(situation="recent", tags=["old"])
    middle = lesson_add(situation="middle", tags=["keep"])
    Lesson.objects.filter(pk=ancient.pk).update(last_seen_at=now - timedelta(days=100))
    Lesson.objects.filter(pk=middle.pk).update(last_seen_at=now - timedelta(days=10))

    assert lessons_prune(actor=root, older_than=timedelta(days=365)) == 0
    assert lessons_prune(actor=root, tag="OLD", since=now - timedelta(days=1)) == 1
    assert set(Lesson.objects.values_list("situation", flat=True)) == {"ancient", "middle"}
    assert lessons_prune(actor=root, since=now - timedelta(days=20), until=now - timedelta(days=5)) == 1
    assert lessons_prune(actor=root, older_than=timedelta(days=30)) == 1
    assert not Lesson.objects.exists()


@pytest.mark.parametrize(
    "filters",
    [{}, {"older_than": timedelta(days=-1)}, {"since": timezone.now(), "until": timezone.now() - timedelta(days=1)}],
)
def test_prune_refuses_no_filter_or_bad_ones_and_deletes_nothing(root: User, filters: dict) -> None:
    """Pruning without a filter, with a negative age or an inverted range is refused and deletes nothing."""
    lesson_add(situation="kept")
    refused("lesson_filter_invalid", lambda: lessons_prune(actor=root, **filters))
    assert Lesson.objects.count() == 1


def test_prune_and_resolve_need_their_permissions(alice: User) -> None:
    """Without chronos.delete_lesson / change_lesson, prune and resolve are refused."""
    lesson = lesson_add(situation="kept")
    with pytest.raises(PermissionDenied):
        lessons_prune(actor=alice, tag="x")
    with pytest.raises(PermissionDenied):
        lesson_resolve(lesson=lesson, actor=alice)
    lesson.refresh_from_db()
    assert lesson.resolved_at is None
