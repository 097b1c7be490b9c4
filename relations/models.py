"""The ``relationships`` table of seed 001 and its object permissions."""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models.functions import Now
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from beings.models import BaseBeing, empty_text_array
from chronos.capture import capture_triggers


class RelationshipQuerySet(models.QuerySet["Relationship"]):
    def tagged(self, *tags: str) -> RelationshipQuerySet:
        return self.filter(tags__contains=list(tags))

    def touching(self, soul: uuid.UUID) -> RelationshipQuerySet:
        """Relationships in or out of one being."""
        return self.filter(models.Q(source_id=soul) | models.Q(target_id=soul))


class Relationship(models.Model):
    """A directed link from one being's soul to another's."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tags = ArrayField(models.TextField(), default=list, db_default=empty_text_array(), null=True, blank=True)
    energy_level = models.IntegerField(default=0, db_default=0, null=True)
    # Seed 001 declares plain foreign keys (NO ACTION): a being with links
    # cannot be deleted until its links are.
    source = models.ForeignKey(
        BaseBeing, on_delete=models.PROTECT, db_column="source_soul", db_index=False, related_name="outgoing"
    )
    target = models.ForeignKey(
        BaseBeing, on_delete=models.PROTECT, db_column="target_soul", db_index=False, related_name="incoming"
    )
    genesis = models.JSONField()
    attributes = models.JSONField(default=dict)
    created_at = models.DateTimeField(db_default=Now(), null=True, editable=False)

    objects = RelationshipQuerySet.as_manager()

    class Meta:
        db_table = "relationships"
        ordering = ["-created_at", "id"]
        indexes = [
            # jsonb_path_ops: containment (@>) is the only query on these documents.
            GinIndex(fields=["genesis"], name="idx_relationships_genesis", opclasses=["jsonb_path_ops"]),
            GinIndex(fields=["attributes"], name="idx_relationships_attributes", opclasses=["jsonb_path_ops"]),
            models.Index(fields=["source"], name="idx_relationships_source"),
            models.Index(fields=["target"], name="idx_relationships_target"),
            models.Index(fields=["energy_level"], name="idx_relationships_energy_level"),
            GinIndex(fields=["tags"], name="idx_rel_tags"),
        ]
        # Every change goes into the chronos log; TRUNCATE and a changed id are refused.
        triggers = capture_triggers("id")

    def __str__(self) -> str:
        return f"{self.source_id} → {self.target_id} {self.tags or []}"


class RelationshipUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Relationship, on_delete=models.CASCADE, db_constraint=False)


class RelationshipGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Relationship, on_delete=models.CASCADE, db_constraint=False)
