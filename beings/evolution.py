"""Evolving a being: a new version in place (an evolution) or a new being carrying the lineage on (a mutation)."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from beings import genotype, lineage, validation
from beings.exceptions import (
    BeingNotFoundError,
    CoreBeingError,
    GenesisInvalidError,
    NothingChangedError,
)
from beings.models import BaseBeing
from beings.selectors import being_missing
from beings.services import LINEAGE_KEYS, OWNER_EXTRA, actor_name, memories_append
from beings.souls.files import report_on_commit
from chronos.context import context_apply
from chronos.lessons.recording import evolution_refusals_recorded
from chronos.risk.services import Target, safety_guard
from luxsite.celery import app
from luxsite.permissions import User, owner_grant, require
from relations.services import relationship_link

# Sent by name: the tasks module imports this one.
BEING_EVOLVE_TASK = "beings.tasks.being_evolve"


@dataclass(frozen=True)
class Evolution:
    """What ``being_evolve`` did: the being that now holds the new source, and how it got there."""

    being: BaseBeing
    parent: BaseBeing
    change: lineage.SourceChange

    @property
    def kind(self) -> str:
        return self.change.kind

    def as_dict(self) -> dict[str, Any]:
        """What an evolution answers at every door (``EvolutionOut``)."""
        return {
            "kind": self.change.kind,
            "being": self.being,
            "parent_soul": self.parent.soul,
            # The version replaced is the newest lineage entry of the being holding the new one, mutant or not.
            "from_hash": self.being.genesis["ancestors"][-1]["hash"],
            "to_hash": self.being.hash,
            "version": self.being.version,
            "added": self.change.added,
            "removed": self.change.removed,
            "changed": self.change.changed,
        }


def being_evolve_check(*, being: BaseBeing, source: str, actor: User | None) -> None:
    """Refuse an evolution that cannot succeed: no permission, a core being, bad source, no change.

    Doors that queue an evolution for a worker call it first, so the caller hears at once.
    """
    if actor is not None:
        require(user=actor, action="change", obj=being, missing=being_missing(being.soul))
    if being.is_core:
        raise CoreBeingError(f"{being.name} is a core being and never evolves")
    if not isinstance(source, str):
        raise GenesisInvalidError("source must be a string")
    validation.source_parse(source)
    if genotype.soul_hash(genotype.with_source(being.genesis, source)) == being.hash:
        raise NothingChangedError("nothing changed: the new source has the genotype of the current version")


@evolution_refusals_recorded
def being_evolve(
    *, being: BaseBeing, source: str, reason: str = "", actor: User | None, request: str = ""
) -> Evolution:
    """Give a being a new source: an evolution (same soul, next version) or a mutation (a new being).

    Only added lines, and no more than ``LUXOS_EVOLUTION_MAX_ADDED_RATIO`` of the current line
    count, make an evolution; a change of whitespace or comments only (the same AST) is an
    evolution marked cosmetic; anything else is a mutation. The version replaced is kept in
    ``genesis.ancestors`` as a reverse diff, so every version can be rebuilt from the lineage.
    """
    being_evolve_check(being=being, source=source, actor=actor)
    with transaction.atomic():
        # First, before the row lock writes: a safety checkpoint when the evolution is risky.
        safety_guard(operation="evolve", target=Target(being=being, source=source), actor=actor)
        # The row lock makes concurrent evolutions of one being take turns instead of losing a version.
        current = BaseBeing.objects.select_for_update().filter(soul=being.soul).first()
        if current is None:  # deleted since the caller read it
            raise BeingNotFoundError(f"no being has soul {being.soul}")
        if genotype.soul_hash(genotype.with_source(current.genesis, source)) == current.hash:
            raise NothingChangedError("nothing changed: the new source has the genotype of the current version")
        change = lineage.change_classify(
            current=current.genesis.get("source", ""),
            new=source,
            max_added_ratio=settings.LUXOS_EVOLUTION_MAX_ADDED_RATIO,
        )
        origin = {"kind": change.kind, "at": timezone.now().isoformat(), "actor": actor_name(actor), "reason": reason}
        if request:
            origin["request"] = request
        if change.kind == "mutation":
            child = _mutant_create(parent=current, source=source, origin=origin, change=change, actor=actor)
            return Evolution(being=child, parent=current, change=change)
        _evolve_in_place(being=current, source=source, origin=origin, change=change, actor=actor)
        return Evolution(being=current, parent=current, change=change)


def _evolve_in_place(
    *, being: BaseBeing, source: str, origin: dict[str, Any], change: lineage.SourceChange, actor: User | None
) -> None:
    genesis = being.genesis
    entry = lineage.ancestor_entry(genesis=genesis, newer_source=source, snapshot_every=settings.LUXOS_SNAPSHOT_EVERY)
    evolved = {
        **genesis,
        "source": source,
        "version": being.version + 1,
        "ancestors": [*genesis.get("ancestors", []), entry],
        "origin": origin,
    }
    evolved["hash"] = genotype.genesis_hash(evolved)
    validation.document_check("genesis", evolved)
    event = {
        "event": change.kind,
        "at": origin["at"],
        "version": evolved["version"],
        "hash": evolved["hash"],
        "from_hash": entry["hash"],
        "reason": origin["reason"],
        "actor": origin["actor"],
        **change.as_dict(),
    }
    being.genesis = evolved
    being.memories = memories_append(being.memories, event)
    context_apply(actor=actor, operation=f"being_{change.kind}", reason=origin["reason"])
    being.save(update_fields=["genesis", "memories"])
    report_on_commit(being=being, event=change.kind, parent_hash=entry["hash"], actor=actor, reason=origin["reason"])


def _mutant_create(
    *, parent: BaseBeing, source: str, origin: dict[str, Any], change: lineage.SourceChange, actor: User | None
) -> BaseBeing:
    """A new being carrying the parent's lineage on, its attributes copied, linked parent → child."""
    genesis = parent.genesis
    parent_soul = str(parent.soul)
    inherited = [{**entry, "soul": entry.get("soul", parent_soul)} for entry in genesis.get("ancestors", [])]
    entry = lineage.ancestor_entry(
        genesis=genesis, newer_source=source, snapshot_every=settings.LUXOS_SNAPSHOT_EVERY, soul=parent_soul
    )
    named_parent = {"soul": parent_soul, "version": parent.version, "hash": parent.hash}
    child_genesis = {
        **{key: value for key, value in genesis.items() if key not in LINEAGE_KEYS},
        "source": source,
        "version": 1,
        "ancestors": [*inherited, entry],
        "parent": named_parent,
        "origin": origin,
    }
    child_genesis["hash"] = genotype.genesis_hash(child_genesis)
    validation.document_check("genesis", child_genesis)
    event = {
        "event": "mutation",
        "at": origin["at"],
        "version": 1,
        "hash": child_genesis["hash"],
        "parent": named_parent,
        "reason": origin["reason"],
        "actor": origin["actor"],
        **change.as_dict(),
    }
    context_apply(actor=actor, operation="being_mutation", reason=origin["reason"])
    child = BaseBeing.objects.create(
        genesis=child_genesis,
        tags=list(parent.tags or []),
        energy_level=0,
        attributes=parent.attributes,
        memories=memories_append([], event),
        self_awareness={},
    )
    owner_grant(model=BaseBeing, pks=[child.pk], user=actor, extra=OWNER_EXTRA)
    relationship_link(
        source=parent,
        target=child,
        actor=actor,
        data={
            "tags": ["mutation"],
            "genesis": {
                "type": "mutation",
                "reason": origin["reason"],
                **change.as_dict(),
                "from_hash": parent.hash,
                "to_hash": child_genesis["hash"],
            },
        },
    )
    report_on_commit(being=child, event="mutation", parent_hash=parent.hash, actor=actor, reason=origin["reason"])
    return child


def _evolution_of_request(*, soul: uuid.UUID, request: str) -> BaseBeing | None:
    """The being holding the version that the evolve request ``request`` made of being ``soul``, if it made one.

    The version keeps the request in its origin, and in its lineage entry once a later version replaces it.
    """
    made = Q(genesis__contains={"origin": {"request": request}}) | Q(
        genesis__contains={"ancestors": [{"request": request}]}
    )
    return (
        BaseBeing.objects.filter(Q(soul=soul) | Q(genesis__contains={"parent": {"soul": str(soul)}}))
        .filter(made)
        .order_by("created_at")
        .first()
    )


@evolution_refusals_recorded
@transaction.atomic
def being_evolve_once(
    *, soul: uuid.UUID | str, source: str, reason: str, actor: User | None, request: str
) -> tuple[str, BaseBeing]:
    """``being_evolve`` for a queued request, idempotent: what it did (its kind, or ``done``) and the being it made.

    Keyed by the request (the task's id, which a redelivery keeps): the version made carries the id
    in its origin, so a second delivery finds it and writes nothing. Never keyed by content, which
    another user could create first.
    """
    unlocked = BaseBeing.objects.filter(soul=soul).first()
    if unlocked is not None and not (request and _evolution_of_request(soul=unlocked.soul, request=request)):
        # Before the row lock writes (being_evolve's own guard comes too late here); a redelivery takes none.
        safety_guard(operation="evolve", target=Target(being=unlocked, source=source), actor=actor)
    # Two deliveries running at once take turns on the row lock, so the second sees what the first made.
    being = BaseBeing.objects.select_for_update().filter(soul=soul).first()
    if being is None:
        raise being_missing(soul)
    done = _evolution_of_request(soul=being.soul, request=request) if request else None
    if done is not None:
        return "done", done
    evolution = being_evolve(being=being, source=source, reason=reason, actor=actor, request=request)
    return evolution.kind, evolution.being


@evolution_refusals_recorded
def being_evolve_enqueue(*, being: BaseBeing, source: str, reason: str, actor: User) -> str:
    """Check at once what can be checked (permission, core, source, a change at all), then queue the evolution.

    The task is sent when the transaction commits, by name (the tasks module imports this one); the
    id it is sent with is returned, and keys the evolution for ``being_evolve_once``.
    """
    being_evolve_check(being=being, source=source, actor=actor)
    task_id = str(uuid.uuid4())
    args = (str(being.soul), source, reason, actor.pk)
    transaction.on_commit(functools.partial(app.send_task, BEING_EVOLVE_TASK, args=args, task_id=task_id))
    return task_id
