"""Every write to relationships: link, update, unlink."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection, transaction

from beings import validation
from beings.models import BaseBeing
from beings.selectors import being_get
from chronos.context import context_apply
from chronos.risk.services import safety_guard
from luxsite.errors import PermissionDenied
from luxsite.permissions import User, may, owner_grant, require
from relations.exceptions import RelationshipInvalidError, SelfLinkError
from relations.models import Relationship
from relations.selectors import relationship_missing

EDITABLE = ("tags", "energy_level", "genesis", "attributes")
MUTATION = "mutation"


def relationship_clean(data: dict[str, Any]) -> dict[str, Any]:
    """Validate the editable fields of a relationship."""
    unknown = set(data) - set(EDITABLE)
    if unknown:
        raise RelationshipInvalidError(f"unknown fields: {', '.join(sorted(unknown))}")
    cleaned: dict[str, Any] = {}
    if "tags" in data:
        cleaned["tags"] = validation.tags_clean(data["tags"])
    if "energy_level" in data:
        cleaned["energy_level"] = validation.energy_clean(data["energy_level"])
    for field in ("genesis", "attributes"):
        if field in data:
            cleaned[field] = validation.object_clean(field, data[field])
    return cleaned


@transaction.atomic
def relationship_link(
    *, source: BaseBeing, target: BaseBeing, actor: User | None, data: dict[str, Any] | None = None
) -> Relationship:
    """Link two beings; a being may not link to itself. The creator gets view/change/delete on the link."""
    if source.pk == target.pk:
        raise SelfLinkError(f"a being may not link to itself ({source.pk})")
    fields = {"tags": [], "energy_level": 0, "genesis": {}, "attributes": {}, **relationship_clean(data or {})}
    context_apply(actor=actor, operation="relationship_link")
    relationship = Relationship.objects.create(source=source, target=target, **fields)
    owner_grant(model=Relationship, pks=[relationship.pk], user=actor)
    return relationship


def relationship_link_souls(
    *, source_soul: uuid.UUID, target_soul: uuid.UUID, actor: User, data: dict[str, Any] | None = None
) -> Relationship:
    """Link by souls: the actor must be able to change the source and view the target."""
    source = being_get(soul=source_soul, user=actor)
    target = being_get(soul=target_soul, user=actor)
    require(user=actor, action="change", obj=source)
    _lineage_link_check(source=source, target=target, data=data or {}, actor=actor)
    return relationship_link(source=source, target=target, actor=actor, data=data)


def _lineage_link_check(*, source: BaseBeing, target: BaseBeing, data: dict[str, Any], actor: User) -> None:
    """A ``mutation`` link says the target descends from the source: only whoever may change both may say it.

    The evolve service links a mutant to its parent itself; through the doors, a user could otherwise
    make their being pass for a mutant of someone else's on every lineage page.
    """
    genesis = data.get("genesis")
    tags = data.get("tags")
    claims = (isinstance(genesis, dict) and genesis.get("type") == MUTATION) or (
        isinstance(tags, list) and MUTATION in tags
    )
    if claims and not may(user=actor, action="change", obj=target):
        raise PermissionDenied(
            "a mutation link names the target as a descendant of the source: you may link only beings you may "
            "change at both ends (mutants are linked by evolving their parent)"
        )


@transaction.atomic
def relationship_update(*, relationship: Relationship, data: dict[str, Any], actor: User) -> Relationship:
    require(user=actor, action="change", obj=relationship, missing=relationship_missing(relationship.pk))
    fields = relationship_clean(data)
    _lineage_link_check(source=relationship.source, target=relationship.target, data=fields, actor=actor)
    if not fields:
        return relationship
    context_apply(actor=actor, operation="relationship_update")
    for name, value in fields.items():
        setattr(relationship, name, value)
    relationship.save(update_fields=list(fields))
    return relationship


@transaction.atomic
def relationship_delete(*, relationship: Relationship, actor: User) -> None:
    require(user=actor, action="delete", obj=relationship, missing=relationship_missing(relationship.pk))
    safety_guard(operation="unlink", target=relationship, actor=actor)
    context_apply(actor=actor, operation="relationship_delete")
    # Without the ORM's cascade: the permissions stay for a restore that brings the link back.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM relationships WHERE id = %s", [relationship.id])
