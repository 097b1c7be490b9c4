"""Time travel: restore and switch, and the one place every chronos service is imported from.

Checkpoints and new timelines are marks (``chronos.checkpoints``); restore and switch undo (and
redo) only the changes between two points, found through the log's index, in one transaction that
holds writers off the two tables; their own writes are captured like any other, tagged with what
they are, so each is history and can be undone. Export and import are in ``chronos.transfer``,
retention in ``chronos.retention``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from beings.models import Promotion
from beings.souls.selectors import promotions_active
from chronos import replay
from chronos.checkpoints import (
    checkpoint_create,
    checkpoint_delete,
    checkpoint_pin,
    checkpoints_forget,
    safety_checkpoint,
    timeline_create,
)
from chronos.diffs import Diff, chronos_diff
from chronos.exceptions import (
    CheckpointNotFoundError,
    PromotedBeingAffectedError,
    TimelineNotLiveError,
    TimelineProtectedError,
)
from chronos.guards import chronos_enabled, hold_writers_off, permission_require, writes_tagged
from chronos.lessons.recording import restore_failures_recorded, switch_failures_recorded
from chronos.models import Checkpoint, Timeline
from chronos.points import Cut, Point, live_timeline, path, timeline_resolve
from chronos.retention import chronos_gc
from chronos.risk.services import safety_record
from chronos.transfer import checkpoint_export, checkpoint_import
from luxsite.permissions import User

__all__ = [
    "checkpoint_create",
    "checkpoint_delete",
    "checkpoint_export",
    "checkpoint_import",
    "checkpoint_pin",
    "checkpoint_restore",
    "checkpoint_restore_preview",
    "chronos_diff",
    "chronos_gc",
    "timeline_create",
    "timeline_delete",
    "timeline_switch",
    "timeline_switch_preview",
]


@dataclass(kw_only=True)
class TravelPreview:
    """What a restore or a switch would do: the rows that differ, and the active promotions whose being it
    removes (then it needs ``force``) or changes."""

    diff: Diff
    promotions_removed: list[Promotion] = field(default_factory=list)
    promotions_changed: list[Promotion] = field(default_factory=list)

    @property
    def needs_force(self) -> bool:
        return bool(self.promotions_removed)


@dataclass(kw_only=True)
class RestorePreview(TravelPreview):
    checkpoint: Checkpoint


@dataclass(kw_only=True)
class SwitchPreview(TravelPreview):
    timeline: Timeline
    live: Timeline


@dataclass
class TravelReport:
    """What a restore or a switch did: the safety checkpoint taken first, the log entries undone and redone."""

    safety: Checkpoint | None
    undone: int
    redone: int
    # Rows written, per table.
    rows: dict[str, int] = field(default_factory=dict)


def _promotions_touched(steps: list[replay.Step]) -> tuple[list[Promotion], list[Promotion]]:
    """The active promotions whose being the steps remove, and those whose being they change.

    Only the promoted rows among the touched ones are rebuilt: O(promotions touched), not O(changes).
    """
    touched = {step.row_id for step in steps if step.table == "base_beings"}
    active = [
        promotion
        for environment in settings.LUXOS_ENVIRONMENTS
        for promotion in promotions_active(environment=environment).filter(soul__in=list(touched))
    ]
    if not active:
        return [], []
    keys = {("base_beings", soul) for soul in {promotion.soul for promotion in active}}
    mine = [step for step in steps if (step.table, step.row_id) in keys]
    images = replay.rows_fold(replay.live_images(keys), mine)
    removed = [promotion for promotion in active if images[("base_beings", promotion.soul)] is None]
    changed = [promotion for promotion in active if images[("base_beings", promotion.soul)] is not None]
    return removed, changed


def _promotions_guard(steps: list[replay.Step], *, force: bool, doing: str) -> None:
    removed, _ = _promotions_touched(steps)
    if removed and not force:
        listed = ", ".join(f"{p.alias} ({p.hash[:12]}) in {p.environment}" for p in removed)
        raise PromotedBeingAffectedError(
            f"the {doing} deletes the being behind active promotions: {listed}; confirm with force"
        )


def _report(safety: Checkpoint, steps: list[replay.Step]) -> TravelReport:
    undone = sum(1 for step in steps if step.undo)
    rows: dict[str, int] = {}
    for table, _ in {(step.table, step.row_id) for step in steps}:
        rows[table] = rows.get(table, 0) + 1
    return TravelReport(safety=safety, undone=undone, redone=len(steps) - undone, rows=rows)


def checkpoint_restore_preview(*, checkpoint: Checkpoint, actor: User, limit: int = 20) -> RestorePreview:
    """What a restore would do: counts per table and kind, the first rows with their fields, the promotions."""
    chronos_enabled()
    permission_require(actor, "chronos.restore_checkpoint", "restoring a checkpoint")
    live = live_timeline()
    _on_live(checkpoint, live)
    target = Point(live, Cut.of(checkpoint), checkpoint.name)
    diff = chronos_diff(Point(live, None, "now"), target, limit=limit)
    removed, changed = _promotions_touched(replay.path_steps(path(Point(live), target)))
    return RestorePreview(checkpoint=checkpoint, diff=diff, promotions_removed=removed, promotions_changed=changed)


def timeline_switch_preview(*, name: str | Timeline, actor: User, limit: int = 20) -> SwitchPreview:
    """What a switch would do: the rows that differ between the live head and the other's, the promotions."""
    chronos_enabled()
    permission_require(actor, "chronos.switch_timeline", "switching timelines")
    target = name if isinstance(name, Timeline) else timeline_resolve(name)
    live = live_timeline()
    if target.id == live.id:
        raise TimelineProtectedError(f"{live.name} is already live")
    head = Point(target, None, target.name)
    diff = chronos_diff(Point(live, None, "now"), head, limit=limit)
    removed, changed = _promotions_touched(replay.path_steps(path(Point(live), Point(target))))
    return SwitchPreview(timeline=target, live=live, diff=diff, promotions_removed=removed, promotions_changed=changed)


def _on_live(checkpoint: Checkpoint, live: Timeline) -> None:
    if checkpoint.timeline_id != live.id:
        raise TimelineNotLiveError(
            f"checkpoint {checkpoint.name!r} is on timeline {checkpoint.timeline.name}, and {live.name} is live: "
            f"switch to {checkpoint.timeline.name} first"
        )


@restore_failures_recorded
def checkpoint_restore(*, checkpoint: Checkpoint, actor: User, force: bool = False) -> TravelReport:
    """Make the two tables exactly what they were at ``checkpoint`` by undoing the changes made since.

    One transaction: killed at any instant, nothing changed. A safety checkpoint
    ``before-restore-<name>`` is taken first, so the restore can itself be undone.
    """
    chronos_enabled()
    permission_require(actor, "chronos.restore_checkpoint", "restoring a checkpoint")
    with transaction.atomic():
        hold_writers_off()
        if not Checkpoint.objects.filter(id=checkpoint.id).exists():  # retention may have removed it meanwhile
            raise CheckpointNotFoundError(f"checkpoint {checkpoint.name!r} no longer exists")
        live = live_timeline()
        _on_live(checkpoint, live)
        safety = safety_checkpoint(prefix=f"before-restore-{checkpoint.name}", timeline=live, actor=actor)
        steps = replay.path_steps(path(Point(live), Point(live, Cut.of(checkpoint))))
        _promotions_guard(steps, force=force, doing="restore")
        writes_tagged("restore", actor=actor, operation="checkpoint_restore", reason=f"restore to {checkpoint.name}")
        replay.apply(steps)
    safety_record(safety)
    return _report(safety, steps)


@switch_failures_recorded
def timeline_switch(*, name: str | Timeline, actor: User, force: bool = False) -> TravelReport:
    """Make ``name`` the live timeline: undo the live one back to where they part, redo the other from there."""
    chronos_enabled()
    permission_require(actor, "chronos.switch_timeline", "switching timelines")
    with transaction.atomic():
        hold_writers_off()
        target = name if isinstance(name, Timeline) else timeline_resolve(name)
        live = live_timeline()
        if target.id == live.id:
            raise TimelineProtectedError(f"{live.name} is already live")
        safety = safety_checkpoint(prefix=f"before-switch-to-{target.name}", timeline=live, actor=actor)
        steps = replay.path_steps(path(Point(live), Point(target)))
        _promotions_guard(steps, force=force, doing="switch")
        writes_tagged(
            "switch", actor=actor, operation="timeline_switch", reason=f"switch from {live.name} to {target.name}"
        )
        replay.apply(steps)
        Timeline.objects.filter(live=True).update(live=False)
        Timeline.objects.filter(id=target.id).update(live=True)
    safety_record(safety)
    return _report(safety, steps)


def timeline_delete(*, name: str, actor: User) -> None:
    """Delete a timeline (never main, never the live one, never one others fork from); retention frees its log."""
    permission_require(actor, "chronos.switch_timeline", "deleting a timeline")
    with transaction.atomic():
        timeline = timeline_resolve(name)
        if timeline.name == "main" and timeline.parent_id is None:
            raise TimelineProtectedError("main is never deleted")
        if timeline.live:
            raise TimelineProtectedError(f"{timeline.name} is live: switch to another timeline first")
        children = list(
            Timeline.objects.filter(parent=timeline, deleted_at__isnull=True).values_list("name", flat=True)
        )
        if children:
            raise TimelineProtectedError(f"timelines fork from {timeline.name}: {', '.join(children)}")
        Timeline.objects.filter(id=timeline.id).update(deleted_at=timezone.now())
        checkpoints_forget(Checkpoint.objects.filter(timeline=timeline))
