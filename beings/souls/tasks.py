"""Celery tasks of the soul registry; the task keeps its name ``beings.tasks.souls_validate`` for queued messages."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from beings.souls.services import environment_validate
from chronos.context import change_context
from luxsite.errors import DomainError


@shared_task(name="beings.tasks.souls_validate")
def souls_validate_task(environment: str = "production") -> dict[str, Any]:
    """Validate an environment's promoted hashes (beat runs it daily for production); the result is stored.

    A redelivery validates again and stores a second result: each is an observation of its moment.
    """
    try:
        with change_context(door="task"):
            validation = environment_validate(environment=environment, actor=None, door="task")
    except DomainError as error:
        return {"status": "refused", "code": error.code, "detail": error.detail}
    return {
        "id": validation.pk,
        "environment": validation.environment,
        "ok": validation.ok,
        "checked": validation.checked,
        "problems": len(validation.problems),
    }
