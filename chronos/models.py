"""Chronos' tables: timelines, checkpoints, and the change log with its context once per transaction.

The log is written only by the capture triggers declared on the two tables it watches
(``chronos.capture.capture_triggers``); the SQL that encodes, undoes and redoes a change lives in
``chronos/migrations/0004_log_rework.py`` and is called by ``chronos.replay``.
"""

from __future__ import annotations

import uuid

import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from chronos.lessons.expressions import lesson_trigrams, lesson_vector
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


class Lesson(models.Model):
    """What LuxOS learned from an operation: the seed's lesson, linked to what it concerns.

    Operational records, outside the captured tables: no restore or switch removes them. A lesson
    recorded automatically is deduplicated by (operation, being, hash, error class): a repeat raises
    ``count`` and ``last_seen_at`` instead of adding a row. ``resolved_at`` closes it.
    """

    class Operation(models.TextChoices):
        MANUAL = "manual"
        EXECUTION = "execution"
        EVOLUTION = "evolution"
        VALIDATION = "validation"
        RESTORE = "restore"
        SWITCH = "switch"
        MERGE = "merge"
        DREAM = "dream"
        IMPORT = "import"

    id = models.BigAutoField(primary_key=True)
    operation = models.CharField(max_length=16, choices=Operation.choices, default=Operation.MANUAL)
    situation = models.TextField()
    action = models.TextField(blank=True, default="")
    result = models.TextField(blank=True, default="")
    feedback = models.TextField(blank=True, default="")
    tags = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    error_class = models.CharField(max_length=200, blank=True, default="")
    # No database constraints: a lesson outlives the being, run, checkpoint or timeline it concerns.
    being = models.ForeignKey(
        "beings.BaseBeing", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    hash = models.CharField(max_length=64, blank=True, default="")
    checkpoint = models.ForeignKey(
        Checkpoint, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    execution = models.ForeignKey(
        "beings.Execution", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    timeline = models.ForeignKey(
        Timeline, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    count = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Computed by PostgreSQL on every write, so a search reads them instead of computing them per row.
    search_vector = models.GeneratedField(expression=lesson_vector(), output_field=SearchVectorField(), db_persist=True)
    search_trigrams = models.GeneratedField(
        expression=lesson_trigrams(), output_field=ArrayField(models.TextField()), db_persist=True
    )

    class Meta:
        db_table = "chronos_lesson"
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            # The arbiter of failure_record's INSERT … ON CONFLICT: one open lesson per kind of failure.
            models.UniqueConstraint(
                fields=["operation", "being", "hash", "error_class"],
                condition=Q(resolved_at__isnull=True) & ~Q(error_class=""),
                nulls_distinct=False,
                name="chronos_lesson_failure_once",
            ),
        ]
        indexes = [
            models.Index(fields=["being", "last_seen_at"], name="chronos_lesson_being"),
            models.Index(fields=["hash"], name="chronos_lesson_hash"),
            models.Index(fields=["last_seen_at"], name="chronos_lesson_seen"),
            GinIndex(fields=["tags"], name="chronos_lesson_tags"),
            GinIndex(fields=["search_vector"], name="chronos_lesson_search"),
            GinIndex(fields=["search_trigrams"], name="chronos_lesson_trigrams"),
        ]

    def __str__(self) -> str:
        return self.situation[:80]


class Merge(models.Model):
    """A three-way merge of one timeline into another against their fork point, previewed then applied.

    Its conflicts are ``MergeConflict`` rows, resolved one by one; it applies when none is left open.
    """

    class Strategy(models.TextChoices):
        FIELD = "field"
        ROW = "row"
        OURS = "ours"
        THEIRS = "theirs"

    class Status(models.TextChoices):
        OPEN = "open"  # previewed; conflicts may be waiting for a resolution
        APPLIED = "applied"
        FAILED = "failed"
        ABANDONED = "abandoned"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.ForeignKey(Timeline, on_delete=models.PROTECT, related_name="merges_out")
    into = models.ForeignKey(Timeline, on_delete=models.PROTECT, related_name="merges_in")
    strategy = models.CharField(max_length=8, choices=Strategy.choices, default=Strategy.FIELD)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    # The fork point both sides are compared against, and the safety checkpoint taken before applying.
    base = models.ForeignKey(Checkpoint, null=True, on_delete=models.SET_NULL, related_name="+")
    safety = models.ForeignKey(Checkpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    stats = models.JSONField(default=dict, blank=True)
    actor_name = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "chronos_merge"
        ordering = ["-created_at"]
        permissions = [("merge_timeline", "Can merge one timeline into another")]

    def __str__(self) -> str:
        return f"{self.source} into {self.into}"


class MergeConflict(models.Model):
    """One value changed two ways (or, with ``row``, one row changed on both sides), and its resolution."""

    class Resolution(models.TextChoices):
        OURS = "ours"
        THEIRS = "theirs"
        VALUE = "value"

    id = models.BigAutoField(primary_key=True)
    merge = models.ForeignKey(Merge, on_delete=models.CASCADE, related_name="conflicts")
    table = models.TextField()
    row_id = models.UUIDField()
    # The JSON path inside the row: [] for the whole row, ["attributes", "x"] for one key.
    path = models.JSONField(default=list)
    base = models.JSONField(null=True)
    ours = models.JSONField(null=True)
    theirs = models.JSONField(null=True)
    resolution = models.CharField(max_length=8, choices=Resolution.choices, blank=True, default="")
    value = models.JSONField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        db_table = "chronos_merge_conflict"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.table} {self.row_id} {'.'.join(map(str, self.path))}"


class Dream(models.Model):
    """A plan run in isolation on a timeline of its own (``dream_<id>``), forked from the live state."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        KEPT = "kept"  # success rate above the threshold: offered for merge
        MERGED = "merged"
        DISCARDED = "discarded"  # below the threshold: history with a lesson
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    plan = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    timeline = models.ForeignKey(Timeline, null=True, blank=True, on_delete=models.PROTECT, related_name="dreams")
    fork = models.ForeignKey(Checkpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # One entry per step: {step, kind, target, ok, expected, status, result, error, soul, hash, duration_ms}.
    results = models.JSONField(default=list, blank=True)
    success_rate = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")
    # The dream's own bound, at most CHRONOS_DREAM_SECONDS; it fails past it and leaves nothing live.
    seconds = models.PositiveIntegerField(default=60)
    # Scheduled for later (idle hours): beat starts it once this time has come.
    not_before = models.DateTimeField(null=True, blank=True)
    # The merge it was offered for (a preview) or merged by.
    merge = models.ForeignKey(Merge, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "chronos_dream"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "not_before"], name="chronos_dream_due")]

    def __str__(self) -> str:
        return self.name
