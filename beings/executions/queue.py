"""The Celery queue of runs: a priority from energy, the task sent by name on commit, waiting for a run to end."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction
from django.db.models.functions import Now
from kombu.exceptions import OperationalError as BrokerError

from beings.executions.selectors import QUEUED, STATUS, execution_fetch, execution_finished_get
from beings.executions.signals import (
    execution_signal,
    execution_signal_confirm,
    execution_signal_wait,
    outcome_apply,
)
from beings.models import Execution
from luxsite.celery import app

logger = logging.getLogger(__name__)

# A run is tried at most this often: once, and once more after its worker died.
MAX_ATTEMPTS = 2
PRIORITY_LEVELS = 10
# Sent by name: the tasks module imports the services that queue runs.
EXECUTION_RUN_TASK = "beings.tasks.execution_run"


def priority_of(energy: int | None, *, backlog: int = 0) -> int:
    """A being's energy as a run priority, 0..9, higher first: ten energy points a step.

    Each run the starter already has waiting takes a step off, so a stream of one user's runs sinks
    to the common priority 0 and waits its turn there: energy orders a few runs, it cannot starve others.
    """
    return min(PRIORITY_LEVELS - 1, max(0, (energy or 0) // 10 - backlog))


def backlog_steps(energy: int | None) -> int:
    """How many runs already waiting can lower a top-level run's priority: the steps its energy gives."""
    return min(PRIORITY_LEVELS, max(0, (energy or 0) // 10))


def broker_priority(priority: int) -> int:
    """The Redis transport pops priority 0 first (``priority_steps`` in settings): the scale turned over."""
    return PRIORITY_LEVELS - 1 - priority


def execution_enqueuer(execution: Execution) -> Callable[[], None]:
    """The on-commit callback that sends the task: ids and plain values only, never the instance."""
    execution_id, queue, task_id = str(execution.pk), execution.queue, execution.task_id
    priority = broker_priority(execution.priority)

    def enqueue() -> None:
        execution_signal_confirm(execution_id)  # a wait subscribed ahead hears every finish from now on
        try:
            # ignore_result: no waiter follows the task (it follows the run), so no subscription to its result.
            app.send_task(
                EXECUTION_RUN_TASK,
                args=(execution_id,),
                queue=queue,
                priority=priority,
                task_id=task_id,
                ignore_result=True,
            )
        except BrokerError as error:
            # Nothing will ever take the run: say so rather than leave it queued.
            logger.error("execution %s could not be queued: %s", execution_id, error)
            with transaction.atomic():
                rejected = Execution.objects.filter(pk=execution_id, status=QUEUED).update(
                    status=STATUS.REJECTED,
                    finished_at=Now(),
                    error=run_error("BrokerUnavailable", f"the run could not be queued: {type(error).__name__}"),
                )
                if rejected:
                    execution_signal(execution_id, STATUS.REJECTED)

    return enqueue


def execution_wait(*, execution: Execution, timeout: float) -> Execution:
    """The run once it has finished, or as it is when ``timeout`` seconds have passed.

    Woken by the execution's completion signal (``signals``), published when whatever ends the run
    (its worker, a cancel, the reaper) commits; the Celery task and its result play no part, so a
    run re-sent under another task id is still followed.

    A finish by the worker carries its outcome: the run is then ``execution`` with it written in, not
    read again.
    """
    execution_id = execution.pk
    if not execution.finished and timeout > 0:
        found: list[Execution] = []

        def finished() -> bool:  # the look before the wait brings the row, should the run have finished already
            row = execution_finished_get(execution_id)
            if row is not None:
                found.append(row)
            return row is not None

        woken = execution_signal_wait(execution_id, timeout, ready=finished)
        if found:
            return found[-1]
        if woken is not None and outcome_apply(execution, woken.message):
            return execution
    return execution_fetch(execution_id)


def run_error(error_type: str, message: str) -> dict[str, str]:
    return {"type": error_type, "message": message, "traceback": ""}
