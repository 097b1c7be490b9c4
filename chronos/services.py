"""Time travel: checkpoints, restore, timelines. Every state change of chronos is a function here.

A checkpoint is a row holding the database snapshot of the moment: O(1). Restore and switch
undo (and redo) only the changes between two points, found through the log's index, in one
transaction that holds writers off the two tables; their own writes are captured like any other,
tagged with what they are, so each is history and can be undone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import PermissionsMixin
from django.db import connection, transaction
from django.utils import timezone

from beings.models import Promotion
from beings.souls.selectors import promotions_active
from chronos import replay
from chronos.context import context_apply
from chronos.diffs import Diff, chronos_diff
from chronos.exceptions import (
    CheckpointInUseError,
    CheckpointNameTakenError,
    ChronosDisabledError,
    ChronosNameInvalidError,
    PromotedBeingAffectedError,
    TimelineNameTakenError,
    TimelineNotLiveError,
    TimelineProtectedError,
    WriteInProgressError,
)
from chronos.models import NAME_MAX_LENGTH, Checkpoint, Timeline, Transaction
from chronos.points import Cut, Point, live_timeline, path, timeline_resolve
from chronos.retention import chronos_gc
from luxsite.errors import PermissionDenied
from luxsite.locks import advisory_lock
from luxsite.permissions import User

__all__ = [
    "checkpoint_create",
    "checkpoint_delete",
    "checkpoint_pin",
    "checkpoint_restore",
    "checkpoint_restore_preview",
    "chronos_diff",
    "chronos_gc",
    "timeline_create",
    "timeline_delete",
    "timeline_switch",
]

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TIME_TRAVEL_LOCK = "luxos.chronos:time-travel"


def chronos_enabled() -> None:
    if not settings.ENABLE_CHRONOS:
        raise ChronosDisabledError("chronos is off (ENABLE_CHRONOS is false): turn it on to use time travel")


def permission_require(actor: User, permission: str, doing: str) -> None:
    if not (actor.is_authenticated and isinstance(actor, PermissionsMixin) and actor.has_perm(permission)):
        raise PermissionDenied(f"{doing} needs the {permission} permission")


def name_clean(name: Any, what: str) -> str:
    text = str(name if name is not None else "").strip()
    if not text:
        raise ChronosNameInvalidError(f"a {what} needs a name")
    if len(text) > NAME_MAX_LENGTH:
        raise ChronosNameInvalidError(f"a {what} name has at most {NAME_MAX_LENGTH} characters, not {len(text)}")
    if CONTROL.search(text):
        raise ChronosNameInvalidError(f"a {what} name cannot hold control characters")
    return text


def _actor_name(actor: User | None) -> str:
    return str(getattr(actor, "username", "") or "(system)")


def _nothing_written_yet() -> None:
    """A checkpoint's snapshot must be taken before its transaction writes: it would count its own writes."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id_if_assigned()")
        if cursor.fetchone()[0] is not None:
            raise WriteInProgressError("a checkpoint is taken outside a transaction that has already written")


def _checkpoint_insert(
    *, name: str, description: str, timeline: Timeline, actor: User | None, kind: str, pinned: bool = False
) -> Checkpoint:
    """One INSERT that takes the snapshot: O(1), whatever the size of the tables or the log."""
    _nothing_written_yet()
    if Checkpoint.objects.filter(timeline=timeline, name=name).exists():
        raise CheckpointNameTakenError(f"{timeline.name} already has a checkpoint named {name!r}")
    checkpoint = Checkpoint(
        name=name, description=description, timeline=timeline, kind=kind, actor_name=_actor_name(actor), pinned=pinned
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO chronos_checkpoint (id, name, description, timeline_id, kind, snapshot, snapshot_xmin, "
            "position, pinned, created_at, actor_name, stats) "
            "SELECT %s, %s, %s, %s, %s, s::text, pg_snapshot_xmin(s)::text::bigint, "
            "(SELECT last_value FROM chronos_change_id_seq), %s, now(), %s, '{}' "
            "FROM pg_current_snapshot() AS s ON CONFLICT (timeline_id, name) DO NOTHING "
            "RETURNING snapshot, snapshot_xmin, position, created_at",
            [checkpoint.id, name, description, timeline.id, kind, pinned, checkpoint.actor_name],
        )
        row = cursor.fetchone()
    if row is None:
        raise CheckpointNameTakenError(f"{timeline.name} already has a checkpoint named {name!r}")
    checkpoint.snapshot, checkpoint.snapshot_xmin, checkpoint.position, checkpoint.created_at = row
    return checkpoint


def checkpoint_create(
    *,
    name: str,
    description: str = "",
    timeline: Timeline | str | None = None,
    actor: User,
    kind: str = Checkpoint.Kind.MANUAL,
) -> Checkpoint:
    """Mark the present in the log under ``name`` (unique on its timeline, the live one by default)."""
    chronos_enabled()
    permission_require(actor, "chronos.add_checkpoint", "taking a checkpoint")
    name = name_clean(name, "checkpoint")
    if isinstance(timeline, str):
        timeline = timeline_resolve(timeline)
    with transaction.atomic():
        return _checkpoint_insert(
            name=name, description=str(description or ""), timeline=timeline or live_timeline(), actor=actor, kind=kind
        )


def _safety_checkpoint(*, prefix: str, timeline: Timeline, actor: User) -> Checkpoint:
    """``prefix``, or ``prefix-2``, ``prefix-3``…: the first name free on the timeline."""
    base = prefix[:NAME_MAX_LENGTH]
    taken = set(Checkpoint.objects.filter(timeline=timeline, name__startswith=base).values_list("name", flat=True))
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base[: NAME_MAX_LENGTH - len(str(n)) - 1]}-{n}"
    return _checkpoint_insert(
        name=name, description="Taken automatically first.", timeline=timeline, actor=actor, kind="safety"
    )


def checkpoint_pin(*, checkpoint: Checkpoint, pinned: bool = True, actor: User) -> Checkpoint:
    """Exempt a checkpoint from retention (or give it back to it)."""
    permission_require(actor, "chronos.change_checkpoint", "pinning a checkpoint")
    Checkpoint.objects.filter(id=checkpoint.id).update(pinned=pinned)
    checkpoint.pinned = pinned
    return checkpoint


def checkpoint_delete(*, checkpoint: Checkpoint, actor: User) -> None:
    """Forget a checkpoint (the log stays until retention finds nothing else needs it)."""
    permission_require(actor, "chronos.delete_checkpoint", "deleting a checkpoint")
    forks = list(Timeline.objects.filter(fork_id=checkpoint.id, deleted_at__isnull=True).values_list("name", flat=True))
    if forks:
        raise CheckpointInUseError(f"timelines fork from {checkpoint.name!r}: {', '.join(forks)}; delete them first")
    Checkpoint.objects.filter(id=checkpoint.id).delete()


@dataclass
class RestorePreview:
    checkpoint: Checkpoint
    diff: Diff
    # Active promotions whose being the restore removes or changes.
    promotions_removed: list[Promotion] = field(default_factory=list)
    promotions_changed: list[Promotion] = field(default_factory=list)

    @property
    def needs_force(self) -> bool:
        return bool(self.promotions_removed)


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
    return RestorePreview(checkpoint, diff, removed, changed)


def _on_live(checkpoint: Checkpoint, live: Timeline) -> None:
    if checkpoint.timeline_id != live.id:
        raise TimelineNotLiveError(
            f"checkpoint {checkpoint.name!r} is on timeline {checkpoint.timeline.name}, and {live.name} is live: "
            f"switch to {checkpoint.timeline.name} first"
        )


def _hold_writers_off() -> None:
    """Writers of the two tables wait until this transaction ends; readers go on reading."""
    advisory_lock(TIME_TRAVEL_LOCK)
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE base_beings, relationships IN SHARE ROW EXCLUSIVE MODE")


def _as(kind: str, *, actor: User, operation: str, reason: str) -> None:
    """Tag this transaction's writes (restore, switch…) and record who and why, once."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('luxos.chronos_kind', %s, true)", [kind])
    context_apply(actor=actor, operation=operation, reason=reason)


def checkpoint_restore(*, checkpoint: Checkpoint, actor: User, force: bool = False) -> TravelReport:
    """Make the two tables exactly what they were at ``checkpoint`` by undoing the changes made since.

    One transaction: killed at any instant, nothing changed. A safety checkpoint
    ``before-restore-<name>`` is taken first, so the restore can itself be undone.
    """
    chronos_enabled()
    permission_require(actor, "chronos.restore_checkpoint", "restoring a checkpoint")
    with transaction.atomic():
        _hold_writers_off()
        live = live_timeline()
        _on_live(checkpoint, live)
        safety = _safety_checkpoint(prefix=f"before-restore-{checkpoint.name}", timeline=live, actor=actor)
        steps = replay.path_steps(path(Point(live), Point(live, Cut.of(checkpoint))))
        _promotions_guard(steps, force=force, doing="restore")
        _as("restore", actor=actor, operation="checkpoint_restore", reason=f"restore to {checkpoint.name}")
        replay.apply(steps)
    return _report(safety, steps)


def timeline_create(
    *, name: str, from_checkpoint: Checkpoint | None = None, actor: User, description: str = ""
) -> Timeline:
    """A new timeline forked from ``from_checkpoint``, or from now on the live timeline (a fork checkpoint): O(1)."""
    chronos_enabled()
    permission_require(actor, "chronos.add_timeline", "creating a timeline")
    name = timeline_name_clean(name)
    with transaction.atomic():
        return timeline_fork(name=name, from_checkpoint=from_checkpoint, actor=actor, description=description)


def timeline_name_clean(name: Any) -> str:
    """A timeline name that is valid and free, or a 422 or 409 saying why not."""
    name = name_clean(name, "timeline")
    if name.startswith(("timeline:", "checkpoint:")) or "@" in name:
        raise ChronosNameInvalidError("a timeline name cannot start with timeline: or checkpoint:, nor hold @")
    if Timeline.objects.filter(name=name, deleted_at__isnull=True).exists():
        raise TimelineNameTakenError(f"a timeline named {name!r} exists")
    return name


def timeline_fork(
    *, name: str, from_checkpoint: Checkpoint | None = None, actor: User, description: str = ""
) -> Timeline:
    """The Timeline row of ``timeline_create`` (and of an import), inside the caller's transaction.

    Forked from now, the fork checkpoint is taken first: before the transaction writes anything.
    """
    if Timeline.objects.filter(name=name, deleted_at__isnull=True).exists():
        raise TimelineNameTakenError(f"a timeline named {name!r} exists")
    if from_checkpoint is None:
        from_checkpoint = _safety_checkpoint(prefix=f"fork-{name}", timeline=live_timeline(), actor=actor)
        Checkpoint.objects.filter(id=from_checkpoint.id).update(kind=Checkpoint.Kind.FORK)
    return Timeline.objects.create(
        name=name,
        description=str(description or ""),
        parent_id=from_checkpoint.timeline_id,
        fork_id=from_checkpoint.id,
        actor_name=_actor_name(actor),
    )


def timeline_switch(*, name: str | Timeline, actor: User, force: bool = False) -> TravelReport:
    """Make ``name`` the live timeline: undo the live one back to where they part, redo the other from there."""
    chronos_enabled()
    permission_require(actor, "chronos.switch_timeline", "switching timelines")
    with transaction.atomic():
        _hold_writers_off()
        target = name if isinstance(name, Timeline) else timeline_resolve(name)
        live = live_timeline()
        if target.id == live.id:
            raise TimelineProtectedError(f"{live.name} is already live")
        safety = _safety_checkpoint(prefix=f"before-switch-to-{target.name}", timeline=live, actor=actor)
        steps = replay.path_steps(path(Point(live), Point(target)))
        _promotions_guard(steps, force=force, doing="switch")
        _as("switch", actor=actor, operation="timeline_switch", reason=f"switch from {live.name} to {target.name}")
        replay.apply(steps)
        Timeline.objects.filter(live=True).update(live=False)
        Timeline.objects.filter(id=target.id).update(live=True)
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
        Checkpoint.objects.filter(timeline=timeline).delete()


def transactions_of(timeline: Timeline) -> int:
    return Transaction.objects.filter(timeline=timeline).count()
