"""The Celery queue of runs: a priority from energy, the task sent by name on commit, waiting for a run to end."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from celery.exceptions import TimeoutError as ResultTimeout
from django.db.models.functions import Now
from kombu.exceptions import OperationalError as BrokerError

from beings.executions.selectors import QUEUED, STATUS, execution_fetch
from beings.models import Execution
from luxsite.celery import app
from luxsite.permissions import User

logger = logging.getLogger(__name__)

# A run is tried at most this often: once, and once more after its worker died.
MAX_ATTEMPTS = 2
PRIORITY_LEVELS = 10
WAIT_FIRST_SECONDS, WAIT_LONGEST_SECONDS = 0.02, 0.2
# Sent by name: the tasks module imports the services that queue runs.
EXECUTION_RUN_TASK = "beings.tasks.execution_run"


def priority_of(energy: int | None, *, backlog: int = 0) -> int:
    """A being's energy as a run priority, 0..9, higher first: ten energy points a step.

    Each run the starter already has waiting takes a step off, so a stream of one user's runs sinks
    to the common priority 0 and waits its turn there: energy orders a few runs, it cannot starve others.
    """
    return min(PRIORITY_LEVELS - 1, max(0, (energy or 0) // 10 - backlog))


def backlog(actor: User) -> int:
    """How many top-level runs ``actor`` has queued, counted up to the number of priority levels."""
    if not actor.is_authenticated:
        return 0
    waiting = Execution.objects.filter(actor_id=actor.pk, status=QUEUED, parent__isnull=True)
    return waiting[:PRIORITY_LEVELS].count()


def broker_priority(priority: int) -> int:
    """The Redis transport pops priority 0 first (``priority_steps`` in settings): the scale turned over."""
    return PRIORITY_LEVELS - 1 - priority


def execution_enqueuer(execution: Execution) -> Callable[[], None]:
    """The on-commit callback that sends the task: ids and plain values only, never the instance."""
    execution_id, queue, task_id = str(execution.pk), execution.queue, execution.task_id
    priority = broker_priority(execution.priority)

    def enqueue() -> None:
        try:
            app.send_task(EXECUTION_RUN_TASK, args=(execution_id,), queue=queue, priority=priority, task_id=task_id)
        except BrokerError as error:
            # Nothing will ever take the run: say so rather than leave it queued.
            logger.error("execution %s could not be queued: %s", execution_id, error)
            Execution.objects.filter(pk=execution_id, status=QUEUED).update(
                status=STATUS.REJECTED,
                finished_at=Now(),
                error=run_error("BrokerUnavailable", f"the run could not be queued: {type(error).__name__}"),
            )

    return enqueue


def execution_wait(*, execution: Execution, timeout: float) -> Execution:
    """``execution`` read again once it has finished, or as it is when ``timeout`` seconds have passed.

    The task's result (published by Redis) wakes the wait the moment a worker is done; the row is
    then polled, 20 ms growing to 200 ms apart, for what ends a run without its task (a cancel).
    """
    deadline = time.monotonic() + max(0.0, timeout)
    execution_id = execution.pk
    if execution.finished or timeout <= 0:
        return execution_fetch(execution_id)
    if execution.task_id and execution.depth == 0:
        with contextlib.suppress(ResultTimeout):
            app.AsyncResult(execution.task_id).get(timeout=timeout, propagate=False, disable_sync_subtasks=False)
    pause = WAIT_FIRST_SECONDS
    while True:
        execution = execution_fetch(execution_id)
        left = deadline - time.monotonic()
        if execution.finished or left <= 0:
            return execution
        time.sleep(min(pause, left))
        pause = min(pause * 2, WAIT_LONGEST_SECONDS)


def run_error(error_type: str, message: str) -> dict[str, str]:
    return {"type": error_type, "message": message, "traceback": ""}
