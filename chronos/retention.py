"""Retention: the checkpoints that go, and the log entries no retained checkpoint or timeline can reach any more.

What a timeline needs of the log:

- ``main`` (any timeline without a parent) is its head, reached from anywhere by undoing its changes
  after a cut. Travel needs only the changes after its oldest needed cut: every retained checkpoint on
  it, the fork checkpoints of the timelines forking from it among them. The changes visible in that
  oldest snapshot are the state the live tables (plus the remaining log) already hold, so they go.
  With no checkpoint left on it, nothing travels there; the log of the last
  ``CHRONOS_CHECKPOINT_RETENTION_DAYS`` days (by commit time) is kept anyway for reads by time and for
  history, and everything older goes.
- A timeline with a parent is its parent's state at its fork plus ALL its own changes: a switch to it
  redoes every one of them, so none of its changes can go while it exists.
- A deleted timeline with no timeline left forking from it (or from its descendants) is reachable from
  nowhere: all its changes, transactions and checkpoints go.

Gap rows (capture was off) go with the log around them. Rights of beings and relationships that exist
neither now nor in any retained log entry go too: no restore or switch can bring those rows back.
Deleting runs in batches of ``BATCH`` rows, each its own transaction, holding off restores and switches
(their lock) so none reads a log half collected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pgtrigger
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from beings.models import BeingGroupObjectPermission, BeingUserObjectPermission
from chronos.guards import TIME_TRAVEL_LOCK, chronos_enabled, permission_require
from chronos.models import Checkpoint, Timeline
from chronos.points import Cut
from luxsite.locks import advisory_lock
from luxsite.permissions import User
from luxsite.triggers import append_only_uris
from relations.models import RelationshipGroupObjectPermission, RelationshipUserObjectPermission

BATCH = 10_000
RIGHTS = (
    (BeingUserObjectPermission, "base_beings", "soul"),
    (BeingGroupObjectPermission, "base_beings", "soul"),
    (RelationshipUserObjectPermission, "relationships", "id"),
    (RelationshipGroupObjectPermission, "relationships", "id"),
)


@dataclass
class GcReport:
    """What a collection removed (or, for a dry run, would remove)."""

    dry_run: bool
    # "timeline/name" of each checkpoint removed.
    checkpoints: list[str] = field(default_factory=list)
    # Deleted timelines whose log was freed.
    timelines: list[str] = field(default_factory=list)
    changes: int = 0
    transactions: int = 0
    # Object-permission rows of beings and relationships no point in history holds any more.
    permissions: int = 0
    # pg_column_size of the log rows (changes and transactions) removed.
    bytes_freed: int = 0


@dataclass(frozen=True)
class Horizon:
    """The log of one parentless timeline that nothing needs: what every one of ``cuts`` sees."""

    timeline_id: int
    cuts: list[Cut]
    # Bounds for the indexes: no change seen by a checkpoint was logged after it was taken (its position),
    # and no transaction before a horizon in time has an xid above the last one committed before it.
    max_change_id: int | None = None
    max_xid: int | None = None
    # The moment from which the timeline's past can still be rebuilt, once this log is gone.
    since: datetime | None = None


@dataclass(frozen=True)
class LogScope:
    """The log entries nothing retained needs, as SQL on a row of chronos_change or chronos_transaction."""

    horizons: list[Horizon]
    purged: list[int]

    def where(self, alias: str, *, change: bool) -> tuple[str, list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        for horizon in self.horizons:
            conditions, more = [f"{alias}.timeline_id = %s"], [horizon.timeline_id]
            for cut in horizon.cuts:
                sql, values = cut.visible(alias)
                conditions.append(sql)
                more += values
            if change and horizon.max_change_id is not None:
                conditions.append(f"{alias}.id <= %s")
                more.append(horizon.max_change_id)
            if horizon.max_xid is not None:
                conditions.append(f"{alias}.xid <= %s")
                more.append(horizon.max_xid)
            parts.append("(" + " AND ".join(conditions) + ")")
            params += more
        if self.purged:
            parts.append(f"{alias}.timeline_id = ANY(%s)")
            params.append(self.purged)
        return ("(" + " OR ".join(parts) + ")" if parts else "false"), params

    def transactions(self) -> tuple[str, list[Any]]:
        """A transaction row goes with its changes: in scope, and none of its changes kept."""
        mine, params = self.where("t", change=False)
        theirs, more = self.where("k", change=True)
        return (
            f"{mine} AND NOT EXISTS (SELECT 1 FROM chronos_change k WHERE k.transaction_id = t.id AND NOT {theirs})",
            params + more,
        )


def chronos_gc(
    *, dry_run: bool = False, actor: User | None = None, now: datetime | None = None, batch: int = BATCH
) -> GcReport:
    """Remove the unpinned checkpoints beyond the retention limits and the log entries nothing retained needs.

    A checkpoint goes when more than ``CHRONOS_MAX_CHECKPOINTS_PER_TIMELINE`` newer ones of its timeline
    are subject to retention, or when it is older than ``CHRONOS_CHECKPOINT_RETENTION_DAYS`` (a limit of 0
    or less is off). Pinned checkpoints and the checkpoints a timeline forks from never go and do not
    count against the limit. A restore to any checkpoint that stays is exact afterwards. ``dry_run``
    reports the same figures and removes nothing. The beat runs it as the system (``actor`` None);
    a user needs ``chronos.delete_checkpoint``. ``batch``: rows deleted per transaction.
    """
    chronos_enabled()
    if actor is not None:
        permission_require(actor, "chronos.delete_checkpoint", "collecting chronos' history")
    now = now or timezone.now()
    timelines = list(Timeline.objects.all())
    needed = _timelines_needed(timelines)
    doomed = _checkpoints_doomed(timelines, needed, now)
    report = GcReport(dry_run=dry_run)
    if dry_run:
        report.checkpoints = [f"{checkpoint.timeline.name}/{checkpoint.name}" for checkpoint in doomed]
    else:
        report.checkpoints = _checkpoints_delete(doomed)
    # After the deletion, what is left is what stays (a checkpoint pinned meanwhile included).
    retained = list(Checkpoint.objects.exclude(id__in=[checkpoint.id for checkpoint in doomed] if dry_run else []))
    scope = _scope(timelines, needed, retained, now)
    report.timelines = _timelines_with_log(timelines, scope.purged)
    changes, changes_where = scope.where("c", change=True)
    transactions, transactions_where = scope.transactions()
    report.changes, change_bytes = _remove("chronos_change", "c", changes, changes_where, dry_run=dry_run, batch=batch)
    report.transactions, transaction_bytes = _remove(
        "chronos_transaction", "t", transactions, transactions_where, dry_run=dry_run, batch=batch
    )
    report.bytes_freed = change_bytes + transaction_bytes
    for model, table, key in RIGHTS:
        where, params = _rights_orphaned(scope, table, key)
        removed, _ = _remove(model._meta.db_table, "p", where, params, dry_run=dry_run, batch=batch)
        report.permissions += removed
    if not dry_run:
        _history_from_record(scope)
    return report


def _history_from_record(scope: LogScope) -> None:
    """Reads of a time before the removed log are refused from now on (chronos.points), never rebuilt wrong."""
    for horizon in scope.horizons:
        if horizon.since is None:
            continue
        Timeline.objects.filter(id=horizon.timeline_id).filter(
            Q(history_from__isnull=True) | Q(history_from__lt=horizon.since)
        ).update(history_from=horizon.since)


def _timelines_needed(timelines: list[Timeline]) -> set[int]:
    """The timelines not deleted, and their ancestors: their state is built on them."""
    by_id = {timeline.id: timeline for timeline in timelines}
    needed: set[int] = set()
    for timeline in timelines:
        current: Timeline | None = timeline if timeline.deleted_at is None else None
        while current is not None and current.id not in needed:
            needed.add(current.id)
            current = by_id.get(current.parent_id) if current.parent_id is not None else None
    return needed


def _checkpoints_doomed(timelines: list[Timeline], needed: set[int], now: datetime) -> list[Checkpoint]:
    keep_count = settings.CHRONOS_MAX_CHECKPOINTS_PER_TIMELINE
    days = settings.CHRONOS_CHECKPOINT_RETENTION_DAYS
    oldest = now - timedelta(days=days) if days > 0 else None
    forks = {timeline.fork_id for timeline in timelines if timeline.id in needed and timeline.fork_id}
    doomed: list[Checkpoint] = []
    subject = Checkpoint.objects.select_related("timeline").filter(pinned=False).exclude(id__in=forks)
    ranks: dict[int, int] = {}
    for checkpoint in subject.order_by("timeline_id", "-created_at", "-position"):
        rank = ranks[checkpoint.timeline_id] = ranks.get(checkpoint.timeline_id, 0) + 1
        if (
            checkpoint.timeline_id not in needed
            or (keep_count > 0 and rank > keep_count)
            or (oldest is not None and checkpoint.created_at < oldest)
        ):
            doomed.append(checkpoint)
    return doomed


def _checkpoints_delete(doomed: list[Checkpoint]) -> list[str]:
    """Delete them, unless pinned or forked from meanwhile; deleted timelines forked from them forget it."""
    if not doomed:
        return []
    with transaction.atomic():
        advisory_lock(TIME_TRAVEL_LOCK)
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM chronos_checkpoint k WHERE k.id = ANY(%s) AND NOT k.pinned AND NOT EXISTS "
                "(SELECT 1 FROM chronos_timeline f WHERE f.fork_id = k.id AND f.deleted_at IS NULL) "
                "RETURNING k.id, (SELECT t.name FROM chronos_timeline t WHERE t.id = k.timeline_id) || '/' || k.name",
                [[checkpoint.id for checkpoint in doomed]],
            )
            removed = cursor.fetchall()
        Timeline.objects.filter(fork_id__in=[id for id, _ in removed]).update(fork=None)
    order = {checkpoint.id: n for n, checkpoint in enumerate(doomed)}
    return [label for _, label in sorted(removed, key=lambda row: order[row[0]])]


def _scope(timelines: list[Timeline], needed: set[int], retained: list[Checkpoint], now: datetime) -> LogScope:
    horizons: list[Horizon] = []
    for timeline in timelines:
        if timeline.parent_id is not None or timeline.id not in needed:
            continue
        mine = [checkpoint for checkpoint in retained if checkpoint.timeline_id == timeline.id]
        if mine:
            # Snapshots are taken in the order of their xmax, and a later one sees all an earlier one saw:
            # the oldest are those with the lowest xmax (several with the same one: what all of them see).
            lowest = min(_xmax(checkpoint) for checkpoint in mine)
            oldest = [checkpoint for checkpoint in mine if _xmax(checkpoint) == lowest]
            cuts = [Cut.of(checkpoint) for checkpoint in oldest]
            horizons.append(
                Horizon(
                    timeline.id,
                    cuts,
                    max_change_id=min(c.position for c in oldest),
                    since=min(c.created_at for c in oldest),
                )
            )
            continue
        days = settings.CHRONOS_CHECKPOINT_RETENTION_DAYS
        if days <= 0:
            continue
        since = now - timedelta(days=days)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT max(xid) FROM chronos_transaction WHERE timeline_id = %s AND committed_at <= %s",
                [timeline.id, since],
            )
            last = cursor.fetchone()[0]
        if last is not None:
            horizons.append(Horizon(timeline.id, [Cut(at=since)], max_xid=int(last), since=since))
    purged = [timeline.id for timeline in timelines if timeline.id not in needed]
    return LogScope(horizons=horizons, purged=purged)


def _xmax(checkpoint: Checkpoint) -> int:
    return int(checkpoint.snapshot.split(":")[1])


def _timelines_with_log(timelines: list[Timeline], purged: list[int]) -> list[str]:
    if not purged:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT timeline_id FROM chronos_transaction WHERE timeline_id = ANY(%s) "
            "UNION SELECT DISTINCT timeline_id FROM chronos_change WHERE timeline_id = ANY(%s)",
            [purged, purged],
        )
        having = {row[0] for row in cursor.fetchall()}
    return [timeline.name for timeline in timelines if timeline.id in having]


def _rights_orphaned(scope: LogScope, table: str, key: str) -> tuple[str, list[Any]]:
    """Rights on a row that exists neither now nor in a log entry that stays: no point in history holds it."""
    kept, params = scope.where("k", change=True)
    return (
        f"NOT EXISTS (SELECT 1 FROM {table} r WHERE r.{key} = p.content_object_id) AND NOT EXISTS "
        f"(SELECT 1 FROM chronos_change k WHERE k.\"table\" = '{table}' AND k.row_id = p.content_object_id "
        f"AND NOT {kept})",
        params,
    )


def _remove(table: str, alias: str, where: str, params: list[Any], *, dry_run: bool, batch: int) -> tuple[int, int]:
    """Delete the rows of ``table`` matching ``where`` in batches (or only read them): rows and bytes.

    The one place past the log's append-only triggers. A dry run reads the same batches the same way:
    the size of a whole row depends on how the plan handed it over, by a few bytes.
    """
    doomed = (
        f"WITH doomed AS MATERIALIZED (SELECT {alias}.id, pg_column_size({alias}.*) AS size FROM {table} {alias} "
        f"WHERE {alias}.id > %s AND {where} ORDER BY {alias}.id LIMIT %s) "
    )
    if dry_run:
        doomed += "SELECT doomed.id, doomed.size FROM doomed"
    else:
        doomed += (
            f"DELETE FROM {table} {alias} USING doomed WHERE {alias}.id = doomed.id RETURNING doomed.id, doomed.size"
        )
    removed = size = last = 0
    while True:
        with transaction.atomic(), pgtrigger.ignore(*append_only_uris("chronos.Change")):
            advisory_lock(TIME_TRAVEL_LOCK)
            with connection.cursor() as cursor:
                cursor.execute(doomed, [last, *params, batch])
                rows = cursor.fetchall()
        removed += len(rows)
        size += sum(int(row[1]) for row in rows)
        if len(rows) < batch:
            return removed, size
        last = max(int(row[0]) for row in rows)
