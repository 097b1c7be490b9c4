from django.apps import AppConfig


class ChronosConfig(AppConfig):
    name = "chronos"
    verbose_name = "Chronos"
    default_auto_field = "django.db.models.BigAutoField"
