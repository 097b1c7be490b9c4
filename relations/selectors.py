"""Reads of relationships, with visibility policy applied in SQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform, KeyTransform

from beings.models import BaseBeing
from luxsite.pagination import Page, keyset_page, page_limit
from luxsite.permissions import User, require, visible
from relations.exceptions import RelationshipNotFoundError
from relations.models import Relationship

Direction = Literal["in", "out", "both"]


def relationship_get(*, relationship_id: uuid.UUID | str, user: User) -> Relationship:
    try:
        relationship = Relationship.objects.get(id=relationship_id)
    except (Relationship.DoesNotExist, ValueError):
        raise relationship_missing(relationship_id) from None
    require(user=user, action="view", obj=relationship, missing=relationship_missing(relationship_id))
    return relationship


def relationship_missing(relationship_id: uuid.UUID | str) -> RelationshipNotFoundError:
    """What a relationship that does not exist, or that the user may not view, answers."""
    return RelationshipNotFoundError(f"no relationship has id {relationship_id}")


def relationship_list(
    *,
    user: User,
    being: BaseBeing | None = None,
    direction: Direction = "both",
    tags_all: list[str] | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> Page[Relationship]:
    """A page of the relationships the user may view, optionally those in or out of one being."""
    limit = page_limit(limit)
    queryset = visible(user=user, queryset=Relationship.objects.all())
    if being is not None:
        by_direction = {
            "out": Q(source_id=being.pk),
            "in": Q(target_id=being.pk),
            "both": Q(source_id=being.pk) | Q(target_id=being.pk),
        }
        queryset = queryset.filter(by_direction[direction])
    if tags_all:
        queryset = queryset.tagged(*tags_all)
    return keyset_page(queryset, field="created_at", descending=True, after=after, limit=limit)


def relationship_count(*, user: User) -> int:
    """How many relationships the user may view, counted in SQL."""
    return visible(user=user, queryset=Relationship.objects.all()).count()


# Relationships listed on a being's page, newest first.
NEIGHBOURS_LIMIT = 50


@dataclass(frozen=True)
class Neighbour:
    """A relationship seen from one of its ends: which way it points and the being at the other end."""

    relationship: Relationship
    direction: Literal["in", "out"]
    soul: uuid.UUID
    name: str
    kind: str
    version: str
    parent: dict[str, Any] | None

    @property
    def label(self) -> str:
        """What the relationship is: its genesis type (``mutation``…), else its tags."""
        genesis = self.relationship.genesis if isinstance(self.relationship.genesis, dict) else {}
        kind = genesis.get("type")
        return str(kind) if kind else ", ".join(self.relationship.tags or []) or "link"


def being_neighbours(*, being: BaseBeing, user: User, limit: int = NEIGHBOURS_LIMIT) -> list[Neighbour]:
    """The newest relationships in and out of ``being`` that the user may view, and whose other end they may view."""
    viewable = visible(user=user, queryset=BaseBeing.objects.all()).values("soul")
    relationships = list(
        visible(user=user, queryset=Relationship.objects.all())
        .filter(Q(source_id=being.pk, target_id__in=viewable) | Q(target_id=being.pk, source_id__in=viewable))
        .defer("attributes")
        .order_by("-created_at", "id")[:limit]
    )
    others = {r.target_id if r.source_id == being.pk else r.source_id for r in relationships}
    rows = {
        row["soul"]: row
        for row in BaseBeing.objects.filter(soul__in=others)
        .annotate(
            alias=KeyTextTransform("name", "genesis"),
            being_kind=KeyTextTransform("type", "genesis"),
            being_version=KeyTextTransform("version", "genesis"),
            parent=KeyTransform("parent", "genesis"),
        )
        .values("soul", "alias", "being_kind", "being_version", "parent")
    }
    neighbours = []
    for relationship in relationships:
        outgoing = relationship.source_id == being.pk
        row = rows[relationship.target_id if outgoing else relationship.source_id]
        neighbours.append(
            Neighbour(
                relationship=relationship,
                direction="out" if outgoing else "in",
                soul=row["soul"],
                name=row["alias"] or "",
                kind=row["being_kind"] or "",
                version=row["being_version"] or "1",
                parent=row["parent"] if isinstance(row["parent"], dict) else None,
            )
        )
    return neighbours
