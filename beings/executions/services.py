"""Starting and cancelling runs, and what a finished run leaves in its being."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from beings import genotype, validation
from beings.exceptions import (
    BeingNotRunnableError,
    ExecutionFinishedError,
    ExecutionInputInvalidError,
)
from beings.executions.queue import backlog, execution_enqueuer, priority_of, run_error
from beings.executions.selectors import (
    KILLED,
    QUEUED,
    RUNNABLE,
    RUNNING,
    STATUS,
    SUCCEEDED,
    Target,
    execution_allowed,
    execution_fetch,
    execution_get,
)
from beings.executions.signals import execution_signal
from beings.models import (
    BaseBeing,
    ClockTimestamp,
    Execution,
)
from beings.runtime.jobs import SandboxLimits
from chronos.context import context_apply
from luxsite.errors import PermissionDenied
from luxsite.permissions import User

logger = logging.getLogger(__name__)


ENERGY_MIN, ENERGY_MAX = 0, 100
CANCELLED = "Cancelled"


# --- what to run -----------------------------------------------------------------------------------


# --- queueing --------------------------------------------------------------------------------------


def execution_start(
    *, target: Target, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None, actor: User
) -> Execution:
    """Record a run of ``target`` by ``actor`` (who needs ``beings.execute_being``) and queue it on commit.

    Runs nested in it (``execution()`` in being code) are recorded and run by its worker, inline.
    """
    args, kwargs = execution_admit(target=target, args=args, kwargs=kwargs, actor=actor)
    execution = execution_create(
        target=target, args=args, kwargs=kwargs, actor=actor, parent=None, limits=limits_snapshot()
    )
    transaction.on_commit(execution_enqueuer(execution))
    return execution


def execution_admit(
    *, target: Target, args: list[Any] | None, kwargs: dict[str, Any] | None, actor: User
) -> tuple[list[Any], dict[str, Any]]:
    """The checks every run passes before it is recorded: permission, a runnable kind, clean inputs."""
    if not execution_allowed(user_id=actor.pk if actor.is_authenticated else None, soul=target.being.pk):
        raise PermissionDenied("you may not execute this being")
    kind = target.genotype.get("type", "")
    if kind not in RUNNABLE:
        raise BeingNotRunnableError(f"a {kind or 'typeless'} being has no code to run: only {' and '.join(RUNNABLE)}")
    return inputs_clean(args=args, kwargs=kwargs)


def inputs_clean(*, args: Any, kwargs: Any) -> tuple[list[Any], dict[str, Any]]:
    """Arguments of a run: a JSON list and a JSON object, storable, within ``LUXOS_MAX_JSON_BYTES``."""
    args = [] if args is None else args
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(args, list):
        raise ExecutionInputInvalidError("args must be a JSON array")
    if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
        raise ExecutionInputInvalidError("kwargs must be a JSON object")
    for name, value in (("args", args), ("kwargs", kwargs)):
        problem = validation.unstorable(value)
        if problem:
            raise ExecutionInputInvalidError(f"{name} {problem}")
    validation.document_check("args and kwargs", {"args": args, "kwargs": kwargs})
    return args, kwargs


def limits_snapshot() -> dict[str, Any]:
    """The sandbox limits of the settings now, as a run keeps them: its worker applies these, not its own."""
    return dataclasses.asdict(SandboxLimits.from_settings(settings))


def execution_create(
    *,
    target: Target,
    args: list[Any],
    kwargs: dict[str, Any],
    actor: User,
    parent: Execution | None,
    limits: dict[str, Any],
) -> Execution:
    workload = target.genotype.get("workload", genotype.CPU)
    return Execution.objects.create(
        being=target.being,
        hash=target.hash,
        alias=target.being.name,
        version=target.version,
        environment=target.environment,
        args=args,
        kwargs=kwargs,
        status=QUEUED,
        queue=workload if workload in genotype.WORKLOADS else genotype.CPU,
        task_id="" if parent is not None else str(uuid.uuid4()),
        priority=priority_of(target.being.energy_level, backlog=backlog(actor) if parent is None else 0),
        parent=parent,
        root_id=(parent.root_id or parent.pk) if parent is not None else None,
        depth=parent.depth + 1 if parent is not None else 0,
        limits=limits,
        # The clock, not the transaction's start: runs queued in one transaction keep their order.
        queued_at=ClockTimestamp(),
        actor_id=actor.pk if actor.is_authenticated else None,
        actor_name=str(getattr(actor, "username", "")),
    )


# --- reading ---------------------------------------------------------------------------------------


# --- cancelling ------------------------------------------------------------------------------------


def execution_cancel(*, execution: Execution, actor: User) -> Execution:
    """Stop a queued or running execution and the nested runs under it; 409 when it has finished.

    A queued run will not start. A running one is marked killed at once: its result will be
    discarded and it may make no further call or summon, but its sandbox child keeps running
    until it ends or reaches its wall-clock limit (see the module's docstring).
    """
    execution = execution_get(id=execution.pk, user=actor)
    error = run_error(CANCELLED, f"cancelled by {getattr(actor, 'username', '') or 'an anonymous user'}")
    with transaction.atomic():
        row = Execution.objects.select_for_update().get(pk=execution.pk)
        if row.finished:
            raise ExecutionFinishedError(f"the execution has already finished: it {_ended(row.status)}")
        cancelled = [row.pk]
        frontier = [row.pk]
        while frontier:  # nested runs, at most LUXOS_SANDBOX_DEPTH levels
            frontier = list(
                Execution.objects.select_for_update()
                .filter(parent_id__in=frontier, status__in=(QUEUED, RUNNING))
                .values_list("pk", flat=True)
            )
            cancelled += frontier
        now = timezone.now()
        Execution.objects.filter(pk__in=cancelled).update(status=KILLED, error=error, finished_at=now)
        if row.started_at is not None:
            Execution.objects.filter(pk=row.pk).update(duration_ms=(now - row.started_at).total_seconds() * 1000)
        for stopped_id in cancelled:
            # "cancelled", not the status: the sandbox's watch ends the run's child on this word, waiters wake on any.
            execution_signal(stopped_id, "cancelled")
    for stopped in Execution.objects.filter(pk__in=cancelled):
        run_record(stopped, actor=actor)
    return execution_fetch(execution.pk)


def _ended(status: str) -> str:
    return {
        "succeeded": "succeeded",
        "failed": "failed",
        "timeout": "timed out",
        "killed": "was killed",
        "rejected": "was rejected",
    }.get(status, status)


# --- running, on a worker --------------------------------------------------------------------------


# --- execution() and summon() from being code ------------------------------------------------------


# --- what a run leaves in its being ----------------------------------------------------------------


@dataclass(frozen=True)
class _Starter:
    """Who started a run, as the change log names them, without loading the user."""

    pk: int | None
    username: str


def run_record(execution: Execution, *, actor: Any = None) -> None:
    """Write a finished run to its being: a memories event, run statistics, energy; one locked update.

    Energy rises by one on success and falls by one on failure, never beyond 0..100 (a value set
    outside by hand is left where it is); a run cancelled by a user or refused by the host
    (rejected) leaves it alone: neither says anything about the being. The change is made in the
    name of ``actor``, by default the user who started the run.
    """
    actor = actor or _Starter(pk=execution.actor_id, username=execution.actor_name)
    with transaction.atomic(savepoint=False):
        # Not the memories: appended in SQL below, they are never decoded here, however many events they hold.
        being = (
            BaseBeing.objects.select_for_update()
            .only("soul", "self_awareness", "energy_level")
            .filter(soul=execution.being_id)
            .first()
        )
        if being is None:
            return
        error = execution.error or {}
        succeeded = execution.status == SUCCEEDED
        neutral = execution.status == STATUS.REJECTED or error.get("type") == CANCELLED
        at = (execution.finished_at or timezone.now()).isoformat()
        awareness = dict(being.self_awareness) if isinstance(being.self_awareness, dict) else {}
        runs = _count(awareness, "runs") + 1
        successes = _count(awareness, "successes") + succeeded
        failures = _count(awareness, "failures") + (not succeeded)
        mean = awareness.get("mean_duration_ms")
        mean = float(mean) if isinstance(mean, int | float) else None
        if execution.duration_ms is not None:
            mean = execution.duration_ms if mean is None else mean + (execution.duration_ms - mean) / runs
        awareness.update(
            runs=runs,
            successes=successes,
            failures=failures,
            success_rate=round(successes / runs, 4),
            mean_duration_ms=None if mean is None else round(mean, 3),
            last_run_at=at,
        )
        if not succeeded:
            awareness["last_error"] = {
                "type": error.get("type", execution.status),
                "message": error.get("message", ""),
                "execution": str(execution.pk),
                "at": at,
            }
        # Small: every run rewrites the memories, and the change log keeps them before and after.
        event: dict[str, Any] = {
            "event": "run",
            "at": at,
            "execution": str(execution.pk),
            "status": execution.status,
            "version": execution.version,
            "duration_ms": execution.duration_ms,
        }
        if execution.environment:
            event["environment"] = execution.environment
        if not succeeded:
            event["error"] = error.get("type", execution.status)
        energy = being.energy_level or 0
        if succeeded and energy < ENERGY_MAX:
            energy += 1
        elif not succeeded and not neutral and energy > ENERGY_MIN:
            energy -= 1
        context_apply(actor=actor, operation="being_run")
        params: dict[str, Any] = {
            "soul": being.soul,
            "event": Jsonb([event]),
            "awareness": Jsonb(awareness),
            "energy": energy,
            "limit": Jsonb({"n": max(0, settings.LUXOS_MEMORY_LIMIT)}),
        }
        with connection.cursor() as cursor:
            cursor.execute(RECORD_SQL, params)


def _memories_tail(events: str) -> str:
    """SQL for ``events`` (a jsonb array) with the run's event appended, the newest ``limit`` kept.

    A JSON path slice reads the array once; a subquery over its elements would detoast it for each.
    """
    return f"jsonb_path_query_array({events} || %(event)s, 'lax $[last - $n + 1 to last]', %(limit)s)"


# services.memories_append's rule, in SQL: memories kept as an object take the event under "events".
RECORD_SQL = f"""
UPDATE base_beings SET
    memories = CASE
        WHEN jsonb_typeof(memories) = 'object' THEN jsonb_set(memories, '{{events}}', {
    _memories_tail(
        "(CASE WHEN jsonb_typeof(memories -> 'events') = 'array' THEN memories -> 'events' ELSE '[]'::jsonb END)"
    )
})
        ELSE {_memories_tail("(CASE WHEN jsonb_typeof(memories) = 'array' THEN memories ELSE '[]'::jsonb END)")}
    END,
    self_awareness = %(awareness)s,
    energy_level = %(energy)s
WHERE soul = %(soul)s
"""


def _count(awareness: dict[str, Any], key: str) -> int:
    value = awareness.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


# --- the reaper ------------------------------------------------------------------------------------


# --- the health of the sandbox ---------------------------------------------------------------------
