"""Dreams on a real worker: isolated from the live state, their changes kept as their timeline, judged by rate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User

from beings.models import BaseBeing
from chronos.diffs import chronos_diff
from chronos.dreams.services import dream_start
from chronos.models import Change, Dream, Lesson, Timeline
from chronos.points import Cut, Point
from chronos.services import timeline_switch
from chronos.tests.helpers import connect, tables_dump
from luxsite.tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ADD_ONE = "def run(x):\n    return x + 1\n"
# Only a line added: an evolution in place (same soul, next version).
TIMES_TEN = "def run(x):\n    x = x * 10\n    return x + 1\n"
LOOP = "def run(x):\n    while True:\n        x = x + 1\n"
FINISHED = {"kept", "merged", "discarded", "failed"}


def finished(dream: Dream, timeout: float = 60.0) -> Dream:
    """The dream once the worker has judged it."""
    return wait_for(lambda: Dream.objects.filter(id=dream.id, status__in=FINISHED).first(), timeout)


def adder(make_being: Callable[..., BaseBeing], name: str = "adder", source: str = ADD_ONE) -> BaseBeing:
    return make_being(name, genesis={"source": source})


def test_a_dream_keeps_its_changes_on_its_timeline_and_none_live(
    celery_worker: Any, root: User, make_being: Callable[..., BaseBeing]
) -> None:
    """The plan evolves a being and runs the evolved code; the live tables are untouched, the dream's timeline
    holds the evolution (a diff from the fork shows it, a switch to it makes it live)."""
    being = adder(make_being)
    before = tables_dump()
    plan = [
        {"execute": str(being.soul), "args": [2], "expect": 3},
        {"evolve": str(being.soul), "source": TIMES_TEN, "expect": "evolution"},
        {"execute": str(being.soul), "args": [2], "expect": 21},
        {"execute": str(being.soul), "args": [2], "expect": 3},
    ]
    dream = finished(dream_start(name="ten times", plan=plan, actor=root))

    assert tables_dump() == before
    assert [result["ok"] for result in dream.results] == [True, True, True, False]
    assert dream.results[2]["result"] == 21 and dream.results[3]["result"] == 21
    assert (dream.success_rate, dream.status) == (0.75, "kept")
    timeline = Timeline.objects.get(name=f"dream_{dream.id}")
    main, fork = Timeline.objects.get(name="main"), dream.fork
    assert fork is not None and (dream.timeline, timeline.parent, fork.timeline) == (timeline, main, main)
    assert Change.objects.filter(timeline=timeline, table="base_beings", row_id=being.soul).exists()
    merge = dream.merge
    assert merge is not None and (merge.status, merge.source, merge.into) == ("open", timeline, main)

    diff = chronos_diff(Point(main, Cut.of(fork)), Point(timeline))
    (row,) = [row for row in diff.entries if row.row_id == being.soul]
    assert row.kind == "changed" and row.old is not None and row.new is not None
    assert (row.old["genesis"]["source"], row.new["genesis"]["source"]) == (ADD_ONE, TIMES_TEN)

    timeline_switch(name=timeline, actor=root)
    assert BaseBeing.objects.get(soul=being.soul).genesis["source"] == TIMES_TEN
    timeline_switch(name="main", actor=root)
    assert tables_dump() == before


def test_a_discarded_dream_stays_as_history_with_a_lesson(
    celery_worker: Any, root: User, make_being: Callable[..., BaseBeing]
) -> None:
    """Half the steps as planned is not above the threshold (0.5): discarded, its timeline kept, a lesson."""
    being = adder(make_being)
    before = tables_dump()
    plan = [
        {"evolve": str(being.soul), "source": TIMES_TEN},
        {"execute": str(being.soul), "args": [1], "expect": 2},
    ]
    dream = finished(dream_start(name="half", plan=plan, actor=root))

    assert (dream.status, dream.success_rate) == ("discarded", 0.5)
    assert tables_dump() == before
    assert Change.objects.filter(timeline=dream.timeline).exists()
    lesson = Lesson.objects.get(operation="dream")
    assert (lesson.timeline_id, lesson.being_id, lesson.metadata["dream"]) == (
        dream.timeline_id,
        being.soul,
        str(dream.id),
    )


def test_a_dream_past_its_seconds_fails_and_leaves_nothing(
    celery_worker: Any, root: User, make_being: Callable[..., BaseBeing]
) -> None:
    """An evolution, then code that never ends: at the dream's bound it fails, no timeline, nothing live, a lesson."""
    being = adder(make_being)
    looper = adder(make_being, "looper", LOOP)
    before = tables_dump()
    plan = [{"evolve": str(being.soul), "source": TIMES_TEN}, {"execute": str(looper.soul), "args": [0]}]
    dream = finished(dream_start(name="endless", plan=plan, actor=root, seconds=2))

    assert dream.status == "failed" and "2 s" in dream.error
    assert dream.timeline is None and not Timeline.objects.filter(name=f"dream_{dream.id}").exists()
    assert tables_dump() == before
    assert Lesson.objects.filter(operation="dream", metadata__dream=str(dream.id)).exists()


def test_no_other_session_sees_a_dream_while_it_runs(
    celery_worker: Any, root: User, make_being: Callable[..., BaseBeing]
) -> None:
    """While the dream holds its evolution uncommitted, another connection reads the tables as they were."""
    being = adder(make_being)
    slow = adder(
        make_being, "slow", "def run(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return n\n"
    )
    before = tables_dump()
    plan = [
        {"evolve": str(being.soul), "source": TIMES_TEN},
        {"execute": str(slow.soul), "args": [3_000_000], "expect": 3_000_000},
    ]
    dream = dream_start(name="slow", plan=plan, actor=root)
    seen_running = 0
    with connect() as other:
        while not Dream.objects.filter(id=dream.id, status__in=FINISHED).exists():
            if Dream.objects.filter(id=dream.id, status="running").exists():
                seen_running += 1
            source = other.execute(
                "SELECT genesis->>'source' FROM base_beings WHERE soul = %s", [being.soul]
            ).fetchone()
            assert source == (ADD_ONE,)
            other.rollback()
    dream = finished(dream)
    assert seen_running > 0
    assert dream.results[0]["ok"] and tables_dump() == before
