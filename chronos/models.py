"""Chronos' tables: timelines, checkpoints, and the change log with its context once per transaction.

The log is written only by the capture triggers declared on the two tables it watches
(``chronos.capture.capture_triggers``); the SQL that encodes, undoes and redoes a change lives in
``chronos/migrations/0004_log_rework.py`` and is called by ``chronos.replay``.
"""

from __future__ import annotations

import uuid

import pgtrigger
from django.db import models
from django.db.models import Q

from luxsite.triggers import append_only

NAME_MAX_LENGTH = 100


class Timeline(models.Model):
    """A named line of history; exactly one is live (the two tables hold its head).

    Its state is its parent's state at ``fork`` plus its own changes; ``main`` has no parent.
    """

    id = models.AutoField(primary_key=True)
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    description = models.TextField(blank=True, default="")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    fork = models.ForeignKey(
        "Checkpoint", null=True, blank=True, on_delete=models.PROTECT, related_name="forks", db_constraint=False
    )
    live = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    actor_name = models.CharField(max_length=150, blank=True, default="")
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Retention removed the log before this moment: no point in time before it can be rebuilt.
    history_from = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "chronos_timeline"
        ordering = ["id"]
        permissions = [("switch_timeline", "Can switch the live timeline")]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(deleted_at__isnull=True), name="chronos_timeline_name"
            ),
            models.UniqueConstraint(fields=["live"], condition=Q(live=True), name="chronos_timeline_one_live"),
        ]

    def __str__(self) -> str:
        return self.name


class Checkpoint(models.Model):
    """A consistent mark in the log: the database snapshot at the moment it was taken.

    A change is before the checkpoint when its transaction is visible in ``snapshot``
    (``pg_visible_in_snapshot``); a transaction still open then is wholly after it.
    """

    class Kind(models.TextChoices):
        MANUAL = "manual"
        SAFETY = "safety"
        FORK = "fork"
        IMPORT = "import"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    description = models.TextField(blank=True, default="")
    timeline = models.ForeignKey(Timeline, on_delete=models.PROTECT, related_name="checkpoints")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.MANUAL)
    # pg_snapshot as text ("xmin:xmax:xip,..."): a change is after the checkpoint when its xid is at or
    # above xmax or among the xip, the transactions still running when it was taken.
    snapshot = models.TextField()
    # The log's highest id when it was taken: where "changes since" starts counting.
    position = models.BigIntegerField()
    pinned = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    actor_name = models.CharField(max_length=150, blank=True, default="")
    # Computed off the path (a task), never while the checkpoint is taken.
    stats = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "chronos_checkpoint"
        ordering = ["-created_at"]
        permissions = [("restore_checkpoint", "Can restore a checkpoint")]
        constraints = [
            models.UniqueConstraint(fields=["timeline", "name"], name="chronos_checkpoint_name"),
        ]
        indexes = [models.Index(fields=["timeline", "created_at"], name="chronos_checkpoint_timeline")]

    def __str__(self) -> str:
        return self.name


class Transaction(models.Model):
    """The context of a writing transaction (who, through which door, why), stored once, not in every change.

    One row per transaction and context: a transaction that does the work of several operations
    (``context_apply`` again with another one) has a row for each, in the order they came.
    """

    class Kind(models.TextChoices):
        WRITE = "write"
        RESTORE = "restore"
        SWITCH = "switch"
        MERGE = "merge"
        IMPORT = "import"
        GAP = "gap"  # written while capture was off (ENABLE_CHRONOS false): no restore crosses it

    id = models.BigAutoField(primary_key=True)
    xid = models.BigIntegerField()
    timeline = models.ForeignKey(Timeline, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.WRITE)
    context = models.JSONField(default=dict)
    started_at = models.DateTimeField()
    # Set at commit by a deferred trigger: the order of points in time.
    committed_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "chronos_transaction"
        triggers = [
            pgtrigger.Trigger(
                name="commit_time",
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                timing=pgtrigger.Deferred,
                func="UPDATE chronos_transaction SET committed_at = clock_timestamp() WHERE id = NEW.id; RETURN NULL;",
            )
        ]
        indexes = [
            models.Index(fields=["xid"], name="chronos_transaction_xid"),
            models.Index(fields=["timeline", "committed_at"], name="chronos_transaction_commit"),
            models.Index(fields=["timeline", "xid"], name="chronos_transaction_gap", condition=Q(kind="gap")),
        ]

    def __str__(self) -> str:
        return f"{self.xid} {self.kind} {self.context.get('operation', '')}"


class Change(models.Model):
    """One captured row change; never updated, deleted or truncated (only retention removes it).

    ``data`` is the full row for INSERT and DELETE; for UPDATE the delta ``chronos_delta`` encodes:
    ``{"k": {key: node}}`` for the keys of an object that changed, ``{"a": {"d": [...], "p": [...]}}``
    for an array whose head was dropped and tail appended, ``{"o": old, "n": new}`` otherwise
    (a missing side is an absent key). The same document undoes and redoes the change.
    """

    class Operation(models.TextChoices):
        INSERT = "INSERT"
        UPDATE = "UPDATE"
        DELETE = "DELETE"

    id = models.BigAutoField(primary_key=True)
    xid = models.BigIntegerField()
    transaction = models.ForeignKey(
        Transaction, on_delete=models.DO_NOTHING, db_constraint=False, related_name="changes"
    )
    timeline = models.ForeignKey(Timeline, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    # A switch's writes materialise another timeline: they belong to no timeline's history.
    replay = models.BooleanField(default=False)
    table = models.TextField()
    row_id = models.UUIDField()
    operation = models.TextField(choices=Operation.choices)
    data = models.JSONField()

    class Meta:
        db_table = "chronos_change"
        ordering = ["id"]
        triggers = append_only()
        indexes = [
            models.Index(fields=["table", "row_id", "id"], name="chronos_change_row"),
            models.Index(fields=["xid"], name="chronos_change_xid"),
            models.Index(fields=["timeline", "xid"], name="chronos_change_history", condition=Q(replay=False)),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.operation} {self.table} {self.row_id}"

    @property
    def context(self) -> dict:
        return self.transaction.context
