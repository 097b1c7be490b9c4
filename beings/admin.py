"""Beings in the admin: code highlighted, state as JSON, relationships in and out; writes through the services."""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from beings import kinds, services
from beings.display import source_html
from beings.evolution import being_evolve, being_evolve_enqueue

# The soul registry (promotions, validations) and executions register their own admins, read-only.
from beings.executions import admin as execution_admin  # noqa: F401
from beings.forms import BeingForm
from beings.models import BaseBeing, BeingQuerySet
from beings.souls import admin as soul_admin  # noqa: F401
from chronos.admin import being_history_block
from chronos.risk.services import risk_assess, safety_guard
from luxsite.admin import (
    GuardedServiceAdmin,
    TagFilter,
    instance_adopt,
    is_member,
    json_block,
    uuid_short,
)
from luxsite.permissions import visible
from relations.models import Relationship

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldsetSpec


# The relationships shown on a being's page, newest first; the rest are in the relationship admin.
INLINE_LIMIT = 50


class KindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(kind, kind) for kind in kinds.KINDS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        assert isinstance(queryset, BeingQuerySet)
        kind = self.value()
        return queryset.of_kind(kind) if kind else queryset


class EnergyFilter(admin.SimpleListFilter):
    title = "energy level"
    parameter_name = "energy"
    RANGES = {
        "negative": ("below 0", Q(energy_level__lt=0)),
        "zero": ("0", Q(energy_level=0)),
        "low": ("1 – 49", Q(energy_level__gte=1, energy_level__lt=50)),
        "high": ("50 – 99", Q(energy_level__gte=50, energy_level__lt=100)),
        "full": ("100 and above", Q(energy_level__gte=100)),
    }

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _) in self.RANGES.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        selected = self.RANGES.get(self.value() or "")
        return queryset.filter(selected[1]) if selected else queryset


class NewestRelationshipsFormSet(BaseInlineFormSet):
    def get_queryset(self) -> QuerySet[Relationship]:
        queryset = super().get_queryset()
        if not queryset.query.is_sliced:
            self._queryset = queryset[:INLINE_LIMIT]
        return self._queryset


class RelationshipInline(admin.TabularInline):
    """Relationships of the being, read-only here: they are made and changed in their own admin."""

    model = Relationship
    formset = NewestRelationshipsFormSet
    other_end: str  # "target" for outgoing relationships, "source" for incoming ones
    extra = 0
    can_delete = False
    classes = ("lux-relationships",)
    fields = ("relationship", "other_being", "tag_list", "energy_level", "created_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Relationship]:
        queryset = visible(user=request.user, queryset=super().get_queryset(request))
        return queryset.select_related(self.other_end)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_member(request)  # the queryset shows only what the user may view

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="relationship")
    def relationship(self, relationship: Relationship) -> SafeString:
        url = reverse("admin:relations_relationship_change", args=[relationship.pk])
        return format_html('<a href="{}">{}…</a>', url, str(relationship.pk)[:8])

    @admin.display(description="being")
    def other_being(self, relationship: Relationship) -> SafeString:
        being: BaseBeing = getattr(relationship, self.other_end)
        url = reverse("admin:beings_basebeing_change", args=[being.pk])
        return format_html('<a href="{}">{}</a> <small>{}</small>', url, being.name or being.pk, being.kind)

    @admin.display(description="tags")
    def tag_list(self, relationship: Relationship) -> str:
        return ", ".join(relationship.tags or [])


class OutgoingRelationshipInline(RelationshipInline):
    fk_name = "source"
    other_end = "target"
    verbose_name = "outgoing relationship"
    verbose_name_plural = f"outgoing relationships (newest {INLINE_LIMIT})"


class IncomingRelationshipInline(RelationshipInline):
    fk_name = "target"
    other_end = "source"
    verbose_name = "incoming relationship"
    verbose_name_plural = f"incoming relationships (newest {INLINE_LIMIT})"


@admin.register(BaseBeing)
class BaseBeingAdmin(GuardedServiceAdmin):
    form = BeingForm
    list_display = (
        "being_name",
        "being_kind",
        "being_version",
        "soul_short",
        "energy_level",
        "tag_list",
        "created_at",
        "page_link",
    )
    list_filter = (KindFilter, TagFilter, EnergyFilter)
    search_fields = ("genesis__name", "soul", "tags")
    search_help_text = "Name (contains), a whole soul, or a tag."
    ordering = ("-created_at", "soul")
    list_per_page = 50
    show_full_result_count = False
    readonly_fields = (
        "soul",
        "created_at",
        "genesis_description",
        "source_highlighted",
        "genesis_pretty",
        "attributes_pretty",
        "memories_pretty",
        "self_awareness_pretty",
        "chronos_history",
    )

    def get_readonly_fields(self, request: HttpRequest, obj: BaseBeing | None = None) -> tuple[str, ...]:
        """Energy is earned by runs (it is their queue priority): only a superuser edits it."""
        readonly = tuple(super().get_readonly_fields(request, obj))
        return readonly if getattr(request.user, "is_superuser", False) else (*readonly, "energy_level")

    def get_fieldsets(self, request: HttpRequest, obj: BaseBeing | None = None) -> _FieldsetSpec:
        if obj is None:
            return [
                (None, {"fields": ("name", "kind", "description", "tags", "energy_level")}),
                ("Code", {"fields": ("source",)}),
                ("State", {"fields": ("attributes", "memories", "self_awareness")}),
            ]
        # A being the user may only view shows read-only renderings in place of the form fields.
        editable = self.has_change_permission(request, obj)
        description = "description" if editable else "genesis_description"
        return [
            ("Identity", {"fields": ("soul", "created_at")}),
            (None, {"fields": ("name", "kind", description, "tags", "energy_level")}),
            (
                "Code",
                {
                    "fields": ("source_highlighted", "source", "reason", "evolve_async")
                    if editable
                    else ("source_highlighted",),
                    "description": "A new source evolves the being (the next version) or mutates it (a new being)."
                    if editable
                    else "",
                },
            ),
            (
                "State",
                {
                    "fields": ("attributes", "memories", "self_awareness")
                    if editable
                    else ("attributes_pretty", "memories_pretty", "self_awareness_pretty")
                },
            ),
            ("Genesis (the whole document)", {"fields": ("genesis_pretty",), "classes": ("collapse",)}),
            ("History", {"fields": ("chronos_history",), "classes": ("collapse",)}),
        ]

    def get_inlines(self, request: HttpRequest, obj: BaseBeing | None) -> list[type[admin.options.InlineModelAdmin]]:
        return [] if obj is None else [OutgoingRelationshipInline, IncomingRelationshipInline]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[BaseBeing], search_term: str
    ) -> tuple[QuerySet[BaseBeing], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(genesis__name__icontains=term) | Q(tags__contains=[term])
        with contextlib.suppress(ValueError):
            match |= Q(soul=uuid.UUID(term))
        return queryset.filter(match), False

    def view_on_site(self, obj: BaseBeing) -> str:
        """The being page (versions, diffs, lineage graph) as the change form's "View on site"."""
        return reverse("being_detail", args=[obj.soul])

    def has_change_permission(self, request: HttpRequest, obj: BaseBeing | None = None) -> bool:
        if obj is not None and obj.is_core:
            return False  # core beings never change
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: BaseBeing | None = None) -> bool:
        if obj is not None and obj.is_core:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: BaseBeing, form: forms.ModelForm, change: bool) -> None:
        assert isinstance(form, BeingForm)
        if change:
            # The rest of genesis changes through an update, the code through the evolve service, as in the API.
            services.being_update(being=obj, data=form.changed_being_data(), actor=request.user)
            source = form.source_new()
            if source is not None:
                self.evolve(request, obj, source, form.cleaned_data)
        else:
            instance_adopt(obj, services.being_create(data=form.being_data, actor=request.user))

    def evolve(self, request: HttpRequest, being: BaseBeing, source: str, cleaned: dict[str, Any]) -> None:
        reason = cleaned.get("reason", "")
        if cleaned.get("evolve_async"):
            being_evolve_enqueue(being=being, source=source, reason=reason, actor=request.user)
            self.message_user(request, "The new source was handed to a worker; its version appears when it is done.")
            return
        evolution = being_evolve(being=being, source=source, reason=reason, actor=request.user)
        being.refresh_from_db()
        if evolution.kind == "mutation":
            child = evolution.being
            url = reverse("admin:beings_basebeing_change", args=[child.pk])
            self.message_user(
                request,
                format_html('The change was a mutation: it made a new being, <a href="{}">{}</a>.', url, child.soul),
                messages.WARNING,
            )
        else:
            self.message_user(request, f"{evolution.kind.capitalize()}: now version {evolution.being.version}.")

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        """Nothing: the relationship inlines are read-only and a being has no many-to-many fields."""

    def construct_change_message(
        self, request: HttpRequest, form: forms.Form, formsets: Any, add: bool = False
    ) -> list[dict[str, Any]]:
        # The read-only inlines were never saved, so they have nothing to report.
        return super().construct_change_message(request, form, [], add)

    def service_delete(self, request: HttpRequest, obj: BaseBeing) -> None:
        services.being_delete(being=obj, actor=request.user)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The confirmation shows the deletion's risk; confirmed, the safety checkpoint comes first.

        Django's view writes its log entry before the service deletes, in one transaction: the
        checkpoint is taken here, before that transaction begins.
        """
        being = self.get_object(request, unquote(object_id))
        if being is not None and self.has_delete_permission(request, being):
            if request.method == "POST":
                risk, _checkpoint = safety_guard(operation="delete", target=being, actor=request.user)
            else:
                risk = risk_assess(operation="delete", target=being, actor=request.user)
            extra_context = {**(extra_context or {}), "risk": risk}
        return super().delete_view(request, object_id, extra_context)

    @admin.display(description="name", ordering=KeyTextTransform("name", "genesis"))
    def being_name(self, being: BaseBeing) -> SafeString:
        """The alias, and for a mutant the being it came from: beings sharing an alias are told apart."""
        name = being.name or "(unnamed)"
        parent = being.genesis.get("parent")
        if not isinstance(parent, dict) or not parent.get("soul"):
            return format_html("{}", name)
        return format_html(
            '{} <small class="lux-mutant">mutant of <span title="{}">{}…</span> v{}</small>',
            name,
            parent["soul"],
            str(parent["soul"])[:8],
            parent.get("version", "?"),
        )

    @admin.display(description="version")
    def being_version(self, being: BaseBeing) -> str:
        return f"v{being.version}"

    @admin.display(description="page")
    def page_link(self, being: BaseBeing) -> SafeString:
        return format_html('<a href="{}">open page</a>', reverse("being_detail", args=[being.pk]))

    @admin.display(description="soul", ordering="soul")
    def soul_short(self, being: BaseBeing) -> SafeString:
        return uuid_short(being.soul)

    @admin.display(description="kind", ordering=KeyTextTransform("type", "genesis"))
    def being_kind(self, being: BaseBeing) -> str:
        return being.kind

    @admin.display(description="tags")
    def tag_list(self, being: BaseBeing) -> str:
        return ", ".join(being.tags or [])

    @admin.display(description="description")
    def genesis_description(self, being: BaseBeing) -> str:
        return str(being.genesis.get("description", ""))

    @admin.display(description="current source")
    def source_highlighted(self, being: BaseBeing) -> SafeString | str:
        source = being.genesis.get("source")
        return source_html(source) if isinstance(source, str) and source else "—"

    @admin.display(description="genesis")
    def genesis_pretty(self, being: BaseBeing) -> SafeString:
        return json_block(being.genesis)

    @admin.display(description="attributes")
    def attributes_pretty(self, being: BaseBeing) -> SafeString:
        return json_block(being.attributes)

    @admin.display(description="memories")
    def memories_pretty(self, being: BaseBeing) -> SafeString:
        return json_block(being.memories)

    @admin.display(description="self-awareness")
    def self_awareness_pretty(self, being: BaseBeing) -> SafeString:
        return json_block(being.self_awareness)

    @admin.display(description="newest changes")
    def chronos_history(self, being: BaseBeing) -> SafeString:
        return being_history_block(soul=being.soul)
