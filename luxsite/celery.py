"""The Celery app: Redis broker and result backend, JSON only, queues ``io`` and ``cpu``."""

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luxsite.settings")

app = Celery("luxsite")


@app.on_configure.connect
def services_ensure(**_: Any) -> None:
    """A worker or beat started on its own starts (or attaches to) the embedded services before it reads settings."""
    from luxsite.embedded import ensure_services

    ensure_services()


app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Concepts of the beings app keep their tasks in their own package.
app.autodiscover_tasks(["beings.souls", "beings.executions"])
# Chronos' concepts too.
app.autodiscover_tasks(["chronos.dreams"])


@task_prerun.connect
@task_postrun.connect
def connections_tidy(**_: Any) -> None:
    """What Django does around a request, around each task: drop connections that broke or outlived their age."""
    from django.db import close_old_connections

    close_old_connections()
