"""Dreams: start one (queued on a worker, or scheduled for later), run it, keep its changes, judge it, compare two.

A dream's plan runs in one transaction that is rolled back (``chronos.dreams.play``): no other session
sees its writes, and the live tables are the same after it as before. What it captured is then written,
in a transaction of its own, as the history of a new timeline ``dream_<id>`` forked at the snapshot the
dream saw: a switch to it, a diff with it or a merge of it shows the dream's changes. A success rate
above ``CHRONOS_DREAM_KEEP_THRESHOLD`` keeps it and offers it for merge (a preview), or merges it at once
with ``CHRONOS_DREAM_AUTO_MERGE``; at or below, it is discarded: its timeline stays as history, with a
lesson. A dream that fails (past its seconds, a refusal) keeps nothing but a lesson.
"""

from __future__ import annotations

import functools
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from chronos.dreams.exceptions import DreamPlanInvalidError
from chronos.dreams.plan import plan_clean
from chronos.dreams.play import Played, dream_play
from chronos.guards import actor_name, chronos_enabled, name_clean, permission_require
from chronos.models import Change, Checkpoint, Dream, Timeline
from luxsite.celery import app
from luxsite.errors import DomainError, PermissionDenied
from luxsite.moments import moment_utc
from luxsite.permissions import User

# Sent by name: the tasks module imports this one.
DREAM_TASK = "chronos.tasks.dream_run"
# A dream still "running" this long past CHRONOS_DREAM_SECONDS lost its worker: beat sends it again.
STALE_GRACE_SECONDS = 60
STATUS = Dream.Status
FINISHED = frozenset({STATUS.KEPT, STATUS.MERGED, STATUS.DISCARDED, STATUS.FAILED})


def dream_timeline_name(dream: Dream) -> str:
    return f"dream_{dream.id}"


def dream_start(
    *, name: str, plan: Any, actor: User, seconds: int | None = None, not_before: datetime | None = None
) -> Dream:
    """Check the plan and queue the dream on the ``io`` queue once this transaction commits.

    ``seconds`` bounds it below ``CHRONOS_DREAM_SECONDS``; ``not_before`` schedules it for later (beat
    starts it then, ``dreams_start_due``). A bad plan is a 422 naming its step, and nothing is written.
    """
    chronos_enabled()
    permission_require(actor, "chronos.add_dream", "starting a dream")
    name = name_clean(name, "dream")
    bound = settings.CHRONOS_DREAM_SECONDS
    if seconds is None:
        seconds = bound
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= bound:
        raise DreamPlanInvalidError(f"a dream's seconds are between 1 and CHRONOS_DREAM_SECONDS ({bound})")
    if not_before is not None:
        if timezone.is_naive(not_before):
            raise DreamPlanInvalidError("not_before needs a time zone")
        try:
            not_before = moment_utc(not_before)
        except ValueError as error:
            raise DreamPlanInvalidError(f"not_before: {error}") from None
    steps = plan_clean(plan, actor=actor)
    with transaction.atomic():
        dream = Dream.objects.create(
            name=name,
            plan=steps,
            seconds=seconds,
            not_before=not_before,
            actor_id=actor.pk,
            actor_name=actor_name(actor),
        )
        if not_before is None or not_before <= timezone.now():
            _enqueue(dream)
    return dream


def _enqueue(dream: Dream) -> None:
    """The task's id on the row, the task sent on commit (by name, with ids only)."""
    dream.task_id = str(uuid.uuid4())
    Dream.objects.filter(id=dream.id).update(task_id=dream.task_id)
    send = functools.partial(app.send_task, DREAM_TASK, args=(str(dream.id),), task_id=dream.task_id, queue="io")
    transaction.on_commit(send)


def dreams_start_due(*, now: datetime | None = None) -> list[Dream]:
    """Beat, every minute: queue the scheduled dreams whose time has come, each once whoever else runs this,
    and send again those whose worker was lost (still running long past their bound)."""
    moment = now or timezone.now()
    with transaction.atomic():
        due = list(
            Dream.objects.select_for_update(skip_locked=True).filter(
                Q(status=STATUS.QUEUED, task_id="", not_before__lte=moment)
                | Q(status=STATUS.RUNNING, started_at__lt=_stale(moment))
            )
        )
        for dream in due:
            _enqueue(dream)
    return due


def _stale(moment: datetime) -> datetime:
    """A dream started before this and still running lost its worker: no dream runs that long."""
    return moment - timedelta(seconds=settings.CHRONOS_DREAM_SECONDS + STALE_GRACE_SECONDS)


def dream_run(*, dream_id: uuid.UUID | str, worker: str) -> Dream:
    """The body of the dream's task: claim it, play it, keep its changes as its timeline, judge it.

    Idempotent: only a queued dream (or one whose worker died, long past its bound) is claimed; a
    redelivery of a finished one returns it untouched, and one whose changes were kept is only judged.
    """
    dream = _claim(dream_id)
    if dream is None:
        return Dream.objects.get(id=dream_id)
    users = get_user_model().objects.filter(is_active=True)
    actor = users.filter(pk=dream.actor_id).first() if dream.actor_id is not None else None
    try:
        chronos_enabled()  # with capture off there would be nothing to keep
        if actor is None:
            raise PermissionDenied("the user who started the dream no longer exists")
        timeline = dream.timeline or _store(dream, dream_play(dream=dream, actor=actor, worker=worker), actor)
    except (DomainError, DatabaseError) as error:
        return _fail(dream, error, actor)
    if (dream.success_rate or 0.0) > settings.CHRONOS_DREAM_KEEP_THRESHOLD:
        _offer(dream, timeline, actor)
    else:
        _discard_lesson(dream, timeline)
    return dream


def _claim(dream_id: uuid.UUID | str) -> Dream | None:
    claimed = Dream.objects.filter(
        Q(status=STATUS.QUEUED) | Q(status=STATUS.RUNNING, started_at__lt=_stale(timezone.now())), id=dream_id
    ).update(status=STATUS.RUNNING, started_at=timezone.now(), error="")
    return Dream.objects.get(id=dream_id) if claimed else None


def _store(dream: Dream, played: Played, actor: User) -> Timeline:
    """The fork checkpoint (the snapshot the dream saw), the timeline, its history and the results: one commit.

    The dream stays running until it is judged (``_offer``, ``_discard_lesson``): whoever sees it kept
    sees the merge it is offered for.
    """
    passed = sum(1 for result in played.results if result.get("ok"))
    name = dream_timeline_name(dream)
    with transaction.atomic():
        parent = Timeline.objects.get(id=played.timeline_id)
        fork = Checkpoint.objects.create(
            name=f"fork-{name}",
            description=f"Where dream {dream.name} started.",
            timeline=parent,
            kind=Checkpoint.Kind.FORK,
            snapshot=played.snapshot,
            position=played.position,
            created_at=played.at,
            actor_name=actor_name(actor),
        )
        timeline = Timeline.objects.create(
            name=name,
            description=f"Dream {dream.name}: {passed} of {len(played.results)} steps as planned.",
            parent=parent,
            fork=fork,
            actor_name=actor_name(actor),
        )
        _history_write(dream, timeline, played)
        dream.timeline, dream.fork, dream.results = timeline, fork, played.results
        dream.success_rate = passed / len(played.results) if played.results else 0.0
        dream.save(update_fields=["timeline", "fork", "results", "success_rate"])
    return timeline


def _history_write(dream: Dream, timeline: Timeline, played: Played) -> None:
    """The dream's captured contexts and changes, in their order, as the timeline's own: exact JSON, new xid."""
    if not played.changes:
        return
    with connection.cursor() as cursor:
        ids: dict[int, int] = {}
        for row in played.transactions:
            context = {**json.loads(row["context"]), "dream": str(dream.id)}
            cursor.execute(
                "INSERT INTO chronos_transaction (xid, timeline_id, kind, context, started_at) "
                "VALUES (pg_current_xact_id()::text::bigint, %s, %s, %s::jsonb, %s) RETURNING id",
                [timeline.id, row["kind"], json.dumps(context), row["started_at"]],
            )
            ids[row["id"]] = cursor.fetchone()[0]
        rows = [
            {**change, "n": n, "transaction": ids[change["transaction"]]} for n, change in enumerate(played.changes)
        ]
        cursor.execute(
            'INSERT INTO chronos_change (xid, transaction_id, timeline_id, replay, "table", row_id, operation, data) '
            'SELECT pg_current_xact_id()::text::bigint, r.transaction, %s, false, r."table", r.row_id, r.operation, '
            "r.data::jsonb FROM jsonb_to_recordset(%s::jsonb) AS "
            'r(n integer, transaction bigint, "table" text, row_id uuid, operation text, data text) ORDER BY r.n',
            [timeline.id, json.dumps(rows)],
        )


def _offer(dream: Dream, timeline: Timeline, actor: User) -> None:
    """A kept dream: previewed as a merge into the timeline it forked from, and applied at once with
    CHRONOS_DREAM_AUTO_MERGE (when conflicts or a refusal stop that, the preview stays open to resolve)."""
    from chronos.merges.services import merge_apply, merge_preview

    dream.status = STATUS.KEPT
    try:
        dream.merge = merge_preview(source=timeline, into=Timeline.objects.get(children=timeline), actor=actor)
    except DomainError as refused:
        dream.error = f"not offered for merge: {refused.detail}"
    if dream.merge is not None and settings.CHRONOS_DREAM_AUTO_MERGE:
        try:
            dream.merge = merge_apply(merge=dream.merge, actor=actor)
        except DomainError as refused:
            dream.error = f"not merged at once: {refused.detail}"
        else:
            dream.status = STATUS.MERGED
    _judged(dream)


def _judged(dream: Dream) -> None:
    dream.finished_at = timezone.now()
    dream.save(update_fields=["status", "merge", "error", "finished_at"])


def _discard_lesson(dream: Dream, timeline: Timeline) -> None:
    """What a discarded dream teaches: a lesson on its first failed step's being, after everything committed."""
    from chronos.lessons.services import failure_record

    failed = next((result for result in dream.results if not result.get("ok")), None)
    error = (failed or {}).get("error") or {
        "type": "DreamDiscarded",
        "message": f"step {(failed or {}).get('step')} did not give what the plan expected",
    }
    being = _being_of(failed)
    failure_record(
        operation="dream",
        error=error,
        being=being,
        hash=str((failed or {}).get("hash") or ""),
        timeline=timeline,
        actor=None,
        situation=f"dream {dream.name} was discarded: {dream.success_rate:.0%} of its steps as planned",
        metadata={"dream": str(dream.id), "success_rate": dream.success_rate},
    )
    dream.status = STATUS.DISCARDED
    _judged(dream)


def _being_of(result: dict[str, Any] | None) -> uuid.UUID | None:
    """The soul a failed step concerns (none when it failed before its being was found)."""
    try:
        return uuid.UUID(str((result or {}).get("soul")))
    except ValueError:
        return None


def _fail(dream: Dream, error: DomainError | DatabaseError, actor: User | None) -> Dream:
    """Past its bound or refused: nothing kept but the reason, and a lesson."""
    from chronos.lessons.services import failure_record

    detail = error.detail if isinstance(error, DomainError) else str(error).splitlines()[0][:500]
    failure_record(
        operation="dream",
        error=error,
        actor=None,
        situation=f"dream {dream.name} failed: {detail}",
        metadata={"dream": str(dream.id), "actor": actor_name(actor)},
    )
    dream.status, dream.error, dream.finished_at = STATUS.FAILED, detail, timezone.now()
    dream.save(update_fields=["status", "error", "finished_at"])
    return dream


def dream_compare(a: Dream, b: Dream) -> dict[str, Any]:
    """Two dreams side by side (the seed's A/B scenario): each one's outcome, step by step, and which did better."""
    counts = dict(
        Change.objects.filter(timeline_id__in=[t for t in (a.timeline_id, b.timeline_id) if t], replay=False)
        .values_list("timeline_id")
        .annotate(count=Count("id"))
        .values_list("timeline_id", "count")
    )
    sides = {"a": _summary(a, counts), "b": _summary(b, counts)}
    steps = []
    for index in range(max(len(a.results), len(b.results))):
        pair = {
            side: (dream.results[index] if index < len(dream.results) else None) for side, dream in (("a", a), ("b", b))
        }
        first = pair["a"] or pair["b"] or {}
        steps.append({"step": index + 1, "kind": first.get("kind"), "target": first.get("target"), **pair})
    return {**sides, "steps": steps, "better": _better(sides["a"], sides["b"])}


def _summary(dream: Dream, counts: dict[int, int]) -> dict[str, Any]:
    durations = [float(result.get("duration_ms") or 0) for result in dream.results]
    return {
        "id": str(dream.id),
        "name": dream.name,
        "status": dream.status,
        "success_rate": dream.success_rate,
        "steps": len(dream.results),
        "failures": sum(1 for result in dream.results if not result.get("ok")),
        "duration_ms": round(sum(durations), 3),
        "changes": counts.get(dream.timeline_id, 0) if dream.timeline_id else 0,
        "timeline": dream.timeline.name if dream.timeline_id and dream.timeline else None,
        "error": dream.error,
    }


def _better(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """The side with the higher success rate, the faster on a tie; None when they are even or unfinished."""
    if a["success_rate"] is None or b["success_rate"] is None:
        return None
    if a["success_rate"] != b["success_rate"]:
        return "a" if a["success_rate"] > b["success_rate"] else "b"
    if a["duration_ms"] != b["duration_ms"]:
        return "a" if a["duration_ms"] < b["duration_ms"] else "b"
    return None
