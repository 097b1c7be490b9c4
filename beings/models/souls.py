"""The soul registry's tables: promotions (append-only), validations, and report files that failed."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Now

from luxsite.triggers import append_only


class PromotionQuerySet(models.QuerySet["Promotion"]):
    def active(self) -> PromotionQuerySet:
        """Promotions not yet ended by a demotion or a later promotion of the same alias."""
        return self.filter(action=Promotion.Action.PROMOTE, ended_by__isnull=True)


class Promotion(models.Model):
    """One event in an environment's history: a hash promoted (perhaps superseding another) or demoted.

    Rows are never updated, deleted or truncated (``Meta.triggers``). A promotion stays
    active until a later event names it in ``ends``: a demotion, or the promotion of another
    hash of the same alias (a supersession). ``ends`` is unique, so an event ends at most once.
    Each row keeps an immutable copy of the genotype, so production can run, and validate, a
    pinned hash whatever happens to the being later.
    """

    class Action(models.TextChoices):
        PROMOTE = "promote"
        DEMOTE = "demote"

    environment = models.CharField(max_length=32)
    action = models.CharField(max_length=8, choices=Action.choices)
    hash = models.CharField(max_length=64)
    alias = models.CharField(max_length=200)
    soul = models.UUIDField()
    version = models.PositiveIntegerField()
    genotype = models.JSONField()
    ends = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ended_by",
        help_text="The active promotion this event ends: superseded by a promotion, or demoted.",
    )
    # No database constraint: deleting a user must not touch (update) the history.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    note = models.TextField(blank=True)
    override_reason = models.TextField(
        blank=True,
        default="",
        help_text="Why the promoter went ahead without the evidence the environment asks for; empty when it was met.",
    )
    evidence = models.JSONField(
        null=True,
        blank=True,
        help_text="The evidence weighed at the promotion: {met, missing, figures, rules}; null where none is asked.",
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    objects = PromotionQuerySet.as_manager()

    class Meta:
        db_table = "soul_promotions"
        ordering = ["-created_at", "-id"]
        triggers = append_only()
        indexes = [
            models.Index(fields=["environment", "alias", "created_at"], name="idx_promotions_env_alias_at"),
            models.Index(fields=["environment", "hash"], name="idx_promotions_env_hash"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(hash__regex=r"^[0-9a-f]{64}$"), name="soul_promotions_full_hash"),
            models.CheckConstraint(
                condition=models.Q(action="promote") | models.Q(action="demote", ends__isnull=False),
                name="soul_promotions_demote_ends_a_promotion",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.alias} {self.hash[:12]} in {self.environment}"


class SoulValidation(models.Model):
    """The outcome of validating an environment: every active promotion's hash recomputed."""

    environment = models.CharField(max_length=32)
    checked_at = models.DateTimeField(db_default=Now(), editable=False)
    ok = models.BooleanField()
    checked = models.PositiveIntegerField()
    problems = models.JSONField(default=list, help_text="[{hash, alias, reason}] for every mismatch.")
    door = models.CharField(max_length=16, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)

    class Meta:
        db_table = "soul_validations"
        ordering = ["-checked_at", "-id"]
        indexes = [models.Index(fields=["environment", "checked_at"], name="idx_validations_env_at")]

    def __str__(self) -> str:
        return f"{self.environment} {'ok' if self.ok else 'FAILED'} at {self.checked_at:%Y-%m-%d %H:%M}"


class SoulReportFailure(models.Model):
    """A creation report or export file that could not be written: the database operation went on."""

    created_at = models.DateTimeField(db_default=Now(), editable=False)
    operation = models.CharField(max_length=32)
    hash = models.CharField(max_length=64, blank=True)
    path = models.TextField(blank=True)
    error = models.TextField()

    class Meta:
        db_table = "soul_report_failures"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.operation} {self.hash[:12]}: {self.error[:60]}"


class ClockTimestamp(models.Func):
    """``clock_timestamp()``: when the row is written, not when its transaction began (``now()``).

    Events are written under an advisory lock; a transaction that waited for it must not stamp
    its event earlier than the event it ends, or point-in-time reads would see them in the wrong order.
    """

    template = "clock_timestamp()"
    output_field = models.DateTimeField()
