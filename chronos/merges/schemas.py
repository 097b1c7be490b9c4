"""API shapes of merges: a preview asked for, a conflict resolved, a merge with its conflicts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from chronos.merges import selectors
from chronos.models import Merge, MergeConflict
from chronos.schemas import Text


class MergeIn(Schema):
    model_config = ConfigDict(extra="forbid")

    source: Text = Field(..., description="The timeline merged from (theirs).")
    into: Text = Field(..., description="The timeline merged into (ours); it must be live to apply.")
    strategy: Literal["field", "row", "ours", "theirs"] = Field(
        "field",
        description="field: key by key inside JSON, the same key changed two ways conflicts; row: any row changed "
        "on both sides conflicts; ours / theirs: that side wins every row changed on both sides.",
    )


class ConflictResolveIn(Schema):
    model_config = ConfigDict(extra="forbid")

    resolution: Literal["ours", "theirs", "value"]
    value: Any = Field(
        None,
        description="With `value`: the value for the conflict's path, validated as a write (an object of fields for "
        "a whole row; some of type, language, entrypoint, source, workload for a being's code).",
    )


class ConflictOut(Schema):
    id: int
    table: str
    row_id: uuid.UUID
    path: list[str] = Field(..., description='Where in the row: [] the whole row, ["genesis"] a being\'s code.')
    base: Any
    ours: Any
    theirs: Any
    resolution: str = Field(..., description="ours, theirs, value, or empty while open.")
    value: Any
    resolved_by: str


class MergeOut(Schema):
    id: uuid.UUID
    source: str
    into: str
    strategy: str
    status: str = Field(..., description="open, applied, failed or abandoned.")
    base: str | None = Field(None, description="The fork point's checkpoint id.")
    safety: str | None = Field(None, description="The safety checkpoint taken before applying: restore it to undo.")
    stats: dict[str, Any]
    actor: str
    created_at: datetime
    applied_at: datetime | None
    open_conflicts: int
    conflicts: list[ConflictOut]

    @staticmethod
    def resolve_source(obj: Merge) -> str:
        return obj.source.name

    @staticmethod
    def resolve_into(obj: Merge) -> str:
        return obj.into.name

    @staticmethod
    def resolve_base(obj: Merge) -> str | None:
        return str(obj.base_id) if obj.base_id else None

    @staticmethod
    def resolve_safety(obj: Merge) -> str | None:
        return str(obj.safety_id) if obj.safety_id else None

    @staticmethod
    def resolve_actor(obj: Merge) -> str:
        return obj.actor_name

    @staticmethod
    def resolve_conflicts(obj: Merge) -> list[MergeConflict]:
        return list(obj.conflicts.all())

    @staticmethod
    def resolve_open_conflicts(obj: Merge) -> int:
        return sum(1 for conflict in obj.conflicts.all() if not conflict.resolution)


class MergeSummaryOut(Schema):
    id: uuid.UUID
    source: str
    into: str
    strategy: str
    status: str
    open_conflicts: int
    created_at: datetime
    applied_at: datetime | None

    @staticmethod
    def resolve_source(obj: Merge) -> str:
        return obj.source.name

    @staticmethod
    def resolve_into(obj: Merge) -> str:
        return obj.into.name

    @staticmethod
    def resolve_open_conflicts(obj: Merge) -> int:
        return int(getattr(obj, "open_count", 0))


def merge_document(merge: Merge) -> dict[str, Any]:
    """A merge with its conflicts as the API answers it, for the command's ``--json`` and the agent."""
    return MergeOut.from_orm(selectors.merge_get(merge.id)).model_dump(mode="json")
