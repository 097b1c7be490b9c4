"""The reaper (beat, every 10 s): lost messages sent again, runs whose worker died queued once more, then killed."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import connection, transaction
from django.db.models.functions import Now
from django.utils import timezone

from beings.executions.fold import being_fold_soon
from beings.executions.queue import MAX_ATTEMPTS, execution_enqueuer, run_error
from beings.executions.selectors import KILLED, QUEUED, RUNNING
from beings.executions.signals import execution_signal
from beings.models import (
    Execution,
)

REAP_BATCH = 500


REAP_SQL = """
SELECT id FROM executions
WHERE (status = 'running' AND started_at < now() - make_interval(
           secs => coalesce((limits ->> 'wall_seconds')::float8, %(wall)s) + %(grace)s))
   OR (status = 'queued' AND depth > 0 AND queued_at < now() - make_interval(
           secs => coalesce((limits ->> 'wall_seconds')::float8, %(wall)s) + %(grace)s))
   -- Sent and still not taken: again after the grace, then after twice as long as it has waited so far,
   -- so that a queue long behind (or without a worker) gets a few copies of a run, not one per pass.
   OR (status = 'queued' AND depth = 0 AND coalesce(sent_at, queued_at) < now() - make_interval(
           secs => greatest(%(resend)s, extract(epoch FROM coalesce(sent_at, queued_at) - queued_at))))
ORDER BY queued_at
LIMIT %(batch)s
"""


def executions_reap() -> int:
    """Runs lost on the way: messages sent again, and runs whose worker died queued once more, then killed.

    A top-level run still queued ``LUXOS_EXECUTION_RESEND_SECONDS`` after its message was sent (the
    web died between commit and publish, the broker lost it) is sent again: a copy that arrives
    twice runs once, since the claim takes only a queued row. A run counts as dead when it is still
    running ``LUXOS_EXECUTION_REAP_GRACE_SECONDS`` after its wall-clock limit, which a live worker
    never lets happen (a worker's pool process that dies is noticed sooner, when its task is
    delivered again). Returns how many runs it sent again or reaped.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            REAP_SQL,
            {
                "wall": settings.LUXOS_SANDBOX_WALL_SECONDS,
                "grace": settings.LUXOS_EXECUTION_REAP_GRACE_SECONDS,
                "resend": settings.LUXOS_EXECUTION_RESEND_SECONDS,
                "batch": REAP_BATCH,
            },
        )
        stale = [row[0] for row in cursor.fetchall()]
    return sum(_reap(execution_id) for execution_id in stale)


def _reap(execution_id: uuid.UUID) -> bool:
    with transaction.atomic():
        # Re-checked under the lock: the run may have finished since the scan.
        row = (
            Execution.objects.select_for_update(skip_locked=True)
            .filter(pk=execution_id, status__in=(QUEUED, RUNNING))
            .first()
        )
        if row is None:
            return False
        if row.status == QUEUED and row.depth == 0:
            Execution.objects.filter(pk=row.pk).update(sent_at=Now())
            transaction.on_commit(execution_enqueuer(row))
            return True
        if row.status == RUNNING and row.depth == 0 and row.attempts < MAX_ATTEMPTS:
            row.status, row.started_at, row.worker, row.task_id = QUEUED, None, "", str(uuid.uuid4())
            row.sent_at = timezone.now()
            row.save(update_fields=["status", "started_at", "worker", "task_id", "sent_at"])
            transaction.on_commit(execution_enqueuer(row))
            return True
        where = f" on {row.worker}" if row.worker else ""
        message = (
            f"its worker{where} stopped during attempt {row.attempts} of {MAX_ATTEMPTS}"
            if row.depth == 0
            else f"its worker{where} stopped while it ran nested in {row.parent_id}"
        )
        lost = run_error("WorkerLost", message)
        Execution.objects.filter(pk=row.pk).update(status=KILLED, finished_at=Now(), error=lost)
        execution_signal(row.pk, KILLED)
        being_fold_soon(row.being_id)
    return True
