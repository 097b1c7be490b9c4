"""Tasks of the project wiring itself: the health probe beat sends every minute."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.db import connection
from django.utils import timezone


@shared_task(bind=True, name="luxsite.tasks.health")
def health(self: Task[[], dict[str, Any]]) -> dict[str, Any]:
    """Report that a worker is consuming its queue and can reach the database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        row = cursor.fetchone()
    return {
        "status": "ok",
        "worker": self.request.hostname,
        "database": row is not None and row[0] == 1,
        "at": timezone.now().isoformat(),
    }
