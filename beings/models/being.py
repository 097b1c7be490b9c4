"""The ``base_beings`` table of seed 001, its kinds as proxy models, and its object permissions."""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models.functions import Now
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from beings import kinds
from chronos.capture import capture_triggers


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
            ("promote_soul_override", "Can promote a soul without the evidence its environment asks for"),
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
        # Every change goes into the chronos log; TRUNCATE and a changed soul are refused.
        triggers = capture_triggers("soul")

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


# Direct-foreign-key object permissions (guardian's fast path: a join on the
# uuid instead of a generic varchar object_pk). No database constraint, so a
# chronos restore may remove and bring back a being without touching its
# permissions; deleting through the ORM still removes them.
class BeingUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(BaseBeing, on_delete=models.CASCADE, db_constraint=False)


class BeingGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(BaseBeing, on_delete=models.CASCADE, db_constraint=False)
