"""Executions over HTTP: run a being (by soul, hash or alias), follow a run, list runs, cancel one.

One router mounted at the API's root (``luxsite/api.py``): its run routes live under the
``/beings/``, ``/souls/`` and ``/aliases/`` paths of the routers that own those resources.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from beings import selectors
from beings.exceptions import ExecutionNotFoundError
from beings.executions import queue as execution_queue
from beings.executions import replay as execution_replays
from beings.executions import selectors as execution_selectors
from beings.executions import services as execution_services
from beings.executions.schemas import ExecuteIn, ExecutionOut, ExecutionPageOut, ReplayIn, ReplayOut, RunIn
from beings.executions.visibility import execution_shown
from beings.models import Execution
from luxsite.api_schemas import ERRORS, described

router = Router(tags=["executions"])

RUN_RESPONSES = described(
    {
        200: "The run finished within `wait` seconds: its outcome.",
        202: "The run is queued (or still running): follow it at `GET /api/executions/{id}`.",
    }
)


def _run(request: HttpRequest, target: execution_selectors.Target, payload: RunIn) -> Status[Execution]:
    execution = execution_services.execution_call(
        target=target, args=payload.args, kwargs=payload.kwargs, actor=request.user, wait=payload.wait
    )
    return Status(200 if execution.finished else 202, execution)  # the starter's own run: shown whole


@router.post(
    "/beings/{soul}/execute",
    response={200: ExecutionOut, 202: ExecutionOut, **ERRORS},
    openapi_extra=RUN_RESPONSES,
)
def being_execute(request: HttpRequest, soul: uuid.UUID, payload: ExecuteIn) -> Status[Execution]:
    """Run a being's current version, or the version `hash` names; needs `beings.execute_being` on it."""
    target = execution_selectors.target_resolve(ref=str(soul), user=request.user, hash=payload.hash)
    return _run(request, target, payload)


@router.post(
    "/souls/{hash}/execute",
    response={200: ExecutionOut, 202: ExecutionOut, **ERRORS},
    openapi_extra=RUN_RESPONSES,
)
def soul_execute(request: HttpRequest, hash: str, payload: RunIn) -> Status[Execution]:
    """Run the exact version a hash (or a unique prefix of at least 12) names."""
    target = execution_selectors.target_resolve(user=request.user, hash=hash)
    return _run(request, target, payload)


@router.post(
    "/aliases/{alias}/execute",
    response={200: ExecutionOut, 202: ExecutionOut, **ERRORS},
    openapi_extra=RUN_RESPONSES,
)
def alias_execute(
    request: HttpRequest,
    alias: str,
    payload: ExecuteIn,
    environment: str | None = Query(
        None,
        description="Run the hash promoted there (e.g. production); "
        "by default the newest being with this alias, current version.",
    ),
) -> Status[Execution]:
    """Run an alias: in an environment the hash promoted there, pinned; otherwise its newest being."""
    target = execution_selectors.target_resolve(
        ref=alias, user=request.user, environment=environment, hash=payload.hash
    )
    return _run(request, target, payload)


class ExecutionQuery(Schema):
    being: uuid.UUID | None = Field(None, description="Runs of this being (soul).")
    status: Execution.Status | None = None
    environment: str | None = Field(None, description="One of LUXOS_ENVIRONMENTS, or `development`.")
    after: str | None = Field(None, description="The `next` cursor of the previous page.")
    limit: int = Field(50, ge=1, le=500)


@router.get("/executions", response={200: ExecutionPageOut, **ERRORS})
def execution_list(request: HttpRequest, query: Query[ExecutionQuery]) -> dict[str, Any]:
    """Runs you started and runs of beings you may change, newest first, a page at a time.

    Of another user's run of your being you see that it happened (`contents_hidden`): its inputs,
    result and output are its starter's (and superusers').
    """
    being = selectors.being_get(soul=query.being, user=request.user) if query.being is not None else None
    page = execution_selectors.execution_list(
        user=request.user,
        being=being,
        status=query.status,
        environment=query.environment,
        after=query.after,
        limit=query.limit,
    )
    return {
        "items": [execution_shown(execution, user=request.user) for execution in page.items],
        "next": page.next_cursor,
    }


@router.get("/executions/{id}", response={200: ExecutionOut, **ERRORS})
def execution_detail(request: HttpRequest, id: uuid.UUID) -> Execution:
    """One run: its status, and once finished its result or error, output and timings.

    The inputs, result, output and error message only for its starter (and superusers): the owner of
    the being sees another user's run with `contents_hidden`.
    """
    return execution_shown(execution_selectors.execution_get(id=id, user=request.user), user=request.user)


@router.post("/executions/{id}/cancel", response={200: ExecutionOut, **ERRORS})
def execution_cancel(request: HttpRequest, id: uuid.UUID) -> Execution:
    """Stop a queued or running run (and the runs nested in it); 409 once it has finished.

    A running run is marked killed at once and its result discarded; its sandbox process ends
    within the run's wall-clock limit.
    """
    execution = execution_selectors.execution_get(id=id, user=request.user)
    cancelled = execution_services.execution_cancel(execution=execution, actor=request.user)
    return execution_shown(cancelled, user=request.user)


REPLAY_RESPONSES = described(
    {
        200: "The replay finished within `wait` seconds: it and the run it repeats, and whether they match.",
        202: "The replay is queued (or still running): follow it at `GET /api/executions/{id}/comparison`.",
        403: "You did not start the run (its inputs are its starter's; superusers excepted), "
        "or you may not run the being (`beings.execute_being`).",
        404: "No run with this id that you may see, or its being is gone.",
        409: "The run has not finished, never started, its version can no longer be rebuilt, "
        "or the being as it was when the run started cannot be (`execution_not_replayable`).",
    }
)


def _replay_out(replay: Execution, original: Execution, user: Any) -> dict[str, Any]:
    comparison = execution_replays.replay_compare(replay=replay, original=original)
    return {
        "replay": execution_shown(replay, user=user),
        "original": execution_shown(original, user=user),
        "deterministic": None if comparison is None else comparison.deterministic,
        "same_status": None if comparison is None else comparison.same_status,
        "same_result": None if comparison is None else comparison.same_result,
        "same_output": None if comparison is None else comparison.same_output,
    }


@router.post(
    "/executions/{id}/replay",
    response={200: ReplayOut, 202: ReplayOut, **ERRORS},
    openapi_extra=REPLAY_RESPONSES,
)
def execution_replay(request: HttpRequest, id: uuid.UUID, payload: ReplayIn) -> Status[dict[str, Any]]:
    """Run a finished run again: the same hash, inputs and `self` (the being as it was when the run started).

    The replay is a new run with `replay_of` set; once both have finished, `deterministic` says whether
    they ended the same way with the same result and output (a being that reads `random` or the clock
    does not). Only the run's starter (or a superuser) may replay it, and only while they may run the being.
    """
    original = execution_selectors.execution_get(id=id, user=request.user)
    replay = execution_replays.execution_replay(execution=original, actor=request.user)
    if payload.wait > 0:
        replay = execution_queue.execution_wait(execution=replay, timeout=payload.wait)
    return Status(200 if replay.finished else 202, _replay_out(replay, original, request.user))


@router.get("/executions/{id}/comparison", response={200: ReplayOut, **ERRORS})
def execution_comparison(request: HttpRequest, id: uuid.UUID) -> dict[str, Any]:
    """A replay beside the run it repeats, and whether they match (null while either runs); 404 for a run that
    replays none or that you may not see."""
    replay = execution_selectors.execution_get(id=id, user=request.user)
    if replay.replay_of_id is None:
        raise ExecutionNotFoundError(f"execution {id} is not a replay: it repeats no run")
    original = execution_selectors.execution_get(id=replay.replay_of_id, user=request.user)
    return _replay_out(replay, original, request.user)
