"""Retention: checkpoints beyond the limits go, and the log only they needed; every checkpoint kept stays exact."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from beings.models import BaseBeing, BeingUserObjectPermission
from beings.services import being_delete, being_update
from chronos.models import Change, Checkpoint, Timeline, Transaction
from chronos.points import point_resolve
from chronos.services import (
    checkpoint_create,
    checkpoint_pin,
    checkpoint_restore,
    chronos_gc,
    timeline_create,
    timeline_delete,
    timeline_switch,
)
from chronos.tasks import chronos_gc_task
from chronos.tests.helpers import tables_dump
from luxsite.celery import app
from luxsite.permissions import may
from luxsite.tests.helpers import refused
from relations.models import Relationship
from relations.services import relationship_delete

pytestmark = pytest.mark.django_db(transaction=True)


def history(
    root: User, make_being: Callable[..., BaseBeing], make_link: Callable[..., Relationship], count: int
) -> list[tuple[Checkpoint, dict[str, str]]]:
    """``count`` checkpoints on main with writes of both tables between them, each with its dump."""
    anchor = make_being("anchor", attributes={"n": 0})
    taken = []
    link = None
    for n in range(count):
        being_update(being=anchor, data={"attributes": {"n": n}, "tags": [f"t{n}"]}, actor=root)
        newcomer = make_being(f"newcomer-{n}")
        if link is not None:
            relationship_delete(relationship=link, actor=root)
        link = make_link(anchor, newcomer, tags=[f"l{n}"])
        taken.append((checkpoint_create(name=f"c{n}", actor=root), tables_dump()))
    return taken


def test_restore_to_every_retained_checkpoint_is_exact_after_gc(
    root: User,
    make_being: Callable[..., BaseBeing],
    make_link: Callable[..., Relationship],
    settings: Any,
) -> None:
    """With at most two checkpoints kept, the older ones and the log before them go; the two left restore exactly.

    Batches of three rows, so the deletion takes many of them, as a large log would.
    """
    settings.CHRONOS_MAX_CHECKPOINTS_PER_TIMELINE = 2
    taken = history(root, make_being, make_link, 5)
    logged, contexts = Change.objects.count(), Transaction.objects.count()
    head = tables_dump()

    report = chronos_gc(batch=3)
    assert report.checkpoints == ["main/c2", "main/c1", "main/c0"]
    assert set(Checkpoint.objects.values_list("name", flat=True)) == {"c3", "c4"}
    assert report.changes > 0 and Change.objects.count() == logged - report.changes
    assert report.transactions > 0 and Transaction.objects.count() == contexts - report.transactions
    assert report.bytes_freed > 0 and not report.dry_run
    assert tables_dump() == head, "collecting history never changes the present"

    for checkpoint, dump in (taken[3], taken[4], taken[3]):
        checkpoint_restore(checkpoint=checkpoint, actor=root)
        assert tables_dump() == dump


def test_a_dry_run_reports_what_a_run_removes_and_removes_nothing(
    root: User,
    make_being: Callable[..., BaseBeing],
    make_link: Callable[..., Relationship],
    settings: Any,
) -> None:
    """gc --dry-run names the same checkpoints and counts the same rows and bytes, and leaves every row in place."""
    settings.CHRONOS_MAX_CHECKPOINTS_PER_TIMELINE = 1
    history(root, make_being, make_link, 3)
    counts = (Checkpoint.objects.count(), Change.objects.count(), Transaction.objects.count())

    preview = chronos_gc(dry_run=True)
    assert preview.dry_run and preview.changes > 0
    assert (Checkpoint.objects.count(), Change.objects.count(), Transaction.objects.count()) == counts

    report = chronos_gc()
    assert (report.checkpoints, report.changes, report.transactions) == (
        preview.checkpoints,
        preview.changes,
        preview.transactions,
    )
    # A row's size as PostgreSQL reports it varies by a few header bytes with the plan that read it.
    assert abs(report.bytes_freed - preview.bytes_freed) <= preview.bytes_freed / 100
    again = chronos_gc()
    assert (again.checkpoints, again.changes, again.transactions) == ([], 0, 0)


def test_pinned_and_forked_checkpoints_stay_and_switches_stay_exact(
    root: User, make_being: Callable[..., BaseBeing], settings: Any
) -> None:
    """A pinned checkpoint and one a timeline forks from outlive the limit, and do not count against it."""
    settings.CHRONOS_MAX_CHECKPOINTS_PER_TIMELINE = 1
    being = make_being("one", attributes={"v": 0})
    pinned = checkpoint_create(name="pinned", actor=root)
    checkpoint_pin(checkpoint=pinned, actor=root)
    pinned_dump = tables_dump()
    being_update(being=being, data={"attributes": {"v": 1}}, actor=root)
    fork = checkpoint_create(name="fork", actor=root)
    timeline_create(name="branch", from_checkpoint=fork, actor=root)
    for n in (2, 3):
        being_update(being=being, data={"attributes": {"v": n}}, actor=root)
        checkpoint_create(name=f"c{n}", actor=root)
    being_update(being=being, data={"attributes": {"v": "head"}}, actor=root)
    main_head = tables_dump()

    assert chronos_gc().checkpoints == ["main/c2"]
    assert set(Checkpoint.objects.values_list("name", flat=True)) == {"pinned", "fork", "c3"}

    timeline_switch(name="branch", actor=root)
    being.refresh_from_db()
    assert being.attributes == {"v": 1}
    make_being("on-branch")
    branch_head = tables_dump()
    timeline_switch(name="main", actor=root)
    assert tables_dump() == main_head
    timeline_switch(name="branch", actor=root)
    assert tables_dump() == branch_head
    timeline_switch(name="main", actor=root)
    checkpoint_restore(checkpoint=pinned, actor=root)
    assert tables_dump() == pinned_dump


def test_old_checkpoints_go_and_without_any_the_log_of_the_retention_days_stays(
    root: User, make_being: Callable[..., BaseBeing], settings: Any
) -> None:
    """Checkpoints older than the retention days go; with none left, only the log older than those days goes."""
    settings.CHRONOS_CHECKPOINT_RETENTION_DAYS = 30
    being = make_being("aging")
    checkpoint_create(name="old", actor=root)
    being_update(being=being, data={"tags": ["later"]}, actor=root)

    report = chronos_gc(now=timezone.now() + timedelta(days=20))
    assert report.checkpoints == []
    # Only the update after the checkpoint is left of the log: nothing travels to before it.
    assert list(Change.objects.values_list("row_id", "operation")) == [(being.soul, "UPDATE")]
    report = chronos_gc(now=timezone.now() + timedelta(days=31))
    assert report.checkpoints == ["main/old"]
    # No checkpoint left, and seen from 31 days on, the log is older than the 30 days kept.
    assert report.changes == 1 and Change.objects.count() == 0 and Transaction.objects.count() == 0

    head = tables_dump()
    fresh = checkpoint_create(name="fresh", actor=root)
    being_update(being=being, data={"tags": ["newer"]}, actor=root)
    checkpoint_restore(checkpoint=fresh, actor=root)
    assert tables_dump() == head


def test_without_a_checkpoint_the_recent_log_stays(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """With no checkpoint to travel to, gc keeps the last CHRONOS_CHECKPOINT_RETENTION_DAYS of log for history."""
    being = make_being("recent")
    being_update(being=being, data={"tags": ["x"]}, actor=root)
    logged = Change.objects.count()
    report = chronos_gc()
    assert (report.changes, report.transactions) == (0, 0)
    assert Change.objects.count() == logged


def test_a_deleted_timeline_loses_its_whole_log(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Nothing reaches a deleted timeline: its changes and transactions go, main keeps its own and stays exact."""
    being = make_being("shared")
    start = checkpoint_create(name="start", actor=root)
    timeline_create(name="doomed", from_checkpoint=start, actor=root)
    timeline_switch(name="doomed", actor=root)
    being_update(being=being, data={"tags": ["doomed"]}, actor=root)
    make_being("doomed-only")
    timeline_switch(name="main", actor=root)
    being_update(being=being, data={"tags": ["main"]}, actor=root)
    doomed = Timeline.objects.get(name="doomed")
    timeline_delete(name="doomed", actor=root)
    mine = Change.objects.filter(timeline=doomed).count()
    assert mine > 0

    report = chronos_gc()
    assert report.timelines == ["doomed"]
    assert report.changes >= mine
    assert not Change.objects.filter(timeline=doomed).exists()
    assert not Transaction.objects.filter(timeline=doomed).exists()
    head = tables_dump()
    checkpoint_restore(checkpoint=start, actor=root)
    being.refresh_from_db()
    assert being.tags == []
    assert chronos_gc().timelines == [], "a timeline freed once is not reported again"
    checkpoint_restore(checkpoint=Checkpoint.objects.get(name="before-restore-start"), actor=root)
    assert tables_dump() == head


def test_rights_go_only_with_the_last_trace_of_their_row(
    root: User, alice: User, make_being: Callable[..., BaseBeing], settings: Any
) -> None:
    """A deleted being no retained point holds loses its rights; one a checkpoint can bring back keeps them.

    Without safety checkpoints: each delete would take one that can bring its being back."""
    settings.CHRONOS_AUTO_CHECKPOINT = False
    forgotten = make_being("forgotten")
    being_delete(being=forgotten, actor=alice)
    returning = make_being("returning")
    checkpoint = checkpoint_create(name="before-delete", actor=root)
    being_delete(being=returning, actor=alice)
    rights = BeingUserObjectPermission.objects.filter(content_object_id=forgotten.soul).count()
    assert rights > 0

    report = chronos_gc()
    assert report.permissions == rights
    assert not BeingUserObjectPermission.objects.filter(content_object_id=forgotten.soul).exists()
    checkpoint_restore(checkpoint=checkpoint, actor=root)
    assert may(user=alice, action="change", obj=BaseBeing.objects.get(soul=returning.soul))


def test_gap_rows_before_the_oldest_checkpoint_go(
    root: User, make_being: Callable[..., BaseBeing], settings: Any
) -> None:
    """A gap left while capture was off goes with the log before the oldest checkpoint; later restores work."""
    being = make_being("gapped")
    settings.ENABLE_CHRONOS = False
    connection.close()
    try:
        being_update(being=being, data={"tags": ["uncaptured"]}, actor=root)
    finally:
        settings.ENABLE_CHRONOS = True
        connection.close()
    assert Transaction.objects.filter(kind="gap").count() == 1
    checkpoint = checkpoint_create(name="after-gap", actor=root)
    dump = tables_dump()
    being_update(being=being, data={"tags": ["captured"]}, actor=root)

    assert chronos_gc().transactions >= 2
    assert not Transaction.objects.filter(kind="gap").exists()
    checkpoint_restore(checkpoint=checkpoint, actor=root)
    assert tables_dump() == dump


def test_gc_needs_the_delete_permission(alice: User) -> None:
    """A user without chronos.delete_checkpoint is refused; the beat runs it as the system."""
    refused("permission_denied", lambda: chronos_gc(actor=alice))


def test_beat_runs_gc_daily_on_the_io_queue(
    root: User, make_being: Callable[..., BaseBeing], settings: Any, caplog: Any
) -> None:
    """The beat schedule names chronos.tasks.chronos_gc on io; the task collects and logs what it freed."""
    entry = app.conf.beat_schedule["chronos-gc-daily"]
    assert entry["task"] == "chronos.tasks.chronos_gc" == chronos_gc_task.name
    assert entry["options"]["queue"] == "io"
    settings.CHRONOS_MAX_CHECKPOINTS_PER_TIMELINE = 1
    make_being("one")
    checkpoint_create(name="first", actor=root)
    checkpoint_create(name="second", actor=root)

    with caplog.at_level("INFO", logger="chronos.tasks"):
        result = chronos_gc_task.apply().get()
    assert result["status"] == "done" and result["checkpoints"] == ["main/first"]
    assert "chronos gc: 1 checkpoint(s)" in caplog.text


def test_a_time_before_the_collected_log_is_refused_not_rebuilt_wrong(
    root: User, make_being: Callable[..., BaseBeing], make_link: Callable[..., Relationship], settings: Any
) -> None:
    """After gc, a read of a moment whose log is gone is a 400 point_invalid; a kept checkpoint still reads."""
    settings.CHRONOS_MAX_CHECKPOINTS_PER_TIMELINE = 1
    early = timezone.now()
    taken = history(root, make_being, make_link, 3)
    assert point_resolve(early.isoformat()).cut is not None
    chronos_gc()
    refused("point_invalid", lambda: point_resolve(early.isoformat()))
    kept, _ = taken[-1]
    assert point_resolve(kept.name).cut is not None
    assert point_resolve(timezone.now().isoformat()).cut is not None
