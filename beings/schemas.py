"""API shapes of beings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

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
