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
from guardian.shortcuts import get_objects_for_user
from guardian.utils import get_user_obj_perms_model

from luxsite.errors import PermissionDenied

Q = TypeVar("Q", bound=models.QuerySet[Any])
User = AbstractBaseUser | AnonymousUser

OWNER_ACTIONS = ("view", "change", "delete")


def codename(model: type[models.Model], action: str) -> str:
    return f"{action}_{model._meta.concrete_model._meta.model_name}"  # type: ignore[union-attr]


def owner_grant(*, objects: Sequence[models.Model], user: User | None) -> None:
    """Give ``user`` view, change and delete on each of ``objects`` in one insert."""
    if not objects or user is None or not user.is_authenticated:
        return
    model = type(objects[0])._meta.concrete_model
    assert model is not None
    content_type = ContentType.objects.get_for_model(model)
    permissions = list(
        Permission.objects.filter(
            content_type=content_type, codename__in=[codename(model, action) for action in OWNER_ACTIONS]
        )
    )
    grant_model = get_user_obj_perms_model(model)  # type: ignore[arg-type]  # guardian accepts a class too
    table = grant_model._meta.db_table
    object_column = cast(models.ForeignKey[Any, Any], grant_model._meta.get_field("content_object")).column
    # One statement whatever the number of objects: a bulk import grants 3 rows per object.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, permission_id, {object_column})"
            " SELECT %s, permission.id, object.pk FROM unnest(%s::int[]) AS permission(id)"
            f" CROSS JOIN unnest(%s::{_pk_type(model)}[]) AS object(pk) ON CONFLICT DO NOTHING",
            [user.pk, [p.pk for p in permissions], [obj.pk for obj in objects]],
        )


def _pk_type(model: type[models.Model]) -> str:
    return "uuid" if isinstance(model._meta.pk, models.UUIDField) else "bigint"


def visible(*, user: User, queryset: Q) -> Q:
    """The objects of ``queryset`` that ``user`` may view, as a SQL filter (the queryset keeps its class)."""
    if not user.is_authenticated:
        return queryset.none()
    if getattr(user, "is_superuser", False):
        return queryset
    return get_objects_for_user(  # type: ignore[return-value]  # guardian filters the queryset it is given
        user, codename(queryset.model, "view"), klass=queryset, accept_global_perms=True, with_superuser=False
    )


def may(*, user: User, action: str, obj: models.Model) -> bool:
    """Whether ``user`` may perform ``action`` (view, change, delete, execute…) on ``obj``."""
    if not (user.is_authenticated and isinstance(user, PermissionsMixin)):
        return False
    label = obj._meta.app_label
    perm = f"{label}.{action if '_' in action else codename(type(obj), action)}"
    return bool(user.has_perm(perm) or user.has_perm(perm, obj))


def require(*, user: User, action: str, obj: models.Model) -> None:
    """Raise PermissionDenied unless ``user`` may perform ``action`` on ``obj``."""
    if not may(user=user, action=action, obj=obj):
        raise PermissionDenied(f"you may not {action.split('_')[0]} this {obj._meta.verbose_name}")
