"""Object permissions (django-guardian) shared by beings and relationships.

Whoever creates an object gets view/change/delete on it; everyone else sees
only what they may view, filtered in SQL; superusers see everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Permission, PermissionsMixin
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.db.models import Exists, OuterRef, Subquery
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

from luxsite.errors import NotFound, PermissionDenied

Q = TypeVar("Q", bound=models.QuerySet[Any])
User = AbstractBaseUser | AnonymousUser

OWNER_ACTIONS = ("view", "change", "delete")


def codename(model: type[models.Model], action: str) -> str:
    return f"{action}_{model._meta.concrete_model._meta.model_name}"  # type: ignore[union-attr]


def owner_grant(*, model: type[models.Model], pks: Sequence[Any], user: User | None, extra: Sequence[str] = ()) -> None:
    """Give ``user`` view, change and delete on the objects of ``model`` with primary keys ``pks``, in one insert.

    ``extra`` names further permissions of the model by codename (``execute_being``). Keys, not instances:
    a bulk import would otherwise build a model instance per row just to pass its key.
    """
    if not pks or user is None or not user.is_authenticated:
        return
    concrete = model._meta.concrete_model
    assert concrete is not None
    content_type = ContentType.objects.get_for_model(concrete)
    permissions = list(
        Permission.objects.filter(
            content_type=content_type,
            codename__in=[*(codename(concrete, action) for action in OWNER_ACTIONS), *extra],
        )
    )
    grant_model = get_user_obj_perms_model(concrete)  # type: ignore[arg-type]  # guardian accepts a class too
    table = grant_model._meta.db_table
    object_column = cast(models.ForeignKey[Any, Any], grant_model._meta.get_field("content_object")).column
    # One statement whatever the number of objects: a bulk import grants 3 rows per object.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, permission_id, {object_column})"
            " SELECT %s, permission.id, object.pk FROM unnest(%s::int[]) AS permission(id)"
            f" CROSS JOIN unnest(%s::{_pk_type(concrete)}[]) AS object(pk) ON CONFLICT DO NOTHING",
            [user.pk, [p.pk for p in permissions], list(pks)],
        )


def _pk_type(model: type[models.Model]) -> str:
    return "uuid" if isinstance(model._meta.pk, models.UUIDField) else "bigint"


def visible(*, user: User, queryset: Q) -> Q:
    """The objects of ``queryset`` that ``user`` may view, as a SQL filter (the queryset keeps its class).

    An EXISTS on guardian's (user, permission, object) unique index, which PostgreSQL runs as a semi-join
    probed per candidate row. guardian's ``get_objects_for_user`` filters on ``pk IN (grants) OR pk IN
    (group grants)`` instead, which PostgreSQL hashes in full on every query: O(every object the user may
    view), however selective the filter or short the page.
    """
    if not (user.is_authenticated and isinstance(user, PermissionsMixin)):
        return queryset.none()
    model = queryset.model
    view = codename(model, "view")
    if user.is_superuser or user.has_perm(f"{model._meta.app_label}.{view}"):
        return queryset
    # A scalar subquery, not a join to auth_permission: PostgreSQL then estimates the grants from the
    # column statistics and hash-joins them when it must look at every row (being_counts).
    permission = Subquery(
        Permission.objects.filter(content_type=ContentType.objects.get_for_model(model), codename=view)
        .order_by()
        .values("pk")
    )
    grants = get_user_obj_perms_model(model)._default_manager  # type: ignore[arg-type]  # a class is fine
    by_user = Exists(grants.filter(content_object=OuterRef("pk"), user=user, permission_id=permission))
    # OR-ing a second EXISTS rules the semi-join out: add the group grants only for a user in a group.
    groups = _group_ids(user)
    if not groups:
        return queryset.filter(by_user)
    group_grants = get_group_obj_perms_model(model)._default_manager  # type: ignore[arg-type]
    by_group = Exists(group_grants.filter(content_object=OuterRef("pk"), group__in=groups, permission_id=permission))
    return queryset.filter(by_user | by_group)


def _group_ids(user: PermissionsMixin) -> list[int]:
    """The user's groups, fetched once per user object as Django caches its permissions."""
    if not hasattr(user, "_luxos_group_ids"):
        user._luxos_group_ids = list(user.groups.values_list("pk", flat=True))  # type: ignore[attr-defined]
    return user._luxos_group_ids  # type: ignore[attr-defined]


def may(*, user: User, action: str, obj: models.Model) -> bool:
    """Whether ``user`` may perform ``action`` (view, change, delete, execute…) on ``obj``."""
    if not (user.is_authenticated and isinstance(user, PermissionsMixin)):
        return False
    label = obj._meta.app_label
    perm = f"{label}.{action if '_' in action else codename(type(obj), action)}"
    return bool(user.has_perm(perm) or user.has_perm(perm, obj))


def require(*, user: User, action: str, obj: models.Model, missing: NotFound | None = None) -> None:
    """Raise unless ``user`` may perform ``action`` on ``obj``.

    What the user may not view does not exist for them: ``missing`` (the error an unknown id gets,
    word for word) is raised then, so a refusal never tells that the object is there. PermissionDenied
    is for what they may view but not act on.
    """
    if may(user=user, action=action, obj=obj):
        return
    if missing is not None and (action == "view" or not may(user=user, action="view", obj=obj)):
        raise missing
    raise PermissionDenied(f"you may not {action.split('_')[0]} this {obj._meta.verbose_name}")
