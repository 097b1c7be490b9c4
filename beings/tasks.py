"""Celery tasks of beings: they take ids, fetch afresh and call the services, so a redelivery is harmless."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.contrib.auth import get_user_model
from django.db import transaction

from beings.evolution import being_evolve, evolution_of_request
from beings.models import BaseBeing
from chronos.context import change_context
from luxsite.errors import DomainError


@shared_task(bind=True, name="beings.tasks.being_evolve")
def being_evolve_task(
    self: Task[[str, str, str, int | None], dict[str, Any]], soul: str, source: str, reason: str, actor_id: int | None
) -> dict[str, Any]:
    """Evolve (or mutate) a being on a worker, through ``being_evolve``, as the actor who asked.

    Idempotent under ``acks_late``, keyed by the request (the task's id, which a redelivery keeps):
    the version it made carries the id in its origin, so a second delivery finds it and writes
    nothing. Never keyed by content, which another user could create first.
    """
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id is not None else None
    if actor_id is not None and actor is None:
        # Without this, a user deleted after asking would evolve the being as the system, with no permission check.
        return {"status": "refused", "code": "permission_denied", "detail": f"user {actor_id} no longer exists"}
    request = str(self.request.id or "")
    try:
        with change_context(door="task", reason=reason), transaction.atomic():
            # Two deliveries running at once take turns on the row lock, so the second sees what the first made.
            being = BaseBeing.objects.select_for_update().filter(soul=soul).first()
            if being is None:
                return {"status": "refused", "code": "being_not_found", "detail": f"no being has soul {soul}"}
            done = evolution_of_request(soul=being.soul, request=request) if request else None
            if done is not None:
                return {"status": "done", "soul": str(done.soul), "hash": done.hash, "version": done.version}
            evolution = being_evolve(being=being, source=source, reason=reason, actor=actor, request=request)
    except DomainError as error:
        return {"status": "refused", "code": error.code, "detail": error.detail}
    return {
        "status": evolution.kind,
        "soul": str(evolution.being.soul),
        "hash": evolution.being.hash,
        "version": evolution.being.version,
    }


