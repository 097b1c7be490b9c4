"""API shapes of executions: what to run with, and how a run went."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import ConfigDict, Field

from beings.executions.visibility import contents_hidden
from beings.models import Execution

MAX_WAIT_SECONDS = 30.0


class RunIn(Schema):
    model_config = ConfigDict(extra="forbid")

    args: list[Any] = Field(default_factory=list, description="Positional arguments of the entrypoint (JSON).")
    kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments; they override the defaults in the being's `attributes.arguments`.",
    )
    wait: float = Field(
        0,
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="Seconds to wait for the run to finish: 200 with the outcome if it does, else 202 queued.",
    )


class ExecuteIn(RunIn):
    hash: str | None = Field(
        None,
        description="Run this version of the being (full hash or a unique prefix of at least 12); "
        "by default its current version.",
    )


class ExecutionErrorOut(Schema):
    type: str
    message: str
    traceback: str = Field("", description="Cut to the being's own frames: nothing of the sandbox or the worker.")


class ExecutionOut(Schema):
    """One run: what ran with what, how it ended, where and how long."""

    id: uuid.UUID
    being: uuid.UUID = Field(description="The soul of the being run.")
    alias: str
    hash: str = Field(description="The exact version run, pinned when the run was queued.")
    version: int
    environment: str = Field(description="The environment whose promoted hash ran; empty for development.")
    args: list[Any] | None = Field(description="Positional arguments it ran with; null when `contents_hidden`.")
    kwargs: dict[str, Any] | None = Field(description="Keyword arguments it ran with; null when `contents_hidden`.")
    status: Execution.Status
    result: Any = Field(None, description="What the entrypoint returned (JSON), once it succeeded.")
    error: ExecutionErrorOut | None = Field(
        None, description="How it failed; only the type (message and traceback empty) when `contents_hidden`."
    )
    output: str = Field(description="What the being printed, cut at the output limit; empty when `contents_hidden`.")
    output_truncated: bool
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    worker: str
    queue: str
    attempts: int
    priority: int = Field(description="0..9 from the being's energy; higher runs first.")
    parent: uuid.UUID | None = Field(None, description="The run whose execution() made this one.")
    root: uuid.UUID | None = Field(None, description="The top-level run of a nested one.")
    depth: int
    limits: dict[str, Any] = Field(description="The sandbox limits the run had.")
    layers: dict[str, bool] = Field(description="The sandbox layers in force while it ran.")
    calls: int
    summons: int
    actor: str = Field(description="Who started the run.")
    contents_hidden: bool = Field(
        False,
        description="The run is another user's, shown to the owner of its being: that it happened, its status, "
        "timings and error type; its args, kwargs, result, output and error message are its starter's "
        "(and superusers').",
    )
    replay_of: uuid.UUID | None = Field(None, description="The run this one replays: same hash, inputs and `self`.")

    @staticmethod
    def resolve_being(obj: Execution) -> uuid.UUID:
        return obj.being_id

    @staticmethod
    def resolve_parent(obj: Execution) -> uuid.UUID | None:
        return obj.parent_id

    @staticmethod
    def resolve_root(obj: Execution) -> uuid.UUID | None:
        return obj.root_id

    @staticmethod
    def resolve_actor(obj: Execution) -> str:
        return obj.actor_name

    @staticmethod
    def resolve_contents_hidden(obj: Execution) -> bool:
        return contents_hidden(obj)

    @staticmethod
    def resolve_replay_of(obj: Execution) -> uuid.UUID | None:
        return obj.replay_of_id


class ExecutionPageOut(Schema):
    items: list[ExecutionOut]
    next: str | None = Field(None, description="Cursor of the next page (`after`); none on the last page.")


class ReplayIn(Schema):
    model_config = ConfigDict(extra="forbid")

    wait: float = Field(
        0,
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="Seconds to wait for the replay to finish: 200 with the comparison if it does, else 202.",
    )


class ReplayOut(Schema):
    """A replay beside the run it repeats, and whether the two came out the same."""

    replay: ExecutionOut
    original: ExecutionOut
    deterministic: bool | None = Field(
        description="Both runs ended the same way, with the same result and output; null until both have finished."
    )
    same_status: bool | None = Field(description="The same status (and error type).")
    same_result: bool | None
    same_output: bool | None
