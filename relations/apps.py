from django.apps import AppConfig


class RelationsConfig(AppConfig):
    name = "relations"
    verbose_name = "Relationships"
    default_auto_field = "django.db.models.BigAutoField"
