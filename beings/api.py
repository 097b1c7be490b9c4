"""Beings over HTTP: CRUD, filtered keyset listing, relationships in and out, bulk import."""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from beings import selectors, services
from beings.models import BaseBeing
from beings.schemas import BeingIn, BeingOut, BeingPageOut, BeingPatch, ImportOut
from luxsite.api_schemas import ERRORS
from luxsite.errors import BadRequest
from relations.schemas import RelationshipPageOut
from relations.selectors import relationship_list

router = Router(tags=["beings"])


class BeingQuery(Schema):
    tags_all: list[str] = Field(default_factory=list, description="Beings carrying every one of these tags.")
    tags_any: list[str] = Field(default_factory=list, description="Beings carrying at least one of these tags.")
    type: str | None = Field(None, description="genesis.type, e.g. function.")
    name: str | None = Field(None, description="genesis.name (the alias), exactly.")
    energy_min: int | None = None
    energy_max: int | None = None
    attributes: str | None = Field(None, description='JSON object the attributes must contain, e.g. {"team":"x"}.')
    genesis: str | None = Field(None, description="JSON object the genesis must contain.")
    ordering: Literal["created_at", "-created_at", "energy_level", "-energy_level"] = "-created_at"
    after: str | None = Field(None, description="The `next` cursor of the previous page.")
    limit: int = Field(50, ge=1, le=500)


def json_object_param(name: str, raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a JSON object", code="malformed_json") from None
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be a JSON object", code="malformed_json")
    return value


@router.get("/", response={200: BeingPageOut, **ERRORS})
def being_list(request: HttpRequest, query: Query[BeingQuery]) -> dict[str, Any]:
    """Beings you may view, filtered, newest first by default, a page at a time."""
    filters = selectors.BeingFilters(
        tags_all=query.tags_all,
        tags_any=query.tags_any,
        kind=query.type,
        name=query.name,
        energy_min=query.energy_min,
        energy_max=query.energy_max,
        attributes=json_object_param("attributes", query.attributes),
        genesis=json_object_param("genesis", query.genesis),
    )
    page = selectors.being_list(
        user=request.user, filters=filters, ordering=query.ordering, after=query.after, limit=query.limit
    )
    return page.as_dict()


@router.post("/", response={201: BeingOut, **ERRORS})
def being_create(request: HttpRequest, payload: BeingIn) -> Status[BaseBeing]:
    """Create a being; you get view, change and delete on it."""
    data = payload.model_dump(exclude_unset=True)
    if data.get("soul") is None:
        data.pop("soul", None)
    return Status(201, services.being_create(data=data, actor=request.user))


@router.post(
    "/import",
    response={201: ImportOut, **ERRORS},
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "JSON Lines: one being per line, shaped like the body of `POST /api/beings/`.",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
def beings_import(request: HttpRequest) -> Status[dict[str, int]]:
    """Import beings from JSON Lines, all or nothing."""
    report = services.beings_import(lines=request.body.splitlines(), actor=request.user)
    return Status(201, {"created": report.created})


@router.get("/{soul}", response={200: BeingOut, **ERRORS})
def being_detail(request: HttpRequest, soul: uuid.UUID) -> BaseBeing:
    return selectors.being_get(soul=soul, user=request.user)


@router.patch("/{soul}", response={200: BeingOut, **ERRORS})
def being_update(request: HttpRequest, soul: uuid.UUID, payload: BeingPatch) -> BaseBeing:
    """Change some fields of a being you may change."""
    being = selectors.being_get(soul=soul, user=request.user)
    return services.being_update(being=being, data=payload.model_dump(exclude_unset=True), actor=request.user)


@router.delete("/{soul}", response={204: None, **ERRORS})
def being_delete(request: HttpRequest, soul: uuid.UUID) -> Status[None]:
    """Delete a being you may delete; it must have no relationships."""
    being = selectors.being_get(soul=soul, user=request.user)
    services.being_delete(being=being, actor=request.user)
    return Status(204, None)


@router.get("/{soul}/relationships", response={200: RelationshipPageOut, **ERRORS})
def being_relationships(
    request: HttpRequest,
    soul: uuid.UUID,
    direction: Literal["in", "out", "both"] = "both",
    after: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    """Relationships into, out of, or both ways through one being."""
    being = selectors.being_get(soul=soul, user=request.user)
    page = relationship_list(user=request.user, being=being, direction=direction, after=after, limit=limit)
    return page.as_dict()
