from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def main_timeline_ensure(using: str = "default", **kwargs: Any) -> None:
    """``main`` exists and one timeline is live: after the first migration, and after a flush emptied them."""
    from chronos.models import Timeline

    if not Timeline.objects.using(using).filter(live=True).exists():
        Timeline.objects.using(using).update_or_create(
            name="main", deleted_at=None, defaults={"live": True, "description": "The first line of history."}
        )


def capture_switch(connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """With ``ENABLE_CHRONOS`` off, a new connection captures nothing: each writing transaction leaves a gap row.

    The capture triggers read ``luxos.chronos_capture`` (``chronos_begin``); a connection opened while the
    setting was on keeps capturing until it is closed, so turning it off or on takes a restart.
    """
    if connection.vendor == "postgresql" and not settings.ENABLE_CHRONOS:
        with connection.cursor() as cursor:
            cursor.execute("SET luxos.chronos_capture = 'off'")


class ChronosConfig(AppConfig):
    name = "chronos"
    verbose_name = "Chronos"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(main_timeline_ensure, sender=self)
        connection_created.connect(capture_switch, dispatch_uid="chronos.capture_switch")
