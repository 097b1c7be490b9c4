"""Beings over HTTP: CRUD, filtered keyset listing, relationships in and out, bulk import, evolution and versions."""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from beings import evolution, selectors, services
from beings.models import BaseBeing
from beings.schemas import (
    BeingIn,
    BeingOut,
    BeingPageOut,
    BeingPatch,
    DiffOut,
    DiffQuery,
    EvolutionOut,
    EvolveIn,
    EvolveQueuedOut,
    ImportOut,
    VersionOut,
)
from chronos import selectors as chronos_selectors
from chronos.points import point_resolve
from chronos.schemas import HistoryPageOut
from luxsite.api_schemas import ERRORS, described
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


@router.post(
    "/",
    response={201: BeingOut, 200: BeingOut, **ERRORS},
    openapi_extra=described(
        {
            200: "A being you may view already has this genotype and alias: that being.",
            201: "Created; you get view, change and delete on it.",
        }
    ),
)
def being_create(request: HttpRequest, payload: BeingIn) -> Status[BaseBeing]:
    """Create a being, or get the one you may view with the same genotype (hash) and alias: creation is idempotent."""
    data = payload.model_dump(exclude_unset=True)
    if data.get("soul") is None:
        data.pop("soul", None)
    being, created = services.being_create_or_get(data=data, actor=request.user)
    return Status(201 if created else 200, being)


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
def being_detail(
    request: HttpRequest,
    soul: uuid.UUID,
    at: str | None = Query(
        None,
        description="The being as it was at a point: now, a checkpoint (id, prefix or name), a timeline name, "
        "@LOG_ID, an ISO 8601 time or NAME@TIME. A 404 when it did not exist then.",
    ),
) -> BaseBeing:
    """A being you may view, as it is now or as it was at a point in its history."""
    if at is None:
        return selectors.being_get(soul=soul, user=request.user)
    image = chronos_selectors.being_at(soul=soul, point=point_resolve(at), user=request.user)
    return BaseBeing(**{field.attname: image.get(field.attname) for field in BaseBeing._meta.concrete_fields})


@router.get("/{soul}/history", response={200: HistoryPageOut, **ERRORS})
def being_history(
    request: HttpRequest,
    soul: uuid.UUID,
    limit: int = Query(50, ge=1, le=500),
    before: int | None = Query(None, ge=1, le=2**63 - 1, description="The `next` of the previous page."),
) -> dict[str, Any]:
    """Every change of a being, newest first: what changed, who, through which door, why, when, on which timeline."""
    entries = chronos_selectors.being_history(soul=soul, user=request.user, limit=limit + 1, before=before)
    return {"items": entries[:limit], "next": entries[limit - 1].id if len(entries) > limit else None}


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


@router.post(
    "/{soul}/evolve",
    response={200: EvolutionOut, 201: EvolutionOut, 202: EvolveQueuedOut, **ERRORS},
    openapi_extra=described(
        {
            200: "An evolution (or a cosmetic one): the same being, the next version.",
            201: "A mutation: a new being, linked to its parent by a `mutation` relationship.",
            202: "`async` was true: the change was queued for a worker.",
        }
    ),
)
def being_evolve(request: HttpRequest, soul: uuid.UUID, payload: EvolveIn) -> Status[Any]:
    """Give a being a new source: only a few added lines evolve it, anything else mutates it into a new being."""
    being = selectors.being_get(soul=soul, user=request.user)
    if payload.run_async:
        task_id = evolution.being_evolve_enqueue(
            being=being, source=payload.source, reason=payload.reason, actor=request.user
        )
        return Status(202, {"status": "queued", "task_id": task_id})
    evolved = evolution.being_evolve(being=being, source=payload.source, reason=payload.reason, actor=request.user)
    return Status(201 if evolved.kind == "mutation" else 200, evolved.as_dict())


@router.get("/{soul}/versions", response={200: list[VersionOut], **ERRORS})
def being_versions(request: HttpRequest, soul: uuid.UUID) -> list[dict[str, Any]]:
    """Every version of a being, oldest first: those inherited from a mutation parent, its own, the current one."""
    being = selectors.being_get(soul=soul, user=request.user)
    return [
        {
            "version": version.version,
            "hash": version.hash,
            "kind": version.kind,
            "created_at": version.created_at,
            "soul": version.soul,
            "inherited": not version.owned,
            "is_current": version.is_current,
        }
        for version in selectors.being_versions(being)
    ]


@router.get("/{soul}/diff", response={200: DiffOut, **ERRORS}, by_alias=True)
def being_diff(request: HttpRequest, soul: uuid.UUID, query: Query[DiffQuery]) -> dict[str, Any]:
    """A unified diff between two versions of one being, named by hash or a prefix of at least 12 characters."""
    being = selectors.being_get(soul=soul, user=request.user)
    diff = selectors.version_diff(being=being, older=query.from_hash, newer=query.to)
    added, removed = diff.lines_counted()
    return {
        "from": {"hash": diff.older.hash, "version": diff.older.version},
        "to": {"hash": diff.newer.hash, "version": diff.newer.version},
        "unified": diff.unified(),
        "added": added,
        "removed": removed,
    }
