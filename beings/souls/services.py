"""The soul registry: hashes promoted to environments, superseded and demoted; manifests; validation.

Every event is a new row of ``soul_promotions`` (the table is append-only, a trigger refuses
updates and deletes). A promotion is active until a later event names it in ``ends``: the
promotion of another hash of the same alias (a supersession) or a demotion. Each row keeps an
immutable copy of the genotype, so what an environment runs is pinned by hash: evolving a being
later never changes it. The files under ``LUXOS_SOUL_LOG_DIR`` (``production_config.json``,
``deployment_manifest_{env}.json``) are rewritten after every event commits; the database stays
the truth and a file that cannot be written never fails the event.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from functools import partial
from typing import Any, Final

from django.db import transaction
from django.db.models import Q

from beings import genotype
from beings.exceptions import (
    AliasInvalidError,
    AlreadyPromotedError,
    HashHeldByManyError,
    LineageBrokenError,
    NotPromotedError,
    OverrideReasonInvalidError,
    OwnerChangeUnconfirmedError,
    PromotionEvidenceMissingError,
    PromotionNoteInvalidError,
    SoulNotFoundError,
)
from beings.models import BaseBeing, ClockTimestamp, Promotion, SoulValidation
from beings.selectors import SoulVersion, being_owners, being_versions, soul_holders
from beings.souls.evidence import Evidence, promotion_evidence
from beings.souls.files import environment_files_write
from beings.souls.selectors import (
    OVERRIDE_PERMISSION,
    PRODUCTION,
    PROMOTE_PERMISSION,
    environment_clean,
    override_may,
    promoter_may,
    promotion_active_get,
    promotions_active,
)
from chronos.lessons.recording import validation_failures_record
from chronos.risk.services import Target, safety_guard
from luxsite.errors import PermissionDenied
from luxsite.locks import advisory_lock
from luxsite.permissions import User

logger = logging.getLogger(__name__)

MAX_NOTE_LENGTH: Final = 2000
MAX_ALIAS_LENGTH: Final = 200


def _promoter_require(user: User) -> None:
    if not promoter_may(user=user):
        raise PermissionDenied(f"you may not promote, demote or validate souls: that needs {PROMOTE_PERMISSION}")


def _alias_clean(alias: Any) -> str:
    cleaned = alias.strip() if isinstance(alias, str) else ""
    if not 1 <= len(cleaned) <= MAX_ALIAS_LENGTH:
        raise AliasInvalidError(f"the alias must be a name of 1 to {MAX_ALIAS_LENGTH} characters")
    return cleaned


def _note_clean(note: Any) -> str:
    if not isinstance(note, str) or len(note) > MAX_NOTE_LENGTH:
        raise PromotionNoteInvalidError(f"the note must be text of at most {MAX_NOTE_LENGTH} characters")
    return note


def _override_reason_clean(reason: Any) -> str | None:
    """The reason given to promote without the evidence, stripped; None when none was given."""
    if reason is None:
        return None
    if not isinstance(reason, str) or len(reason) > MAX_NOTE_LENGTH:
        raise OverrideReasonInvalidError(f"the override reason must be text of at most {MAX_NOTE_LENGTH} characters")
    return reason.strip() or None


def _evidence_require(*, evidence: Evidence, override_reason: str | None, actor: User) -> str | None:
    """The override reason to record when the evidence is missing; 409 without a reason, 403 without the right."""
    if evidence.met:
        return None
    if override_reason is None:
        raise PromotionEvidenceMissingError(evidence.refusal())
    if not override_may(user=actor):
        raise PermissionDenied(
            f"you may not promote without the evidence {evidence.environment} asks for: "
            f"that needs {OVERRIDE_PERMISSION} (missing: {'; '.join(evidence.missing)})"
        )
    return override_reason


def _actor_name(actor: User | None, door: str = "") -> str:
    return str(getattr(actor, "username", "") or f"({door or 'system'})")


def _lock(environment: str, kind: str, key: str) -> None:
    """Hold a transaction-level advisory lock on one name within an environment."""
    advisory_lock(f"luxos.registry:{environment}:{kind}:{key}")


def _record(action: str, *, environment: str, actor: User, **fields: Any) -> Promotion:
    """Append one promotion or demotion row, stamped by the database clock; the files follow at commit."""
    row = Promotion.objects.create(
        action=action,
        environment=environment,
        actor_id=actor.pk,
        actor_name=_actor_name(actor),
        created_at=ClockTimestamp(),
        **fields,
    )
    transaction.on_commit(partial(environment_files_write, environment=environment))
    return row


def soul_promote(
    *,
    hash: str,
    environment: str = PRODUCTION,
    actor: User,
    note: str = "",
    alias: str | None = None,
    soul: uuid.UUID | str | None = None,
    replace_owner: bool = False,
    override_reason: str | None = None,
) -> Promotion:
    """Promote the version named by ``hash`` (or a unique prefix) to ``environment``.

    The promotion keeps a copy of the genotype rebuilt from the lineage (checked against the hash),
    the alias (the version's own unless ``alias`` names another), version, who, when and why, and the
    being that holds the version in its own lineage: the one that will run it. When several beings
    hold the same genotype, ``soul`` must say which (a conflict lists them with their owners). Replacing
    under the alias a being of other owners than this one's needs ``replace_owner``: one click must not
    put someone else's code where another user's ran.
    An alias has at most one active hash per environment: promoting another hash of it ends the
    active promotion (a recorded supersession); promoting the active hash again is a conflict.
    Where ``LUXOS_PROMOTION_EVIDENCE`` gates the environment, a hash without the evidence is a conflict
    that lists what is missing, unless a user with ``beings.promote_soul_override`` gives
    ``override_reason``; the evidence weighed, and the reason of an override, are kept on the promotion.
    """
    environment = environment_clean(environment)
    _promoter_require(actor)
    note = _note_clean(note)
    override_reason = _override_reason_clean(override_reason)
    version = _holder_choose(holders=soul_holders(hash=hash, user=actor), soul=soul)
    alias = _alias_clean(version.alias if alias is None else alias)
    copy = version.genotype()
    rebuilt = genotype.soul_hash(copy)
    if rebuilt != version.hash:
        raise LineageBrokenError(
            f"version {version.version} of {version.soul} rebuilds to hash {rebuilt}, not {version.hash}: "
            "its lineage is damaged and it cannot be promoted"
        )
    # Read before the locks: the runs and lessons it counts need no lock, and the lock is held briefly.
    evidence = promotion_evidence(hash=version.hash, environment=environment, actor=actor, being=version.holder)
    with transaction.atomic():
        # Alias first, then hash, in every transaction: one order, no deadlock.
        _lock(environment, "alias", alias)
        _lock(environment, "hash", version.hash)
        active = list(promotions_active(environment=environment).filter(Q(alias=alias) | Q(hash=version.hash)))
        for promotion in active:
            if promotion.hash == version.hash:
                raise AlreadyPromotedError(
                    f"{version.hash} is already the active {promotion.alias!r} in {environment} "
                    f"(promoted {promotion.created_at:%Y-%m-%d %H:%M:%S} by {promotion.actor_name})"
                )
        overridden = _evidence_require(evidence=evidence, override_reason=override_reason, actor=actor)
        superseded = next((promotion for promotion in active if promotion.alias == alias), None)
        if superseded is not None and not replace_owner:
            _owner_change_check(superseded=superseded, holder=version.holder.soul)
        # Inside the transaction, which has only locked: a refused promotion leaves no checkpoint behind.
        safety_guard(operation="promote", target=Target(being=version.holder, environment=environment), actor=actor)
        return _record(
            Promotion.Action.PROMOTE,
            environment=environment,
            hash=version.hash,
            alias=alias,
            soul=version.holder.soul,
            version=version.version,
            genotype=copy,
            ends=superseded,
            actor=actor,
            note=note,
            override_reason=overridden or "",
            evidence=evidence.as_dict() if evidence.gated else None,
        )


def _owner_change_check(*, superseded: Promotion, holder: uuid.UUID) -> None:
    """Refuse to replace the being an alias runs with a being of other owners, unless the promoter says so."""
    if superseded.soul == holder:
        return
    owners = being_owners(souls=[superseded.soul, holder])
    if set(owners[superseded.soul]) == set(owners[holder]):
        return
    running, coming = (", ".join(owners[soul]) or "nobody" for soul in (superseded.soul, holder))
    raise OwnerChangeUnconfirmedError(
        f"{superseded.environment} runs {running}'s being {superseded.soul} as {superseded.alias!r}: promoting "
        f"{coming}'s being {holder} replaces it with another owner's code; confirm with replace_owner"
    )


def _holder_choose(*, holders: list[SoulVersion], soul: uuid.UUID | str | None) -> SoulVersion:
    """The holder named by ``soul``, or the only one; a conflict listing the holders when it is not clear."""
    if soul is not None:
        chosen = next((version for version in holders if str(version.holder.soul) == str(soul).strip().lower()), None)
        if chosen is None:
            raise SoulNotFoundError(f"no being you may view with soul {str(soul)[:80]} holds version {holders[0].hash}")
        return chosen
    if len(holders) == 1:
        return holders[0]
    owners = being_owners(souls=[version.holder.soul for version in holders])
    listed = "; ".join(
        f"{version.holder.soul} ({version.alias} v{version.version}, owned by "
        f"{', '.join(owners[version.holder.soul]) or 'nobody'})"
        for version in holders
    )
    raise HashHeldByManyError(
        f"{len(holders)} beings hold hash {holders[0].hash}: name the one to promote with its soul: {listed}"
    )


def soul_demote(*, hash: str, environment: str = PRODUCTION, actor: User, note: str = "") -> Promotion:
    """Record that the active promotion of ``hash`` (or a unique prefix) in ``environment`` ends.

    The being need not exist any more: the demotion copies what the promotion kept.
    """
    environment = environment_clean(environment)
    _promoter_require(actor)
    note = _note_clean(note)
    with transaction.atomic():
        found = promotion_active_get(environment=environment, hash=hash)
        _lock(environment, "alias", found.alias)
        # Read again under the lock: a concurrent demotion or supersession may have ended it meanwhile.
        active = promotions_active(environment=environment).filter(pk=found.pk).first()
        if active is None:
            raise NotPromotedError(f"{found.hash} is no longer active in {environment}")
        return _record(
            Promotion.Action.DEMOTE,
            environment=environment,
            hash=active.hash,
            alias=active.alias,
            soul=active.soul,
            version=active.version,
            genotype=active.genotype,
            ends=active,
            actor=actor,
            note=note,
        )


def environment_validate(*, environment: str, actor: User | None = None, door: str = "command") -> SoulValidation:
    """Recompute every active hash from its stored genotype and from the live lineage; store the outcome.

    An operator check: it reads every being, whoever owns it. A problem names the hash, alias, soul,
    version and the reason; any problem makes the validation fail. ``actor`` None is the system
    (the daily beat task); a person needs the promote permission.
    """
    environment = environment_clean(environment)
    if actor is not None:
        _promoter_require(actor)
    promotions = list(promotions_active(environment=environment))
    owners = {being.soul: being for being in BaseBeing.objects.filter(soul__in={p.soul for p in promotions})}
    problems = []
    for promotion in promotions:
        for reason in _promotion_problems(promotion, owners.get(promotion.soul)):
            problems.append(
                {
                    "hash": promotion.hash,
                    "alias": promotion.alias,
                    "soul": str(promotion.soul),
                    "version": promotion.version,
                    "reason": reason,
                }
            )
    outcome = SoulValidation.objects.create(
        environment=environment,
        ok=not problems,
        checked=len(promotions),
        problems=problems,
        door=door,
        actor_name=_actor_name(actor, door),
    )
    # The failed validation is committed with its outcome (nothing rolls back here): each problem is a lesson.
    validation_failures_record(environment=environment, problems=problems)
    return outcome


def _promotion_problems(promotion: Promotion, owner: BaseBeing | None) -> list[str]:
    """Why a promotion does not hold: its stored genotype, its live lineage, or both."""
    problems = []
    stored = genotype.soul_hash(promotion.genotype)
    if stored != promotion.hash:
        problems.append(f"stored genotype mismatch: the genotype kept with the promotion hashes to {stored}")
    lineage_problem = _lineage_problem(promotion, owner)
    if lineage_problem:
        problems.append(lineage_problem)
    return problems


def _lineage_problem(promotion: Promotion, owner: BaseBeing | None) -> str | None:
    """None when the live lineage rebuilds the promoted hash; the reason otherwise.

    The being that owns the version is the judge while it exists. Once it is gone, a mutant that
    inherited the version in its ancestors still carries the lineage.
    """
    holders: Iterable[BaseBeing]
    if owner is not None:
        holders = [owner]
    else:
        holders = BaseBeing.objects.holding_hash(promotion.hash).order_by("created_at", "soul")
    mismatches = []
    for holder in holders:
        try:
            versions = being_versions(holder)
        except LineageBrokenError as error:
            mismatches.append(f"lineage broken in being {holder.soul}: {error.detail}")
            continue
        for version in versions:
            if (version.hash, version.soul, version.version) != (promotion.hash, promotion.soul, promotion.version):
                continue
            try:
                rebuilt = genotype.soul_hash(version.genotype())
            except LineageBrokenError as error:
                mismatches.append(f"lineage broken in being {holder.soul}: {error.detail}")
                continue
            if rebuilt == promotion.hash:
                return None
            mismatches.append(f"lineage mismatch: being {holder.soul} rebuilds version {version.version} to {rebuilt}")
    if mismatches:
        return "; ".join(mismatches)
    where = f"being {promotion.soul}" if owner is not None else "any being"
    return f"missing lineage: {where} holds no version with this hash"
