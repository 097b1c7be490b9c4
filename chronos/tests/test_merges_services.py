"""Merging timelines: three-way against the fork point, field by field, conflicts resolved, applied as history."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from django.contrib.auth.models import User

from beings.evolution import being_evolve
from beings.models import BaseBeing
from beings.services import being_delete, being_update
from chronos.merges.services import conflict_resolve, merge_apply, merge_preview, timeline_merge
from chronos.models import Checkpoint, Lesson, Merge, Transaction
from chronos.services import checkpoint_restore, timeline_create, timeline_switch
from chronos.tests.helpers import tables_dump
from luxsite.tests.helpers import refused
from relations.services import relationship_link

pytestmark = pytest.mark.django_db(transaction=True)

SOURCE = "def run():\n    x = 1\n    y = 2\n    return x + y\n"


def diverge(root: User, on_branch: Callable[[], Any], on_main: Callable[[], Any]) -> None:
    """Fork ``branch`` from now, do ``on_branch`` there, then ``on_main`` on main (live again)."""
    timeline_create(name="branch", actor=root)
    timeline_switch(name="branch", actor=root)
    on_branch()
    timeline_switch(name="main", actor=root)
    on_main()


def doc(value: Any) -> dict[str, Any]:
    """A conflict's version that is a document (a row, a being's code)."""
    assert isinstance(value, dict)
    return value


def fresh(being: BaseBeing) -> BaseBeing:
    return BaseBeing.objects.get(soul=being.soul)


def test_different_keys_of_one_document_merge_cleanly(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Each side changes its own key of attributes: the merge has no conflict and keeps both, as a merge write."""
    being = make_being("doc", attributes={"a": 1, "b": 1, "c": 1})
    diverge(
        root,
        lambda: being_update(being=fresh(being), data={"attributes": {"a": 2, "b": 1, "c": 1}}, actor=root),
        lambda: being_update(being=fresh(being), data={"attributes": {"a": 1, "b": 3}}, actor=root),
    )
    merge = timeline_merge(source="branch", into="main", actor=root)
    assert merge.status == Merge.Status.APPLIED
    assert fresh(being).attributes == {"a": 2, "b": 3}
    assert merge.stats["conflicts"] == 0 and merge.stats["written"] == {"base_beings": 1}
    assert merge.safety is not None and merge.safety.kind == Checkpoint.Kind.SAFETY
    assert merge.safety.name == "before-merge-branch"
    assert Transaction.objects.filter(kind="merge", context__operation="timeline_merge").count() == 1


@pytest.mark.parametrize(
    ("resolution", "value", "expected"),
    [("ours", None, "main"), ("theirs", None, "branch"), ("value", "edited", "edited")],
)
def test_the_same_key_changed_two_ways_is_a_conflict_resolved_one_way(
    root: User, make_being: Callable[..., BaseBeing], resolution: str, value: Any, expected: str
) -> None:
    """The conflict lists base, ours and theirs at its path; apply is refused until it is resolved."""
    being = make_being("clash", attributes={"x": "base", "y": 0})
    diverge(
        root,
        lambda: being_update(being=fresh(being), data={"attributes": {"x": "branch", "y": 0}}, actor=root),
        lambda: being_update(being=fresh(being), data={"attributes": {"x": "main", "y": 1}}, actor=root),
    )
    merge = merge_preview(source="branch", into="main", actor=root)
    [conflict] = merge.conflicts.all()
    assert (conflict.table, conflict.row_id, conflict.path) == ("base_beings", being.soul, ["attributes", "x"])
    assert (conflict.base, conflict.ours, conflict.theirs) == ("base", "main", "branch")
    before = tables_dump()
    error = refused("merge_conflicts_open", lambda: merge_apply(merge=merge, actor=root))
    assert f"#{conflict.id} base_beings {being.soul} attributes.x" in error.detail
    assert tables_dump() == before

    conflict_resolve(conflict=conflict, resolution=resolution, value=value, actor=root)
    merge_apply(merge=merge, actor=root)
    assert fresh(being).attributes == {"x": expected, "y": 1}


def test_tags_merge_as_sets(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Main drops a and adds c, the branch adds d: b, c and d, no conflict."""
    being = make_being("tagged", tags=["a", "b"])
    diverge(
        root,
        lambda: being_update(being=fresh(being), data={"tags": ["a", "b", "d"]}, actor=root),
        lambda: being_update(being=fresh(being), data={"tags": ["b", "c"]}, actor=root),
    )
    merge = timeline_merge(source="branch", into="main", actor=root)
    assert merge.stats["conflicts"] == 0
    assert fresh(being).tags == ["b", "c", "d"]


def test_memories_are_the_union_of_both_sides_in_time_order(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Events appended on either side are all kept, ordered by their time, each once."""
    first = {"event": "born", "at": "2026-01-01T00:00:00"}
    main_event = {"event": "main", "at": "2026-01-03T00:00:00"}
    branch_early, branch_late = (
        {"event": "branch-early", "at": "2026-01-02T00:00:00"},
        {"event": "branch-late", "at": "2026-01-04T00:00:00"},
    )
    being = make_being("remembering", memories=[first])
    diverge(
        root,
        lambda: being_update(being=fresh(being), data={"memories": [first, branch_early, branch_late]}, actor=root),
        lambda: being_update(being=fresh(being), data={"memories": [first, main_event]}, actor=root),
    )
    timeline_merge(source="branch", into="main", actor=root)
    assert fresh(being).memories == [first, branch_early, main_event, branch_late]


def test_code_evolved_on_both_sides_is_one_conflict_to_pick_a_lineage(
    root: User, make_being: Callable[..., BaseBeing]
) -> None:
    """Two evolutions of one being: one conflict on its code; theirs brings the branch's whole lineage back."""
    being = make_being("coder", genesis={"source": SOURCE})
    branch_source = SOURCE.replace("    return", "    z = 3\n    return")
    main_source = SOURCE.replace("    return", "    w = 4\n    return")
    diverge(
        root,
        lambda: being_evolve(being=fresh(being), source=branch_source, actor=root),
        lambda: being_evolve(being=fresh(being), source=main_source, actor=root),
    )
    branch_genesis = {**fresh(being).genesis}  # main's, for now
    merge = merge_preview(source="branch", into="main", actor=root)
    [conflict] = merge.conflicts.all()
    assert conflict.path == ["genesis"]
    assert doc(conflict.ours)["source"] == main_source and doc(conflict.theirs)["source"] == branch_source
    assert doc(conflict.ours)["version"] == doc(conflict.theirs)["version"] == 2
    assert doc(conflict.base)["source"] == SOURCE
    conflict_resolve(conflict=conflict, resolution="theirs", actor=root)
    merge_apply(merge=merge, actor=root)
    merged = fresh(being)
    assert merged.genesis["source"] == branch_source
    assert merged.genesis["hash"] == doc(conflict.theirs)["hash"] != branch_genesis["hash"]
    assert merged.genesis["ancestors"] == doc(conflict.theirs)["ancestors"]
    # Both evolutions stay in the being's memories.
    assert [event["hash"] for event in merged.memories if event.get("event") == "evolution"] == sorted(
        [doc(conflict.theirs)["hash"], doc(conflict.ours)["hash"]],
        key=lambda h: next(e["at"] for e in merged.memories if e.get("hash") == h),
    )


def test_edited_code_is_validated_and_hashed_afresh(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Invalid edited code is refused as a write is; valid code gets its own hash."""
    being = make_being("edited", genesis={"source": SOURCE})
    diverge(
        root,
        lambda: being_evolve(
            being=fresh(being), source=SOURCE.replace("    return", "    b = 1\n    return"), actor=root
        ),
        lambda: being_evolve(
            being=fresh(being), source=SOURCE.replace("    return", "    m = 1\n    return"), actor=root
        ),
    )
    merge = merge_preview(source="branch", into="main", actor=root)
    [conflict] = merge.conflicts.all()
    for bad, code in (({"source": "def run(:\n"}, "source_syntax_error"), ({"version": 9}, "resolution_invalid")):
        refused(code, partial(conflict_resolve, conflict=conflict, resolution="value", value=bad, actor=root))
    conflict.refresh_from_db()
    assert conflict.resolution == ""
    both = SOURCE.replace("    return", "    b = 1\n    m = 1\n    return")
    conflict_resolve(conflict=conflict, resolution="value", value={"source": both}, actor=root)
    merge_apply(merge=merge, actor=root)
    genesis = fresh(being).genesis
    assert genesis["source"] == both and genesis["version"] == 3
    assert genesis["hash"] not in (doc(conflict.ours)["hash"], doc(conflict.theirs)["hash"])
    # The edited version sits on top of ours: every older version still rebuilds from the lineage.
    assert [entry["hash"] for entry in genesis["ancestors"]][-1] == doc(conflict.ours)["hash"]


def test_a_row_deleted_on_one_side_and_changed_on_the_other_is_a_conflict(
    root: User, make_being: Callable[..., BaseBeing]
) -> None:
    """Main deletes the being, the branch changes it: a whole-row conflict; theirs brings it back changed."""
    being = make_being("doomed", attributes={"v": 1})
    diverge(
        root,
        lambda: being_update(being=fresh(being), data={"attributes": {"v": 2}}, actor=root),
        lambda: being_delete(being=fresh(being), actor=root),
    )
    merge = merge_preview(source="branch", into="main", actor=root)
    [conflict] = merge.conflicts.all()
    assert conflict.path == [] and conflict.ours is None
    assert doc(conflict.base)["attributes"] == {"v": 1} and doc(conflict.theirs)["attributes"] == {"v": 2}
    conflict_resolve(conflict=conflict, resolution="theirs", actor=root)
    merge_apply(merge=merge, actor=root)
    assert fresh(being).attributes == {"v": 2}


@pytest.mark.parametrize(
    ("strategy", "conflicts", "expected"),
    [
        ("field", 0, {"a": "branch", "b": "main"}),
        ("row", 1, None),
        ("ours", 0, {"a": 0, "b": "main"}),
        ("theirs", 0, {"a": "branch", "b": 0}),
    ],
)
def test_each_strategy(
    root: User, make_being: Callable[..., BaseBeing], strategy: str, conflicts: int, expected: Any
) -> None:
    """Different keys changed on each side: field merges them, row conflicts, ours and theirs pick a side."""
    being = make_being("strategic", attributes={"a": 0, "b": 0})
    untouched = make_being("only-branch", attributes={"n": 0})
    diverge(
        root,
        lambda: [
            being_update(being=fresh(being), data={"attributes": {"a": "branch", "b": 0}}, actor=root),
            being_update(being=fresh(untouched), data={"attributes": {"n": 1}}, actor=root),
        ],
        lambda: being_update(being=fresh(being), data={"attributes": {"a": 0, "b": "main"}}, actor=root),
    )
    merge = merge_preview(source="branch", into="main", strategy=strategy, actor=root)
    assert merge.conflicts.count() == conflicts
    if conflicts:
        conflict = merge.conflicts.get()
        assert conflict.path == [] and doc(conflict.ours)["attributes"] == {"a": 0, "b": "main"}
        conflict_resolve(conflict=conflict, resolution="ours", actor=root)
        expected = {"a": 0, "b": "main"}
    merge_apply(merge=merge, actor=root)
    assert fresh(being).attributes == expected
    assert fresh(untouched).attributes == {"n": 1}  # changed on one side only: always taken


def test_undo_by_restoring_the_safety_checkpoint(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """A restore to the merge's safety checkpoint gives back the tables byte for byte."""
    kept = make_being("kept", attributes={"a": 0}, tags=["x"])
    partner = make_being("partner")
    diverge(
        root,
        lambda: [
            being_update(being=fresh(kept), data={"attributes": {"a": 1}, "tags": ["x", "y"]}, actor=root),
            make_being("new-on-branch"),
            relationship_link(source=fresh(kept), target=fresh(partner), actor=root, data={"tags": ["b"]}),
        ],
        lambda: being_update(being=fresh(kept), data={"tags": ["x", "z"]}, actor=root),
    )
    before = tables_dump()
    merge = timeline_merge(source="branch", into="main", actor=root)
    assert merge.stats["written"] == {"base_beings": 2, "relationships": 1}
    assert fresh(kept).tags == ["x", "z", "y"]
    assert tables_dump() != before
    assert merge.safety is not None
    checkpoint_restore(checkpoint=merge.safety, actor=root)
    assert tables_dump() == before


def test_a_failed_merge_leaves_the_tables_unchanged(
    root: User, make_being: Callable[..., BaseBeing], unchanged: Callable[..., Any]
) -> None:
    """The branch links to a being main deleted: the database refuses the merged state, nothing changes."""
    target = make_being("target")
    source = make_being("source")
    diverge(
        root,
        lambda: relationship_link(source=fresh(source), target=fresh(target), actor=root),
        lambda: being_delete(being=fresh(target), actor=root),
    )
    merge = merge_preview(source="branch", into="main", actor=root)
    assert merge.conflicts.count() == 0
    before = tables_dump()
    error = refused("merge_failed", lambda: merge_apply(merge=merge, actor=root))
    assert "nothing changed" in error.detail
    assert tables_dump() == before
    merge.refresh_from_db()
    assert merge.status == Merge.Status.FAILED
    assert not Checkpoint.objects.filter(name__startswith="before-merge").exists()
    assert not Transaction.objects.filter(kind="merge").exists()
    lesson = Lesson.objects.get(operation=Lesson.Operation.MERGE)
    assert lesson.metadata["merge"] == str(merge.id) and lesson.error_class


def test_a_side_changed_since_the_preview_is_stale(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """A write on main after the preview: the apply is refused, nothing changed, preview again."""
    being = make_being("moving", attributes={"a": 0})
    diverge(
        root,
        lambda: being_update(being=fresh(being), data={"attributes": {"a": 1}}, actor=root),
        lambda: None,
    )
    merge = merge_preview(source="branch", into="main", actor=root)
    being_update(being=fresh(being), data={"attributes": {"a": 2}}, actor=root)
    before = tables_dump()
    refused("merge_stale", lambda: merge_apply(merge=merge, actor=root))
    assert tables_dump() == before
    again = merge_preview(source="branch", into="main", actor=root)
    merge.refresh_from_db()
    assert merge.status == Merge.Status.ABANDONED
    assert again.conflicts.get().path == ["attributes", "a"]


def test_merging_needs_the_merge_permission(alice: User, root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Without chronos.merge_timeline a preview, a resolution and an apply are refused."""
    timeline_create(name="branch", actor=root)
    refused("permission_denied", lambda: merge_preview(source="branch", into="main", actor=alice))
    merge = merge_preview(source="branch", into="main", actor=root)
    refused("permission_denied", lambda: merge_apply(merge=merge, actor=alice))


@pytest.mark.parametrize(
    ("strategy", "path", "value", "code"),
    [
        ("field", ["energy_level"], "high", "genesis_invalid"),
        ("field", ["attributes", "x"], "nul\u0000", "genesis_invalid"),
        ("row", [], {"unknown": 1}, "genesis_invalid"),
        ("row", [], {"tags": "not-a-list"}, "tags_invalid"),
        ("row", [], "text", "resolution_invalid"),
    ],
)
def test_an_edited_value_is_validated_like_a_write(
    root: User, make_being: Callable[..., BaseBeing], strategy: str, path: list[str], value: Any, code: str
) -> None:
    """An edited value the services would refuse is refused with the same error, and the conflict stays open."""
    being = make_being("checked", attributes={"x": 0})
    diverge(
        root,
        lambda: being_update(being=fresh(being), data={"energy_level": 1, "attributes": {"x": 1}}, actor=root),
        lambda: being_update(being=fresh(being), data={"energy_level": 2, "attributes": {"x": 2}}, actor=root),
    )
    merge = merge_preview(source="branch", into="main", strategy=strategy, actor=root)
    conflict = merge.conflicts.get(path=path)
    refused(code, lambda: conflict_resolve(conflict=conflict, resolution="value", value=value, actor=root))
    refused("resolution_invalid", lambda: conflict_resolve(conflict=conflict, resolution="mine", actor=root))
    conflict.refresh_from_db()
    assert conflict.resolution == ""


def test_siblings_and_a_parent_merge_against_their_fork_point(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Two branches forked from main at different points merge against the earlier fork; main merges into a child."""
    being = make_being("shared", attributes={"v": 0})
    timeline_create(name="early", actor=root)
    being_update(being=fresh(being), data={"attributes": {"v": 0, "main": 1}}, actor=root)
    timeline_create(name="late", actor=root)
    timeline_switch(name="early", actor=root)
    being_update(being=fresh(being), data={"attributes": {"v": 0, "early": 1}}, actor=root)
    timeline_switch(name="late", actor=root)
    being_update(being=fresh(being), data={"attributes": {"v": 0, "main": 1, "late": 1}}, actor=root)

    merge = timeline_merge(source="early", into="late", actor=root)
    assert merge.base is not None and merge.base.name == "fork-early"
    assert fresh(being).attributes == {"v": 0, "main": 1, "late": 1, "early": 1}

    timeline_switch(name="main", actor=root)
    being_update(being=fresh(being), data={"attributes": {"v": 2, "main": 1}}, actor=root)
    timeline_switch(name="late", actor=root)
    merge = timeline_merge(source="main", into="late", actor=root)
    assert merge.base is not None and merge.base.name == "fork-late"
    assert fresh(being).attributes == {"v": 2, "main": 1, "late": 1, "early": 1}
    refused("timeline_not_live", lambda: timeline_merge(source="late", into="main", actor=root))


def test_an_applied_merge_is_settled(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """After the apply, its conflicts cannot be resolved again and it cannot be applied twice."""
    being = make_being("settled", attributes={"x": 0})
    diverge(
        root,
        lambda: being_update(being=fresh(being), data={"attributes": {"x": 1}}, actor=root),
        lambda: being_update(being=fresh(being), data={"attributes": {"x": 2}}, actor=root),
    )
    merge = merge_preview(source="branch", into="main", actor=root)
    conflict = merge.conflicts.get()
    conflict_resolve(conflict=conflict, resolution="theirs", actor=root)
    merge_apply(merge=merge, actor=root)
    refused("merge_not_open", lambda: conflict_resolve(conflict=conflict, resolution="ours", actor=root))
    refused("merge_not_open", lambda: merge_apply(merge=merge, actor=root))
    assert fresh(being).attributes == {"x": 1}
