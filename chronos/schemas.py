"""API shapes of chronos: checkpoints, timelines, restore previews and reports, diffs, history, stats."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import AfterValidator, ConfigDict, Field

from beings.souls.schemas import PromotionOut
from chronos.models import Checkpoint, Timeline


def no_nul(value: str) -> str:
    """PostgreSQL text cannot hold a NUL character: refused here as a 422, not a 500 from the database."""
    if "\x00" in value:
        raise ValueError("text may not contain a NUL character")
    return value


Text = Annotated[str, AfterValidator(no_nul)]


class CheckpointIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(..., description="1 to 100 characters, unique on its timeline (409 checkpoint_name_taken).")
    description: Text = ""
    timeline: Text | None = Field(None, description="The timeline to mark; the live one by default.")


class CheckpointFields(Schema):
    id: uuid.UUID
    name: str
    description: str
    timeline: str = Field(..., description="The name of the timeline it marks.")
    kind: str = Field(..., description="manual, safety (taken before a restore or switch), fork or import.")
    pinned: bool = Field(..., description="Exempt from retention.")
    created_at: datetime
    actor: str = Field(..., description="Who took it.")


class CheckpointOut(CheckpointFields):
    @staticmethod
    def resolve_timeline(obj: Checkpoint) -> str:
        return obj.timeline.name

    @staticmethod
    def resolve_actor(obj: Checkpoint) -> str:
        return obj.actor_name


class CheckpointPageOut(Schema):
    items: list[CheckpointOut]
    next: str | None = Field(None, description="Cursor of the next page; absent on the last one.")


class CheckpointStatsOut(Schema):
    changes_since: int = Field(..., description="Log entries on its timeline since it was taken.")
    bytes_since: int = Field(..., description="Their size in the log.")


class CheckpointDetailOut(CheckpointFields):
    stats: CheckpointStatsOut


class PinIn(Schema):
    model_config = ConfigDict(extra="forbid")

    pinned: bool = True


class ForceIn(Schema):
    model_config = ConfigDict(extra="forbid")

    force: bool = Field(
        False, description="Go on although the being behind an active promotion is deleted (409 without it)."
    )


class TravelOut(Schema):
    """What a restore or a switch did."""

    safety: CheckpointOut | None = Field(None, description="The checkpoint taken first: restore it to undo this.")
    undone: int = Field(..., description="Log entries undone.")
    redone: int = Field(..., description="Log entries redone (a switch's other side).")
    rows: dict[str, int] = Field(..., description="Rows written, per table.")


class TimelineIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(..., description="1 to 100 characters, without @; unique among timelines.")
    from_checkpoint: Text | None = Field(
        None, description="The checkpoint to fork from (id, id prefix or name); from now on the live timeline if none."
    )
    description: Text = ""


class TimelineOut(Schema):
    name: str
    description: str
    live: bool = Field(..., description="The two tables hold this timeline's head.")
    parent: str | None = Field(None, description="The timeline it forked from; none for main.")
    fork: uuid.UUID | None = Field(None, description="The checkpoint it forked from.")
    created_at: datetime
    actor: str

    @staticmethod
    def resolve_parent(obj: Timeline) -> str | None:
        return obj.parent.name if obj.parent is not None else None

    @staticmethod
    def resolve_fork(obj: Timeline) -> uuid.UUID | None:
        return obj.fork_id

    @staticmethod
    def resolve_actor(obj: Timeline) -> str:
        return obj.actor_name


class CountOut(Schema):
    table: str = Field(..., description="base_beings or relationships.")
    kind: Literal["added", "removed", "changed"]
    count: int


class FieldDiffOut(Schema):
    path: str = Field(..., description="Where the row differs: a column, then keys and [indexes] inside its JSON.")
    kind: Literal["changed", "added", "removed"]
    old: Any = None
    new: Any = None


class RowDiffOut(Schema):
    table: str
    row_id: uuid.UUID
    kind: Literal["added", "removed", "changed"]
    old: dict[str, Any] | None = Field(None, description="The row at the origin; none when added.")
    new: dict[str, Any] | None = Field(None, description="The row at the target; none when removed.")
    fields: list[FieldDiffOut] = Field(..., description="For a changed row, the paths that differ.")


class PointsDiffQuery(Schema):
    model_config = ConfigDict(populate_by_name=True)

    from_point: str = Field(
        ...,
        alias="from",
        description="now, a checkpoint (id, prefix or name), a timeline name, @LOG_ID, an ISO 8601 time or NAME@TIME.",
    )
    to: str = Field("now", description="A point, as `from`.")
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=10_000_000)


class PointsDiffOut(Schema):
    model_config = ConfigDict(populate_by_name=True)

    from_point: str = Field(..., alias="from")
    to: str
    stat: list[CountOut] = Field(..., description="Rows per table and kind, over the whole diff.")
    total: int = Field(..., description="Rows that differ.")
    changes: int = Field(..., description="Log entries between the two points.")
    offset: int
    entries: list[RowDiffOut] = Field(..., description="A page of the rows, by table then id.")


class TravelPreviewOut(Schema):
    stat: list[CountOut] = Field(..., description="Rows it adds, removes and changes, per table.")
    total: int
    changes: int = Field(..., description="Log entries it undoes and redoes.")
    entries: list[RowDiffOut] = Field(..., description="The first rows, as they are now (old) and after (new).")
    promotions_removed: list[PromotionOut] = Field(..., description="Active promotions whose being it deletes.")
    promotions_changed: list[PromotionOut] = Field(..., description="Active promotions whose being it changes.")
    needs_force: bool = Field(..., description="It is refused (409) without force.")


class PreviewOut(TravelPreviewOut):
    """What a restore would do."""

    checkpoint: CheckpointOut


class SwitchPreviewOut(TravelPreviewOut):
    """What a switch would do."""

    timeline: TimelineOut = Field(..., description="The timeline that would become live.")
    live: TimelineOut = Field(..., description="The live timeline, whose head the tables hold now.")


class TimelineStatsOut(Schema):
    name: str
    live: bool
    changes: int


class StatsOut(Schema):
    log_bytes: int = Field(..., description="chronos_change on disk, indexes included.")
    context_bytes: int = Field(..., description="chronos_transaction on disk.")
    checkpoints: int
    pinned: int
    timelines: list[TimelineStatsOut]
    archives: int = Field(..., description="Exported archives in CHRONOS_TIMELINES_DIR.")
    archive_bytes: int


class HistoryEntryOut(Schema):
    id: int = Field(..., description="The log entry's id.")
    operation: Literal["INSERT", "UPDATE", "DELETE"]
    timeline: str
    kind: str = Field(..., description="write, restore, switch, import, or replay (a switch's rewrite).")
    context: dict[str, Any] = Field(..., description="Who (actor), through which door, the operation and why.")
    committed_at: datetime | None
    data: Any = Field(..., description="The full row for INSERT and DELETE; for UPDATE what changed.")


class HistoryPageOut(Schema):
    items: list[HistoryEntryOut]
    next: int | None = Field(None, description="Pass as `before` for the next (older) page; absent on the last.")


class ImportIn(Schema):
    timeline: Text = Field(..., description="The name of the new timeline the archive is loaded as.")
    description: Text = ""


class GcIn(Schema):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(False, description="Report what would be removed, and remove nothing.")


class GcOut(Schema):
    dry_run: bool
    checkpoints: list[str] = Field(..., description="timeline/name of each checkpoint removed.")
    timelines: list[str] = Field(..., description="Deleted timelines whose log was freed.")
    changes: int = Field(..., description="Log entries removed.")
    transactions: int = Field(..., description="Transaction contexts removed.")
    permissions: int = Field(..., description="Rights of rows no retained point in history holds any more.")
    bytes_freed: int
