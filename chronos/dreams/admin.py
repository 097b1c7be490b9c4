"""The admin of dreams: read only; they are started by ``dream_start`` and judged by their task."""

from __future__ import annotations

from django.contrib import admin
from django.utils.safestring import SafeString

from chronos.models import Dream
from luxsite.admin import ReadOnlyAdmin, json_block


@admin.register(Dream)
class DreamAdmin(ReadOnlyAdmin):
    """Dreams, read only: they are started by ``dream_start`` (API, command, page) and judged by their task."""

    list_display = ("name", "status", "success_rate", "timeline", "actor_name", "created_at", "finished_at")
    list_filter = ("status",)
    list_select_related = ("timeline",)
    search_fields = ("name",)
    ordering = ("-created_at",)
    fields = (
        "id",
        "name",
        "status",
        "success_rate",
        "timeline",
        "fork",
        "merge",
        "seconds",
        "not_before",
        "error",
        "actor_name",
        "created_at",
        "started_at",
        "finished_at",
        "plan_pretty",
        "results_pretty",
    )
    readonly_fields = fields

    @admin.display(description="plan")
    def plan_pretty(self, dream: Dream) -> SafeString:
        return json_block(dream.plan)

    @admin.display(description="results")
    def results_pretty(self, dream: Dream) -> SafeString:
        return json_block(dream.results)
