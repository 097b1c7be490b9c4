"""API shapes of beings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from beings.models import BaseBeing


class BeingIn(Schema):
    model_config = ConfigDict(extra="forbid")

    soul: uuid.UUID | None = Field(None, description="Optional: a soul of your choosing; generated otherwise.")
    genesis: dict[str, Any] = Field(
        ...,
        description="`name` and `type` required; `source` (Python, ≤ 64 KiB) must parse.",
        examples=[{"name": "hello", "type": "function", "source": "def run():\n    return 'hi'\n"}],
    )
    tags: list[str] = Field(default_factory=list, description="At most 64 tags of at most 64 characters.")
    energy_level: int = 0
    attributes: dict[str, Any] = Field(default_factory=dict)
    memories: list[Any] | dict[str, Any] = Field(default_factory=list)
    self_awareness: dict[str, Any] = Field(default_factory=dict)


class BeingPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    genesis: dict[str, Any] | None = None
    tags: list[str] | None = None
    energy_level: int | None = None
    attributes: dict[str, Any] | None = None
    memories: list[Any] | dict[str, Any] | None = None
    self_awareness: dict[str, Any] | None = None


class BeingOut(Schema):
    soul: uuid.UUID
    name: str
    kind: str
    hash: str = Field(..., description="The soul hash of the current version (genesis.hash).")
    version: int = Field(..., description="The current version (genesis.version).")
    tags: list[str]
    energy_level: int | None
    genesis: dict[str, Any]
    attributes: dict[str, Any]
    memories: Any
    self_awareness: dict[str, Any]
    created_at: datetime | None

    @staticmethod
    def resolve_tags(obj: BaseBeing) -> list[str]:
        return list(obj.tags or [])


class BeingPageOut(Schema):
    items: list[BeingOut]
    next: str | None = Field(None, description="Cursor of the next page; absent on the last one.")


class ImportOut(Schema):
    created: int


class EvolveIn(Schema):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str = Field(..., description="The new Python source of the being.")
    reason: str = Field("", max_length=500, description="Why the source changes: kept in the lineage and memories.")
    run_async: bool = Field(
        False, alias="async", description="Hand the change to a worker and answer 202 at once instead of waiting."
    )


class EvolutionOut(Schema):
    kind: Literal["evolution", "cosmetic", "mutation"] = Field(
        ..., description="evolution and cosmetic keep the soul; a mutation makes a new being."
    )
    being: BeingOut = Field(..., description="The being holding the new version: the same soul, or the mutant.")
    parent_soul: uuid.UUID = Field(..., description="The being that was evolved.")
    from_hash: str
    to_hash: str
    version: int = Field(..., description="Version of the new source in the being that holds it.")
    added: int
    removed: int
    changed: int


class EvolveQueuedOut(Schema):
    status: Literal["queued"]
    task_id: str


class VersionOut(Schema):
    version: int
    hash: str
    kind: str = Field(..., description="How this version came to be: genesis, evolution, cosmetic or mutation.")
    created_at: str | None
    soul: uuid.UUID = Field(..., description="The being this version belongs to (the parent, for inherited ones).")
    inherited: bool = Field(..., description="A version of the parent that a mutant carries in its lineage.")
    is_current: bool


class VersionRef(Schema):
    hash: str
    version: int


class DiffQuery(Schema):
    model_config = ConfigDict(populate_by_name=True)

    from_hash: str = Field(..., alias="from", description="Hash (or a prefix of ≥ 12 characters) of the older side.")
    to: str = Field(..., description="Hash (or a prefix of ≥ 12 characters) of the newer side.")


class DiffOut(Schema):
    model_config = ConfigDict(populate_by_name=True)

    from_version: VersionRef = Field(..., alias="from")
    to: VersionRef
    unified: str = Field(..., description="A unified diff of the two sources, labelled `hash[:12] vN`.")
    added: int
    removed: int
