"""The soul registry over HTTP: versions by hash, aliases, promotion and demotion, environments.

Three routers, mounted in ``luxsite/api.py`` at ``/api/souls/``, ``/api/aliases/`` and
``/api/environments/``. Reading an environment (its souls, manifest, history) needs only an
account: promotions carry hashes and aliases, never source. Writing needs ``beings.promote_soul``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from beings import selectors
from beings.exceptions import AliasNotPromotedError
from beings.models import Promotion, SoulValidation
from beings.souls import selectors as soul_selectors
from beings.souls import services as soul_services
from beings.souls.evidence import promotion_evidence
from beings.souls.schemas import (
    AliasOut,
    DemoteIn,
    EvidenceOut,
    ManifestOut,
    PromoteIn,
    PromotionDetailOut,
    PromotionOut,
    PromotionPageOut,
    SoulOut,
    ValidationOut,
)
from luxsite.api_schemas import ERRORS
from luxsite.pagination import keyset_page

souls_router = Router(tags=["souls"])
aliases_router = Router(tags=["souls"])
environments_router = Router(tags=["environments"])


@souls_router.get("/{hash}", response={200: SoulOut, **ERRORS})
def soul_detail(request: HttpRequest, hash: str) -> dict[str, Any]:
    """The exact version a full hash or a unique prefix (≥ 12) names, ancestor or current, and where it runs."""
    return soul_selectors.soul_detail(hash=hash, user=request.user)


@souls_router.post("/{hash}/promote", response={201: PromotionDetailOut, **ERRORS})
def soul_promote(request: HttpRequest, hash: str, payload: PromoteIn) -> Status[Promotion]:
    """Promote a version to an environment; another hash of its alias active there is superseded."""
    promotion = soul_services.soul_promote(
        hash=hash,
        environment=payload.environment,
        actor=request.user,
        note=payload.note,
        alias=payload.alias,
        soul=payload.soul,
        replace_owner=payload.replace_owner,
        override_reason=payload.override_reason,
    )
    return Status(201, promotion)


@souls_router.get("/{hash}/evidence", response={200: EvidenceOut, **ERRORS})
def soul_evidence(request: HttpRequest, hash: str, environment: str = soul_selectors.PRODUCTION) -> dict[str, Any]:
    """A version's evidence for an environment: whether a promotion there would be refused, and why."""
    version = selectors.soul_get(hash=hash, user=request.user)
    evidence = promotion_evidence(hash=version.hash, environment=environment, actor=request.user, being=version.holder)
    return {
        "hash": evidence.hash,
        "gated": evidence.gated,
        **evidence.as_dict(),
        "figures": evidence.figures or None,
    }


@souls_router.post("/{hash}/demote", response={201: PromotionDetailOut, **ERRORS})
def soul_demote(request: HttpRequest, hash: str, payload: DemoteIn) -> Status[Promotion]:
    """End the active promotion of a hash in an environment; the demotion is recorded."""
    return Status(
        201,
        soul_services.soul_demote(hash=hash, environment=payload.environment, actor=request.user, note=payload.note),
    )


@aliases_router.get("/{alias}", response={200: AliasOut, **ERRORS})
def alias_detail(request: HttpRequest, alias: str) -> dict[str, Any]:
    """The newest being you may view with this alias, and the hash each environment runs for it."""
    being = selectors.alias_get(alias=alias, user=request.user)
    return {
        "alias": being.name,
        "soul": being.soul,
        "hash": being.hash,
        "version": being.version,
        "kind": being.kind,
        "created_at": being.created_at,
        "production": soul_selectors.alias_promotions(alias=being.name, user=request.user),
    }


@environments_router.get("/{environment}/souls", response={200: list[PromotionOut], **ERRORS})
def environment_souls(request: HttpRequest, environment: str) -> list[Promotion]:
    """The promotions in force in an environment, one per alias, by alias."""
    return list(soul_selectors.promotions_active(environment=environment, user=request.user).select_related("ended_by"))


@environments_router.get("/{environment}/manifest", response={200: ManifestOut, **ERRORS})
def environment_manifest(request: HttpRequest, environment: str) -> dict[str, Any]:
    """The deployment manifest: the environment's hashes and the digest of their list."""
    return soul_selectors.manifest_build(environment=environment, user=request.user)


@environments_router.post("/{environment}/validate", response={200: ValidationOut, **ERRORS})
def environment_validate(request: HttpRequest, environment: str) -> SoulValidation:
    """Recompute every active hash from its stored genotype and the live lineage (needs beings.promote_soul)."""
    return soul_services.environment_validate(environment=environment, actor=request.user, door="api")


@environments_router.get("/{environment}/history", response={200: PromotionPageOut, **ERRORS})
def environment_history(
    request: HttpRequest,
    environment: str,
    alias: str | None = None,
    after: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    """Promotions, supersessions and demotions in an environment, newest first, a page at a time."""
    history = soul_selectors.promotion_history(environment=environment, alias=alias, user=request.user)
    return keyset_page(history, field="created_at", descending=True, after=after, limit=limit).as_dict()


@environments_router.get("/{environment}/at", response={200: PromotionOut, **ERRORS})
def environment_at(request: HttpRequest, environment: str, alias: str, at: datetime) -> Promotion:
    """The promotion of an alias in force at a time (ISO 8601; naive is UTC): which hash ran then."""
    promotion = soul_selectors.soul_at(alias=alias, environment=environment, at=at, user=request.user)
    if promotion is None:
        raise AliasNotPromotedError(f"no hash of {alias!r} was promoted to {environment} at {at.isoformat()}")
    return promotion
