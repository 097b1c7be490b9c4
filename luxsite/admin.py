"""The admin site's name, the base classes of the LuxOS admins, and API tokens.

Every admin here is a thin caller of the services: saves, deletes and actions
call ``beings.services``, ``relations.services`` or ``luxsite.tokens``. A
``DomainError`` a service raises becomes an error message, and the transaction
the admin view runs in rolls back, so nothing is written.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as delete_selected_confirmation
from django.contrib.admin.utils import model_ngettext, quote
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy
from guardian.admin import GuardedModelAdminMixin

from luxsite.errors import DomainError
from luxsite.models import ApiToken
from luxsite.permissions import may, visible
from luxsite.tokens import token_create, token_revoke

admin.site.site_header = "LuxOS"
admin.site.site_title = "LuxOS admin"
admin.site.index_title = "Living code registry"
admin.site.site_url = "/"


def json_block(value: Any) -> SafeString:
    """A JSON document pretty-printed for a read-only admin field."""
    return format_html('<pre class="lux-json">{}</pre>', json.dumps(value, ensure_ascii=False, indent=2))


def uuid_short(value: Any) -> SafeString:
    """A uuid cut to its first eight characters for a list column, whole on hover."""
    return format_html('<span class="lux-uuid" title="{}">{}…</span>', value, str(value)[:8])


def instance_adopt(target: models.Model, saved: models.Model) -> None:
    """Make ``target`` (the admin's unsaved form instance) the row a service has just created.

    The admin logs and redirects to the object it passed to ``save_model``; the
    service returns its own instance, so the admin's one takes over its state.
    """
    for field in type(saved)._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db


def is_member(request: HttpRequest) -> bool:
    """Whether the request comes from someone who may use the admin at all."""
    user = request.user
    return bool(user.is_active and user.is_staff)


class InputListFilter(admin.SimpleListFilter):
    """A list filter typed into a text box rather than chosen from a list.

    Used where the choices are open-ended (tags): listing them would cost a scan
    of the whole table on every page of the changelist.
    """

    template = "admin/luxsite/input_filter.html"
    placeholder = ""

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> Iterable[tuple[Any, str]]:
        return ()

    def has_output(self) -> bool:
        return True

    # The template of this filter reads its own keys, not those of the stubs' choice TypedDict.
    def choices(self, changelist: ChangeList) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        hidden = [
            (name, value)
            for name, values in changelist.params.items()
            if name != self.parameter_name and name != PAGE_VAR
            for value in (values if isinstance(values, list) else [values])
        ]
        yield {
            "parameter": self.parameter_name,
            "value": self.value() or "",
            "placeholder": self.placeholder,
            "hidden": hidden,
            "clear_query_string": changelist.get_query_string(remove=[str(self.parameter_name)]),
        }


class TagFilter(InputListFilter):
    """Objects carrying one tag (the GIN index on tags answers it)."""

    title = "tag"
    parameter_name = "tag"
    placeholder = "has tag…"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = (self.value() or "").strip()
        return queryset.filter(tags__contains=[value]) if value else queryset


class ServiceModelAdmin(admin.ModelAdmin):
    """An admin whose writes all go through services; a DomainError becomes an error message."""

    actions = ["delete_selected"]

    class Media:
        css = {"all": ["luxsite/admin.css"]}

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        """Delete one object through its service (subclasses that allow deleting override it)."""
        raise PermissionDenied

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # Django runs the view in a transaction: when a service refuses, the
        # exception rolls back everything the view wrote (its log entry too).
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as error:
            self.message_user(request, error.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as error:
            self.message_user(request, error.detail, messages.ERROR)
            opts = self.opts
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id]))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.service_delete(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self.service_delete(request, obj)

    def get_deleted_objects(
        self, objs: Iterable[Any], request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        """List only the objects themselves: what else a deletion needs or refuses is the service's decision."""
        opts = self.opts
        objects = list(objs)
        labels = [
            format_html(
                '{}: <a href="{}">{}</a>',
                capfirst(opts.verbose_name),
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)]),
                obj,
            )
            for obj in objects
        ]
        return labels, {str(opts.verbose_name_plural): len(objects)}, set(), []

    @admin.action(permissions=["delete"], description=gettext_lazy("Delete selected %(verbose_name_plural)s"))
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> TemplateResponse | None:
        """Replaces Django's bulk delete: one service call per object, each refusal reported."""
        if not request.POST.get("post"):
            return delete_selected_confirmation(self, request, queryset)  # the confirmation page
        deleted = 0
        for obj in queryset:
            label = str(obj)
            try:
                with transaction.atomic():
                    if not self.has_delete_permission(request, obj):
                        raise PermissionDenied
                    self.log_deletions(request, [obj])  # type: ignore[arg-type]  # as Django's delete_view does
                    self.service_delete(request, obj)
            except PermissionDenied:
                self.message_user(request, f"{label}: you may not delete it", messages.ERROR)
            except DomainError as error:
                self.message_user(request, f"{label}: {error.detail}", messages.ERROR)
            else:
                deleted += 1
        if deleted:
            self.message_user(request, f"Deleted {deleted} {model_ngettext(self.opts, deleted)}.", messages.SUCCESS)
        return None


# Object permissions answered once per request and object: the admin asks the
# same question several times while rendering one page.
_permission_answers: weakref.WeakKeyDictionary[HttpRequest, dict[tuple[str, str, str], bool]] = (
    weakref.WeakKeyDictionary()
)


class GuardedServiceAdmin(GuardedModelAdminMixin, ServiceModelAdmin):
    """A service admin over objects with guardian object permissions.

    Any active staff member may open the list, which shows only what they may
    view; viewing, changing and deleting one object follow its object (or
    global) permissions. Managing object permissions (guardian's "Object
    permissions" page) is for superusers: someone who may change an object
    could otherwise grant themselves anything on it, executing included.
    """

    # guardian declares this an instance variable, Django's stubs a class variable.
    change_form_template = "admin/luxsite/guarded_change_form.html"  # type: ignore[misc]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return visible(user=request.user, queryset=super().get_queryset(request))

    def object_may(self, request: HttpRequest, action: str, obj: models.Model) -> bool:
        answers = _permission_answers.setdefault(request, {})
        key = (obj._meta.label, str(obj.pk), action)
        if key not in answers:
            answers[key] = may(user=request.user, action=action, obj=obj)
        return answers[key]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_member(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return is_member(request)
        return self.object_may(request, "view", obj) or self.object_may(request, "change", obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return is_member(request)
        return self.object_may(request, "change", obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return is_member(request)
        return self.object_may(request, "delete", obj)

    def permissions_manage_check(self, request: HttpRequest) -> None:
        if not request.user.is_superuser:
            raise PermissionDenied

    def obj_perms_manage_view(self, request: HttpRequest, object_pk: str) -> HttpResponse:
        self.permissions_manage_check(request)
        return super().obj_perms_manage_view(request, object_pk)

    def obj_perms_manage_user_view(self, request: HttpRequest, object_pk: str, user_id: str) -> HttpResponse:
        self.permissions_manage_check(request)
        return super().obj_perms_manage_user_view(request, object_pk, user_id)

    def obj_perms_manage_group_view(self, request: HttpRequest, object_pk: str, group_id: str) -> HttpResponse:
        self.permissions_manage_check(request)
        return super().obj_perms_manage_group_view(request, object_pk, group_id)


class TokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("active", "active"), ("revoked", "revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ("user", "name")


@admin.register(ApiToken)
class ApiTokenAdmin(ServiceModelAdmin):
    """Tokens are created here with their secret shown once, then only looked at or revoked."""

    form = ApiTokenForm
    list_display = ("prefix", "user", "name", "created_at", "last_used_at", "revoked")
    list_filter = (TokenStatusFilter,)
    list_select_related = ("user",)
    search_fields = ("prefix", "name", "user__username")
    ordering = ("-created_at",)
    actions = ["revoke"]
    readonly_fields = ("prefix", "user", "name", "created_at", "last_used_at", "revoked_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        queryset = super().get_queryset(request).select_related("user")
        if request.user.is_superuser:
            return queryset
        return queryset.filter(user_id=request.user.pk)

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:  # type: ignore[override]
        if obj is None:
            return ["user", "name"]
        return list(self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        return () if obj is None else tuple(self.readonly_fields)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = db_field.related_model.objects.filter(pk=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        # A token is never edited; revoking is an action of the list.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        # Revoked tokens stay on record.
        return False

    @admin.display(boolean=True, ordering="revoked_at")
    def revoked(self, token: ApiToken) -> bool:
        return token.revoked_at is not None

    def save_model(self, request: HttpRequest, obj: ApiToken, form: forms.ModelForm, change: bool) -> None:
        token, secret = token_create(user=form.cleaned_data["user"], name=form.cleaned_data["name"])
        instance_adopt(obj, token)
        self.message_user(request, f"Copy this token now, it will not be shown again: {secret}", messages.SUCCESS)

    @admin.action(permissions=["change"], description="Revoke selected API tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token_revoke(token=token)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} API token(s).", messages.SUCCESS)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows only services write (the soul registry, runs): viewed here, never added, changed or deleted."""

    class Media:
        css = {"all": ["luxsite/admin.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
