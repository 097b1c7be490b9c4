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
from beings.executions import queue as execution_queue
from beings.executions import selectors as execution_selectors
from beings.executions import services as execution_services
from beings.executions.schemas import ExecuteIn, ExecutionOut, ExecutionPageOut, RunIn
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
    execution = execution_services.execution_start(
        target=target, args=payload.args, kwargs=payload.kwargs, actor=request.user
    )
    if payload.wait > 0:
        execution = execution_queue.execution_wait(execution=execution, timeout=payload.wait)
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
