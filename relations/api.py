"""Relationships over HTTP: CRUD and listing."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from luxsite.api_schemas import ERRORS
from relations import selectors, services
from relations.models import Relationship
from relations.schemas import RelationshipIn, RelationshipOut, RelationshipPageOut, RelationshipPatch

router = Router(tags=["relationships"])


@router.get("/", response={200: RelationshipPageOut, **ERRORS})
def relationship_list(
    request: HttpRequest,
    tags_all: list[str] = Query([]),
    after: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    """Relationships you may view, newest first."""
    return selectors.relationship_list(user=request.user, tags_all=tags_all, after=after, limit=limit).as_dict()


@router.post("/", response={201: RelationshipOut, **ERRORS})
def relationship_create(request: HttpRequest, payload: RelationshipIn) -> Status[Relationship]:
    """Link two beings: you must be able to change the source and view the target."""
    data = payload.model_dump(exclude={"source_soul", "target_soul"})
    relationship = services.relationship_link_souls(
        source_soul=payload.source_soul, target_soul=payload.target_soul, actor=request.user, data=data
    )
    return Status(201, relationship)


@router.get("/{relationship_id}", response={200: RelationshipOut, **ERRORS})
def relationship_detail(request: HttpRequest, relationship_id: uuid.UUID) -> Relationship:
    return selectors.relationship_get(relationship_id=relationship_id, user=request.user)


@router.patch("/{relationship_id}", response={200: RelationshipOut, **ERRORS})
def relationship_update(request: HttpRequest, relationship_id: uuid.UUID, payload: RelationshipPatch) -> Relationship:
    relationship = selectors.relationship_get(relationship_id=relationship_id, user=request.user)
    return services.relationship_update(
        relationship=relationship, data=payload.model_dump(exclude_unset=True), actor=request.user
    )


@router.delete("/{relationship_id}", response={204: None, **ERRORS})
def relationship_delete(request: HttpRequest, relationship_id: uuid.UUID) -> Status[None]:
    relationship = selectors.relationship_get(relationship_id=relationship_id, user=request.user)
    services.relationship_delete(relationship=relationship, actor=request.user)
    return Status(204, None)
