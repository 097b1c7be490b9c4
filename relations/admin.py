"""Relationships in the admin: linked, changed and deleted through ``relations.services``."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.safestring import SafeString

from beings.models import BaseBeing
from luxsite.admin import GuardedServiceAdmin, TagFilter, instance_adopt, json_block
from luxsite.errors import DomainError
from luxsite.forms import PrettyJSONField, TagsField
from luxsite.permissions import visible
from relations import services
from relations.models import Relationship

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldsetSpec

EDITABLE = ("tags", "energy_level", "genesis", "attributes")


class RelationshipForm(forms.ModelForm):
    """Source and target (fixed once linked) and the editable fields, validated by the service's rules."""

    tags = TagsField(help_text="Comma-separated, e.g. invokes, reads.")
    energy_level = forms.IntegerField(initial=0)
    genesis = PrettyJSONField(empty={}, help_text="A JSON object.")
    attributes = PrettyJSONField(empty={}, help_text="A JSON object.")

    class Meta:
        model = Relationship
        fields = ("source", "target", *EDITABLE)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.relationship_data: dict[str, Any] = {}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for field in EDITABLE:
            if field in cleaned:
                try:
                    self.relationship_data.update(services.relationship_clean({field: cleaned[field]}))
                except DomainError as error:
                    self.add_error(field, error.detail)
        return cleaned

    def changed_relationship_data(self) -> dict[str, Any]:
        return {field: value for field, value in self.relationship_data.items() if field in self.changed_data}

    def _post_clean(self) -> None:
        """Nothing: the services validate and write relationships; the form never builds the model itself."""


@admin.register(Relationship)
class RelationshipAdmin(GuardedServiceAdmin):
    form = RelationshipForm
    list_display = ("short_id", "source_name", "target_name", "tag_list", "energy_level", "created_at")
    list_select_related = ("source", "target")
    list_filter = (TagFilter,)
    search_fields = ("source__soul", "target__soul")
    search_help_text = "A whole soul (source or target) or relationship id."
    autocomplete_fields = ("source", "target")
    ordering = ("-created_at", "id")
    list_per_page = 50
    show_full_result_count = False
    readonly_fields = ("id", "created_at", "genesis_pretty", "attributes_pretty")

    def get_fieldsets(self, request: HttpRequest, obj: Relationship | None = None) -> _FieldsetSpec:
        if obj is None:
            return [(None, {"fields": ("source", "target", *EDITABLE)})]
        editable = self.has_change_permission(request, obj)
        return [
            (None, {"fields": ("id", "source", "target", "created_at")}),
            (
                "Fields",
                {"fields": EDITABLE if editable else ("tags", "energy_level", "genesis_pretty", "attributes_pretty")},
            ),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Relationship | None = None) -> tuple[str, ...]:
        # A relationship's ends never change: unlink and link again instead.
        readonly = tuple(self.readonly_fields)
        return readonly if obj is None else (*readonly, "source", "target")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name in ("source", "target"):
            kwargs["queryset"] = visible(user=request.user, queryset=BaseBeing.objects.all())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Relationship], search_term: str
    ) -> tuple[QuerySet[Relationship], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            soul = uuid.UUID(term)
        except ValueError:
            return queryset.filter(tags__contains=[term]), False
        return queryset.filter(Q(source_id=soul) | Q(target_id=soul) | Q(id=soul)), False

    def save_model(self, request: HttpRequest, obj: Relationship, form: forms.ModelForm, change: bool) -> None:
        assert isinstance(form, RelationshipForm)
        if change:
            services.relationship_update(relationship=obj, data=form.changed_relationship_data(), actor=request.user)
            return
        relationship = services.relationship_link_souls(
            source_soul=form.cleaned_data["source"].pk,
            target_soul=form.cleaned_data["target"].pk,
            actor=request.user,
            data=form.relationship_data,
        )
        instance_adopt(obj, relationship)

    def service_delete(self, request: HttpRequest, obj: Relationship) -> None:
        services.relationship_delete(relationship=obj, actor=request.user)

    @admin.display(description="id", ordering="id")
    def short_id(self, relationship: Relationship) -> str:
        return f"{str(relationship.pk)[:8]}…"

    @admin.display(description="source", ordering="source__genesis__name")
    def source_name(self, relationship: Relationship) -> str:
        return relationship.source.name

    @admin.display(description="target", ordering="target__genesis__name")
    def target_name(self, relationship: Relationship) -> str:
        return relationship.target.name

    @admin.display(description="tags")
    def tag_list(self, relationship: Relationship) -> str:
        return ", ".join(relationship.tags or [])

    @admin.display(description="genesis")
    def genesis_pretty(self, relationship: Relationship) -> SafeString:
        return json_block(relationship.genesis)

    @admin.display(description="attributes")
    def attributes_pretty(self, relationship: Relationship) -> SafeString:
        return json_block(relationship.attributes)
