"""The change log in the admin: to read, never to write (only the capture triggers write it)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.http import HttpRequest
from django.utils.safestring import SafeString

from chronos.models import Change
from luxsite.admin import json_block, uuid_short


class TableFilter(admin.SimpleListFilter):
    # Fixed choices: listing the distinct tables would scan the whole log on every page.
    title = "table"
    parameter_name = "table"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("base_beings", "base_beings"), ("relationships", "relationships")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(table=self.value()) if self.value() else queryset


@admin.register(Change)
class ChangeAdmin(admin.ModelAdmin):
    list_display = ("id", "table", "operation", "row", "timeline", "door", "actor", "committed_at")
    list_filter = (TableFilter, "operation")
    list_select_related = ("transaction", "timeline")
    search_fields = ("row_id__exact",)
    search_help_text = "A whole row id (soul or relationship id)."
    ordering = ("-id",)
    list_per_page = 50
    show_full_result_count = False
    fields = (
        "id",
        "table",
        "operation",
        "row_id",
        "door",
        "actor",
        "operation_name",
        "timeline",
        "transaction_id",
        "committed_at",
        "context_pretty",
        "data_pretty",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ["luxsite/admin.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Change | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Change | None = None) -> bool:
        return False

    @staticmethod
    def context_value(change: Change, key: str) -> str:
        context = change.context if isinstance(change.context, dict) else {}
        value = context.get(key)
        return "" if value is None else str(value)

    @admin.display(description="row id", ordering="row_id")
    def row(self, change: Change) -> SafeString:
        return uuid_short(change.row_id)

    @admin.display(description="committed", ordering="transaction__committed_at")
    def committed_at(self, change: Change) -> object:
        return change.transaction.committed_at

    @admin.display(description="door", ordering=KeyTextTransform("door", "transaction__context"))
    def door(self, change: Change) -> str:
        return self.context_value(change, "door")

    @admin.display(description="actor", ordering=KeyTextTransform("actor", "transaction__context"))
    def actor(self, change: Change) -> str:
        return self.context_value(change, "actor")

    @admin.display(description="service operation")
    def operation_name(self, change: Change) -> str:
        return self.context_value(change, "operation")

    @admin.display(description="context")
    def context_pretty(self, change: Change) -> SafeString:
        return json_block(change.context)

    @admin.display(description="row image (insert, delete) or what changed (update)")
    def data_pretty(self, change: Change) -> SafeString:
        return json_block(change.data)
