"""Timelines: forks from a checkpoint or from now, switches that undo one side and redo the other, exactly."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest
from django.contrib.auth.models import User

from beings.models import BaseBeing
from beings.services import being_delete, being_update
from chronos.models import Change, Timeline, Transaction
from chronos.points import point_resolve
from chronos.selectors import being_at, being_history
from chronos.services import checkpoint_create, checkpoint_restore, timeline_create, timeline_delete, timeline_switch
from chronos.tests.helpers import tables_dump
from luxsite.tests.helpers import refused

pytestmark = pytest.mark.django_db(transaction=True)


def test_main_is_live_from_the_start() -> None:
    """The first migration leaves exactly one timeline, main, live."""
    assert list(Timeline.objects.values_list("name", "live")) == [("main", True)]


def test_switch_goes_back_and_forth_exactly(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Work on a branch and on main diverges; switching either way makes the tables each side's head."""
    shared = make_being("shared", attributes={"v": 0})
    fork = checkpoint_create(name="fork", actor=root)
    being_update(being=shared, data={"attributes": {"v": "main"}}, actor=root)
    make_being("main-only")
    main_head = tables_dump()

    timeline_create(name="experiment", from_checkpoint=fork, actor=root)
    report = timeline_switch(name="experiment", actor=root)
    assert report.undone == 2 and report.redone == 0
    assert Timeline.objects.get(live=True).name == "experiment"
    shared.refresh_from_db()
    assert shared.attributes == {"v": 0}
    being_update(being=shared, data={"attributes": {"v": "experiment"}, "tags": ["x"]}, actor=root)
    gone = make_being("branch-only")
    being_delete(being=gone, actor=root)
    make_being("kept-on-branch")
    branch_head = tables_dump()
    assert set(Change.objects.filter(timeline__name="experiment").values_list("operation", flat=True)) == {
        "INSERT",
        "UPDATE",
        "DELETE",
    }

    timeline_switch(name="main", actor=root)
    assert tables_dump() == main_head
    timeline_switch(name="experiment", actor=root)
    assert tables_dump() == branch_head


def test_a_fork_from_now_and_a_restore_on_the_branch(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """A timeline forked from now starts from the present; a restore on it undoes only its own changes."""
    make_being("base")
    start = tables_dump()
    timeline_create(name="now-fork", actor=root)
    timeline_switch(name="now-fork", actor=root)
    assert tables_dump() == start
    mark = checkpoint_create(name="on-branch", actor=root)
    make_being("branch-work")
    checkpoint_restore(checkpoint=mark, actor=root)
    assert tables_dump() == start


def test_nested_timelines_switch_across_the_tree(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """From a grandchild to a sibling branch of main: up to the common fork, then down the other side."""
    being = make_being("tree", attributes={"at": "root"})
    timeline_create(name="a", actor=root)
    timeline_create(name="b", actor=root)
    timeline_switch(name="a", actor=root)
    being_update(being=being, data={"attributes": {"at": "a"}}, actor=root)
    timeline_create(name="a1", actor=root)
    timeline_switch(name="a1", actor=root)
    being_update(being=being, data={"attributes": {"at": "a1"}}, actor=root)
    a1_head = tables_dump()
    timeline_switch(name="b", actor=root)
    being.refresh_from_db()
    assert being.attributes == {"at": "root"}
    timeline_switch(name="a1", actor=root)
    assert tables_dump() == a1_head


def test_timeline_rules(root: User, alice: User) -> None:
    """main and the live one are never deleted; names are unique, not chronos' own words; switching needs its right."""
    refused("timeline_protected", lambda: timeline_delete(name="main", actor=root))
    timeline_create(name="side", actor=root)
    refused("timeline_name_taken", lambda: timeline_create(name="side", actor=root))
    for word in ("now", "import", "a/b", "x@y", "timeline:z"):
        refused("name_invalid", partial(timeline_create, name=word, actor=root))
    refused("permission_denied", lambda: timeline_switch(name="side", actor=alice))
    timeline_switch(name="side", actor=root)
    refused("timeline_protected", lambda: timeline_delete(name="side", actor=root))
    timeline_switch(name="main", actor=root)
    timeline_delete(name="side", actor=root)
    assert list(Timeline.objects.filter(deleted_at__isnull=True).values_list("name", flat=True)) == ["main"]


def test_reading_a_being_at_any_point(root: User, alice: User, bob: User, make_being: Callable[..., BaseBeing]) -> None:
    """A being at a checkpoint, at another timeline's head, at a time and at a log position; hidden from others."""
    being = make_being("reader", attributes={"v": 1})
    first = checkpoint_create(name="v1", actor=root)
    being_update(being=being, data={"attributes": {"v": 2}}, actor=alice)
    moment = Transaction.objects.order_by("-id").values_list("committed_at", flat=True).first()
    assert moment is not None
    timeline_create(name="side", actor=root)
    being_update(being=being, data={"attributes": {"v": 3}}, actor=alice)
    position = Change.objects.filter(row_id=being.soul).order_by("-id").values_list("id", flat=True).first()
    timeline_switch(name="side", actor=root)
    being_update(being=being, data={"attributes": {"v": 4}}, actor=alice)

    def at(point: str) -> object:
        return being_at(soul=being.soul, point=point_resolve(point), user=alice)["attributes"]

    assert at("v1") == {"v": 1}
    assert at("now") == {"v": 4}
    assert at("main") == {"v": 3}
    assert at(f"@{position}") == {"v": 3}
    assert at(f"main@{moment.isoformat()}") == {"v": 2}
    refused("being_not_found", lambda: being_at(soul=being.soul, point=point_resolve("v1"), user=bob))
    history = being_history(soul=being.soul, user=alice)
    assert [entry.timeline for entry in history][:2] == ["side", "main"]
    assert history[0].context["actor"] == "alice" and history[-1].operation == "INSERT"
    assert first.name == "v1"
