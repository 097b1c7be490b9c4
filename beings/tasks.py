"""Celery tasks of beings: they take ids, fetch afresh and call the services, so a redelivery is harmless."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.contrib.auth import get_user_model

from beings.evolution import being_evolve_once
from chronos.context import change_context
from luxsite.errors import DomainError


@shared_task(bind=True, name="beings.tasks.being_evolve")
def being_evolve_task(
    self: Task[[str, str, str, int | None], dict[str, Any]], soul: str, source: str, reason: str, actor_id: int | None
) -> dict[str, Any]:
    """Evolve (or mutate) a being on a worker as the actor who asked, through ``being_evolve_once``.

    Idempotent under ``acks_late``: the service keys the evolution by the task's id, which a redelivery keeps.
    """
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id is not None else None
    if actor_id is not None and actor is None:
        # Without this, a user deleted after asking would evolve the being as the system, with no permission check.
        return {"status": "refused", "code": "permission_denied", "detail": f"user {actor_id} no longer exists"}
    try:
        with change_context(door="task", reason=reason):
            kind, being = being_evolve_once(
                soul=soul, source=source, reason=reason, actor=actor, request=str(self.request.id or "")
            )
    except DomainError as error:
        return {"status": "refused", "code": error.code, "detail": error.detail}
    return {"status": kind, "soul": str(being.soul), "hash": being.hash, "version": being.version}
