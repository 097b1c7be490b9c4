"""Lessons over HTTP at ``/api/chronos/lessons/``: search and list, add, resolve, prune, statistics.

Anyone signed in may read the lessons about beings they may view (staff and holders of
``chronos.view_checkpoint`` read all of them); adding needs ``chronos.add_lesson``, resolving
``chronos.change_lesson``, pruning ``chronos.delete_lesson``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from beings.selectors import being_get
from chronos.lessons import selectors, services
from chronos.lessons.schemas import (
    LessonIn,
    LessonOut,
    LessonQuery,
    LessonStatsOut,
    PruneIn,
    PruneOut,
    ResolveIn,
)
from chronos.models import Lesson
from luxsite.api_schemas import ERRORS, described

router = Router(tags=["lessons"])


@router.get("", response={200: list[LessonOut], **ERRORS})
def lesson_list(request: HttpRequest, query: Query[LessonQuery]) -> list[Lesson]:
    """Search the lessons you may read: English full text plus trigram similarity, best first (newest without `q`)."""
    return selectors.lessons_search(
        user=request.user,
        query=query.q,
        being=query.being,
        hash=query.hash,
        tag=query.tag,
        since=query.since,
        until=query.until,
        open_only=query.open,
        limit=query.limit,
    )


@router.post(
    "",
    response={201: LessonOut, **ERRORS},
    openapi_extra=described({201: "Added: a lesson written by hand (needs chronos.add_lesson)."}),
)
def lesson_add(request: HttpRequest, payload: LessonIn) -> Status[Lesson]:
    """The seed's add_lesson(situation, action, result, feedback, tags), about a being you may view if one is named."""
    being = being_get(soul=payload.being, user=request.user) if payload.being else None
    lesson = services.lesson_add(
        situation=payload.situation,
        action=payload.action,
        result=payload.result,
        feedback=payload.feedback,
        tags=payload.tags,
        metadata=payload.metadata,
        being=being,
        hash=payload.hash,
        actor=request.user,
    )
    return Status(201, lesson)


@router.get("/stats", response={200: LessonStatsOut, **ERRORS})
def lesson_stats(request: HttpRequest) -> dict[str, Any]:
    """How many lessons you may read, open, occurrences, and the top operations, error classes and tags."""
    return selectors.lessons_stats(user=request.user).as_dict()


def _prune(request: HttpRequest, filters: PruneIn) -> dict[str, int]:
    older_than = timedelta(days=filters.older_than_days) if filters.older_than_days is not None else None
    deleted = services.lessons_prune(
        actor=request.user, older_than=older_than, tag=filters.tag, since=filters.since, until=filters.until
    )
    return {"deleted": deleted}


@router.post("/prune", response={200: PruneOut, **ERRORS})
def lesson_prune(request: HttpRequest, payload: PruneIn) -> dict[str, int]:
    """Delete the lessons matching every filter given (at least one; needs chronos.delete_lesson)."""
    return _prune(request, payload)


@router.delete("", response={200: PruneOut, **ERRORS})
def lesson_prune_by_query(request: HttpRequest, filters: Query[PruneIn]) -> dict[str, int]:
    """The same prune, with the filters in the query string."""
    return _prune(request, filters)


@router.get("/{id}", response={200: LessonOut, **ERRORS})
def lesson_detail(request: HttpRequest, id: int) -> Lesson:
    """One lesson you may read."""
    return selectors.lesson_get(id=id, user=request.user)


@router.post("/{id}/resolve", response={200: LessonOut, **ERRORS})
def lesson_resolve(request: HttpRequest, id: int, payload: ResolveIn) -> Lesson:
    """Close a lesson (needs chronos.change_lesson): it stops counting as open; the same failure opens a new one."""
    lesson = selectors.lesson_get(id=id, user=request.user)
    return services.lesson_resolve(lesson=lesson, actor=request.user, feedback=payload.feedback)
