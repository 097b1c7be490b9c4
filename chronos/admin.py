"""Chronos in the admin: timelines and checkpoints, restore and switch as confirmed actions, the change log.

Every write is a service call: a checkpoint or a timeline added here is made by ``checkpoint_create`` or
``timeline_create``; pin, unpin, delete, restore and switch call theirs. Restore and switch first show
their preview (what differs, per table and row, the promotions affected) and act on confirmation only.
The change log is read, never written (only the capture triggers write it).
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import SafeString

from chronos import services

# The historian's read-only admins live with their concepts: importing them registers them.
from chronos.dreams import admin as dreams_admin  # noqa: F401
from chronos.lessons import admin as lessons_admin  # noqa: F401
from chronos.merges import admin as merges_admin  # noqa: F401
from chronos.models import Change, Checkpoint, Timeline
from chronos.selectors import checkpoint_stats, row_history
from chronos.views import diff_shown
from luxsite.admin import ServiceModelAdmin, instance_adopt, json_block, uuid_short
from luxsite.errors import DomainError

# The newest changes of a being shown on its admin page; the change log filtered by its soul has them all.
BEING_HISTORY_LIMIT = 20
PREVIEW_ROWS = 20


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


def being_history_block(*, soul: uuid.UUID) -> SafeString:
    """A being's newest changes, read-only: who, through which door, why, when, on which timeline.

    For the being's admin page, which has already decided the user may view the being (a read-only
    field is given the object, not the request): so the history of the row, without asking again.
    """
    entries = row_history(table="base_beings", row_id=soul, limit=BEING_HISTORY_LIMIT)
    return render_to_string(
        "admin/chronos/being_history.html",
        {
            "entries": entries,
            "limit": BEING_HISTORY_LIMIT,
            "log": f"{reverse('admin:chronos_change_changelist')}?q={soul}",
        },
    )


def _travel_confirm(
    admin_view: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any], context: dict[str, Any]
) -> TemplateResponse:
    """The intermediate page of a restore or a switch: the preview, a force box when needed, confirm or cancel."""
    return TemplateResponse(
        request,
        "admin/chronos/travel_confirm.html",
        {
            **admin_view.admin_site.each_context(request),
            "opts": admin_view.opts,
            "queryset": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "title": context["title"],
            **context,
        },
    )


def _one(admin_view: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any], what: str) -> Any | None:
    if queryset.count() != 1:
        admin_view.message_user(request, f"Select exactly one {what}.", messages.WARNING)
        return None
    return queryset.get()


class CheckpointAddForm(forms.ModelForm):
    class Meta:
        model = Checkpoint
        fields = ("name", "description", "timeline")


@admin.register(Checkpoint)
class CheckpointAdmin(ServiceModelAdmin):
    list_display = ("name", "timeline", "kind", "pinned", "created_at", "actor_name", "checkpoint_id")
    list_filter = ("kind", "pinned", "timeline")
    list_select_related = ("timeline",)
    search_fields = ("name",)
    ordering = ("-created_at",)
    actions = ["restore", "pin", "unpin", "delete_selected"]
    readonly_fields = (
        "id",
        "name",
        "description",
        "timeline",
        "kind",
        "pinned",
        "created_at",
        "actor_name",
        "changes_since",
        "snapshot",
        "position",
        "stats_pretty",
    )

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = CheckpointAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Checkpoint | None = None) -> list[str]:  # type: ignore[override]
        return ["name", "description", "timeline"] if obj is None else list(self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Checkpoint | None = None) -> tuple[str, ...]:
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request: HttpRequest, obj: Checkpoint | None = None) -> bool:
        return False  # a checkpoint is never edited: pin and unpin are actions

    def has_restore_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("chronos.restore_checkpoint")

    def has_pin_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("chronos.change_checkpoint")

    def save_model(self, request: HttpRequest, obj: Checkpoint, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        checkpoint = services.checkpoint_create(
            name=data["name"], description=data["description"], timeline=data["timeline"], actor=request.user
        )
        instance_adopt(obj, checkpoint)

    def service_delete(self, request: HttpRequest, obj: Checkpoint) -> None:
        services.checkpoint_delete(checkpoint=obj, actor=request.user)

    @admin.display(description="id")
    def checkpoint_id(self, checkpoint: Checkpoint) -> SafeString:
        return uuid_short(checkpoint.id)

    @admin.display(description="changes since (log bytes)")
    def changes_since(self, checkpoint: Checkpoint) -> str:
        stats = checkpoint_stats(checkpoint)
        return f"{stats.changes_since} ({stats.bytes_since} bytes)"

    @admin.display(description="stats")
    def stats_pretty(self, checkpoint: Checkpoint) -> SafeString:
        return json_block(checkpoint.stats)

    @admin.action(permissions=["pin"], description="Pin (keep through retention)")
    def pin(self, request: HttpRequest, queryset: QuerySet[Checkpoint]) -> None:
        for checkpoint in queryset:
            services.checkpoint_pin(checkpoint=checkpoint, pinned=True, actor=request.user)
        self.message_user(request, f"Pinned {queryset.count()} checkpoint(s).", messages.SUCCESS)

    @admin.action(permissions=["pin"], description="Unpin (give back to retention)")
    def unpin(self, request: HttpRequest, queryset: QuerySet[Checkpoint]) -> None:
        for checkpoint in queryset:
            services.checkpoint_pin(checkpoint=checkpoint, pinned=False, actor=request.user)
        self.message_user(request, f"Unpinned {queryset.count()} checkpoint(s).", messages.SUCCESS)

    @admin.action(permissions=["restore"], description="Restore the selected checkpoint…")
    def restore(self, request: HttpRequest, queryset: QuerySet[Checkpoint]) -> TemplateResponse | None:
        checkpoint = _one(self, request, queryset, "checkpoint")
        if checkpoint is None:
            return None
        try:
            preview = services.checkpoint_restore_preview(checkpoint=checkpoint, actor=request.user, limit=PREVIEW_ROWS)
            if request.POST.get("confirm") == "yes":
                force = request.POST.get("force") == "yes"
                if not preview.needs_force or force:
                    report = services.checkpoint_restore(checkpoint=checkpoint, actor=request.user, force=force)
                    safety = report.safety.name if report.safety else "none"
                    self.message_user(
                        request,
                        f"Restored {checkpoint.name}: {report.undone} log entries undone; "
                        f"undo it by restoring {safety}.",
                        messages.SUCCESS,
                    )
                    return None
                self.message_user(request, "Tick the box: the restore deletes a promoted being.", messages.ERROR)
        except DomainError as error:
            self.message_user(request, f"Not restored ({error.code}): {error.detail}", messages.ERROR)
            return None
        context = {"title": f"Restore {checkpoint.name}?", "action": "restore", "checkpoint": checkpoint}
        return _travel_confirm(self, request, queryset, {**context, "preview": preview, **diff_shown(preview.diff)})


class TimelineAddForm(forms.ModelForm):
    class Meta:
        model = Timeline
        fields = ("name", "description", "fork")
        labels = {"fork": "From checkpoint (empty: from now)"}


@admin.register(Timeline)
class TimelineAdmin(ServiceModelAdmin):
    list_display = ("name", "live", "parent", "fork", "created_at", "actor_name")
    list_select_related = ("parent", "fork")
    search_fields = ("name",)
    ordering = ("id",)
    actions = ["switch", "delete_selected"]
    readonly_fields = ("name", "description", "live", "parent", "fork", "created_at", "actor_name")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Timeline]:
        return super().get_queryset(request).filter(deleted_at__isnull=True)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = TimelineAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Timeline | None = None) -> list[str]:  # type: ignore[override]
        return ["name", "description", "fork"] if obj is None else list(self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Timeline | None = None) -> tuple[str, ...]:
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request: HttpRequest, obj: Timeline | None = None) -> bool:
        return False  # switching is an action

    def has_delete_permission(self, request: HttpRequest, obj: Timeline | None = None) -> bool:
        return self.has_switch_permission(request)  # deleting a timeline needs what switching needs

    def has_switch_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("chronos.switch_timeline")

    def save_model(self, request: HttpRequest, obj: Timeline, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        timeline = services.timeline_create(
            name=data["name"], from_checkpoint=data["fork"], description=data["description"], actor=request.user
        )
        instance_adopt(obj, timeline)

    def service_delete(self, request: HttpRequest, obj: Timeline) -> None:
        services.timeline_delete(name=obj.name, actor=request.user)

    @admin.action(permissions=["switch"], description="Switch to the selected timeline…")
    def switch(self, request: HttpRequest, queryset: QuerySet[Timeline]) -> TemplateResponse | None:
        timeline = _one(self, request, queryset, "timeline")
        if timeline is None:
            return None
        try:
            if request.POST.get("confirm") == "yes":
                force = request.POST.get("force") == "yes"
                report = services.timeline_switch(name=timeline, actor=request.user, force=force)
                self.message_user(
                    request,
                    f"{timeline.name} is live: {report.undone} log entries undone, {report.redone} redone.",
                    messages.SUCCESS,
                )
                return None
            preview = services.timeline_switch_preview(name=timeline, actor=request.user, limit=PREVIEW_ROWS)
        except DomainError as error:
            self.message_user(request, f"Not switched ({error.code}): {error.detail}", messages.ERROR)
            return None
        context = {
            "title": f"Switch to {timeline.name}?",
            "action": "switch",
            "timeline": timeline,
            "live": preview.live,
            "preview": preview,
        }
        return _travel_confirm(self, request, queryset, {**context, **diff_shown(preview.diff)})
