"""Reads of beings, with visibility policy applied in SQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count
from django.db.models.fields.json import KeyTextTransform

from beings.exceptions import BeingNotFoundError
from beings.models import BaseBeing, BeingQuerySet
from luxsite.errors import BadRequest
from luxsite.pagination import Page, keyset_page
from luxsite.permissions import require, visible

User = AbstractBaseUser | AnonymousUser

ORDERINGS = {"created_at", "-created_at", "energy_level", "-energy_level"}


@dataclass(frozen=True)
class BeingFilters:
    tags_all: list[str] = field(default_factory=list)
    tags_any: list[str] = field(default_factory=list)
    kind: str | None = None
    name: str | None = None
    energy_min: int | None = None
    energy_max: int | None = None
    attributes: dict[str, Any] | None = None
    genesis: dict[str, Any] | None = None


def being_get(*, soul: uuid.UUID | str, user: User) -> BaseBeing:
    """One being the user may view: 404 when there is none, 403 when it is someone else's."""
    try:
        being = BaseBeing.objects.get(soul=soul)
    except (BaseBeing.DoesNotExist, ValueError):
        raise BeingNotFoundError(f"no being has soul {soul}") from None
    require(user=user, action="view", obj=being)
    return being


def being_filter(queryset: BeingQuerySet, filters: BeingFilters) -> BeingQuerySet:
    """Apply filters; JSON ones are containment (@>) so the GIN indexes answer them."""
    if filters.tags_all:
        queryset = queryset.tagged(*filters.tags_all)
    if filters.tags_any:
        queryset = queryset.tagged_any(*filters.tags_any)
    if filters.kind:
        queryset = queryset.of_kind(filters.kind)
    if filters.name:
        queryset = queryset.named(filters.name)
    if filters.energy_min is not None:
        queryset = queryset.filter(energy_level__gte=filters.energy_min)
    if filters.energy_max is not None:
        queryset = queryset.filter(energy_level__lte=filters.energy_max)
    if filters.attributes is not None:
        queryset = queryset.filter(attributes__contains=filters.attributes)
    if filters.genesis is not None:
        queryset = queryset.filter(genesis__contains=filters.genesis)
    return queryset


def being_list(
    *, user: User, filters: BeingFilters | None = None, ordering: str = "-created_at", after: str | None = None,
    limit: int | None = None,
) -> Page[BaseBeing]:
    """A page of the beings the user may view, filtered and ordered, continuing after a cursor."""
    if ordering not in ORDERINGS:
        raise BadRequest(f"ordering must be one of {', '.join(sorted(ORDERINGS))}", code="bad_ordering")
    limit = limit or settings.LUXOS_PAGE_SIZE
    if not 1 <= limit <= settings.LUXOS_MAX_PAGE_SIZE:
        raise BadRequest(f"limit must be between 1 and {settings.LUXOS_MAX_PAGE_SIZE}", code="bad_limit")
    queryset = being_filter(visible(user=user, queryset=BaseBeing.objects.all()), filters or BeingFilters())
    return keyset_page(
        queryset, field=ordering.lstrip("-"), descending=ordering.startswith("-"), after=after, limit=limit
    )


def being_counts(*, user: User) -> dict[str, int]:
    """How many beings of each kind the user may view, counted in SQL."""
    queryset = visible(user=user, queryset=BaseBeing.objects.all())
    rows = (
        queryset.annotate(being_kind=KeyTextTransform("type", "genesis"))
        .values("being_kind")
        .annotate(count=Count("soul"))
        .order_by("being_kind")
    )
    return {str(row["being_kind"]): row["count"] for row in rows}
