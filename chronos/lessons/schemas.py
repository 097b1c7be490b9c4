"""API shapes of lessons: a lesson in and out, search filters, prune filters, statistics."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import ConfigDict, Field

from chronos.models import Lesson
from chronos.schemas import Text


class LessonIn(Schema):
    """The seed's add_lesson(situation, action, result, feedback, tags), with what the lesson concerns."""

    model_config = ConfigDict(extra="forbid")

    situation: Text = Field(..., description="What was going on: required, up to 20,000 characters.")
    action: Text = ""
    result: Text = ""
    feedback: Text = Field("", description="What to do next time.")
    tags: list[Text] = Field(default_factory=list, description="Up to 32 tags of up to 64 characters, kept lower case.")
    metadata: dict[str, Any] = Field(default_factory=dict)
    being: uuid.UUID | None = Field(None, description="The soul of the being it concerns; you must be able to view it.")
    hash: Text = Field(
        "", max_length=64, description="The hash (version) it concerns; the being's current one by default."
    )


class LessonOut(Schema):
    id: int
    operation: str = Field(
        ..., description="manual, or the failed operation: execution, evolution, validation, restore…"
    )
    situation: str
    action: str
    result: str
    feedback: str
    tags: list[str]
    metadata: dict[str, Any]
    error_class: str = Field(..., description="The failure's class (an exception type or error code); empty by hand.")
    being: uuid.UUID | None = Field(None, alias="being_id")
    hash: str
    checkpoint: uuid.UUID | None = Field(None, alias="checkpoint_id")
    execution: uuid.UUID | None = Field(None, alias="execution_id")
    timeline: int | None = Field(None, alias="timeline_id")
    count: int = Field(..., description="How many times this failure happened: repeats raise it, not new lessons.")
    created_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    rank: float | None = Field(None, description="Relevance to the search query (full text plus trigrams).")


class LessonQuery(Schema):
    q: str = Field("", max_length=200, description="Words to search, English or Polish; inflections match.")
    being: uuid.UUID | None = Field(None, description="Lessons about this being (soul).")
    hash: str = Field("", max_length=64, description="Lessons about this hash (or a prefix of it).")
    tag: str = Field("", max_length=64)
    since: datetime | None = Field(None, description="Last seen at or after this time.")
    until: datetime | None = Field(None, description="Last seen before this time.")
    open: bool = Field(False, description="Only lessons not resolved yet.")
    limit: int = Field(50, ge=1, le=200)


class PruneIn(Schema):
    """Which lessons to delete: every filter given must match; at least one is required."""

    model_config = ConfigDict(extra="forbid")

    older_than_days: float | None = Field(
        None, ge=0, le=36_500, description="Last seen more than this many days ago (at most a century)."
    )
    tag: str = Field("", max_length=64)
    since: datetime | None = None
    until: datetime | None = None


class PruneOut(Schema):
    deleted: int


class ResolveIn(Schema):
    model_config = ConfigDict(extra="forbid")

    feedback: Text = Field("", description="What fixed it; replaces the lesson's feedback when given.")


class LessonStatsOut(Schema):
    lessons: int
    open: int
    occurrences: int = Field(..., description="The sum of the counts: every failure recorded, repeats included.")
    first_seen: datetime | None
    last_seen: datetime | None
    by_operation: dict[str, int]
    by_error_class: list[dict[str, Any]]
    by_tag: list[dict[str, Any]]


def lesson_document(lesson: Lesson) -> dict[str, Any]:
    """A lesson as the API answers it, for the command's ``--json`` and the agent's tools."""
    return LessonOut.from_orm(lesson).model_dump(mode="json")
