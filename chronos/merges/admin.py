"""The admin of merges: read only, with their conflicts; the one action applies through ``merge_apply``."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from chronos.merges.services import merge_apply
from chronos.models import Merge, MergeConflict
from luxsite.admin import ReadOnlyAdmin, json_block, uuid_short
from luxsite.errors import DomainError


class MergeConflictInline(admin.TabularInline):
    model = MergeConflict
    fields = ("id", "table", "row_id", "path", "base", "ours", "theirs", "resolution", "value", "resolved_by")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Merge)
class MergeAdmin(ReadOnlyAdmin):
    """Merges, read only: previewed, resolved and applied on the merge page, the API or the command; the one
    action applies a merge whose conflicts are all resolved, through ``merge_apply``."""

    list_display = ("short_id", "source", "into", "strategy", "status", "actor_name", "created_at", "applied_at")
    list_filter = ("status", "strategy")
    list_select_related = ("source", "into")
    ordering = ("-created_at",)
    fields = (
        "id",
        "page",
        "source",
        "into",
        "strategy",
        "status",
        "base",
        "safety",
        "actor_name",
        "created_at",
        "applied_at",
        "stats_pretty",
    )
    readonly_fields = fields
    inlines = [MergeConflictInline]
    actions = ["apply_merges"]

    @admin.display(description="id")
    def short_id(self, merge: Merge) -> SafeString:
        return uuid_short(merge.id)

    @admin.display(description="merge page")
    def page(self, merge: Merge) -> SafeString:
        return format_html(
            '<a href="{}">Resolve and apply on the merge page</a>', reverse("chronos_merge", args=[merge.id])
        )

    @admin.display(description="stats")
    def stats_pretty(self, merge: Merge) -> SafeString:
        return json_block(merge.stats)

    @admin.action(description="Apply the selected merges (every conflict resolved)")
    def apply_merges(self, request: HttpRequest, queryset: QuerySet[Merge]) -> None:
        for merge in queryset.select_related("source", "into", "base"):
            try:
                merge_apply(merge=merge, actor=request.user)
            except DomainError as error:
                self.message_user(request, f"{merge} not applied ({error.code}): {error.detail}", messages.ERROR)
            else:
                self.message_user(request, f"{merge} applied.", messages.SUCCESS)
