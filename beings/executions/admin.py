"""Executions in the admin, read-only: what ran, with what, how it ended, where; nested runs linked both ways.

Runs are started through the run form, the API or ``manage.py beings execute``; here they are
looked at. A superuser sees every run, any other staff member the runs ``beings.executions``
lets them see; of another user's run of their being, that it happened, without its inputs, result
and output (``beings.executions.visibility``).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from django.contrib import admin
from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from beings.display import hash_short
from beings.executions.selectors import executions_visible
from beings.executions.visibility import HIDDEN, contents_hidden, execution_shown
from beings.models import Execution
from beings.selectors import hash_prefix_clean
from luxsite.admin import ReadOnlyAdmin, is_member, json_block, uuid_short
from luxsite.errors import DomainError

# Colours of the status badge: green for success, red for errors, amber for runs a limit or a reaper stopped.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    Execution.Status.QUEUED: ("#374151", "#f3f4f6"),
    Execution.Status.RUNNING: ("#1d4ed8", "#eff6ff"),
    Execution.Status.SUCCEEDED: ("#047857", "#ecfdf5"),
    Execution.Status.FAILED: ("#b91c1c", "#fef2f2"),
    Execution.Status.REJECTED: ("#b91c1c", "#fef2f2"),
    Execution.Status.TIMEOUT: ("#b45309", "#fffbeb"),
    Execution.Status.KILLED: ("#b45309", "#fffbeb"),
}
# The children listed on a run's page; a run makes at most LUXOS_SANDBOX_CALLS + LUXOS_SANDBOX_SUMMONS of them.
CHILDREN_LIMIT = 100


def status_badge(status: str) -> SafeString:
    ink, wash = STATUS_COLOURS.get(status, ("#374151", "#f3f4f6"))
    return format_html(
        '<span style="color:{};background:{};padding:1px 8px;border-radius:999px;font-weight:600">{}</span>',
        ink,
        wash,
        status,
    )


def execution_link(execution: Execution | None) -> SafeString | str:
    if execution is None:
        return "—"
    url = reverse("admin:beings_execution_change", args=[execution.pk])
    return format_html(
        '<a href="{}"><code>{}</code></a> {} {}',
        url,
        str(execution.pk)[:8],
        execution.alias,
        status_badge(execution.status),
    )


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyAdmin):
    # Two facts share a cell where one is short (hash and environment, worker and queue, run and depth), so the
    # list fits a 1400-pixel window beside the admin's navigation and filters.
    list_display = (
        "run",
        "alias",
        "hash_column",
        "status_column",
        "queued_column",
        "duration",
        "where",
        "actor_column",
    )
    list_filter = ("status", "queue", "environment")
    search_fields = ("alias",)
    search_help_text = "An alias (contains), a whole run id, or the start of a hash (at least 12 characters)."
    ordering = ("-queued_at", "-id")
    list_per_page = 50
    show_full_result_count = False
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "id",
                    "status_column",
                    "being_link",
                    "alias",
                    "version",
                    "hash",
                    "environment_column",
                    "actor_name",
                )
            },
        ),
        ("Inputs", {"fields": ("args_pretty", "kwargs_pretty")}),
        (
            "Outcome",
            {"fields": ("result_pretty", "error_pretty", "output_pre", "output_truncated", "calls", "summons")},
        ),
        (
            "Timing and place",
            {
                "fields": (
                    "queued_at",
                    "started_at",
                    "finished_at",
                    "duration",
                    "worker",
                    "queue",
                    "task_id",
                    "attempts",
                    "priority",
                )
            },
        ),
        ("Nesting", {"fields": ("parent_link", "root_link", "depth", "children_links")}),
        ("Sandbox", {"fields": ("limits_pretty", "layers_pretty")}),
    ]
    readonly_fields = tuple(str(field) for _, options in fieldsets for field in options["fields"])

    def get_queryset(self, request: HttpRequest) -> QuerySet[Execution]:
        # The runs it links to only as far as the user may see them, as on the run's page.
        visible = executions_visible(user=request.user, queryset=Execution.objects.all())
        queryset = (
            super()
            .get_queryset(request)
            .select_related("parent", "root")
            .annotate(
                parent_visible=Exists(visible.filter(pk=OuterRef("parent_id"))),
                root_visible=Exists(visible.filter(pk=OuterRef("root_id"))),
            )
            .prefetch_related(
                Prefetch(
                    "children",
                    queryset=visible.order_by("queued_at", "id")[:CHILDREN_LIMIT],
                    to_attr="children_visible",
                )
            )
        )
        return executions_visible(user=request.user, queryset=queryset)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Execution | None:
        # Another user's run of the staff member's being: that it happened, not its inputs, result or output.
        execution = super().get_object(request, object_id, from_field)
        return None if execution is None else execution_shown(execution, user=request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_member(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Any staff member may look; the queryset holds only the runs they may see.
        return is_member(request)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Execution], search_term: str
    ) -> tuple[QuerySet[Execution], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        with contextlib.suppress(ValueError):
            return queryset.filter(id=uuid.UUID(term)), False
        try:
            return queryset.filter(hash__startswith=hash_prefix_clean(term)), False
        except DomainError:
            return queryset.filter(alias__icontains=term), False

    @admin.display(description="run", ordering="queued_at")
    def run(self, execution: Execution) -> SafeString:
        if not execution.depth:
            return uuid_short(execution.pk)
        return format_html(
            '{}<br><small title="nested call depth">depth {}</small>', uuid_short(execution.pk), execution.depth
        )

    @admin.display(description="hash · environment", ordering="hash")
    def hash_column(self, execution: Execution) -> SafeString | str:
        return format_html("{}<br><small>{}</small>", hash_short(execution.hash), self.environment_column(execution))

    @admin.display(description="queued", ordering="queued_at")
    def queued_column(self, execution: Execution) -> SafeString | str:
        if execution.queued_at is None:
            return "—"
        moment = timezone.localtime(execution.queued_at)
        return format_html(
            '<time datetime="{}" style="white-space:nowrap">{}<br>{}</time>',
            moment.isoformat(),
            moment.strftime("%Y-%m-%d"),
            moment.strftime("%H:%M:%S"),
        )

    @admin.display(description="by", ordering="actor_name")
    def actor_column(self, execution: Execution) -> str:
        return execution.actor_name or "—"

    @admin.display(description="worker · queue", ordering="worker")
    def where(self, execution: Execution) -> SafeString | str:
        # Celery names a worker name@host; the host is what tells workers apart, the whole name is on hover.
        worker = execution.worker or "—"
        short = worker if len(worker) <= 18 else worker[:17] + "…"
        return format_html('<span title="{}">{}</span><br><small>{}</small>', worker, short, execution.queue or "—")

    @admin.display(description="environment", ordering="environment")
    def environment_column(self, execution: Execution) -> str:
        return execution.environment or "development"

    @admin.display(description="status", ordering="status")
    def status_column(self, execution: Execution) -> SafeString:
        return status_badge(execution.status)

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, execution: Execution) -> str:
        return "—" if execution.duration_ms is None else f"{execution.duration_ms:,.1f} ms"

    @admin.display(description="being")
    def being_link(self, execution: Execution) -> SafeString | str:
        url = reverse("being_detail", args=[execution.being_id])
        return format_html('<a href="{}">{}</a> (the being page)', url, execution.being_id)

    @admin.display(description="args")
    def args_pretty(self, execution: Execution) -> SafeString | str:
        return HIDDEN if contents_hidden(execution) else json_block(execution.args)

    @admin.display(description="kwargs")
    def kwargs_pretty(self, execution: Execution) -> SafeString | str:
        return HIDDEN if contents_hidden(execution) else json_block(execution.kwargs)

    @admin.display(description="result")
    def result_pretty(self, execution: Execution) -> SafeString | str:
        if contents_hidden(execution):
            return HIDDEN
        return json_block(execution.result) if execution.status == Execution.Status.SUCCEEDED else "—"

    @admin.display(description="error")
    def error_pretty(self, execution: Execution) -> SafeString | str:
        error = execution.error
        if not error:
            return "—"
        if not isinstance(error, dict):
            return json_block(error)
        return format_html(
            "<strong>{}</strong>: {}<pre>{}</pre>",
            error.get("type", ""),
            error.get("message", ""),
            error.get("traceback", ""),
        )

    @admin.display(description="output")
    def output_pre(self, execution: Execution) -> SafeString | str:
        if contents_hidden(execution):
            return HIDDEN
        return format_html("<pre>{}</pre>", execution.output) if execution.output else "—"

    @admin.display(description="limits applied")
    def limits_pretty(self, execution: Execution) -> SafeString:
        return json_block(execution.limits)

    @admin.display(description="layers in force")
    def layers_pretty(self, execution: Execution) -> SafeString:
        return json_block(execution.layers)

    @admin.display(description="called by")
    def parent_link(self, execution: Execution) -> SafeString | str:
        return execution_link(execution.parent if getattr(execution, "parent_visible", False) else None)

    @admin.display(description="root run")
    def root_link(self, execution: Execution) -> SafeString | str:
        return execution_link(execution.root if getattr(execution, "root_visible", False) else None)

    @admin.display(description="calls and summons it made")
    def children_links(self, execution: Execution) -> SafeString | str:
        children: list[Execution] = getattr(execution, "children_visible", [])
        if not children:
            return "—"
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((execution_link(c),) for c in children)))
