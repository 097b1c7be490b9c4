"""What finished runs leave in their being, written off the run path: folded in batches, about a second behind.

A run ends by writing its own row, and nothing else: the finished execution is the event, durable
before anything reads it. ``being_fold_soon`` then asks for a fold of its being at most once a
second (a Redis key set if absent, expiring after a second, schedules the fold task a second
later); ``being_fold`` writes every finished, unfolded run of the being into its row in one
UPDATE, in the order they finished, and marks them folded in the same transaction, under the
being's row lock: a fold never takes a run twice. A fold that never comes (a worker that died
between the run and the fold, a Redis that lost the key) is made by the sweep (beat), which
folds every being with runs finished a while ago and still unfolded.

Energy rises by one on success and falls by one on failure, never beyond 0..100 (a value set
outside by hand is left where it is). A run cancelled by a user or refused by the host (rejected)
is remembered but not counted: it says nothing about the being, so neither its self_awareness
(runs, successes, failures, last_error) nor its energy change.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models.functions import Now
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from psycopg.types.json import Jsonb

from beings.executions.selectors import STATUS, SUCCEEDED
from beings.executions.signals import redis_client
from beings.models import BaseBeing, Execution
from chronos.context import context_apply
from chronos.lessons.recording import execution_failures_record
from luxsite.celery import app

logger = logging.getLogger(__name__)

ENERGY_MIN, ENERGY_MAX = 0, 100
CANCELLED = "Cancelled"
FOLD_TASK = "beings.tasks.being_fold"
FOLD_KEY_PREFIX = "luxos:fold:"
# A being's runs are folded at most this often, and at most this long after they finish.
FOLD_EVERY_SECONDS = 1.0
# The sweep folds runs unfolded this long after they finished: their fold should have come by then.
SWEEP_AFTER_SECONDS = 5.0
SWEEP_BEINGS = 1000
# Runs folded in one UPDATE; a being with more waiting is folded again at once.
FOLD_BATCH = 5000
FOLD_FIELDS = (
    "id",
    "being_id",
    "status",
    "error",
    "finished_at",
    "duration_ms",
    "version",
    "environment",
    "actor_id",
    "actor_name",
    "hash",
    "alias",
)


# Being -> the moment (time.monotonic) before which a fold already scheduled will take its runs; a margin short of
# the fold's own time, so that a finish just before that moment is never left to the sweep.
_fold_due: dict[str, float] = {}
FOLD_DUE_MARGIN_SECONDS = 0.1
FOLD_DUE_KEPT = 10_000


@dataclass(frozen=True)
class _Starter:
    """Who started a run, as the change log names them, without loading the user."""

    pk: int | None
    username: str


def being_fold_soon(soul: uuid.UUID | str) -> None:
    """Once the current transaction commits, have the being's finished runs folded within about a second.

    The first finish in a second schedules the fold a second later; the others of that second are
    folded by it. Redis or the broker out of reach costs only the delay: the sweep folds them.
    A process remembers until when a fold it has seen scheduled will take the being's runs, and asks
    Redis again only after that: a being's stream of runs costs Redis one round trip a second per
    process, not one per run.
    """
    key = str(soul)

    def schedule() -> None:
        if _fold_due.get(key, 0.0) > time.monotonic():
            return
        try:
            pipe = redis_client().pipeline(transaction=False)
            pipe.set(f"{FOLD_KEY_PREFIX}{key}", 1, nx=True, px=int(FOLD_EVERY_SECONDS * 1000))
            pipe.pttl(f"{FOLD_KEY_PREFIX}{key}")
            scheduled, left_ms = pipe.execute()
            if scheduled:
                app.send_task(FOLD_TASK, args=(key,), queue="io", countdown=FOLD_EVERY_SECONDS, ignore_result=True)
        except (redis.RedisError, OSError, BrokerError) as error:
            logger.warning("the fold of being %s could not be scheduled (the sweep will make it): %s", soul, error)
            return
        # The fold scheduled with the key runs when the key expires, and takes every run finished before then.
        if left_ms > 0:
            if len(_fold_due) > FOLD_DUE_KEPT:
                _fold_due.clear()
            _fold_due[key] = time.monotonic() + left_ms / 1000 - FOLD_DUE_MARGIN_SECONDS

    transaction.on_commit(schedule)


def being_fold(soul: uuid.UUID) -> int:
    """Fold every finished, unfolded run of the being into its row, oldest finish first; how many were folded."""
    folded = 0
    while True:
        with transaction.atomic():
            being = (
                BaseBeing.objects.select_for_update()
                .only("soul", "self_awareness", "energy_level")
                .filter(soul=soul)
                .first()
            )
            runs = list(
                Execution.objects.select_for_update(skip_locked=True)
                .filter(being_id=soul, folded_at__isnull=True, finished_at__isnull=False)
                .order_by("finished_at", "id")
                .only(*FOLD_FIELDS)[:FOLD_BATCH]
            )
            if not runs:
                return folded
            if being is not None:  # a deleted being's runs are only marked
                _write(being, runs, actor=_Starter(pk=runs[-1].actor_id, username=runs[-1].actor_name))
            execution_failures_record(run for run in runs if _failed(run))
            Execution.objects.filter(pk__in=[run.pk for run in runs]).update(folded_at=Now())
        folded += len(runs)
        if len(runs) < FOLD_BATCH:
            return folded


def beings_fold_sweep() -> int:
    """The beings whose runs finished more than a few seconds ago and are still unfolded, folded; how many runs."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT soul FROM executions WHERE folded_at IS NULL AND finished_at IS NOT NULL"
            " AND finished_at < now() - make_interval(secs => %s) LIMIT %s",
            [SWEEP_AFTER_SECONDS, SWEEP_BEINGS],
        )
        souls = [row[0] for row in cursor.fetchall()]
    return sum(being_fold(soul) for soul in souls)


def run_record(execution: Execution, *, actor: Any = None) -> None:
    """Fold one finished run into its being now, in the name of ``actor`` (by default its starter).

    The fold of a single run, for callers that hold one (tests, benchmarks); a run already folded
    is left alone, and a run not stored (a benchmark's) is folded without being marked.
    """
    actor = actor or _Starter(pk=execution.actor_id, username=execution.actor_name)
    with transaction.atomic():
        being = (
            BaseBeing.objects.select_for_update()
            .only("soul", "self_awareness", "energy_level")
            .filter(soul=execution.being_id)
            .first()
        )
        marked = Execution.objects.filter(pk=execution.pk, folded_at__isnull=True).update(folded_at=Now())
        if not marked and Execution.objects.filter(pk=execution.pk).exists():
            return
        if being is not None:
            _write(being, [execution], actor=actor)
        if _failed(execution):
            execution_failures_record([execution])


def _failed(run: Execution) -> bool:
    """A failure that says something about the being (a lesson): not a success, a refusal or a cancellation."""
    error = run.error if isinstance(run.error, dict) else {}
    return run.status not in (SUCCEEDED, STATUS.REJECTED) and error.get("type") != CANCELLED


def _write(being: BaseBeing, runs: Sequence[Execution], *, actor: Any) -> None:
    """One UPDATE of the being: the runs' events appended to its memories, its self_awareness and energy."""
    awareness = dict(being.self_awareness) if isinstance(being.self_awareness, dict) else {}
    energy = being.energy_level or 0
    events = []
    for run in runs:
        event, energy = _fold_one(awareness, energy, run)
        events.append(event)
    context_apply(actor=actor, operation="being_run")
    params: dict[str, Any] = {
        "soul": being.soul,
        "events": Jsonb(events),
        "awareness": Jsonb(awareness),
        "energy": energy,
        "limit": Jsonb({"n": max(0, settings.LUXOS_MEMORY_LIMIT)}),
    }
    with connection.cursor() as cursor:
        cursor.execute(RECORD_SQL, params)


def _fold_one(awareness: dict[str, Any], energy: int, run: Execution) -> tuple[dict[str, Any], int]:
    """One run into ``awareness`` (in place): its memories event and the energy after it."""
    error = run.error or {}
    succeeded = run.status == SUCCEEDED
    neutral = run.status == STATUS.REJECTED or error.get("type") == CANCELLED
    at = (run.finished_at or timezone.now()).isoformat()
    event: dict[str, Any] = {
        "event": "run",
        "at": at,
        "execution": str(run.pk),
        "status": run.status,
        "version": run.version,
        "duration_ms": run.duration_ms,
    }
    if run.environment:
        event["environment"] = run.environment
    if not succeeded:
        event["error"] = error.get("type", run.status)
    awareness["last_run_at"] = at
    if neutral:
        return event, energy
    runs = _count(awareness, "runs") + 1
    successes = _count(awareness, "successes") + succeeded
    failures = _count(awareness, "failures") + (not succeeded)
    mean = awareness.get("mean_duration_ms")
    mean = float(mean) if isinstance(mean, int | float) else None
    if run.duration_ms is not None:
        mean = run.duration_ms if mean is None else mean + (run.duration_ms - mean) / runs
    awareness.update(
        runs=runs,
        successes=successes,
        failures=failures,
        success_rate=round(successes / runs, 4),
        mean_duration_ms=None if mean is None else round(mean, 3),
    )
    if not succeeded:
        # The type only: the message may quote the inputs, which are the starter's (see visibility.py).
        awareness["last_error"] = {
            "type": error.get("type", run.status),
            "execution": str(run.pk),
            "at": at,
        }
    if succeeded and energy < ENERGY_MAX:
        energy += 1
    elif not succeeded and energy > ENERGY_MIN:
        energy -= 1
    return event, energy


def _memories_tail(events: str) -> str:
    """SQL for ``events`` (a jsonb array) with the runs' events appended, the newest ``limit`` kept.

    A JSON path slice reads the array once; a subquery over its elements would detoast it for each.
    """
    return f"jsonb_path_query_array({events} || %(events)s, 'lax $[last - $n + 1 to last]', %(limit)s)"


# services.memories_append's rule, in SQL: memories kept as an object take the events under "events".
RECORD_SQL = f"""
UPDATE base_beings SET
    memories = CASE
        WHEN jsonb_typeof(memories) = 'object' THEN jsonb_set(memories, '{{events}}', {
    _memories_tail(
        "(CASE WHEN jsonb_typeof(memories -> 'events') = 'array' THEN memories -> 'events' ELSE '[]'::jsonb END)"
    )
})
        ELSE {_memories_tail("(CASE WHEN jsonb_typeof(memories) = 'array' THEN memories ELSE '[]'::jsonb END)")}
    END,
    self_awareness = %(awareness)s,
    energy_level = %(energy)s
WHERE soul = %(soul)s
"""


def _count(awareness: dict[str, Any], key: str) -> int:
    value = awareness.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
