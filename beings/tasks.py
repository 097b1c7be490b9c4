"""Celery tasks of beings: they take ids, fetch afresh and call the services, so a redelivery is harmless."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_process_init
from django.contrib.auth import get_user_model
from django.db import transaction

from beings import executions, services
from beings.models import BaseBeing
from beings.registry import environment_validate
from beings.runtime.sandbox import SandboxUnavailable, sandbox_default
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
            done = services.evolution_of_request(soul=being.soul, request=request) if request else None
            if done is not None:
                return {"status": "done", "soul": str(done.soul), "hash": done.hash, "version": done.version}
            evolution = services.being_evolve(being=being, source=source, reason=reason, actor=actor, request=request)
    except DomainError as error:
        return {"status": "refused", "code": error.code, "detail": error.detail}
    return {
        "status": evolution.kind,
        "soul": str(evolution.being.soul),
        "hash": evolution.being.hash,
        "version": evolution.being.version,
    }


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


@shared_task(bind=True, name="beings.tasks.execution_run", acks_late=True, reject_on_worker_lost=True)
def execution_run_task(self: Task[[str], dict[str, Any]], execution_id: str) -> dict[str, Any]:
    """Run a queued execution in the sandbox (``execution_run``); a finished one is never run again.

    Queued on the being's workload queue by ``execution_start``; the worker's name and the queue
    that delivered the message are recorded on the run.
    """
    delivery = self.request.delivery_info or {}
    try:
        with change_context(door="task"):
            execution = executions.execution_run(
                execution_id=uuid.UUID(execution_id), worker=self.request.hostname or "",
                queue=str(delivery.get("routing_key") or ""),
            )
    except DomainError as error:
        return {"status": "refused", "code": error.code, "detail": error.detail}
    return {"execution": str(execution.pk), "status": execution.status}


@shared_task(name="beings.tasks.executions_reap")
def executions_reap_task() -> dict[str, int]:
    """Beat, every minute: runs left running by a dead worker are retried once, then marked killed."""
    with change_context(door="task"):
        return {"reaped": executions.executions_reap()}


@worker_process_init.connect
def sandbox_start(**_: Any) -> None:
    """Boot the sandbox's zygote when a prefork process starts, so that its first run does not pay for it."""
    try:
        sandbox_default().start()
    except SandboxUnavailable as error:
        # The worker still serves other tasks; each run will report the sandbox as unavailable.
        logging.getLogger(__name__).error("the sandbox did not start: %s", error)
