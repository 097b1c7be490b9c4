"""Marks in the log: checkpoints (one INSERT holding the database snapshot, O(1)) and new timelines."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

from chronos.exceptions import (
    CheckpointInUseError,
    CheckpointNameTakenError,
    ChronosNameInvalidError,
    TimelineNameTakenError,
    WriteInProgressError,
)
from chronos.guards import actor_name, chronos_enabled, name_clean, permission_require
from chronos.models import NAME_MAX_LENGTH, Checkpoint, Timeline
from chronos.points import live_timeline, timeline_resolve
from luxsite.permissions import User

# now is a point; import is a route under /api/chronos/timelines/.
RESERVED_TIMELINE_NAMES = frozenset({"now", "import"})


def nothing_written_yet() -> None:
    """A checkpoint's snapshot must be taken before its transaction writes: it would count its own writes."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id_if_assigned()")
        if cursor.fetchone()[0] is not None:
            raise WriteInProgressError("a checkpoint is taken outside a transaction that has already written")


def checkpoint_insert(
    *, name: str, description: str, timeline: Timeline, actor: User | None, kind: str, pinned: bool = False
) -> Checkpoint:
    """One INSERT that takes the snapshot: O(1), whatever the size of the tables or the log."""
    nothing_written_yet()
    if Checkpoint.objects.filter(timeline=timeline, name=name).exists():
        raise CheckpointNameTakenError(f"{timeline.name} already has a checkpoint named {name!r}")
    checkpoint = Checkpoint(
        name=name, description=description, timeline=timeline, kind=kind, actor_name=actor_name(actor), pinned=pinned
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO chronos_checkpoint (id, name, description, timeline_id, kind, snapshot, "
            "position, pinned, created_at, actor_name, stats) "
            "SELECT %s, %s, %s, %s, %s, s::text, "
            "(SELECT last_value FROM chronos_change_id_seq), %s, now(), %s, '{}' "
            "FROM pg_current_snapshot() AS s ON CONFLICT (timeline_id, name) DO NOTHING "
            "RETURNING snapshot, position, created_at",
            [checkpoint.id, name, description, timeline.id, kind, pinned, checkpoint.actor_name],
        )
        row = cursor.fetchone()
    if row is None:
        raise CheckpointNameTakenError(f"{timeline.name} already has a checkpoint named {name!r}")
    checkpoint.snapshot, checkpoint.position, checkpoint.created_at = row
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
        return checkpoint_insert(
            name=name, description=str(description or ""), timeline=timeline or live_timeline(), actor=actor, kind=kind
        )


def safety_checkpoint(*, prefix: str, timeline: Timeline, actor: User) -> Checkpoint:
    """``prefix``, or ``prefix-2``, ``prefix-3``…: the first name free on the timeline."""
    base = prefix[:NAME_MAX_LENGTH]
    taken = set(Checkpoint.objects.filter(timeline=timeline, name__startswith=base).values_list("name", flat=True))
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base[: NAME_MAX_LENGTH - len(str(n)) - 1]}-{n}"
    return checkpoint_insert(
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
    checkpoints_forget(Checkpoint.objects.filter(id=checkpoint.id))


def checkpoints_forget(checkpoints: Any) -> None:
    """Delete checkpoints; deleted timelines that forked from one of them keep no fork (their log is going)."""
    Timeline.objects.filter(fork__in=checkpoints, deleted_at__isnull=False).update(fork=None)
    checkpoints.delete()


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
    if name.startswith(("timeline:", "checkpoint:")) or "@" in name or "/" in name:
        raise ChronosNameInvalidError("a timeline name cannot start with timeline: or checkpoint:, nor hold @ or /")
    if name in RESERVED_TIMELINE_NAMES:
        raise ChronosNameInvalidError(f"{name!r} is a word of chronos' own (points and routes): choose another name")
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
        from_checkpoint = safety_checkpoint(prefix=f"fork-{name}", timeline=live_timeline(), actor=actor)
        Checkpoint.objects.filter(id=from_checkpoint.id).update(kind=Checkpoint.Kind.FORK)
    return Timeline.objects.create(
        name=name,
        description=str(description or ""),
        parent_id=from_checkpoint.timeline_id,
        fork_id=from_checkpoint.id,
        actor_name=actor_name(actor),
    )
