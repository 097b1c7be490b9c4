from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def main_timeline_ensure(using: str = "default", **kwargs: Any) -> None:
    """``main`` exists and one timeline is live: after the first migration, and after a flush emptied them."""
    from chronos.models import Timeline

    if not Timeline.objects.using(using).filter(live=True).exists():
        Timeline.objects.using(using).update_or_create(
            name="main", deleted_at=None, defaults={"live": True, "description": "The first line of history."}
        )


class ChronosConfig(AppConfig):
    name = "chronos"
    verbose_name = "Chronos"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(main_timeline_ensure, sender=self)
