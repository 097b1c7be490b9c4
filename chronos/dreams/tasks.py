"""Celery tasks of dreams (named ``chronos.tasks.…``, so they take chronos' route to the ``io`` queue)."""

from __future__ import annotations

import uuid
from typing import Any

from celery import Task, shared_task

from chronos.context import change_context
from chronos.dreams.services import dream_run, dreams_start_due


@shared_task(bind=True, name="chronos.tasks.dream_run")
def dream_run_task(self: Task[[str], dict[str, Any]], dream_id: str) -> dict[str, Any]:
    """Run a queued dream (``dream_run``); a redelivery of a finished or running one changes nothing."""
    with change_context(door="task", reason="dream", request_id=self.request.id):
        dream = dream_run(dream_id=uuid.UUID(dream_id), worker=self.request.hostname or "")
    return {"dream": str(dream.id), "status": dream.status}


@shared_task(name="chronos.tasks.dreams_due")
def dreams_due_task() -> dict[str, Any]:
    """Beat, every minute: the dreams scheduled for now or earlier (``not_before``) queued, each once."""
    return {"queued": [str(dream.id) for dream in dreams_start_due()]}
