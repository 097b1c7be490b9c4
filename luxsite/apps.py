from django.apps import AppConfig


class LuxsiteConfig(AppConfig):
    """The project app: API tokens and operator commands, no domain models."""

    name = "luxsite"
    verbose_name = "LuxOS"
    default_auto_field = "django.db.models.BigAutoField"
