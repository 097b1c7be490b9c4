"""The soul registry in the admin: promotions, validations and report failures, all read-only.

Promotion happens on the board, through the API or ``manage.py souls``; here the history is
looked at. The validation list opens with the newest result of each environment and a button
that validates one now (through ``environment_validate``, door ``admin``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from beings.display import hash_short, source_html
from beings.models import Promotion, SoulReportFailure, SoulValidation
from beings.selectors import hash_prefix_clean
from beings.souls.selectors import promoter_may, validation_latest
from beings.souls.services import environment_validate
from luxsite.admin import ReadOnlyAdmin, json_block
from luxsite.errors import DomainError


def promotion_link(promotion: Promotion | None) -> SafeString | str:
    if promotion is None:
        return "—"
    url = reverse("admin:beings_promotion_change", args=[promotion.pk])
    return format_html('<a href="{}">#{} {} {}…</a>', url, promotion.pk, promotion.action, promotion.hash[:12])


@admin.register(Promotion)
class PromotionAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "environment",
        "action",
        "alias",
        "hash_column",
        "version",
        "actor_name",
        "state",
        "ends_column",
        "overridden",
    )
    list_filter = ("environment", "action", ("override_reason", admin.EmptyFieldListFilter))
    list_select_related = ("ends", "ended_by")
    search_fields = ("alias",)
    search_help_text = "An alias (contains), or the start of a hash (at least 12 characters)."
    ordering = ("-created_at", "-id")
    list_per_page = 50
    show_full_result_count = False
    fields = (
        "environment",
        "action",
        "alias",
        "hash",
        "version",
        "soul",
        "actor_name",
        "note",
        "override_reason",
        "evidence_pretty",
        "created_at",
        "ends_column",
        "ended_by_column",
        "source_highlighted",
        "genotype_pretty",
    )
    readonly_fields = fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Promotion], search_term: str
    ) -> tuple[QuerySet[Promotion], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(hash__startswith=hash_prefix_clean(term)), False
        except DomainError:
            return queryset.filter(alias__icontains=term), False

    @admin.display(description="hash", ordering="hash")
    def hash_column(self, promotion: Promotion) -> SafeString | str:
        return hash_short(promotion.hash)

    @admin.display(description="state")
    def state(self, promotion: Promotion) -> str:
        if promotion.action == Promotion.Action.DEMOTE:
            return "demotion"
        ended_by = getattr(promotion, "ended_by", None)
        if ended_by is None:
            return "active"
        return "demoted" if ended_by.action == Promotion.Action.DEMOTE else "superseded"

    @admin.display(description="without evidence", boolean=True)
    def overridden(self, promotion: Promotion) -> bool | None:
        """Promoted past missing evidence (with a reason); none for a demotion or where none was asked."""
        if promotion.override_reason:
            return True
        return None if promotion.evidence is None else False

    @admin.display(description="evidence (weighed at the promotion)")
    def evidence_pretty(self, promotion: Promotion) -> SafeString | str:
        return json_block(promotion.evidence) if promotion.evidence is not None else "—"

    @admin.display(description="ends")
    def ends_column(self, promotion: Promotion) -> SafeString | str:
        return promotion_link(promotion.ends)

    @admin.display(description="ended by")
    def ended_by_column(self, promotion: Promotion) -> SafeString | str:
        return promotion_link(getattr(promotion, "ended_by", None))

    @admin.display(description="source")
    def source_highlighted(self, promotion: Promotion) -> SafeString | str:
        source = promotion.genotype.get("source") if isinstance(promotion.genotype, dict) else None
        return source_html(source) if isinstance(source, str) and source else "—"

    @admin.display(description="genotype (the immutable copy)")
    def genotype_pretty(self, promotion: Promotion) -> SafeString:
        return json_block(promotion.genotype)


@admin.register(SoulValidation)
class SoulValidationAdmin(ReadOnlyAdmin):
    change_list_template = "admin/beings/soulvalidation/change_list.html"
    list_display = ("checked_at", "environment", "ok", "checked", "problem_count", "door", "actor_name")
    list_filter = ("environment", "ok", "door")
    ordering = ("-checked_at", "-id")
    list_per_page = 50
    fields = ("environment", "checked_at", "ok", "checked", "door", "actor_name", "problems_pretty")
    readonly_fields = fields

    def get_urls(self) -> list[URLPattern]:
        validate = path(
            "validate/",
            self.admin_site.admin_view(require_POST(self.validate_view)),
            name="beings_soulvalidation_validate",
        )
        return [validate, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        latest = [
            (environment, validation_latest(environment=environment)) for environment in settings.LUXOS_ENVIRONMENTS
        ]
        may_validate = promoter_may(user=request.user)
        context = {**(extra_context or {}), "latest_validations": latest, "may_validate": may_validate}
        return super().changelist_view(request, context)

    def validate_view(self, request: HttpRequest) -> HttpResponse:
        """Validate one environment now; the outcome becomes a message on the list."""
        environment = request.POST.get("environment", "")
        try:
            validation = environment_validate(environment=environment, actor=request.user, door="admin")
        except DomainError as error:
            self.message_user(request, error.detail, messages.ERROR)
        else:
            if validation.ok:
                self.message_user(request, f"Validated {environment}: OK, {validation.checked} hash(es) recomputed.")
            else:
                self.message_user(
                    request, f"Validated {environment}: FAILED, {len(validation.problems)} problem(s).", messages.ERROR
                )
        return HttpResponseRedirect(reverse("admin:beings_soulvalidation_changelist"))

    @admin.display(description="problems")
    def problem_count(self, validation: SoulValidation) -> int:
        return len(validation.problems or [])

    @admin.display(description="problems")
    def problems_pretty(self, validation: SoulValidation) -> SafeString:
        return json_block(validation.problems)


@admin.register(SoulReportFailure)
class SoulReportFailureAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "operation", "hash_column", "path", "error_short")
    list_filter = ("operation",)
    search_fields = ("hash", "path", "error")
    ordering = ("-created_at", "-id")
    list_per_page = 50
    fields = ("created_at", "operation", "hash", "path", "error")
    readonly_fields = fields

    @admin.display(description="hash", ordering="hash")
    def hash_column(self, failure: SoulReportFailure) -> SafeString | str:
        return hash_short(failure.hash)

    @admin.display(description="error")
    def error_short(self, failure: SoulReportFailure) -> str:
        return failure.error if len(failure.error) <= 120 else f"{failure.error[:120]}…"
