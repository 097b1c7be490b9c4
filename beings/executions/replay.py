"""Replaying a run: its hash, inputs and ``self`` again as a new execution, and whether it came out the same.

The replay is a top-level run with ``replay_of`` set to the run it repeats. Its ``self`` is the
being's row as it was when that run started, rebuilt by chronos from the change log, and kept in the
replay's ``limits["self"]``, where the worker's job takes it (``execution_job``: a run with
``replay_of`` runs with that snapshot as ``self`` and its ``attributes``, not the being's row now).
The replay of a replay keeps the snapshot the replay had.

A being that reads ``random`` or the clock answers differently: the two runs' status, result, error
type and output are compared, and any difference says the being is not deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from beings import selectors
from beings.executions.jobs import genotype_pinned
from beings.executions.queue import execution_enqueuer
from beings.executions.selectors import Target, executions_visible
from beings.executions.services import execution_admit, execution_create, limits_snapshot
from beings.executions.visibility import execution_contents_visible
from beings.models import Execution
from chronos.points import point_resolve
from chronos.selectors import row_at
from luxsite.errors import Conflict, DomainError, PermissionDenied
from luxsite.permissions import User

# The key of a replay's ``limits`` that holds the ``self`` snapshot its run must see.
SELF_KEY = "self"


class ExecutionNotReplayableError(Conflict):
    """The run cannot be replayed: it has not finished, never started, or its ``self`` cannot be rebuilt."""

    code = "execution_not_replayable"


@dataclass(frozen=True)
class ReplayComparison:
    """How a finished replay compares with the run it repeats."""

    same_status: bool
    same_result: bool
    same_output: bool

    @property
    def deterministic(self) -> bool:
        return self.same_status and self.same_result and self.same_output


def execution_replay(*, execution: Execution, actor: User) -> Execution:
    """Queue a replay of ``execution`` by ``actor``: the same hash, inputs and ``self``, linked by ``replay_of``.

    ``actor`` must be one who sees the run's inputs (its starter or a superuser: they become the
    replay's) and may run the being now (``beings.execute_being``). The run must have started and
    finished: a replay is compared with it.
    """
    if not execution_contents_visible(execution=execution, user=actor):
        raise PermissionDenied(
            "only the user who started the run, or a superuser, may replay it: its inputs are theirs"
        )
    if not execution.finished:
        raise ExecutionNotReplayableError(
            f"the execution is still {execution.status}: replay it once it has finished, to compare the two"
        )
    if execution.started_at is None:
        raise ExecutionNotReplayableError(f"the execution never started (it was {execution.status} while queued)")
    being = selectors.being_get(soul=execution.being_id, user=actor)
    target = Target(
        being=being,
        hash=execution.hash,
        version=execution.version,
        genotype=genotype_pinned(execution, being),
        environment=execution.environment,
    )
    snapshot = self_snapshot(execution)
    limits = {key: value for key, value in (execution.limits or limits_snapshot()).items() if key != SELF_KEY}
    with transaction.atomic():
        args, kwargs = execution_admit(
            target=target, args=execution.args, kwargs=execution.kwargs, actor=actor, permission=False
        )
        replay = execution_create(
            target=target,
            args=args,
            kwargs=kwargs,
            actor=actor,
            parent=None,
            limits={**limits, SELF_KEY: snapshot},
            replay_of=execution,
            permission=True,
        )
        transaction.on_commit(execution_enqueuer(replay))
    return replay


def self_snapshot(execution: Execution) -> dict[str, Any]:
    """The ``self`` the run saw, less what the run itself names (soul, version, hash): the being when it started.

    Read from chronos at the run's ``started_at``; a replay's own snapshot for a replay.
    """
    kept = execution.limits.get(SELF_KEY) if isinstance(execution.limits, dict) else None
    if execution.replay_of_id is not None and isinstance(kept, dict):
        return dict(kept)
    assert execution.started_at is not None
    try:
        point = point_resolve(execution.started_at.isoformat())
        row = row_at(table="base_beings", row_id=execution.being_id, point=point)
    except DomainError as error:
        raise ExecutionNotReplayableError(
            f"the being as it was when the run started cannot be rebuilt: {error.detail}"
        ) from None
    if row is None:
        raise ExecutionNotReplayableError(f"being {execution.being_id} did not exist when the run started")
    genesis = row.get("genesis")
    genesis = genesis if isinstance(genesis, dict) else {}
    return {
        "name": str(genesis.get("name", "")),
        "tags": list(row.get("tags") or []),
        "energy_level": row.get("energy_level") or 0,
        "attributes": row.get("attributes") if row.get("attributes") is not None else {},
        "self_awareness": row.get("self_awareness") if row.get("self_awareness") is not None else {},
    }


def replay_compare(*, replay: Execution, original: Execution) -> ReplayComparison | None:
    """How ``replay`` came out against ``original``; None until both have finished."""
    if not (replay.finished and original.finished):
        return None
    return ReplayComparison(
        same_status=replay.status == original.status and _error_type(replay) == _error_type(original),
        same_result=replay.result == original.result,
        same_output=replay.output == original.output and replay.output_truncated == original.output_truncated,
    )


def _error_type(execution: Execution) -> str:
    error = execution.error
    return str(error.get("type", "")) if isinstance(error, dict) else ""


def replay_pair(*, execution: Execution, user: User) -> tuple[Execution | None, Execution | None]:
    """The run ``execution`` replays and its newest replay, each if ``user`` may see it (else None)."""
    visible = executions_visible(user=user, queryset=Execution.objects.all())
    original = visible.filter(pk=execution.replay_of_id).first() if execution.replay_of_id else None
    newest = visible.filter(replay_of_id=execution.pk).order_by("-queued_at", "-id").first()
    return original, newest
