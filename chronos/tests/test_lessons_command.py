"""``manage.py chronos lessons add|search|prune|stats``, for people and with --json."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from beings.models import BaseBeing
from chronos.lessons.services import failure_record, lesson_add
from chronos.models import Lesson
from luxsite.tests.helpers import command, command_refused

pytestmark = pytest.mark.django_db(transaction=True)


def lessons(*args: str, user: str = "root") -> str:
    return command("chronos", "lessons", *args, "--as", user)


def test_add_then_search_in_json(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """A lesson added with tags and a being is found again by a Polish inflection, as JSON."""
    being = make_being("importer")
    added = json.loads(
        lessons(
            "add",
            "--situation",
            "usunąć stare wersje",
            "--feedback",
            "najpierw kopia",
            "--tag",
            "Cleanup",
            "--being",
            str(being.soul),
            "--metadata",
            '{"ticket": 7}',
            "--json",
        )
    )
    assert added["tags"] == ["cleanup"] and added["metadata"] == {"ticket": 7} and added["being"] == str(being.soul)
    [found] = json.loads(lessons("search", "usuń", "--json"))
    assert found["id"] == added["id"] and found["rank"] > 0
    assert json.loads(lessons("search", "--tag", "other", "--json")) == []


def test_search_prints_a_table(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Without --json, one aligned row per lesson with its class, count and situation."""
    being = make_being("flaky")
    failure_record(operation="execution", error=TimeoutError("slow"), being=being)
    failure_record(operation="execution", error=TimeoutError("slow"), being=being)
    printed = lessons("search", "timeout").splitlines()
    assert printed[0].split()[:4] == ["ID", "OPERATION", "ERROR", "CLASS"]
    assert "TimeoutError" in printed[1] and " 2 " in printed[1]
    assert lessons("search", "nothing-like-this") == "no lessons\n"


def test_prune_with_filters_and_yes(root: User) -> None:
    """Prune deletes what matches and says how many; without a filter it is refused (exit 1)."""
    old = lesson_add(situation="old one")
    lesson_add(situation="new one")
    Lesson.objects.filter(pk=old.pk).update(last_seen_at=timezone.now() - timedelta(days=90))
    assert lessons("prune", "--older-than", "30", "--yes") == "1 lesson deleted\n"
    assert json.loads(lessons("prune", "--since", "2000-01-01", "--yes", "--json")) == {"deleted": 1}
    error = command_refused("chronos", "lessons", "prune", "--yes", "--as", "root")
    assert "lesson_filter_invalid" in str(error) and error.returncode == 1


def test_prune_without_a_terminal_asks_for_yes(root: User) -> None:
    """Pruning is never silent: without --yes and without a terminal it refuses and deletes nothing."""
    lesson_add(situation="kept", tags=["x"])
    error = command_refused("chronos", "lessons", "prune", "--tag", "x", "--as", "root")
    assert "--yes" in str(error)
    assert Lesson.objects.count() == 1


def test_stats_in_json_and_text(root: User) -> None:
    """Stats count lessons, open ones and occurrences, by operation."""
    for _ in range(3):
        failure_record(operation="restore", error="timed out")
    lesson_add(situation="by hand")
    stats = json.loads(lessons("stats", "--json"))
    assert (stats["lessons"], stats["open"], stats["occurrences"]) == (2, 2, 4)
    assert stats["by_operation"] == {"manual": 1, "restore": 1}
    assert lessons("stats").startswith("2 lessons, 2 open, 4 occurrences")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "--situation", "x", "--metadata", "{not json"), "--metadata is not JSON"),
        (("add", "--situation", " "), "lesson_invalid"),
        (("search", "--since", "yesterday-ish"), "not a date or time"),
        (("prune", "--older-than", "-3", "--yes"), "cannot be negative"),
    ],
)
def test_bad_arguments_are_refused(root: User, args: tuple[str, ...], message: str) -> None:
    """Bad JSON, an empty situation, a bad time or a negative age stop the command with a message; nothing changes."""
    lesson_add(situation="kept")
    error = command_refused("chronos", "lessons", *args, "--as", "root")
    assert message in str(error)
    assert list(Lesson.objects.values_list("situation", flat=True)) == ["kept"]
