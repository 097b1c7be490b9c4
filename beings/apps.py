from django.apps import AppConfig


class BeingsConfig(AppConfig):
    name = "beings"
    verbose_name = "Beings"
    default_auto_field = "django.db.models.BigAutoField"
