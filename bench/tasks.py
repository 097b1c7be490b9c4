"""The raw Celery baseline of the runtime benchmark: a task that does nothing, loaded by the bench's worker (``-I``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="bench.tasks.noop")
def noop_task() -> None:
    """Nothing at all: what a round trip through the broker, a worker and the result backend costs by itself."""
