"""The Celery app: Redis broker and result backend, JSON only, queues ``io`` and ``cpu``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luxsite.settings")

app = Celery("luxsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
