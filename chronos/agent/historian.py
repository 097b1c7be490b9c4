"""The historian's tools: weigh an operation's risk, learn and recall lessons, dream a plan, merge timelines.

Like the chronos API, each answers staff or who holds chronos.view_checkpoint (lessons: who may read
them), and the service checks the write's own permission (chronos.add_lesson, chronos.add_dream,
chronos.merge_timeline).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from mcp.types import CallToolResult
from pydantic import Field

from beings.selectors import being_get
from chronos.agent.acting import act
from chronos.agent.exceptions import AssessmentInvalidError
from chronos.agent.timelines import READ, WRITE
from chronos.dreams import services as dream_services
from chronos.dreams.schemas import dream_document
from chronos.guards import viewer_require
from chronos.lessons import selectors as lesson_selectors
from chronos.lessons import services as lesson_services
from chronos.lessons.schemas import lesson_document
from chronos.merges import services as merge_services
from chronos.merges.schemas import merge_document
from chronos.points import live_timeline
from chronos.risk import services as risk_services
from chronos.risk.targets import OPERATIONS, operation_clean, target_parse
from luxsite.permissions import User


def assess_risk(
    operation: Annotated[str | None, Field(description=f"One of {', '.join(OPERATIONS)}.")] = None,
    target: Annotated[
        str | None,
        Field(
            description="[KIND:]REFERENCE, KIND one of being, relationship, checkpoint, timeline, rows; by default "
            "what the operation acts on (a soul, a checkpoint for restore, a timeline for switch and merge)."
        ),
    ] = None,
    source: Annotated[str | None, Field(description="evolve and mutate: the new source.")] = None,
    environment: Annotated[str | None, Field(description="promote and demote: the environment.")] = None,
    text: Annotated[
        str | None, Field(max_length=10_000, description="A free text (English or Polish) instead of an operation.")
    ] = None,
) -> CallToolResult:
    """How risky an operation would be (low, medium, high, critical; a score; weighed reasons), changing nothing.

    Before a high or critical operation LuxOS takes a safety checkpoint; ask first to know.
    """

    def work(actor: User) -> dict[str, Any]:
        viewer_require(actor)
        if (text is None) == (operation is None):
            raise AssessmentInvalidError("send either operation (with target) or text")
        if text is not None:
            if target or source or environment:
                raise AssessmentInvalidError("text is assessed alone: without target, source or environment")
            return risk_services.risk_assess_text(text).as_dict()
        cleaned = operation_clean(operation)
        aim = replace(target_parse(operation=cleaned, text=target, user=actor), source=source, environment=environment)
        return risk_services.risk_assess(operation=cleaned, target=aim, actor=actor).as_dict()

    return act("assess_risk", work)


def add_lesson(
    situation: Annotated[str, Field(description="What was going on.")],
    action: Annotated[str, Field(description="What was done.")] = "",
    result: Annotated[str, Field(description="What came of it.")] = "",
    feedback: Annotated[str, Field(description="What to do next time.")] = "",
    tags: Annotated[list[str] | None, Field(description="Words to find it by.")] = None,
    being: Annotated[uuid.UUID | None, Field(description="The being it concerns (a soul you may view).")] = None,
    hash: Annotated[str, Field(description="The version it concerns.")] = "",
) -> CallToolResult:
    """Record a lesson (the seed's add_lesson), needs chronos.add_lesson; no restore ever removes it."""

    def work(actor: User) -> dict[str, Any]:
        concerned = being_get(soul=being, user=actor) if being is not None else None
        lesson = lesson_services.lesson_add(
            situation=situation,
            action=action,
            result=result,
            feedback=feedback,
            tags=tags or (),
            being=concerned,
            hash=hash,
            actor=actor,
        )
        return lesson_document(lesson)

    return act("add_lesson", work)


def search_lessons(
    query: Annotated[str, Field(description="Words, English or Polish: inflections find each other.")] = "",
    being: Annotated[uuid.UUID | None, Field(description="Only lessons about this being.")] = None,
    hash: Annotated[str, Field(description="Only lessons about this version (or hash prefix).")] = "",
    tag: Annotated[str, Field(description="Only lessons with this tag.")] = "",
    since: Annotated[datetime | None, Field(description="Seen at or after this time (ISO 8601).")] = None,
    until: Annotated[datetime | None, Field(description="Seen before this time (ISO 8601).")] = None,
    open_only: Annotated[bool, Field(description="Only lessons not resolved yet.")] = False,
    limit: Annotated[int, Field(ge=1, le=200)] = 20,
) -> CallToolResult:
    """Lessons you may read, best match first (full text and trigram similarity); without a query, newest first."""

    def work(actor: User) -> dict[str, Any]:
        lessons = lesson_selectors.lessons_search(
            user=actor,
            query=query,
            being=being,
            hash=hash,
            tag=tag,
            since=since,
            until=until,
            open_only=open_only,
            limit=limit,
        )
        return {"items": [lesson_document(lesson) for lesson in lessons]}

    return act("search_lessons", work)


def start_dream(
    name: Annotated[str, Field(description="1 to 100 characters.")],
    plan: Annotated[
        list[dict[str, Any]],
        Field(
            description='Steps: {"execute": SOUL_OR_ALIAS, "args": [...], "kwargs": {...}, "expect": RESULT} or '
            '{"evolve": SOUL_OR_ALIAS, "source": "...", "reason": "...", "expect": "evolution" | "mutation"}.'
        ),
    ],
    seconds: Annotated[int | None, Field(ge=1, description="Its bound, at most CHRONOS_DREAM_SECONDS.")] = None,
) -> CallToolResult:
    """Run a plan in isolation on a timeline of its own (dream_<id>), forked from now; the live state never changes.

    Queued for a worker (needs chronos.add_dream); a successful dream is kept and offered for merge.
    """

    def work(actor: User) -> dict[str, Any]:
        viewer_require(actor)
        dream = dream_services.dream_start(name=name, plan=plan, actor=actor, seconds=seconds)
        return dream_document(dream, full=True)

    return act("start_dream", work)


def merge_timeline(
    source: Annotated[str, Field(description="The timeline whose changes come in.")],
    into: Annotated[str | None, Field(description="The timeline they go into; the live one by default.")] = None,
    strategy: Annotated[str, Field(description="field (default), row, ours or theirs.")] = "field",
    preview: Annotated[bool, Field(description="Only list what would merge and the conflicts; write nothing.")] = False,
) -> CallToolResult:
    """Merge one timeline into another, three-way against their fork point (needs chronos.merge_timeline).

    Conflicts (one value changed two ways) stop the merge with a 409 listing them: resolve them in the
    API or on the merge page, or merge with the ours or theirs strategy.
    """

    def work(actor: User) -> dict[str, Any]:
        viewer_require(actor)
        target = into or live_timeline()
        if preview:
            merge = merge_services.merge_preview(source=source, into=target, strategy=strategy, actor=actor)
        else:
            merge = merge_services.timeline_merge(source=source, into=target, strategy=strategy, actor=actor)
        return merge_document(merge)

    return act("merge_timeline", work)


TOOLS = [
    (merge_timeline, WRITE),
    (assess_risk, READ),
    (add_lesson, WRITE),
    (search_lessons, READ),
    (start_dream, WRITE),
]
