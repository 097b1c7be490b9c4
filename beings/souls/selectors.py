"""Reads of the soul registry: environments, promotions in force and their history, point-in-time, manifests."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any, Final

from django.conf import settings
from django.contrib.auth.models import PermissionsMixin
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from beings import genotype
from beings.exceptions import (
    AliasNotPromotedError,
    EnvironmentUnknownError,
    HashAmbiguousError,
    NotPromotedError,
)
from beings.models import BaseBeing, Promotion, SoulValidation
from beings.selectors import BeingFilters, SoulVersion, being_list, being_versions, hash_prefix_clean, soul_get
from luxsite.errors import Invalid
from luxsite.moments import moment_utc
from luxsite.permissions import User, visible

PRODUCTION: Final = "production"


PROMOTE_PERMISSION: Final = "beings.promote_soul"


OVERRIDE_PERMISSION: Final = "beings.promote_soul_override"


def environment_clean(environment: str) -> str:
    """An environment named in ``LUXOS_ENVIRONMENTS``; 422 listing them otherwise."""
    if environment not in settings.LUXOS_ENVIRONMENTS:
        raise EnvironmentUnknownError(
            f"{str(environment)[:80]!r} is not an environment: use one of {', '.join(settings.LUXOS_ENVIRONMENTS)}"
        )
    return environment


def promoter_may(*, user: User) -> bool:
    """Whether ``user`` holds the global permission to promote and demote souls."""
    return bool(user.is_authenticated and isinstance(user, PermissionsMixin) and user.has_perm(PROMOTE_PERMISSION))


def override_may(*, user: User) -> bool:
    """Whether ``user`` may promote a hash without the evidence its environment asks for (with a reason)."""
    return bool(user.is_authenticated and isinstance(user, PermissionsMixin) and user.has_perm(OVERRIDE_PERMISSION))


def promotions_visible(*, user: User | None, queryset: QuerySet[Promotion]) -> QuerySet[Promotion]:
    """The promotions of ``queryset`` that ``user`` may see; every one for the system (None) and promoters.

    Anyone else sees the promotions of beings they may view and nothing of the rest: a promotion
    names an alias, a hash, a soul, a promoter and a note, all of which belong to the being's owner.
    """
    if user is None or promoter_may(user=user):
        return queryset
    return queryset.filter(soul__in=visible(user=user, queryset=BaseBeing.objects.all()).values("soul"))


def promotions_active(*, environment: str, user: User | None = None) -> QuerySet[Promotion]:
    """The promotions in force in ``environment``, by alias: one per alias; those ``user`` may see when given."""
    environment = environment_clean(environment)
    active = Promotion.objects.active().filter(environment=environment).select_related("ends").order_by("alias", "hash")
    return promotions_visible(user=user, queryset=active)


def promotion_history(
    *, environment: str | None = None, alias: str | None = None, user: User | None = None
) -> QuerySet[Promotion]:
    """Every promotion, supersession and demotion, newest first; of one environment and alias when given."""
    queryset = Promotion.objects.select_related("ends", "ended_by").order_by("-created_at", "-id")
    if environment is not None:
        queryset = queryset.filter(environment=environment_clean(environment))
    if alias is not None:
        queryset = queryset.filter(alias=alias)
    return promotions_visible(user=user, queryset=queryset)


def soul_promotions(*, hash: str, user: User | None = None) -> QuerySet[Promotion]:
    """The active promotions of one full hash, in every environment."""
    return promotions_visible(
        user=user, queryset=Promotion.objects.active().filter(hash=hash).order_by("environment", "alias")
    )


def alias_promotions(*, alias: str, user: User | None = None) -> dict[str, str | None]:
    """Each environment and the hash of ``alias`` active there (None where none is, or none ``user`` may see)."""
    active = dict(
        promotions_visible(
            user=user,
            queryset=Promotion.objects.active().filter(alias=alias, environment__in=settings.LUXOS_ENVIRONMENTS),
        ).values_list("environment", "hash")
    )
    return {environment: active.get(environment) for environment in settings.LUXOS_ENVIRONMENTS}


def soul_at(*, alias: str, environment: str, at: datetime, user: User | None = None) -> Promotion | None:
    """The promotion of ``alias`` in force in ``environment`` at time ``at``, in one query; None when none was.

    That is the newest promotion written at or before ``at`` that no event written at or before
    ``at`` ended. A naive ``at`` is read as UTC.
    """
    environment = environment_clean(environment)
    try:
        at = moment_utc(at)
    except ValueError as error:
        raise Invalid(f"at: {error}") from None
    ended = Promotion.objects.filter(ends=OuterRef("pk"), created_at__lte=at)
    in_force = (
        Promotion.objects.filter(
            environment=environment, alias=alias, action=Promotion.Action.PROMOTE, created_at__lte=at
        )
        .filter(~Exists(ended))
        .order_by("-created_at", "-id")[:1]
    )
    # The one in force, then visibility: a promotion the user may not see hides, it does not reveal an older one.
    return promotions_visible(user=user, queryset=Promotion.objects.filter(pk__in=in_force)).first()


def soul_resolve(*, alias: str, environment: str, user: User | None = None) -> Promotion:
    """What ``environment`` runs for ``alias``: its active promotion, whose genotype copy is pinned.

    With ``user``, a promotion they may not see is as absent as none: its being is not named to them.
    """
    promotion = promotions_active(environment=environment, user=user).filter(alias=alias).first()
    if promotion is None:
        raise AliasNotPromotedError(f"no hash of {alias!r} is promoted to {environment}")
    return promotion


def manifest_build(*, environment: str, user: User | None = None) -> dict[str, Any]:
    """The deployment manifest of an environment, with the sha256 of its ``souls`` as ``digest``.

    Souls are sorted by alias then hash, so the same promotions always give the same digest. With
    ``user``, only the promotions that user may see.
    """
    promotions = promotions_active(environment=environment, user=user).defer("genotype")
    souls = sorted(
        (
            {
                "hash": promotion.hash,
                "alias": promotion.alias,
                "version": promotion.version,
                "soul": str(promotion.soul),
                "promoted_at": promotion.created_at.isoformat(),
                "promoted_by": promotion.actor_name,
            }
            for promotion in promotions
        ),
        key=lambda soul: (soul["alias"], soul["hash"]),
    )
    return {
        "environment": environment,
        "generated_at": timezone.now().isoformat(),
        "souls_count": len(souls),
        "souls": souls,
        "digest": hashlib.sha256(genotype.canonical_json(souls).encode("utf-8")).hexdigest(),
    }


def promotion_active_get(*, environment: str, hash: str) -> Promotion:
    """The promotion of ``hash`` (or a unique prefix) active in ``environment``; 409 when none is."""
    environment = environment_clean(environment)
    prefix = hash_prefix_clean(hash)
    candidates = list(promotions_active(environment=environment).filter(hash__startswith=prefix)[:10])
    hashes = sorted({promotion.hash for promotion in candidates})
    if not hashes:
        raise NotPromotedError(f"no hash starting with {prefix} is active in {environment}")
    if len(hashes) > 1:
        raise HashAmbiguousError(f"hash prefix {prefix} names {len(hashes)} active hashes: {', '.join(hashes)}")
    return candidates[0]


def version_environments(
    *, user: User, hashes: Collection[str], souls: Collection[uuid.UUID]
) -> dict[tuple[str, uuid.UUID], list[str]]:
    """The environments each (hash, soul) runs in, among those of ``hashes`` and ``souls`` that ``user`` may see."""
    active = promotions_visible(
        user=user, queryset=Promotion.objects.active().filter(hash__in=set(hashes), soul__in=set(souls))
    )
    environments: dict[tuple[str, uuid.UUID], list[str]] = {}
    for hash, soul, environment in active.order_by("environment").values_list("hash", "soul", "environment"):
        environments.setdefault((hash, soul), []).append(environment)
    return environments


def validation_latest(*, environment: str) -> SoulValidation | None:
    """The newest validation of ``environment``; None when it was never validated."""
    return SoulValidation.objects.filter(environment=environment).order_by("-checked_at", "-id").first()


def soul_detail(*, hash: str, user: User) -> dict[str, Any]:
    """The exact version a full hash or a unique prefix (≥ 12) names, ancestor or current, and where it runs.

    One document for ``GET /api/souls/{hash}`` and ``manage.py souls show --json``.
    """
    version = soul_get(hash=hash, user=user)
    return {
        "hash": version.hash,
        "alias": version.alias,
        "soul": version.soul,
        "version": version.version,
        "kind": version.kind,
        "created_at": version.created_at,
        "is_current": version.is_current,
        "holder": version.holder.soul,
        "genotype": version.genotype(),
        "promotions": [
            {
                "environment": promotion.environment,
                "alias": promotion.alias,
                "promoted_at": promotion.created_at,
                "promoted_by": promotion.actor_name,
            }
            for promotion in soul_promotions(hash=version.hash, user=user)
        ],
    }


def versions_newest(*, user: User, alias: str | None, limit: int) -> list[SoulVersion]:
    """The newest ``limit`` versions ``user`` may see, of one alias when given; each listed with its own being."""
    # Each being holds at least one version: the newest `limit` beings hold the newest `limit` versions.
    page = being_list(user=user, filters=BeingFilters(name=alias), limit=limit)
    versions = [
        version
        for being in page.items
        for version in reversed(being_versions(being))
        if version.owned  # a mutant's inherited versions are listed with their own being
    ]
    versions.sort(key=lambda version: version.created_at or "", reverse=True)
    return versions[:limit]
