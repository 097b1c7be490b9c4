"""Starting and cancelling runs; what a finished run leaves in its being is folded in by ``fold``."""

from __future__ import annotations

import dataclasses
import functools
import logging
import uuid
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from beings import genotype, validation
from beings.exceptions import (
    BeingNotRunnableError,
    ExecutionFinishedError,
    ExecutionInputInvalidError,
)

# run_record stays importable here, where benchmarks and tests have always found it.
from beings.executions.fold import CANCELLED, being_fold_soon
from beings.executions.fold import run_record as run_record
from beings.executions.queue import backlog_steps, execution_enqueuer, execution_wait, priority_of, run_error
from beings.executions.selectors import (
    KILLED,
    QUEUED,
    RUNNABLE,
    RUNNING,
    Target,
    execution_allowed,
    execution_allowed_sql,
    execution_fetch,
    execution_get,
)
from beings.executions.signals import (
    execution_cancel_signal,
    execution_signal,
    execution_signal_subscribe,
    execution_signal_unsubscribe,
)
from beings.models import (
    Execution,
)
from beings.runtime.jobs import SandboxLimits
from luxsite.errors import PermissionDenied
from luxsite.permissions import User
from luxsite.statements import commits_flushed, prepared

logger = logging.getLogger(__name__)

NOT_ALLOWED = "you may not execute this being"


# --- queueing --------------------------------------------------------------------------------------


def execution_start(
    *,
    target: Target,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    actor: User,
    execution_id: uuid.UUID | None = None,
    durable: bool = True,
) -> Execution:
    """Record a run of ``target`` by ``actor`` (who needs ``beings.execute_being``) and queue it on commit.

    One statement checks the permission, counts the starter's backlog and inserts the row.
    Runs nested in it (``execution()`` in being code) are recorded and run by its worker, inline.
    Not ``durable``, its own commit does not wait for the disk: the caller makes sure it is there
    before it gives the run's id out (``execution_call``).
    """
    args, kwargs = execution_admit(target=target, args=args, kwargs=kwargs, actor=actor, permission=False)
    execution = execution_create(
        target=target,
        args=args,
        kwargs=kwargs,
        actor=actor,
        parent=None,
        limits=limits_snapshot(),
        permission=True,
        execution_id=execution_id,
        durable=durable,
    )
    transaction.on_commit(execution_enqueuer(execution))
    return execution


def execution_call(
    *, target: Target, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None, actor: User, wait: float
) -> Execution:
    """``execution_start``, then the run once it has finished, or as it is after ``wait`` seconds.

    What the API's ``wait``, the agent and ``beings execute --wait`` do. The wait asks for the run's
    signal before the run is sent, so it needs neither a round trip to subscribe nor a look at the row.

    Outside a transaction, the insert commits without waiting for the disk, so the run's message
    leaves as soon as the row is visible. Its id is still given out only once it is on disk: a run
    that finished was finished by a durable commit, which flushed everything written before it;
    otherwise (the wait ended first) the session waits for the flush before returning.
    """
    if wait <= 0:
        return execution_start(target=target, args=args, kwargs=kwargs, actor=actor)
    execution_id = uuid.uuid4()
    durable = connection.in_atomic_block  # inside a transaction, its commit is the one that counts
    execution_signal_subscribe(execution_id)
    try:
        execution = execution_start(
            target=target, args=args, kwargs=kwargs, actor=actor, execution_id=execution_id, durable=durable
        )
    except BaseException:
        execution_signal_unsubscribe(execution_id)
        raise
    execution = execution_wait(execution=execution, timeout=wait)
    if not durable and not execution.finished:
        commits_flushed()
    return execution


def execution_admit(
    *, target: Target, args: list[Any] | None, kwargs: dict[str, Any] | None, actor: User, permission: bool = True
) -> tuple[list[Any], dict[str, Any]]:
    """The checks every run passes before it is recorded: permission (unless the insert checks it), a runnable
    kind, clean inputs."""
    if permission and not execution_allowed(user_id=actor.pk if actor.is_authenticated else None, soul=target.being.pk):
        raise PermissionDenied(NOT_ALLOWED)
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
    replay_of: Execution | None = None,
    permission: bool = False,
    execution_id: uuid.UUID | None = None,
    durable: bool = True,
) -> Execution:
    """Insert the run's row in one statement, which also counts a top-level starter's backlog for its
    priority (``priority_of``) and, with ``permission``, refuses a starter who may not run the being."""
    workload = target.genotype.get("workload", genotype.CPU)
    user_id = actor.pk if actor.is_authenticated else None
    execution = Execution(
        id=execution_id or uuid.uuid4(),
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
        parent=parent,
        replay_of=replay_of,
        root_id=(parent.root_id or parent.pk) if parent is not None else None,
        depth=parent.depth + 1 if parent is not None else 0,
        limits=limits,
        actor_id=user_id,
        actor_name=str(getattr(actor, "username", "")),
    )
    energy = target.being.energy_level
    # A nested run takes its being's energy as it is; a top-level one a step less per run already waiting.
    most = backlog_steps(energy) if parent is None and user_id is not None else 0
    params = {field.attname: field.get_db_prep_save(getattr(execution, field.attname), connection) for field in _set()}
    params |= {
        "priorities": [priority_of(energy, backlog=waiting) for waiting in range(most + 1)],
        "most": most,
        "top": parent is None,
        "checked": permission,
        "lazy": not durable,
        "user": user_id,
        "soul": target.being.pk,
    }
    with prepared(_insert_sql(), params) as cursor:
        row = cursor.fetchone()
    if row is None:
        raise PermissionDenied(NOT_ALLOWED)
    execution.queued_at, execution.sent_at, execution.priority = row
    execution._state.adding = False
    execution._state.db = connection.alias
    return execution


# Written by the statement: the clock (runs queued in one transaction keep their order), the time its message
# leaves (at this transaction's commit; the reaper sends it again if it is lost), and the priority.
_COMPUTED = ("queued_at", "sent_at", "priority")


def _set() -> list[Any]:
    return [field for field in Execution._meta.concrete_fields if field.attname not in _COMPUTED]


@functools.cache
def _insert_sql() -> str:
    columns = [connection.ops.quote_name(field.column) for field in _set()]
    values = [f"%({field.attname})s" for field in _set()]
    return f"""
WITH backlog AS (
    SELECT count(*)::int AS waiting FROM (
        SELECT 1 FROM executions WHERE actor_id = %(user)s AND status = 'queued' AND parent_id IS NULL LIMIT %(most)s
    ) queued
)
INSERT INTO executions ({", ".join(columns)}, queued_at, sent_at, priority)
SELECT {", ".join(values)}, clock_timestamp(), CASE WHEN %(top)s THEN clock_timestamp() END,
    (%(priorities)s::smallint[])[backlog.waiting + 1]
FROM backlog
WHERE (NOT %(checked)s OR ({execution_allowed_sql()}))
    AND CASE WHEN %(lazy)s THEN set_config('synchronous_commit', 'off', true) IS NOT NULL ELSE true END
RETURNING queued_at, sent_at, priority
"""


# --- cancelling ------------------------------------------------------------------------------------


def execution_cancel(*, execution: Execution, actor: User) -> Execution:
    """Stop a queued or running execution and the nested runs under it; 409 when it has finished.

    Only the user who started the run and superusers may (the being's owner sees that it runs, not
    what it was given). A queued run will not start. A running one is marked killed at once: its
    result will be discarded and it may make no further call or summon: its id, published on the
    channel of the worker that claimed it, ends its sandbox child, and ``cancelled`` on its own
    channel wakes every waiter.
    """
    execution = execution_get(id=execution.pk, user=actor)
    superuser = bool(getattr(actor, "is_superuser", False))
    if not (actor.is_authenticated and (superuser or execution.actor_id == actor.pk)):
        raise PermissionDenied("only the user who started the run, or a superuser, may cancel it")
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
        running: dict[str, list[uuid.UUID]] = {}
        for worker, running_id in Execution.objects.filter(pk__in=cancelled, status=RUNNING).values_list(
            "worker", "pk"
        ):
            running.setdefault(worker, []).append(running_id)
        now = timezone.now()
        Execution.objects.filter(pk__in=cancelled).update(status=KILLED, error=error, finished_at=now)
        if row.started_at is not None:
            Execution.objects.filter(pk=row.pk).update(duration_ms=(now - row.started_at).total_seconds() * 1000)
        for worker, running_ids in running.items():
            execution_cancel_signal(worker, running_ids)
        for stopped_id in cancelled:
            execution_signal(stopped_id, "cancelled")
        for being_id in set(Execution.objects.filter(pk__in=cancelled).values_list("being_id", flat=True)):
            being_fold_soon(being_id)
    return execution_fetch(execution.pk)


def _ended(status: str) -> str:
    return {
        "succeeded": "succeeded",
        "failed": "failed",
        "timeout": "timed out",
        "killed": "was killed",
        "rejected": "was rejected",
    }.get(status, status)
