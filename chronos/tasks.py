"""Celery tasks of chronos: each calls a service and returns its result as JSON; a redelivery is harmless."""

from __future__ import annotations

import logging
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.contrib.auth import get_user_model

from chronos.context import change_context
from chronos.points import checkpoint_resolve
from chronos.retention import chronos_gc
from chronos.services import TravelReport, checkpoint_restore, timeline_switch
from chronos.transfer import checkpoint_export, checkpoint_import, export_path
from luxsite.errors import DomainError
from luxsite.files import file_replaced

logger = logging.getLogger(__name__)
# An uploaded archive waiting for its import: the name chronos.views gave it, nothing a user typed.
UPLOAD_NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.upload$")


@shared_task(name="chronos.tasks.chronos_gc")
def chronos_gc_task(dry_run: bool = False) -> dict[str, Any]:
    """Retention (beat runs it daily): the checkpoints beyond the limits and the log nothing retained needs.

    Running it twice removes nothing the first did not leave needed, so a redelivery is harmless.
    """
    try:
        with change_context(door="task", reason="retention"):
            report = chronos_gc(dry_run=dry_run, actor=None)
    except DomainError as error:
        logger.warning("chronos gc refused: %s %s", error.code, error.detail)
        return {"status": "refused", "code": error.code, "detail": error.detail}
    logger.info(
        "chronos gc: %d checkpoint(s), %d change(s), %d transaction(s), %d right(s), %d bytes freed%s",
        len(report.checkpoints),
        report.changes,
        report.transactions,
        report.permissions,
        report.bytes_freed,
        " (dry run)" if dry_run else "",
    )
    return {"status": "done", **asdict(report)}


def _actor_get(actor_id: int | None) -> Any:
    """The user who asked, fetched afresh; None when they no longer exist (the task then refuses)."""
    return get_user_model().objects.filter(pk=actor_id).first() if actor_id is not None else None


def _travelled(report: TravelReport) -> dict[str, Any]:
    safety = report.safety
    return {
        "status": "done",
        "safety": {"id": str(safety.id), "name": safety.name} if safety else None,
        "undone": report.undone,
        "redone": report.redone,
        "rows": report.rows,
    }


@shared_task(bind=True, name="chronos.tasks.checkpoint_restore")
def checkpoint_restore_task(
    self: Task[[str, int | None, bool], dict[str, Any]], checkpoint_id: str, actor_id: int | None, force: bool
) -> dict[str, Any]:
    """Restore a checkpoint as the user who confirmed it; the page polls the step, then this result.

    A redelivery under ``acks_late`` restores to the same checkpoint again: the same tables, one more safety checkpoint.
    """
    actor = _actor_get(actor_id)
    if actor is None:
        return {"status": "refused", "code": "permission_denied", "detail": f"user {actor_id} no longer exists"}
    try:
        checkpoint = checkpoint_resolve(checkpoint_id, anywhere=True)
        self.update_state(state="PROGRESS", meta={"step": f"undoing the changes since {checkpoint.name}"})
        with change_context(door="task", reason=f"restore to {checkpoint.name}", request_id=self.request.id):
            report = checkpoint_restore(checkpoint=checkpoint, actor=actor, force=force)
    except DomainError as error:
        return {"status": "refused", "code": error.code, "detail": error.detail}
    return {**_travelled(report), "checkpoint": {"id": str(checkpoint.id), "name": checkpoint.name}}


@shared_task(bind=True, name="chronos.tasks.timeline_switch")
def timeline_switch_task(
    self: Task[[str, int | None, bool], dict[str, Any]], name: str, actor_id: int | None, force: bool
) -> dict[str, Any]:
    """Switch the live timeline as the user who confirmed it; a redelivery finds it live already and refuses."""
    actor = _actor_get(actor_id)
    if actor is None:
        return {"status": "refused", "code": "permission_denied", "detail": f"user {actor_id} no longer exists"}
    try:
        self.update_state(state="PROGRESS", meta={"step": f"switching to {name}"})
        with change_context(door="task", reason=f"switch to {name}", request_id=self.request.id):
            report = timeline_switch(name=name, actor=actor, force=force)
    except DomainError as error:
        return {"status": "refused", "code": error.code, "detail": error.detail}
    return {**_travelled(report), "timeline": name}


@shared_task(bind=True, name="chronos.tasks.checkpoint_export")
def checkpoint_export_task(
    self: Task[[str, int | None], dict[str, Any]], checkpoint_id: str, actor_id: int | None
) -> dict[str, Any]:
    """Write a checkpoint's archive to its file under CHRONOS_TIMELINES_DIR/exports, whole or not at all.

    Written to a temporary name and renamed: a redelivery writes the same archive again.
    """
    actor = _actor_get(actor_id)
    if actor is None:
        return {"status": "refused", "code": "permission_denied", "detail": f"user {actor_id} no longer exists"}
    try:
        checkpoint = checkpoint_resolve(checkpoint_id, anywhere=True)
        self.update_state(state="PROGRESS", meta={"step": f"writing the archive of {checkpoint.name}"})
        target = export_path(checkpoint, settings.CHRONOS_COMPRESS_SNAPSHOTS)
        target.parent.mkdir(parents=True, exist_ok=True)
        with file_replaced(target) as stream:
            report = checkpoint_export(checkpoint=checkpoint, target=stream, actor=actor)
    except DomainError as error:
        return {"status": "refused", "code": error.code, "detail": error.detail}
    return {
        "status": "done",
        "checkpoint": {"id": str(checkpoint.id), "name": checkpoint.name},
        "file": target.name,
        "bytes": report.bytes_written,
        "beings": report.beings,
        "relationships": report.relationships,
    }


@shared_task(bind=True, name="chronos.tasks.checkpoint_import")
def checkpoint_import_task(
    self: Task[[str, str, int | None], dict[str, Any]], upload: str, timeline: str, actor_id: int | None
) -> dict[str, Any]:
    """Load an uploaded archive (by its name under CHRONOS_TIMELINES_DIR/imports) as a new timeline, then drop it."""
    actor = _actor_get(actor_id)
    if actor is None:
        return {"status": "refused", "code": "permission_denied", "detail": f"user {actor_id} no longer exists"}
    if not UPLOAD_NAME.match(upload):
        return {"status": "refused", "code": "archive_invalid", "detail": f"{upload[:80]!r} is not an upload's name"}
    source = Path(settings.CHRONOS_TIMELINES_DIR) / "imports" / upload
    try:
        self.update_state(state="PROGRESS", meta={"step": "verifying the archive, then loading it"})
        with change_context(door="task", reason=f"import as {timeline}", request_id=self.request.id):
            created = checkpoint_import(source=source, timeline=timeline, actor=actor)
    except DomainError as error:
        return {"status": "refused", "code": error.code, "detail": error.detail}
    finally:
        source.unlink(missing_ok=True)
    return {"status": "done", "timeline": created.name}
