"""Project wiring: settings, urls, the API, the Celery app, errors, embedded services."""

from luxsite.celery import app as celery_app

__all__ = ["celery_app"]
