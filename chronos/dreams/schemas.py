"""API shapes of dreams: what starting one takes, a dream as listed and in full, two compared."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import ConfigDict, Field

from chronos.models import Dream
from chronos.schemas import Text


class DreamIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(..., description="1 to 100 characters.")
    plan: Any = Field(
        ...,
        description='Steps, in order: {"execute": SOUL_OR_ALIAS, "args": [], "kwargs": {}, "expect": RESULT} and '
        '{"evolve": SOUL_OR_ALIAS, "source": "...", "reason": "", "expect": "evolution" | "mutation"}.',
    )
    seconds: int | None = Field(None, description="Its bound, 1 to CHRONOS_DREAM_SECONDS (the default).")
    not_before: datetime | None = Field(None, description="Scheduled: beat starts it at or after this time.")


class DreamOut(Schema):
    id: uuid.UUID
    name: str
    status: str = Field(..., description="queued, running, kept (offered for merge), merged, discarded or failed.")
    success_rate: float | None = Field(None, description="The share of steps that went as planned.")
    timeline: str | None = Field(None, description="dream_<id>: its changes, forked where it started.")
    merge: uuid.UUID | None = Field(None, description="The merge it is offered for (open) or was merged by.")
    seconds: int
    not_before: datetime | None
    error: str
    actor: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @staticmethod
    def resolve_timeline(obj: Dream) -> str | None:
        return obj.timeline.name if obj.timeline_id and obj.timeline else None

    @staticmethod
    def resolve_merge(obj: Dream) -> uuid.UUID | None:
        return obj.merge_id

    @staticmethod
    def resolve_actor(obj: Dream) -> str:
        return obj.actor_name


class DreamDetailOut(DreamOut):
    plan: list[dict[str, Any]]
    results: list[dict[str, Any]] = Field(
        ..., description="Per step: step, kind, target, ok, expected, status, result, error, soul, hash, duration_ms."
    )
    fork: uuid.UUID | None = Field(None, description="The checkpoint it forked from.")

    @staticmethod
    def resolve_fork(obj: Dream) -> uuid.UUID | None:
        return obj.fork_id


class DreamPageOut(Schema):
    items: list[DreamOut]
    next: str | None = Field(None, description="Cursor of the next page; absent on the last one.")


class DreamSideOut(Schema):
    id: uuid.UUID
    name: str
    status: str
    success_rate: float | None
    steps: int
    failures: int
    duration_ms: float
    changes: int = Field(..., description="Rows changes its timeline holds.")
    timeline: str | None
    error: str


class DreamCompareOut(Schema):
    a: DreamSideOut
    b: DreamSideOut
    steps: list[dict[str, Any]] = Field(..., description="Step by step: {step, kind, target, a, b} (a result or null).")
    better: str | None = Field(None, description="a or b: the higher rate, then the faster; null when even.")


def dream_document(dream: Dream, *, full: bool = False) -> dict[str, Any]:
    """A dream as the API answers it (``full``: with its plan and results), for the commands and the agent."""
    return (DreamDetailOut if full else DreamOut).from_orm(dream).model_dump(mode="json")
