"""API shapes of relationships."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import ConfigDict, Field

from relations.models import Relationship


class RelationshipIn(Schema):
    model_config = ConfigDict(extra="forbid")

    source_soul: uuid.UUID
    target_soul: uuid.UUID
    tags: list[str] = Field(default_factory=list)
    energy_level: int = 0
    genesis: dict[str, Any] = Field(default_factory=dict, examples=[{"type": "invokes"}])
    attributes: dict[str, Any] = Field(default_factory=dict)


class RelationshipPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    tags: list[str] | None = None
    energy_level: int | None = None
    genesis: dict[str, Any] | None = None
    attributes: dict[str, Any] | None = None


class RelationshipOut(Schema):
    id: uuid.UUID
    source_soul: uuid.UUID
    target_soul: uuid.UUID
    tags: list[str]
    energy_level: int | None
    genesis: dict[str, Any]
    attributes: dict[str, Any]
    created_at: datetime | None

    @staticmethod
    def resolve_source_soul(obj: Relationship) -> uuid.UUID:
        return obj.source_id

    @staticmethod
    def resolve_target_soul(obj: Relationship) -> uuid.UUID:
        return obj.target_id

    @staticmethod
    def resolve_tags(obj: Relationship) -> list[str]:
        return list(obj.tags or [])


class RelationshipPageOut(Schema):
    items: list[RelationshipOut]
    next: str | None = None
