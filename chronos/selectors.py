"""Reading history: rows at a point, a row's history, checkpoints and timelines, and what the log weighs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from beings.exceptions import BeingNotFoundError
from beings.models import BaseBeing
from chronos import replay
from chronos.models import Change, Checkpoint, Timeline
from chronos.points import Cut, Point, live_timeline, path
from luxsite.permissions import User, may
from relations.exceptions import RelationshipNotFoundError
from relations.models import Relationship


def timeline_list(*, include_deleted: bool = False) -> QuerySet[Timeline]:
    timelines = Timeline.objects.select_related("parent", "fork").order_by("id")
    return timelines if include_deleted else timelines.filter(deleted_at__isnull=True)


def checkpoint_list(*, timeline: Timeline | None = None) -> QuerySet[Checkpoint]:
    checkpoints = Checkpoint.objects.select_related("timeline").order_by("-created_at")
    return checkpoints if timeline is None else checkpoints.filter(timeline=timeline)


def row_at(*, table: str, row_id: uuid.UUID, point: Point) -> dict[str, Any] | None:
    """One row as it was at ``point`` (None: it did not exist): its live image and its own changes since."""
    key = (table, row_id)
    steps = replay.path_steps(path(Point(live_timeline()), point), rows=[key])
    return replay.rows_fold(replay.live_images([key]), steps)[key]


def being_at(*, soul: uuid.UUID, point: Point, user: User) -> dict[str, Any]:
    """A being at a point, for a user who may view it (rights outlive the row, so they hold for its past)."""
    if not may(user=user, action="view", obj=BaseBeing(soul=soul)):
        raise BeingNotFoundError(f"no being has soul {soul}")
    image = row_at(table="base_beings", row_id=soul, point=point)
    if image is None:
        raise BeingNotFoundError(f"being {soul} did not exist at {point}")
    return image


def relationship_at(*, relationship_id: uuid.UUID, point: Point, user: User) -> dict[str, Any]:
    if not may(user=user, action="view", obj=Relationship(id=relationship_id)):
        raise RelationshipNotFoundError(f"no relationship has id {relationship_id}")
    image = row_at(table="relationships", row_id=relationship_id, point=point)
    if image is None:
        raise RelationshipNotFoundError(f"relationship {relationship_id} did not exist at {point}")
    return image


def alias_at(*, alias: str, point: Point, user: User) -> list[dict[str, Any]]:
    """The beings that held ``alias`` (their genesis name) at ``point`` and that ``user`` may view.

    The candidates are the beings holding it now and the rows changed between now and the point:
    O(changes), not a scan of the table's past.
    """
    now = Point(live_timeline())
    steps = replay.path_steps(path(now, point))
    touched = {(step.table, step.row_id) for step in steps if step.table == "base_beings"}
    holding_now = BaseBeing.objects.named(alias).values_list("soul", flat=True)
    keys = sorted(touched | {("base_beings", soul) for soul in holding_now}, key=lambda key: str(key[1]))
    images = replay.rows_fold(replay.live_images(keys), [step for step in steps if (step.table, step.row_id) in keys])
    return [
        image
        for (_, soul), image in images.items()
        if image is not None
        and image.get("genesis", {}).get("name") == alias
        and may(user=user, action="view", obj=BaseBeing(soul=soul))
    ]


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    operation: str
    timeline: str
    kind: str
    context: dict[str, Any]
    committed_at: datetime | None
    data: Any


def row_history(*, table: str, row_id: uuid.UUID, limit: int = 100, before: int | None = None) -> list[HistoryEntry]:
    """Every change of one row, newest first: who, through which door, why, when, on which timeline."""
    changes = (
        Change.objects.filter(table=table, row_id=row_id).select_related("transaction", "timeline").order_by("-id")
    )
    if before is not None:
        changes = changes.filter(id__lt=before)
    return [
        HistoryEntry(
            id=change.id,
            operation=change.operation,
            timeline=change.timeline.name,
            kind="replay" if change.replay else change.transaction.kind,
            context=change.transaction.context,
            committed_at=change.transaction.committed_at,
            data=change.data,
        )
        for change in changes[:limit]
    ]


def being_history(*, soul: uuid.UUID, user: User, limit: int = 100, before: int | None = None) -> list[HistoryEntry]:
    if not may(user=user, action="view", obj=BaseBeing(soul=soul)):
        raise BeingNotFoundError(f"no being has soul {soul}")
    return row_history(table="base_beings", row_id=soul, limit=limit, before=before)


@dataclass(frozen=True)
class CheckpointStats:
    changes_since: int
    bytes_since: int


def checkpoint_stats(checkpoint: Checkpoint) -> CheckpointStats:
    """The changes on the checkpoint's timeline since it was taken, and their size: O(those changes)."""
    after, params = Cut.of(checkpoint).after("c", checkpoint.timeline_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(sum(pg_column_size(c.*)), 0) FROM chronos_change c "
            f"WHERE c.timeline_id = %s AND NOT c.replay AND {after}",
            [checkpoint.timeline_id, *params],
        )
        count, size = cursor.fetchone()
    return CheckpointStats(changes_since=int(count), bytes_since=int(size))


def chronos_stats() -> dict[str, Any]:
    """The log's size on disk, changes per timeline, checkpoints, and the bytes of exported archives."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_total_relation_size('chronos_change'), pg_total_relation_size('chronos_transaction'), "
            "(SELECT count(*) FROM chronos_checkpoint), (SELECT count(*) FROM chronos_checkpoint WHERE pinned)"
        )
        log_bytes, context_bytes, checkpoints, pinned = cursor.fetchone()
        cursor.execute(
            "SELECT t.name, t.live, "
            "(SELECT count(*) FROM chronos_change c WHERE c.timeline_id = t.id AND NOT c.replay) "
            "FROM chronos_timeline t WHERE t.deleted_at IS NULL ORDER BY t.id"
        )
        timelines = [{"name": name, "live": live, "changes": count} for name, live, count in cursor.fetchall()]
    directory = settings.CHRONOS_TIMELINES_DIR
    # Exports are under exports/, uploads waiting for their import under imports/.
    archives = [path for path in directory.rglob("*.tar*") if path.is_file()] if directory.is_dir() else []
    return {
        "log_bytes": int(log_bytes),
        "context_bytes": int(context_bytes),
        "checkpoints": int(checkpoints),
        "pinned": int(pinned),
        "timelines": timelines,
        "archives": len(archives),
        "archive_bytes": sum(archive.stat().st_size for archive in archives),
    }
