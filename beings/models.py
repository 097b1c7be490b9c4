"""The ``base_beings`` table of seed 001, its kinds as proxy models, and its object permissions."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models.functions import Now
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from beings import kinds


def empty_text_array() -> models.Value:
    """The column default ``'{}'::text[]`` of seed 001."""
    return models.Value([], output_field=ArrayField(models.TextField()))


class HashKeys(models.Func):
    """``luxos_hash_keys(genesis)``: the 12-character prefixes of every hash in a lineage."""

    function = "luxos_hash_keys"
    output_field = ArrayField(models.TextField())


class HashMatches(models.Func):
    """``luxos_hash_matches(genesis)``: genesis.hash is present and is the hash of the genotype."""

    function = "luxos_hash_matches"
    output_field = models.BooleanField()
    conditional = True


class BeingQuerySet(models.QuerySet["BaseBeing"]):
    # Filters go through jsonb containment so that the GIN index answers them.
    def of_kind(self, kind: str) -> BeingQuerySet:
        return self.filter(genesis__contains={"type": kind})

    def named(self, name: str) -> BeingQuerySet:
        return self.filter(genesis__contains={"name": name})

    def holding_hash(self, prefix: str) -> BeingQuerySet:
        """Beings with a version (current or ancestor) whose hash starts with the first 12 characters of ``prefix``."""
        return self.alias(hash_keys=HashKeys("genesis")).filter(hash_keys__contains=[prefix[:12]])  # type: ignore[misc]

    def tagged(self, *tags: str) -> BeingQuerySet:
        """Beings that carry every one of ``tags``."""
        return self.filter(tags__contains=list(tags))

    def tagged_any(self, *tags: str) -> BeingQuerySet:
        """Beings that carry at least one of ``tags``."""
        return self.filter(tags__overlap=list(tags))


class BeingManager(models.Manager.from_queryset(BeingQuerySet)):  # type: ignore[misc]
    """The default manager; on a kind's proxy model it sees only beings of that kind."""

    def get_queryset(self) -> BeingQuerySet:
        queryset: BeingQuerySet = super().get_queryset()
        kind = getattr(self.model, "KIND", None)
        return queryset.of_kind(kind) if kind else queryset


class BaseBeing(models.Model):
    """One being: a unit of code or data with its genesis, state, memories and self-awareness.

    Nullability and defaults follow seed 001 column by column: ``tags``,
    ``energy_level`` and ``created_at`` have database defaults and may be
    NULL there; the services always write them.
    """

    soul = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tags = ArrayField(models.TextField(), default=list, db_default=empty_text_array(), null=True, blank=True)
    energy_level = models.IntegerField(default=0, db_default=0, null=True)
    genesis = models.JSONField()
    attributes = models.JSONField(default=dict)
    memories = models.JSONField(default=list)
    self_awareness = models.JSONField(default=dict)
    created_at = models.DateTimeField(db_default=Now(), null=True, editable=False)

    objects = BeingManager()

    class Meta:
        db_table = "base_beings"
        verbose_name = "being"
        ordering = ["-created_at", "soul"]
        permissions = [
            ("execute_being", "Can execute the being's code"),
            ("promote_soul", "Can promote a soul (hash) to an environment"),
        ]
        indexes = [
            # jsonb_path_ops: every filter on these documents is containment (@>),
            # which this operator class answers with a smaller, faster index than
            # the default jsonb_ops (which would also serve key-exists ? queries we
            # never issue).
            GinIndex(fields=["genesis"], name="idx_base_beings_genesis", opclasses=["jsonb_path_ops"]),
            GinIndex(fields=["attributes"], name="idx_base_beings_attributes", opclasses=["jsonb_path_ops"]),
            GinIndex(fields=["memories"], name="idx_base_beings_memories", opclasses=["jsonb_path_ops"]),
            GinIndex(fields=["self_awareness"], name="idx_base_beings_self_awareness", opclasses=["jsonb_path_ops"]),
            models.Index(fields=["energy_level"], name="idx_base_beings_energy_level"),
            GinIndex(fields=["tags"], name="idx_being_tags"),
            # Not in the seed: keyset pagination in the default order needs it.
            models.Index(fields=["created_at", "soul"], name="idx_base_beings_created_soul"),
            # Not in the seed: lookup by hash or hash prefix, current version or ancestor. The
            # function (migration 0003) lists the first 12 characters of every hash in the lineage.
            GinIndex(HashKeys("genesis"), name="idx_base_beings_hash_keys"),
        ]
        constraints = [
            # The database recomputes the soul hash (migration 0003): genesis.hash can never
            # disagree with the genotype, whoever writes the row.
            models.CheckConstraint(condition=HashMatches("genesis"), name="base_beings_hash_matches_genotype"),
        ]

    def __str__(self) -> str:
        return f"{self.name or '(unnamed)'} [{self.kind}] {self.soul}"

    @property
    def name(self) -> str:
        return str(self.genesis.get("name", "")) if isinstance(self.genesis, dict) else ""

    @property
    def kind(self) -> str:
        return str(self.genesis.get("type", "")) if isinstance(self.genesis, dict) else ""

    @property
    def is_core(self) -> bool:
        return self.soul in kinds.CORE_SOULS

    @property
    def hash(self) -> str:
        return str(self.genesis.get("hash", "")) if isinstance(self.genesis, dict) else ""

    @property
    def version(self) -> int:
        return int(self.genesis.get("version", 1)) if isinstance(self.genesis, dict) else 1


class FunctionBeing(BaseBeing):
    KIND = kinds.FUNCTION

    class Meta:
        proxy = True


class ClassBeing(BaseBeing):
    KIND = kinds.CLASS

    class Meta:
        proxy = True


class KernelBeing(BaseBeing):
    KIND = kinds.KERNEL

    class Meta:
        proxy = True


class RuntimeBeing(BaseBeing):
    KIND = kinds.RUNTIME

    class Meta:
        proxy = True


class DataBeing(BaseBeing):
    KIND = kinds.DATA

    class Meta:
        proxy = True


class FactoryBeing(BaseBeing):
    KIND = kinds.FACTORY

    class Meta:
        proxy = True


class QueueBeing(BaseBeing):
    KIND = kinds.QUEUE

    class Meta:
        proxy = True


PROXY_BY_KIND: dict[str, type[BaseBeing]] = {
    kinds.FUNCTION: FunctionBeing,
    kinds.CLASS: ClassBeing,
    kinds.KERNEL: KernelBeing,
    kinds.RUNTIME: RuntimeBeing,
    kinds.DATA: DataBeing,
    kinds.FACTORY: FactoryBeing,
    kinds.QUEUE: QueueBeing,
}


# Direct-foreign-key object permissions (guardian's fast path: a join on the
# uuid instead of a generic varchar object_pk). No database constraint, so a
# chronos restore may remove and bring back a being without touching its
# permissions; deleting through the ORM still removes them.
class BeingUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(BaseBeing, on_delete=models.CASCADE, db_constraint=False)


class BeingGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(BaseBeing, on_delete=models.CASCADE, db_constraint=False)


class PromotionQuerySet(models.QuerySet["Promotion"]):
    def active(self) -> PromotionQuerySet:
        """Promotions not yet ended by a demotion or a later promotion of the same alias."""
        return self.filter(action=Promotion.Action.PROMOTE, ended_by__isnull=True)


class Promotion(models.Model):
    """One event in an environment's history: a hash promoted (perhaps superseding another) or demoted.

    Rows are never updated or deleted (a trigger refuses it, migration 0003). A promotion stays
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
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="ended_by",
        help_text="The active promotion this event ends: superseded by a promotion, or demoted.",
    )
    # No database constraint: deleting a user must not touch (update) the history.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    objects = PromotionQuerySet.as_manager()

    class Meta:
        db_table = "soul_promotions"
        ordering = ["-created_at", "-id"]
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
    being = models.ForeignKey(
        BaseBeing, on_delete=models.DO_NOTHING, db_constraint=False, db_column="soul", related_name="executions"
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
        "self", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="children"
    )
    root = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    depth = models.PositiveSmallIntegerField(default=0)
    limits = models.JSONField(default=dict)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True)

    class Meta:
        db_table = "executions"
        ordering = ["-queued_at", "-id"]
        indexes = [
            models.Index(fields=["status", "queued_at"], name="idx_executions_status_at"),
            models.Index(fields=["being", "queued_at"], name="idx_executions_being_at"),
            models.Index(fields=["actor", "queued_at"], name="idx_executions_actor_at"),
            models.Index(fields=["parent"], name="idx_executions_parent"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(hash__regex=r"^[0-9a-f]{64}$"), name="executions_full_hash"),
        ]

    def __str__(self) -> str:
        return f"{self.alias or self.being_id} {self.hash[:12]} {self.status}"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED
