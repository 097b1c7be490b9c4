"""Celery tasks of beings: they take ids, fetch afresh and call the services, so a redelivery is harmless."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import transaction

from beings import genotype, services
from beings.models import BaseBeing
from beings.registry import environment_validate
from chronos.context import change_context
from luxsite.errors import DomainError


@shared_task(name="beings.tasks.being_evolve", queue="io")
def being_evolve_task(soul: str, source: str, reason: str, actor_id: int | None) -> dict[str, Any]:
    """Evolve (or mutate) a being on a worker, through ``being_evolve``, as the actor who asked.

    Idempotent under ``acks_late``: when the version this source makes already exists (the
    being evolved to it, or a mutant of the being holds it), the task reports it and writes nothing.
    """
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id is not None else None
    if actor_id is not None and actor is None:
        # Without this, a user deleted after asking would evolve the being as the system, with no permission check.
        return {"status": "refused", "code": "permission_denied", "detail": f"user {actor_id} no longer exists"}
    try:
        with change_context(door="task", reason=reason), transaction.atomic():
            # Two deliveries running at once take turns on the row lock, so the second sees what the first made.
            being = BaseBeing.objects.select_for_update().filter(soul=soul).first()
            if being is None:
                return {"status": "refused", "code": "being_not_found", "detail": f"no being has soul {soul}"}
            target = genotype.soul_hash(genotype.with_source(being.genesis, source))
            done = BaseBeing.objects.filter(genesis__contains={"hash": target, "parent": {"soul": soul}}).first()
            if being.hash == target or done is not None:
                holder = done or being
                return {"status": "done", "soul": str(holder.soul), "hash": target, "version": holder.version}
            evolution = services.being_evolve(being=being, source=source, reason=reason, actor=actor)
    except DomainError as error:
        return {"status": "refused", "code": error.code, "detail": error.detail}
    return {
        "status": evolution.kind,
        "soul": str(evolution.being.soul),
        "hash": evolution.being.hash,
        "version": evolution.being.version,
    }


@shared_task(name="beings.tasks.souls_validate", queue="io")
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
