"""The seed's ChronoSkill as tools: checkpoints, restore, timelines.

Each tool asks what the API asks (chronos is on, the user is staff or holds chronos.view_checkpoint)
and calls the same service, which checks the write's own permission. A CHECKPOINT is its id, a
unique id prefix, or its name on the live timeline.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from chronos import selectors, services
from chronos.agent.acting import act
from chronos.guards import viewer_require
from chronos.points import checkpoint_resolve, timeline_resolve
from chronos.schemas import CheckpointOut, PreviewOut, TimelineOut, TravelOut
from luxsite.permissions import User

CheckpointRef = Annotated[
    str, Field(description="A checkpoint: its id, a unique id prefix, or its name on the live timeline.")
]


def create_checkpoint(
    name: Annotated[str, Field(description="1 to 100 characters, unique on its timeline.")],
    description: str = "",
    timeline: Annotated[str | None, Field(description="The timeline to mark; the live one by default.")] = None,
) -> CallToolResult:
    """Mark the present under a name (O(1)): restore it later to undo everything done since."""

    def work(actor: User) -> dict[str, Any]:
        viewer_require(actor)
        checkpoint = services.checkpoint_create(name=name, description=description, timeline=timeline, actor=actor)
        return CheckpointOut.from_orm(checkpoint).model_dump(mode="json")

    return act("create_checkpoint", work)


def list_checkpoints(
    timeline: Annotated[str | None, Field(description="Only this timeline's checkpoints.")] = None,
    limit: Annotated[int, Field(ge=1, le=500)] = 50,
) -> CallToolResult:
    """Checkpoints, newest first."""

    def work(actor: User) -> dict[str, Any]:
        viewer_require(actor)
        checkpoints = selectors.checkpoint_list(timeline=timeline_resolve(timeline) if timeline else None)
        return {"items": [CheckpointOut.from_orm(c).model_dump(mode="json") for c in checkpoints[:limit]]}

    return act("list_checkpoints", work)


def restore_checkpoint(
    checkpoint: CheckpointRef,
    preview: Annotated[bool, Field(description="Only say what the restore would change; change nothing.")] = False,
    force: Annotated[
        bool, Field(description="Go on although it deletes the being behind an active promotion (refused otherwise).")
    ] = False,
) -> CallToolResult:
    """Make beings and relationships exactly what they were at a checkpoint of the live timeline.

    A safety checkpoint is taken first (named in the answer): restore it to undo the restore.
    """

    def work(actor: User) -> dict[str, Any]:
        viewer_require(actor)
        point = checkpoint_resolve(checkpoint)
        if preview:
            shown = services.checkpoint_restore_preview(checkpoint=point, actor=actor)
            document = {
                "checkpoint": point,
                "stat": [
                    {"table": table, "kind": kind, "count": count}
                    for (table, kind), count in sorted(shown.diff.stat.items())
                ],
                "total": shown.diff.total,
                "changes": shown.diff.changes,
                "entries": shown.diff.entries,
                "promotions_removed": shown.promotions_removed,
                "promotions_changed": shown.promotions_changed,
                "needs_force": shown.needs_force,
            }
            return PreviewOut.model_validate(document).model_dump(mode="json")
        report = services.checkpoint_restore(checkpoint=point, actor=actor, force=force)
        return TravelOut.from_orm(report).model_dump(mode="json")

    return act("restore_checkpoint", work)


def delete_checkpoint(checkpoint: CheckpointRef) -> CallToolResult:
    """Forget a checkpoint no timeline forks from (the log stays until retention finds nothing needs it)."""

    def work(actor: User) -> dict[str, Any]:
        viewer_require(actor)
        point = checkpoint_resolve(checkpoint)
        services.checkpoint_delete(checkpoint=point, actor=actor)
        return {"deleted": str(point.id), "name": point.name}

    return act("delete_checkpoint", work)


def branch_timeline(
    name: Annotated[str, Field(description="1 to 100 characters, without @ or /; unique among timelines.")],
    from_checkpoint: Annotated[
        str | None, Field(description="The checkpoint to fork from (id, id prefix or name); now if none.")
    ] = None,
    description: str = "",
) -> CallToolResult:
    """Fork a new timeline (not live) from a checkpoint, or from now on the live timeline."""

    def work(actor: User) -> dict[str, Any]:
        viewer_require(actor)
        fork = checkpoint_resolve(from_checkpoint, anywhere=True) if from_checkpoint else None
        timeline = services.timeline_create(name=name, from_checkpoint=fork, description=description, actor=actor)
        return TimelineOut.from_orm(timeline).model_dump(mode="json")

    return act("branch_timeline", work)


def list_timelines() -> CallToolResult:
    """Every timeline, oldest first; exactly one is live."""

    def work(actor: User) -> dict[str, Any]:
        viewer_require(actor)
        return {"items": [TimelineOut.from_orm(t).model_dump(mode="json") for t in selectors.timeline_list()]}

    return act("list_timelines", work)


READ = ToolAnnotations(read_only_hint=True)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True)

TOOLS = [
    (create_checkpoint, WRITE),
    (list_checkpoints, READ),
    (restore_checkpoint, DESTRUCTIVE),
    (delete_checkpoint, DESTRUCTIVE),
    (branch_timeline, WRITE),
    (list_timelines, READ),
]
