"""Risk of an operation, weighed from LuxOS' data, and the safety checkpoint taken before a risky one.

``risk_assess`` changes nothing: it reads a few bounded facts (``chronos.risk.selectors``) and
weighs each as a named reason. ``safety_guard`` is what the services of risky operations call
first: at ``high`` or above, with ``CHRONOS_AUTO_CHECKPOINT`` on, it takes a safety checkpoint
named after the operation (O(1)) that the door names in its response.

Weights (the score is their sum, capped at 100; levels in ``chronos.risk.levels``):

- ``operation``: the kind, from ``OPERATION_WEIGHTS`` (read 0, create 5 … bulk import 30 … delete, restore, switch 50).
- ``blast_radius``: beings reaching the target through links, recursively: ``4·log2(1+n)``, at most 25.
- ``promoted``: promotions in force of the target (or touched by a restore, switch or merge):
  production 30, any other environment 10 each, at most 40; a promotion or demotion leaves out its own
  environment, which ``environment`` weighs (a routine production upgrade is high, not critical).
- ``environment``: a promotion or demotion in production 20, elsewhere 0.
- ``recent_runs``: runs of the being in the last day: ``3·log2(1+n)``, at most 15.
- ``past_failures``: failed, timed-out or killed runs of the being and its ancestors: ``5·log2(1+n)``, at most 15.
- ``open_lessons``: lessons not resolved on the being, its hash or its ancestors: 10 each, at most 20.
- ``lines_removed``: lines an evolution removes or changes, as a share of the current ones: ``25·share``, at most 20.
- ``rows``: rows a bulk import, restore, switch, merge or import writes: ``5·log10(1+n)``, at most 25.
- ``unattended``: no person behind the operation (a task, the system): 5.
"""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Final

from django.conf import settings
from django.db import connection, transaction

from beings import lineage
from beings.models import BaseBeing
from beings.souls.selectors import PRODUCTION
from chronos.checkpoints import safety_checkpoint
from chronos.models import Checkpoint
from chronos.points import live_timeline
from chronos.risk import selectors
from chronos.risk.levels import Reason, Risk, risk_of
from chronos.risk.targets import Target, TargetLike, operation_clean, target_of
from chronos.risk.text import risk_assess_text
from luxsite.permissions import User

__all__ = ["Reason", "Risk", "Target", "risk_assess", "risk_assess_text", "safety_guard", "safety_recorded"]

OPERATION_WEIGHTS: Final = {
    "read": 0,
    "create": 5,
    "link": 10,
    "update": 15,
    "import": 20,  # a new timeline: the live state does not change until a switch
    "mutate": 20,  # a new being: the parent stays as it was
    "unlink": 25,
    "bulk_import": 30,
    "evolve": 30,
    "promote": 30,
    "demote": 35,
    "merge": 35,
    "delete": 50,
    "restore": 50,
    "switch": 50,
}
OPERATION_DETAILS: Final = {
    "read": "read-only: changes nothing",
    "create": "creates a being: nothing existing changes",
    "link": "adds a link",
    "update": "changes a being's fields",
    "import": "loads an archive as a new timeline",
    "mutate": "makes a new being from a parent's code",
    "bulk_import": "creates beings in bulk",
    "unlink": "removes a link other beings may rely on",
    "evolve": "changes a being's code",
    "promote": "changes what an environment runs",
    "demote": "stops an environment running a hash",
    "merge": "writes another timeline's changes into this one",
    "delete": "deletes a being",
    "restore": "rewrites the tables back to a checkpoint",
    "switch": "rewrites the tables to another timeline's head",
}
PROMOTED_WEIGHTS: Final = {PRODUCTION: 30}
PROMOTED_OTHER: Final = 10
PROMOTED_CAP: Final = 40
ENVIRONMENT_WEIGHTS: Final = {PRODUCTION: 20}
LESSON_WEIGHT: Final = 10
UNATTENDED: Final = 5
# The response header naming the safety checkpoints an operation took: "ID NAME, ID NAME".
SAFETY_HEADER: Final = "LuxOS-Safety-Checkpoint"


def _log_weight(count: int, factor: float, cap: int, base: int = 2) -> int:
    """``factor·log(1+count)`` in ``base``, rounded, at most ``cap``: the first few weigh most."""
    return min(cap, round(factor * math.log(1 + count, base))) if count > 0 else 0


def _count(count: int, capped: bool) -> str:
    return f"{count}+" if capped else str(count)


def _promoted(promotions: list[tuple[str, str, str]], doing: str) -> list[Reason]:
    if not promotions:
        return []
    weight = sum(PROMOTED_WEIGHTS.get(environment, PROMOTED_OTHER) for environment, _alias, _hash in promotions)
    listed = ", ".join(f"{alias} ({hash[:12]}) in {environment}" for environment, alias, hash in promotions[:5])
    more = f" and {len(promotions) - 5} more" if len(promotions) > 5 else ""
    return [Reason("promoted", min(PROMOTED_CAP, weight), f"{doing} promotions in force: {listed}{more}")]


def _reach(souls: list[uuid.UUID], extra: int = 0, about: str = "the target") -> Reason:
    reach = selectors.reach_count(souls)
    beings = reach.beings + extra
    detail = (
        f"{_count(beings, reach.capped)} being(s) reach {about} through links, up to {reach.depth} step(s) away"
        if beings
        else f"no being reaches {about} through links"
    )
    return Reason("blast_radius", _log_weight(beings, 4, 25), detail)


def _being_reasons(operation: str, being: BaseBeing, target: Target) -> list[Reason]:
    souls, hashes = selectors.lineage_of(being)
    facts = selectors.being_facts(being, souls, hashes)
    promotions = facts.promotions
    if operation in ("promote", "demote") and target.environment:
        # What the environment runs now is what a promotion there replaces: ``environment`` weighs it once.
        promotions = [promotion for promotion in promotions if promotion[0] != target.environment]
    reasons = [_reach([being.soul]), *_promoted(promotions, "the being has")]
    capped = facts.runs >= selectors.RECENT_RUNS_CAP
    reasons.append(
        Reason("recent_runs", _log_weight(facts.runs, 3, 15), f"{_count(facts.runs, capped)} run(s) in the last day")
    )
    if facts.failures:
        capped = facts.failures >= selectors.FAILURES_CAP
        reasons.append(
            Reason(
                "past_failures",
                _log_weight(facts.failures, 5, 15),
                f"{_count(facts.failures, capped)} failed run(s) of the being and its ancestors",
            )
        )
    if facts.lessons:
        reasons.append(
            Reason(
                "open_lessons",
                min(20, LESSON_WEIGHT * facts.lessons),
                f"{facts.lessons} open lesson(s) on the being, its hash or its ancestors",
            )
        )
    if operation in ("evolve", "mutate") and isinstance(target.source, str):
        reasons.append(_lines_removed(being, target.source))
    if operation in ("promote", "demote") and target.environment:
        weight = ENVIRONMENT_WEIGHTS.get(target.environment, 0)
        reasons.append(Reason("environment", weight, f"{operation}s in {target.environment}"))
    return reasons


def _lines_removed(being: BaseBeing, source: str) -> Reason:
    change = lineage.change_classify(
        current=being.genesis.get("source", ""), new=source, max_added_ratio=settings.LUXOS_EVOLUTION_MAX_ADDED_RATIO
    )
    lost = change.removed + change.changed
    share = lost / change.current_lines if change.current_lines else 0.0
    detail = (
        f"removes {change.removed} and changes {change.changed} of {change.current_lines} line(s) "
        f"(a {change.kind}), adds {change.added}"
    )
    return Reason("lines_removed", min(20, round(25 * share)), detail)


def _rows(rows: int, doing: str) -> Reason:
    return Reason("rows", _log_weight(rows, 5, 25, base=10), f"{doing} {rows} row(s)")


def _travel(travel: selectors.Travel, doing: str) -> list[Reason]:
    return [_rows(travel.rows, doing), *_promoted(travel.promoted, f"{doing} the beings of")]


def risk_assess(*, operation: str, target: TargetLike, actor: User | None) -> Risk:
    """How risky ``operation`` on ``target`` is, by ``actor`` (None: the system): level, score, reasons.

    Reads only, in a handful of bounded queries; the caller has checked who may see the target.
    """
    operation = operation_clean(operation)
    aim = target_of(target)
    reasons = [Reason("operation", OPERATION_WEIGHTS[operation], f"{operation}: {OPERATION_DETAILS[operation]}")]
    if operation == "read":
        return risk_of(operation, str(aim), reasons)
    if actor is None or not actor.is_authenticated:
        reasons.append(Reason("unattended", UNATTENDED, "no person behind it: nobody confirms"))
    if aim.being is not None:
        reasons += _being_reasons(operation, aim.being, aim)
    elif aim.relationship is not None:
        source = aim.relationship.source
        about = f"its source {source.name or source.soul}"
        reasons += [
            _reach([source.soul], extra=1, about=about),
            *_promoted(selectors.promotions_of([source.soul]), "its source has"),
        ]
    elif aim.checkpoint is not None:
        reasons += _travel(selectors.restore_travel(aim.checkpoint), "rewrites")
    elif aim.timeline is not None:
        travel = selectors.merge_travel(aim.timeline) if operation == "merge" else selectors.switch_travel(aim.timeline)
        reasons += _travel(travel, "writes" if operation == "merge" else "rewrites")
    elif aim.rows is not None:
        reasons.append(_rows(aim.rows, "writes"))
    return risk_of(operation, str(aim), reasons)


_taken: ContextVar[list[Checkpoint] | None] = ContextVar("luxos_safety_checkpoints", default=None)


@contextlib.contextmanager
def safety_recorded() -> Iterator[list[Checkpoint]]:
    """Collect the safety checkpoints taken inside the block (a door names them in its response)."""
    taken: list[Checkpoint] = []
    token = _taken.set(taken)
    try:
        yield taken
    finally:
        _taken.reset(token)


def safety_record(checkpoint: Checkpoint) -> None:
    """Name ``checkpoint`` in the current door's response (restore and switch take their own)."""
    taken = _taken.get()
    if taken is not None:
        taken.append(checkpoint)


def _written() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")
        return bool(cursor.fetchone()[0])


def safety_guard(*, operation: str, target: TargetLike, actor: User | None) -> tuple[Risk, Checkpoint | None]:
    """Before a high or critical operation, a safety checkpoint ``before-<operation>-<target>``: O(1).

    Called first by the operation's service, before its transaction writes. No checkpoint when
    ``CHRONOS_AUTO_CHECKPOINT`` or chronos is off, nor inside a transaction that has already written
    (a checkpoint there would hold those writes): the risk then comes back alone.
    """
    risk = risk_assess(operation=operation, target=target, actor=actor)
    if not (risk.needs_checkpoint and settings.CHRONOS_AUTO_CHECKPOINT and settings.ENABLE_CHRONOS) or _written():
        return risk, None
    with transaction.atomic():
        checkpoint = safety_checkpoint(
            prefix=f"before-{operation}-{target_of(target).label}",
            timeline=live_timeline(),
            actor=actor,  # type: ignore[arg-type]  # None: the system, named "(system)"
        )
        checkpoint.description = f"Taken automatically before a {risk.level} {operation} (score {risk.score})."
        Checkpoint.objects.filter(id=checkpoint.id).update(description=checkpoint.description)
    safety_record(checkpoint)
    return risk, checkpoint
