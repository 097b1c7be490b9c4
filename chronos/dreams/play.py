"""The dream itself: its plan run in one transaction that no other session ever sees, then rolled back.

The transaction is REPEATABLE READ, and its first statement reads the database snapshot it will see
throughout: that snapshot is the dream's fork point, exactly the state its steps start from. The
steps write through the real services (the capture triggers log them, as any write); before the
rollback the changes the transaction captured are read back, to be kept as the dream timeline's own
history (``chronos.dreams.services``). ``statement_timeout`` and a deadline checked around every step
bound it by the dream's seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg.errors
from django.db import OperationalError, connection, transaction

from beings.evolution import being_evolve
from beings.executions.selectors import SUCCEEDED, target_resolve
from beings.executions.services import execution_admit, execution_create, limits_snapshot
from beings.executions.worker import execution_run
from chronos.dreams.exceptions import DreamTimeoutError
from chronos.models import Dream
from luxsite.errors import DomainError
from luxsite.permissions import User

# Below this, no execution is started: the sandbox could not run it before the deadline.
MIN_RUN_SECONDS = 0.1


@dataclass
class Played:
    """What a dream did, read back before its transaction was rolled back."""

    snapshot: str  # the fork point: the snapshot the whole dream saw
    position: int
    at: datetime
    timeline_id: int  # the timeline that was live, which it forked from
    results: list[dict[str, Any]] = field(default_factory=list)
    transactions: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)


def dream_play(*, dream: Dream, actor: User, worker: str) -> Played:
    """Run ``dream``'s plan in one transaction, read back what it captured, and roll everything back.

    A step refused or failing counts as a failed step and is undone alone (a savepoint); running past
    the dream's seconds raises ``DreamTimeoutError``, after the rollback.
    """
    deadline = time.monotonic() + dream.seconds
    try:
        with transaction.atomic():
            played = _fork(dream.seconds)
            for number, step in enumerate(dream.plan, start=1):
                _in_time(deadline, dream)
                played.results.append(
                    _step_run(number, step, dream=dream, actor=actor, worker=worker, deadline=deadline)
                )
                _in_time(deadline, dream)
            played.transactions, played.changes = _captured()
            transaction.set_rollback(True)
    except OperationalError as error:
        if isinstance(error.__cause__, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable):
            raise DreamTimeoutError(
                f"the dream ran past its {dream.seconds} s (a statement was cancelled): nothing of it was kept"
            ) from None
        raise
    return played


def _fork(seconds: int) -> Played:
    """Isolation first, then the snapshot: the first statement fixes what the whole transaction sees."""
    with connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute(
            "SELECT s::text, (SELECT last_value FROM chronos_change_id_seq), now(), "
            "(SELECT id FROM chronos_timeline WHERE live), "
            "set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true) "
            "FROM pg_current_snapshot() AS s",
            [f"{seconds * 1000}ms", f"{seconds * 1000}ms"],
        )
        snapshot, position, at, timeline_id, _, _ = cursor.fetchone()
    return Played(snapshot=snapshot, position=position, at=at, timeline_id=timeline_id)


def _in_time(deadline: float, dream: Dream) -> None:
    if time.monotonic() > deadline:
        raise DreamTimeoutError(f"the dream ran past its {dream.seconds} s: nothing of it was kept")


def _step_run(
    number: int, step: dict[str, Any], *, dream: Dream, actor: User, worker: str, deadline: float
) -> dict[str, Any]:
    """One step in a savepoint: its outcome, compared with what the plan expects, and its duration."""
    kind = "execute" if "execute" in step else "evolve"
    outcome: dict[str, Any] = {"step": number, "kind": kind, "target": step[kind], "expected": step.get("expect")}
    started = time.monotonic()
    try:
        with transaction.atomic():
            if kind == "execute":
                outcome.update(_execute(step, actor=actor, worker=worker, deadline=deadline))
            else:
                outcome.update(_evolve(step, dream=dream, actor=actor))
    except DreamTimeoutError:
        raise
    except DomainError as error:
        outcome.update(ok=False, result=None, error={"type": error.code, "message": error.detail})
    outcome["duration_ms"] = round((time.monotonic() - started) * 1000, 3)
    return outcome


def _execute(step: dict[str, Any], *, actor: User, worker: str, deadline: float) -> dict[str, Any]:
    """Run the being's code as it stands in the dream, in the sandbox, bounded by what is left of the dream."""
    left = deadline - time.monotonic()
    if left < MIN_RUN_SECONDS:
        raise DreamTimeoutError("no time was left for this execution")
    target = target_resolve(user=actor, ref=step["execute"])
    args, kwargs = execution_admit(target=target, args=step.get("args"), kwargs=step.get("kwargs"), actor=actor)
    limits = limits_snapshot()
    limits["wall_seconds"] = round(min(float(limits["wall_seconds"]), left), 3)
    execution = execution_create(target=target, args=args, kwargs=kwargs, actor=actor, parent=None, limits=limits)
    run = execution_run(execution_id=execution.pk, worker=worker, queue="dream")
    succeeded = run.status == SUCCEEDED
    ok = succeeded and ("expect" not in step or run.result == step["expect"])
    return {
        "ok": ok,
        "status": run.status,
        "result": run.result,
        "error": run.error,
        "soul": str(run.being_id),
        "hash": run.hash,
    }


def _evolve(step: dict[str, Any], *, dream: Dream, actor: User) -> dict[str, Any]:
    """A new source through the real evolve service: an evolution in place or a mutation (a new being)."""
    being = target_resolve(user=actor, ref=step["evolve"]).being
    evolution = being_evolve(
        being=being, source=step["source"], reason=step.get("reason") or f"dream {dream.name}", actor=actor
    )
    made = evolution.being
    ok = "expect" not in step or evolution.kind == step["expect"]
    result = {"kind": evolution.kind, "soul": str(made.soul), "version": made.version, "hash": made.hash}
    return {
        "ok": ok,
        "status": evolution.kind,
        "result": result,
        "error": None,
        "soul": str(being.soul),
        "hash": made.hash,
    }


def _captured() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The contexts and changes this transaction captured, as the log holds them (JSON as text: exact)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id_if_assigned()::text::bigint")
        xid = cursor.fetchone()[0]
        if xid is None:
            return [], []
        cursor.execute(
            "SELECT id, kind, context::text, started_at FROM chronos_transaction WHERE xid = %s ORDER BY id", [xid]
        )
        transactions = [
            {"id": id, "kind": kind, "context": context, "started_at": started}
            for id, kind, context, started in cursor.fetchall()
        ]
        cursor.execute(
            'SELECT transaction_id, "table", row_id, operation, data::text FROM chronos_change '
            "WHERE xid = %s AND NOT replay ORDER BY id",
            [xid],
        )
        changes = [
            {"transaction": transaction_id, "table": table, "row_id": str(row_id), "operation": operation, "data": data}
            for transaction_id, table, row_id, operation, data in cursor.fetchall()
        ]
    return transactions, changes
