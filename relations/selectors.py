"""Reads of relationships, with visibility policy applied in SQL."""

from __future__ import annotations

import uuid
from typing import Literal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q

from beings.models import BaseBeing
from luxsite.errors import BadRequest
from luxsite.pagination import Page, keyset_page
from luxsite.permissions import require, visible
from relations.exceptions import RelationshipNotFoundError
from relations.models import Relationship

User = AbstractBaseUser | AnonymousUser
Direction = Literal["in", "out", "both"]


def relationship_get(*, relationship_id: uuid.UUID | str, user: User) -> Relationship:
    try:
        relationship = Relationship.objects.get(id=relationship_id)
    except (Relationship.DoesNotExist, ValueError):
        raise RelationshipNotFoundError(f"no relationship has id {relationship_id}") from None
    require(user=user, action="view", obj=relationship)
    return relationship


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
    limit = limit or settings.LUXOS_PAGE_SIZE
    if not 1 <= limit <= settings.LUXOS_MAX_PAGE_SIZE:
        raise BadRequest(f"limit must be between 1 and {settings.LUXOS_MAX_PAGE_SIZE}", code="bad_limit")
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
