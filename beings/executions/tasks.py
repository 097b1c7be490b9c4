"""Celery tasks of executions; their names (``beings.tasks.…``) stay as they were, for queued messages."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_process_init

from beings.executions import fold as execution_fold
from beings.executions import reaper as execution_reaper
from beings.executions import worker as execution_worker
from beings.runtime.jobs import SandboxUnavailable
from beings.runtime.sandbox import sandbox_default
from chronos.context import change_context
from luxsite.errors import DomainError


@shared_task(
    bind=True, name="beings.tasks.execution_run", acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def execution_run_task(self: Task[[str], dict[str, Any]], execution_id: str) -> dict[str, Any]:
    """Run a queued execution in the sandbox (``execution_run``); a finished one is never run again.

    Queued on the being's workload queue by ``execution_start``; the worker's name and the queue
    that delivered the message are recorded on the run. Its result is not stored: waiters follow
    the execution's row and its completion signal.
    """
    delivery = self.request.delivery_info or {}
    try:
        with change_context(door="task"):
            execution = execution_worker.execution_run(
                execution_id=uuid.UUID(execution_id),
                worker=self.request.hostname or "",
                queue=str(delivery.get("routing_key") or ""),
            )
    except DomainError as error:
        return {"status": "refused", "code": error.code, "detail": error.detail}
    return {"execution": str(execution.pk), "status": execution.status}


@shared_task(name="beings.tasks.executions_reap")
def executions_reap_task() -> dict[str, int]:
    """Beat, every 10 s: lost messages sent again; runs left running by a dead worker retried once, then killed."""
    with change_context(door="task"):
        return {"reaped": execution_reaper.executions_reap()}


@shared_task(name="beings.tasks.being_fold", ignore_result=True)
def being_fold_task(soul: str) -> int:
    """The being's finished runs written into its row (``being_fold``), a second after the first of them ended."""
    with change_context(door="task"):
        return execution_fold.being_fold(uuid.UUID(soul))


@shared_task(name="beings.tasks.beings_fold_sweep", ignore_result=True)
def beings_fold_sweep_task() -> int:
    """Beat, every few seconds: the runs whose fold never came (a worker or Redis lost it) folded now."""
    with change_context(door="task"):
        return execution_fold.beings_fold_sweep()


@worker_process_init.connect
def sandbox_start(**_: Any) -> None:
    """Boot the sandbox's zygote when a prefork process starts, so that its first run does not pay for it."""
    try:
        sandbox_default().start()
    except SandboxUnavailable as error:
        # The worker still serves other tasks; each run will report the sandbox as unavailable.
        logging.getLogger(__name__).error("the sandbox did not start: %s", error)
