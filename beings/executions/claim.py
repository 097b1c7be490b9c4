"""The two statements of a run's row on its worker: the claim, which brings the job, and the finish.

Between them the worker's session holds the run's advisory lock: that is how a redelivered task tells a
run whose worker died from one still going.

The claim's commit does not wait for its WAL to reach the disk (``synchronous_commit`` off for that
transaction alone): a database that crashes within the moment after loses at most the claim, so the
run is queued again, its finish finds it not running and stores nothing, and the reaper sends it
again; the run happens at least once, as after a lost worker. The finish commits durably: a waiter is
told the outcome only once it is on disk.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from psycopg.types.json import Jsonb

from beings.executions.fold import being_fold_soon
from beings.executions.jobs import JOB_NAMES, job_columns
from beings.executions.queue import MAX_ATTEMPTS, run_error
from beings.executions.selectors import EXECUTION_COLUMNS, RUNNING, execution_fetch, execution_from_row
from beings.executions.signals import execution_signal, outcome_message
from beings.models import Execution
from luxsite.statements import prepared

logger = logging.getLogger(__name__)

# The run's liveness: a session advisory lock its worker's connection holds while it runs. A pool process
# that dies takes its connection, and the lock, with it: the redelivered task finds the run running and
# unlocked, and runs it again at once instead of waiting for the reaper.
RUN_LOCK = "hashtextextended('execution:' || {id}::text, 0)"

CLAIM_SQL = f"""
WITH claimed AS (
    UPDATE executions SET
        status = CASE WHEN attempts >= %(max)s THEN 'killed' ELSE 'running' END,
        error = CASE WHEN attempts >= %(max)s THEN %(error)s::jsonb ELSE error END,
        finished_at = CASE WHEN attempts >= %(max)s THEN now() ELSE finished_at END,
        started_at = CASE WHEN attempts >= %(max)s THEN started_at ELSE now() END,
        attempts = CASE WHEN attempts >= %(max)s THEN attempts ELSE attempts + 1 END,
        worker = %(worker)s,
        queue = %(queue)s
    WHERE id = %(id)s AND CASE
        WHEN status = 'queued' THEN pg_try_advisory_lock({RUN_LOCK.format(id="id")}) IS NOT NULL
        WHEN status = 'running' THEN pg_try_advisory_lock({RUN_LOCK.format(id="id")})
            OR started_at < now() - make_interval(
                secs => coalesce((limits ->> 'wall_seconds')::float8, %(wall)s) + %(grace)s)
        ELSE false
    END
    RETURNING {", ".join(EXECUTION_COLUMNS)}
)
SELECT {", ".join(f"claimed.{column}" for column in EXECUTION_COLUMNS)}, {job_columns("claimed")}
FROM claimed LEFT JOIN base_beings being ON being.soul = claimed.soul
WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL
"""

FINISH_SQL = f"""
WITH finished AS (
    UPDATE executions SET status = %(status)s, result = %(result)s, error = %(error)s, output = %(output)s,
        output_truncated = %(output_truncated)s, layers = %(layers)s, calls = %(calls)s, summons = %(summons)s,
        finished_at = clock_timestamp(), duration_ms = %(duration_ms)s
    WHERE id = %(id)s AND status = 'running'
    RETURNING finished_at
)
SELECT (SELECT finished_at FROM finished), pg_advisory_unlock({RUN_LOCK.format(id="%(id)s")})
"""


def execution_claim(*, execution_id: uuid.UUID, worker: str, queue: str) -> Execution | None:
    """Take the run for this worker: the row, now running (or killed, out of attempts), with what its job needs.

    None when it is not ours: finished, or running on a live worker. One statement, retried once on
    a new connection when the one kept from an earlier task has broken (no check before each use).
    """
    error = run_error("WorkerLost", f"its worker stopped during each of {MAX_ATTEMPTS} attempts")
    params = {
        "max": MAX_ATTEMPTS,
        "error": json.dumps(error),
        "worker": worker[:200],
        "queue": queue[:8],
        "id": execution_id,
        "wall": settings.LUXOS_SANDBOX_WALL_SECONDS,
        "grace": settings.LUXOS_EXECUTION_REAP_GRACE_SECONDS,
    }
    try:
        claimed = _claimed(params)
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise
        logger.warning("execution %s: the database connection had broken; claiming on a new one", execution_id)
        connection.close()
        claimed = _claimed(params)
    if claimed is not None and claimed.status != RUNNING:
        _unlock(claimed.pk)
    return claimed


def _claimed(params: dict[str, Any]) -> Execution | None:
    """The claim's row as an Execution, with the job's columns (``job_columns``) as attributes."""
    with prepared(CLAIM_SQL, params) as cursor:
        row = cursor.fetchone()
    return None if row is None else execution_from_row(row, JOB_NAMES)


def _unlock(execution_id: uuid.UUID) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_advisory_unlock({RUN_LOCK.format(id='%s')})", [execution_id])


def outcome_store(execution: Execution, fields: dict[str, Any]) -> Execution:
    """The outcome on the run, one UPDATE (its finish time comes back); its being takes it in a later fold."""
    params = {
        **fields,
        "id": execution.pk,
        "layers": Jsonb(fields["layers"]),
        "result": None if fields["result"] is None else Jsonb(fields["result"]),
        "error": None if fields["error"] is None else Jsonb(fields["error"]),
    }
    # One statement, its own transaction: no BEGIN and COMMIT round trips around it (a savepoint inside a
    # caller's transaction, so that a refused outcome can still be stored).
    within = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    with within, prepared(FINISH_SQL, params) as cursor:
        row = cursor.fetchone()
    if row is None or row[0] is None:  # cancelled or reaped meanwhile: what they wrote stands
        return execution_fetch(execution.pk)
    for name, value in fields.items():
        setattr(execution, name, value)
    execution.finished_at = row[0]
    # After the commit (at once, in autocommit; at the end of an enclosing transaction, if any), with the
    # outcome, so that a waiter need not read the row again.
    execution_signal(execution.pk, execution.status, message=outcome_message(execution))
    being_fold_soon(execution.being_id)
    return execution
