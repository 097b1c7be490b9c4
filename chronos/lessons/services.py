"""Lessons: added by hand, recorded from failures (classified, deduplicated), resolved and pruned.

A failure is recorded after the failed operation's transaction has rolled back, in a statement of
its own: ``INSERT … ON CONFLICT`` on the partial unique index of open failure lessons (operation,
being, hash, error class), so two concurrent failures of one kind leave one row whose ``count`` is
two. Lessons live outside the captured tables: no restore or switch removes them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from beings.models import BaseBeing, Execution
from chronos.guards import permission_require
from chronos.lessons.classification import ErrorLike, error_class, error_message
from chronos.lessons.exceptions import LessonFilterInvalidError, LessonInvalidError
from chronos.lessons.selectors import moments_range
from chronos.models import Checkpoint, Lesson, Timeline
from luxsite.permissions import User

FAILURE_OPERATIONS = frozenset(Lesson.Operation.values) - {Lesson.Operation.MANUAL}
TEXT_MAX = 20_000
TAG_MAX = 64
TAGS_MAX = 32

# One statement for one failure or a whole batch: rows as a JSON array, merged into the open lesson of
# their kind when there is one. The WHERE repeats the partial unique index's predicate so that
# PostgreSQL infers it as the arbiter.
UPSERT = """
INSERT INTO chronos_lesson AS lesson (
    operation, situation, action, result, feedback, tags, metadata, error_class, being_id, hash,
    checkpoint_id, execution_id, timeline_id, actor_id, count, created_at, last_seen_at
)
SELECT operation, situation, action, result, feedback, tags, metadata, error_class, being_id, hash,
       checkpoint_id, execution_id, timeline_id, actor_id, count, created_at, last_seen_at
FROM jsonb_to_recordset(%s::jsonb) AS failure(
    operation text, situation text, action text, result text, feedback text, tags varchar(64)[], metadata jsonb,
    error_class text, being_id uuid, hash text, checkpoint_id uuid, execution_id uuid, timeline_id integer,
    actor_id integer, count integer, created_at timestamptz, last_seen_at timestamptz
)
ON CONFLICT (operation, being_id, hash, error_class) WHERE (resolved_at IS NULL AND NOT (error_class = ''))
DO UPDATE SET
    count = lesson.count + EXCLUDED.count,
    last_seen_at = GREATEST(lesson.last_seen_at, EXCLUDED.last_seen_at),
    result = EXCLUDED.result,
    feedback = CASE WHEN EXCLUDED.feedback = '' THEN lesson.feedback ELSE EXCLUDED.feedback END,
    metadata = lesson.metadata || EXCLUDED.metadata,
    checkpoint_id = coalesce(EXCLUDED.checkpoint_id, lesson.checkpoint_id),
    execution_id = coalesce(EXCLUDED.execution_id, lesson.execution_id),
    timeline_id = coalesce(EXCLUDED.timeline_id, lesson.timeline_id),
    actor_id = coalesce(EXCLUDED.actor_id, lesson.actor_id)
RETURNING lesson.id
"""


@dataclass(kw_only=True)
class Failure:
    """One failure (or several of one kind, ``count``) to record: the row ``failures_record`` upserts."""

    operation: str
    error_class: str
    situation: str
    result: str
    action: str = ""
    feedback: str = ""
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    being_id: uuid.UUID | None = None
    hash: str = ""
    checkpoint_id: uuid.UUID | None = None
    execution_id: uuid.UUID | None = None
    timeline_id: int | None = None
    actor_id: int | None = None
    count: int = 1
    created_at: datetime = field(default_factory=timezone.now)
    last_seen_at: datetime | None = None

    def as_row(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "situation": self.situation[:TEXT_MAX],
            "action": self.action[:TEXT_MAX],
            "result": self.result[:TEXT_MAX],
            "feedback": self.feedback[:TEXT_MAX],
            "tags": self.tags,
            "metadata": self.metadata,
            "error_class": self.error_class,
            "being_id": str(self.being_id) if self.being_id else None,
            "hash": self.hash,
            "checkpoint_id": str(self.checkpoint_id) if self.checkpoint_id else None,
            "execution_id": str(self.execution_id) if self.execution_id else None,
            "timeline_id": self.timeline_id,
            "actor_id": self.actor_id,
            "count": self.count,
            "created_at": self.created_at.isoformat(),
            "last_seen_at": (self.last_seen_at or self.created_at).isoformat(),
        }


@dataclass(kw_only=True)
class FailureAnalysis:
    """The seed's analyze_failure: the lesson recorded, and the recommended way back."""

    lesson: Lesson
    checkpoint: Checkpoint | None
    recommendation: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "lesson": self.lesson.pk,
            "error_class": self.lesson.error_class,
            "count": self.lesson.count,
            "checkpoint": self.checkpoint.name if self.checkpoint else None,
            "checkpoint_id": str(self.checkpoint.pk) if self.checkpoint else None,
            "recommendation": self.recommendation,
        }


def tags_clean(tags: Iterable[Any]) -> list[str]:
    """Tags as stored: trimmed, lower case, each once, in the order given."""
    if isinstance(tags, str):
        tags = [part for part in tags.split(",")]
    cleaned: list[str] = []
    for tag in tags:
        text = str(tag).strip().lower()
        if not text:
            continue
        if len(text) > TAG_MAX:
            raise LessonInvalidError(f"a tag has at most {TAG_MAX} characters: {text[:20]}…")
        if text not in cleaned:
            cleaned.append(text)
    if len(cleaned) > TAGS_MAX:
        raise LessonInvalidError(f"a lesson has at most {TAGS_MAX} tags, not {len(cleaned)}")
    return cleaned


def _text(value: Any, what: str, *, required: bool = False) -> str:
    text = str(value if value is not None else "").strip()
    if required and not text:
        raise LessonInvalidError(f"a lesson needs a {what}")
    if len(text) > TEXT_MAX:
        raise LessonInvalidError(f"a lesson's {what} has at most {TEXT_MAX} characters, not {len(text)}")
    return text


def _pk(value: Any) -> Any:
    return getattr(value, "pk", value) or None


def _actor_id(actor: User | None) -> int | None:
    return actor.pk if actor is not None and actor.is_authenticated else None


def _being_hash(being: BaseBeing | uuid.UUID | str | None, hash: str) -> str:
    if hash or not isinstance(being, BaseBeing):
        return hash or ""
    return str(getattr(being, "hash", "") or "")


@transaction.atomic
def lesson_add(
    *,
    situation: str,
    action: str = "",
    result: str = "",
    feedback: str = "",
    tags: Iterable[Any] = (),
    metadata: Mapping[str, Any] | None = None,
    being: BaseBeing | uuid.UUID | str | None = None,
    hash: str = "",
    checkpoint: Checkpoint | uuid.UUID | str | None = None,
    execution: Execution | uuid.UUID | str | None = None,
    timeline: Timeline | int | None = None,
    actor: User | None = None,
) -> Lesson:
    """The seed's add_lesson(situation, action, result, feedback, tags): a lesson written by hand (or by an agent).

    An actor, when named, needs ``chronos.add_lesson``; ``actor=None`` is LuxOS itself.
    """
    if actor is not None:
        permission_require(actor, "chronos.add_lesson", "adding a lesson")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise LessonInvalidError("a lesson's metadata is a JSON object")
    return Lesson.objects.create(
        operation=Lesson.Operation.MANUAL,
        situation=_text(situation, "situation", required=True),
        action=_text(action, "action"),
        result=_text(result, "result"),
        feedback=_text(feedback, "feedback"),
        tags=tags_clean(tags),
        metadata=dict(metadata or {}),
        being_id=_pk(being),
        hash=_text(_being_hash(being, hash), "hash")[:64],
        checkpoint_id=_pk(checkpoint),
        execution_id=_pk(execution),
        timeline_id=_pk(timeline),
        actor_id=_actor_id(actor),
    )


def failures_record(failures: Collection[Failure]) -> list[int]:
    """Record failures in one statement, merging each into the open lesson of its kind; the lessons' ids.

    Failures of one kind in the batch are merged first: one statement may not update a row twice.
    """
    merged: dict[tuple[Any, ...], Failure] = {}
    for failure in failures:
        if failure.operation not in FAILURE_OPERATIONS:
            raise LessonInvalidError(
                f"no failure kind {failure.operation!r}: one of {', '.join(sorted(FAILURE_OPERATIONS))}"
            )
        key = (failure.operation, failure.being_id, failure.hash, failure.error_class)
        known = merged.get(key)
        if known is None:
            merged[key] = failure
            continue
        known.count += failure.count
        seen = failure.last_seen_at or failure.created_at
        if seen >= (known.last_seen_at or known.created_at):
            known.last_seen_at, known.result = seen, failure.result
            known.execution_id = failure.execution_id or known.execution_id
        known.created_at = min(known.created_at, failure.created_at)
    if not merged:
        return []
    rows = json.dumps([failure.as_row() for failure in merged.values()])
    with connection.cursor() as cursor:
        cursor.execute(UPSERT, [rows])
        return [row[0] for row in cursor.fetchall()]


def failure_record(
    *,
    operation: str,
    error: ErrorLike,
    being: BaseBeing | uuid.UUID | str | None = None,
    hash: str = "",
    checkpoint: Checkpoint | uuid.UUID | str | None = None,
    execution: Execution | uuid.UUID | str | None = None,
    timeline: Timeline | int | None = None,
    actor: User | None = None,
    metadata: Mapping[str, Any] | None = None,
    situation: str = "",
    feedback: str = "",
) -> Lesson:
    """Record a failure of ``operation`` as a classified lesson; a repeat of its kind raises its count.

    Call it after the failed operation's transaction has rolled back (never inside it), or the
    lesson rolls back with it.
    """
    kind = error_class(operation=operation, error=error)
    message = error_message(error)
    label = getattr(being, "name", "") or (str(being) if being and not isinstance(being, BaseBeing) else "")
    what = f"{operation} of {label}" if label else operation
    document = {"error": {"class": kind, "message": message[:500]}}
    if isinstance(error, Mapping) and error.get("traceback"):
        document["error"]["traceback"] = str(error["traceback"])[-2000:]
    failure = Failure(
        operation=operation,
        error_class=kind,
        situation=_text(situation, "situation") or f"{what} failed: {kind}",
        result=message,
        action=f"{operation} ({kind})",
        feedback=_text(feedback, "feedback"),
        tags=tags_clean(["failure", operation]),
        metadata={**dict(metadata or {}), **document},
        being_id=_pk(being),
        hash=_being_hash(being, hash)[:64],
        checkpoint_id=_pk(checkpoint),
        execution_id=_pk(execution),
        timeline_id=_pk(timeline),
        actor_id=_actor_id(actor),
    )
    (lesson_id,) = failures_record([failure])
    return Lesson.objects.get(pk=lesson_id)


def _way_back(checkpoint_before: Checkpoint | uuid.UUID | str | None) -> Checkpoint | None:
    """The checkpoint to restore: the one named, else the newest on the live timeline."""
    from chronos.points import checkpoint_resolve, live_timeline

    if isinstance(checkpoint_before, Checkpoint):
        return checkpoint_before
    if checkpoint_before:
        return checkpoint_resolve(str(checkpoint_before), anywhere=True)
    return Checkpoint.objects.filter(timeline=live_timeline()).order_by("-created_at").first()


def failure_analyze(
    *,
    operation: str,
    error: ErrorLike,
    checkpoint_before: Checkpoint | uuid.UUID | str | None,
    being: BaseBeing | uuid.UUID | str | None = None,
    hash: str = "",
    actor: User | None = None,
) -> FailureAnalysis:
    """The seed's analyze_failure(operation, error, checkpoint_before): a lesson, and the checkpoint to restore."""
    checkpoint = _way_back(checkpoint_before)
    if checkpoint is not None:
        recommendation = f"restore checkpoint {checkpoint.name!r} (manage.py chronos restore {checkpoint.name})"
    else:
        recommendation = "no checkpoint to go back to: fix forward, and take a checkpoint before trying again"
    lesson = failure_record(
        operation=operation,
        error=error,
        being=being,
        hash=hash,
        checkpoint=checkpoint,
        actor=actor,
        feedback=recommendation,
    )
    return FailureAnalysis(lesson=lesson, checkpoint=checkpoint, recommendation=recommendation)


@transaction.atomic
def lesson_resolve(*, lesson: Lesson, actor: User, feedback: str = "") -> Lesson:
    """Close a lesson: it no longer counts as open (risk, promotion evidence); a new failure opens a new one."""
    permission_require(actor, "chronos.change_lesson", "resolving a lesson")
    fields: dict[str, Any] = {"resolved_at": timezone.now()}
    if feedback:
        fields["feedback"] = _text(feedback, "feedback")
    Lesson.objects.filter(pk=lesson.pk, resolved_at__isnull=True).update(**fields)
    lesson.refresh_from_db()
    return lesson


def lessons_prune(
    *,
    actor: User,
    older_than: timedelta | None = None,
    tag: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Delete the lessons matching every filter given (last seen before now - older_than, a tag, a time range).

    At least one filter: pruning everything is never an accident. Returns how many were deleted.
    """
    permission_require(actor, "chronos.delete_lesson", "pruning lessons")
    if older_than is None and not tag and since is None and until is None:
        raise LessonFilterInvalidError("name what to prune: older_than, tag, since or until")
    if older_than is not None and older_than.total_seconds() < 0:
        raise LessonFilterInvalidError("older_than cannot be negative")
    since, until = moments_range(since, until)
    condition = Q()
    if older_than is not None:
        condition &= Q(last_seen_at__lt=timezone.now() - older_than)
    if tag:
        condition &= Q(tags__contains=[tag.strip().lower()])
    if since is not None:
        condition &= Q(last_seen_at__gte=since)
    if until is not None:
        condition &= Q(last_seen_at__lt=until)
    deleted, _ = Lesson.objects.filter(condition).delete()
    return deleted
