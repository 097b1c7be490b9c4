"""The ``executions`` table: one row per run of a being's code, nested runs included."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Now

from beings.models.being import BaseBeing


class Execution(models.Model):
    """One run of a being's code in the sandbox: what ran, with what, how it ended, where and how long.

    The hash run is pinned when the run is queued: a later evolution of the being never
    changes what a queued or finished run executes. Nested calls (``execution()`` inside being
    code) are executions of their own, with ``parent``, ``root`` and ``depth``.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        TIMEOUT = "timeout"
        KILLED = "killed"
        REJECTED = "rejected"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.TIMEOUT, Status.KILLED, Status.REJECTED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No database constraint: executions are operational records that outlive a deleted or restored being.
    # Foreign keys carry no index of their own where one in Meta.indexes starts with them: each index is
    # written on every insert and, the status being indexed, on every update of a run.
    being = models.ForeignKey(
        BaseBeing,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_column="soul",
        db_index=False,
        related_name="executions",
    )
    hash = models.CharField(max_length=64)
    alias = models.CharField(max_length=200, blank=True)
    version = models.PositiveIntegerField(default=1)
    environment = models.CharField(max_length=32, blank=True, help_text="Empty for development runs.")
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    result = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True, help_text="{type, message, traceback}")
    output = models.TextField(blank=True)
    output_truncated = models.BooleanField(default=False, help_text="The being printed more than the output limit.")
    layers = models.JSONField(default=dict, help_text="The sandbox layers in force for this run: {name: bool}.")
    calls = models.PositiveSmallIntegerField(default=0, help_text="execution() requests the run made.")
    summons = models.PositiveSmallIntegerField(default=0, help_text="summon() requests the run made.")
    queued_at = models.DateTimeField(db_default=Now(), editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    queue = models.CharField(max_length=8, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    priority = models.SmallIntegerField(default=0, help_text="From the being's energy: higher runs first.")
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="children",
    )
    root = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    depth = models.PositiveSmallIntegerField(default=0)
    limits = models.JSONField(default=dict)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    sent_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When its broker message was last published: the reaper re-sends it past a grace.",
    )
    folded_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the finished run was written into its being (memories, self_awareness, energy).",
    )
    replay_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="replays",
        help_text="The execution this one replays: the same hash, inputs and self snapshot.",
    )

    class Meta:
        db_table = "executions"
        ordering = ["-queued_at", "-id"]
        indexes = [
            models.Index(fields=["status", "queued_at"], name="idx_executions_status_at"),
            models.Index(fields=["being", "queued_at"], name="idx_executions_being_at"),
            models.Index(fields=["actor", "queued_at"], name="idx_executions_actor_at"),
            # Nested runs and replays only: a top-level run writes no entry in these.
            models.Index(fields=["parent"], name="idx_executions_parent", condition=models.Q(parent__isnull=False)),
            models.Index(fields=["root"], name="idx_executions_root", condition=models.Q(root__isnull=False)),
            models.Index(
                fields=["replay_of"], name="idx_executions_replay_of", condition=models.Q(replay_of__isnull=False)
            ),
            # A hash's runs, newest first: the evidence a promotion asks for.
            models.Index(fields=["hash", "finished_at"], name="idx_executions_hash_finished"),
            # The fold's work list: finished runs not yet written into their being.
            models.Index(
                fields=["being", "finished_at"],
                name="idx_executions_unfolded",
                condition=models.Q(folded_at__isnull=True, finished_at__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(hash__regex=r"^[0-9a-f]{64}$"), name="executions_full_hash"),
        ]

    def __str__(self) -> str:
        return f"{self.alias or self.being_id} {self.hash[:12]} {self.status}"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED
