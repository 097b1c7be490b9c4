"""Failures recorded as lessons where they happen, never lost with the rollback of what failed.

A service decorated with ``failures_recorded`` records its failure when the exception leaves it: its
own transaction has rolled back by then. When the caller holds a transaction of its own, the lesson
waits for that one to commit (a door that catches the error and carries on, as the admin does); a
caller that rolls back and is itself decorated (a task's idempotent wrapper) records it instead.
Failed runs are recorded by the fold, off the run path, a batch in one statement; a failed
validation by the validation itself, with its outcome.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from beings.models import BaseBeing, Execution
from chronos.exceptions import ChronosDisabledError
from chronos.lessons.classification import error_class
from chronos.lessons.services import Failure, failure_record, failures_record
from chronos.models import Lesson
from luxsite.errors import DomainError, NotFound, PermissionDenied

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
Concerns = Callable[[Mapping[str, Any]], Mapping[str, Any]]
# What environment_validate says is wrong with a promotion, by the words of its reason.
VALIDATION_KINDS = (
    ("genotype mismatch", "genotype_mismatch"),
    ("lineage broken", "lineage_broken"),
    ("lineage mismatch", "lineage_mismatch"),
    ("missing lineage", "lineage_missing"),
)


def failure_record_outside(**fields: Any) -> None:
    """``failure_record`` now when no transaction is open (the failed one has rolled back), else once it commits."""
    if connection.in_atomic_block:
        transaction.on_commit(functools.partial(failure_record, **fields))
    else:
        failure_record(**fields)


def failures_recorded(
    operation: str,
    *,
    concerns: Concerns,
    errors: tuple[type[BaseException], ...] = (DomainError,),
    ignore: tuple[type[BaseException], ...] = (PermissionDenied,),
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a keyword-only service: its ``errors`` (but not ``ignore``) become lessons of ``operation``.

    ``concerns`` maps the call's keyword arguments to failure_record's links (being, hash, checkpoint,
    timeline, actor, metadata). Refusals of the caller (``ignore``: no permission) say nothing about
    what was tried and are left out.
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def recorded(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return function(*args, **kwargs)
            except errors as error:
                if not isinstance(error, ignore):
                    try:
                        failure_record_outside(operation=operation, error=error, **concerns(kwargs))
                    except DatabaseError:  # the connection the failure broke: the failure itself matters more
                        logger.warning("a failed %s could not be recorded as a lesson", operation, exc_info=True)
                raise

        return recorded

    return decorate


def execution_failures_record(runs: Iterable[Execution]) -> list[int]:
    """Record a batch of failed runs (from the fold, off the run path) in one statement; the lessons' ids.

    Only the error's type is kept, not its message: the message may quote the run's inputs, which are
    its starter's alone (as the being's last_error keeps only the type).
    """
    failures = []
    for run in runs:
        error = run.error if isinstance(run.error, Mapping) else {}
        kind = error_class(operation="execution", error={"type": error.get("type") or ""})
        if kind == "execution_failed":
            kind = f"execution_{run.status}"
        environment = f", {run.environment}" if run.environment else ""
        failures.append(
            Failure(
                operation=Lesson.Operation.EXECUTION,
                error_class=kind,
                situation=f"execution of {run.alias or run.being_id} failed: {kind}",
                result=f"the run ended {run.status} with {kind}",
                action=f"execution (version {run.version}{environment})",
                tags=["failure", "execution", run.status],
                metadata={"status": run.status, "execution": str(run.pk), "error": {"class": kind}},
                being_id=run.being_id,
                hash=run.hash,
                execution_id=run.pk,
                actor_id=run.actor_id,
                created_at=run.finished_at or timezone.now(),
            )
        )
    if not failures:
        return []
    try:
        # A savepoint: a lesson that cannot be written never holds up the fold of the runs.
        with transaction.atomic():
            return failures_record(failures)
    except DatabaseError:
        logger.warning("%d failed runs could not be recorded as lessons", len(failures), exc_info=True)
        return []


def validation_failures_record(*, environment: str, problems: Iterable[Mapping[str, Any]]) -> list[int]:
    """Record each problem of a failed validation as a lesson on its hash (one statement)."""
    failures = []
    for problem in problems:
        reason = str(problem.get("reason") or "")
        kind = next((name for phrase, name in VALIDATION_KINDS if phrase in reason), "validation_failed")
        failures.append(
            Failure(
                operation=Lesson.Operation.VALIDATION,
                error_class=kind,
                situation=f"validation of {problem.get('alias') or problem.get('hash')} in {environment} failed",
                result=reason,
                action=f"validate {environment}",
                tags=["failure", "validation", environment],
                metadata={"environment": environment, "problem": dict(problem)},
                being_id=problem.get("soul") or None,
                hash=str(problem.get("hash") or ""),
            )
        )
    return failures_record(failures)


def evolution_concerns(call: Mapping[str, Any]) -> dict[str, Any]:
    """What a refused evolution concerns, from ``being_evolve``'s (being) or ``being_evolve_once``'s (soul) call."""
    being = call.get("being")
    if being is None:
        being = BaseBeing.objects.filter(soul=call.get("soul")).only("soul", "genesis").first() or call.get("soul")
    return {
        "being": being,
        "hash": getattr(being, "hash", "") or "",
        "actor": call.get("actor"),
        "metadata": {"reason": str(call.get("reason") or "")[:500]},
    }


evolution_refusals_recorded = failures_recorded(
    Lesson.Operation.EVOLUTION, concerns=evolution_concerns, ignore=(PermissionDenied, NotFound)
)


def restore_concerns(call: Mapping[str, Any]) -> dict[str, Any]:
    """What a failed restore concerns: the checkpoint, its timeline, who asked."""
    checkpoint = call.get("checkpoint")
    return {
        "checkpoint": checkpoint,
        "timeline": getattr(checkpoint, "timeline_id", None),
        "actor": call.get("actor"),
        "metadata": {"checkpoint": getattr(checkpoint, "name", str(checkpoint)), "force": bool(call.get("force"))},
    }


def switch_concerns(call: Mapping[str, Any]) -> dict[str, Any]:
    """What a failed switch concerns: the timeline asked for (by name when it was not found), who asked."""
    target = call.get("name")
    return {
        "timeline": getattr(target, "pk", None),
        "actor": call.get("actor"),
        "metadata": {"timeline": getattr(target, "name", str(target)), "force": bool(call.get("force"))},
    }


# A database error (a lock timeout, a cancelled statement) fails a restore or switch as much as a refusal.
TRAVEL_ERRORS = (DomainError, DatabaseError)
TRAVEL_IGNORED = (PermissionDenied, ChronosDisabledError)
restore_failures_recorded = failures_recorded(
    Lesson.Operation.RESTORE, concerns=restore_concerns, errors=TRAVEL_ERRORS, ignore=TRAVEL_IGNORED
)
switch_failures_recorded = failures_recorded(
    Lesson.Operation.SWITCH, concerns=switch_concerns, errors=TRAVEL_ERRORS, ignore=TRAVEL_IGNORED
)
