"""What becomes of a dream: merged at once when asked, scheduled for later, compared with another, run once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django.utils import timezone

from beings.models import BaseBeing
from chronos.dreams.services import dream_compare, dream_run, dream_start, dreams_start_due
from chronos.models import Dream, Timeline
from chronos.tests.helpers import tables_dump
from chronos.tests.test_dreams_run import ADD_ONE, TIMES_TEN, adder, finished

pytestmark = pytest.mark.django_db(transaction=True)


def later(dream_of: Callable[..., Dream], **fields: Any) -> Dream:
    """A dream scheduled for tomorrow: no worker takes it until it is started here."""
    return dream_of(not_before=timezone.now() + timedelta(days=1), **fields)


def test_a_kept_dream_is_merged_at_once_with_auto_merge(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """With CHRONOS_DREAM_AUTO_MERGE, a dream above the threshold is merged into main: the evolution is live."""
    being = adder(make_being)
    plan = [{"evolve": str(being.soul), "source": TIMES_TEN, "expect": "evolution"}]
    dream = later(lambda **fields: dream_start(name="merge me", plan=plan, actor=root, **fields))

    with override_settings(CHRONOS_DREAM_AUTO_MERGE=True):
        dream = dream_run(dream_id=dream.id, worker="here")

    assert (dream.status, dream.success_rate) == ("merged", 1.0)
    assert dream.merge is not None and dream.merge.status == "applied"
    assert BaseBeing.objects.get(soul=being.soul).genesis["source"] == TIMES_TEN


def test_a_finished_dream_is_never_run_again(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """A redelivered task finds the dream judged and changes nothing: no second timeline, the same outcome."""
    being = adder(make_being)
    plan = [{"evolve": str(being.soul), "source": TIMES_TEN}]
    dream = later(lambda **fields: dream_start(name="once", plan=plan, actor=root, **fields))
    first = dream_run(dream_id=dream.id, worker="here")
    before = tables_dump()

    again = dream_run(dream_id=dream.id, worker="here")

    assert (again.status, again.timeline_id, again.finished_at) == (first.status, first.timeline_id, first.finished_at)
    assert Timeline.objects.filter(name__startswith="dream_").count() == 1
    assert tables_dump() == before
    assert BaseBeing.objects.get(soul=being.soul).genesis["source"] == ADD_ONE


def test_a_scheduled_dream_waits_for_its_time_then_beat_starts_it(
    celery_worker: Any, root: User, make_being: Callable[..., BaseBeing]
) -> None:
    """A dream with not_before is not queued; the beat task's service queues it once its time has come, once."""
    being = adder(make_being)
    dream = later(
        lambda **fields: dream_start(
            name="at night", plan=[{"execute": str(being.soul), "args": [1]}], actor=root, **fields
        )
    )
    assert (dream.status, dream.task_id) == ("queued", "")

    assert dreams_start_due() == []
    assert [due.id for due in dreams_start_due(now=timezone.now() + timedelta(days=2))] == [dream.id]
    assert dreams_start_due(now=timezone.now() + timedelta(days=2)) == []

    dream = finished(dream)
    assert (dream.status, dream.results[0]["result"]) == ("kept", 2)


def test_two_dreams_compared_side_by_side(celery_worker: Any, root: User, make_being: Callable[..., BaseBeing]) -> None:
    """The seed's A/B scenario: per step results and durations, failures, rates, and which did better."""
    being = adder(make_being)
    as_is = [
        {"execute": str(being.soul), "args": [1], "expect": 2},
        {"execute": str(being.soul), "args": [2], "expect": 3},
    ]
    evolved = [
        {"evolve": str(being.soul), "source": TIMES_TEN},
        {"execute": str(being.soul), "args": [1], "expect": 2},
    ]
    a = finished(dream_start(name="as is", plan=as_is, actor=root))
    b = finished(dream_start(name="evolved", plan=evolved, actor=root))

    comparison = dream_compare(a, b)

    assert (comparison["a"]["name"], comparison["a"]["success_rate"], comparison["a"]["failures"]) == ("as is", 1.0, 0)
    assert (comparison["b"]["name"], comparison["b"]["success_rate"], comparison["b"]["failures"]) == (
        "evolved",
        0.5,
        1,
    )
    assert (comparison["a"]["changes"], comparison["b"]["changes"]) == (0, 1)
    assert comparison["better"] == "a"
    first, second = comparison["steps"]
    assert (first["a"]["kind"], first["b"]["kind"]) == ("execute", "evolve")
    assert (second["a"]["result"], second["b"]["result"], second["b"]["ok"]) == (3, 11, False)
    assert all(step[side]["duration_ms"] > 0 for step in comparison["steps"] for side in ("a", "b"))
    assert comparison["a"]["duration_ms"] == pytest.approx(sum(r["duration_ms"] for r in a.results))


def test_a_dream_whose_worker_was_lost_is_sent_again_and_finished(
    celery_worker: Any, root: User, make_being: Callable[..., BaseBeing]
) -> None:
    """A dream left running long past its bound (its worker died) is sent again by beat and finished once."""
    being = adder(make_being)
    dream = later(
        lambda **fields: dream_start(
            name="lost", plan=[{"execute": str(being.soul), "args": [1]}], actor=root, **fields
        )
    )
    Dream.objects.filter(id=dream.id).update(status="running", started_at=timezone.now() - timedelta(minutes=3))

    assert [due.id for due in dreams_start_due()] == [dream.id]

    dream = finished(dream)
    assert (dream.status, dream.results[0]["result"]) == ("kept", 2)
    assert Timeline.objects.filter(name=f"dream_{dream.id}").count() == 1
