"""What every chronos service checks first, and how a time-travel transaction begins."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.contrib.auth.models import PermissionsMixin
from django.db import connection

from chronos.context import context_apply
from chronos.exceptions import ChronosDisabledError, ChronosNameInvalidError
from chronos.models import NAME_MAX_LENGTH
from luxsite.errors import PermissionDenied
from luxsite.locks import advisory_lock
from luxsite.permissions import User

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Held by restore, switch, import and each batch of retention, for their whole transaction.
TIME_TRAVEL_LOCK = "luxos.chronos:time-travel"


def chronos_enabled() -> None:
    if not settings.ENABLE_CHRONOS:
        raise ChronosDisabledError("chronos is off (ENABLE_CHRONOS is false): turn it on to use time travel")


VIEW_PERMISSION = "chronos.view_checkpoint"


def viewer_require(user: User) -> None:
    """Chronos shows everyone's rows: chronos is on, and ``user`` is staff or holds chronos.view_checkpoint.

    Every door asks this first (the API, the pages, the command); a write needs its own permission on top.
    """
    chronos_enabled()
    staff = bool(getattr(user, "is_staff", False))
    allowed = isinstance(user, PermissionsMixin) and (staff or user.has_perm(VIEW_PERMISSION))
    if not (user.is_active and allowed):
        raise PermissionDenied(f"chronos is for staff, or for who holds {VIEW_PERMISSION}")


def permission_require(actor: User, permission: str, doing: str) -> None:
    if not (actor.is_authenticated and isinstance(actor, PermissionsMixin) and actor.has_perm(permission)):
        raise PermissionDenied(f"{doing} needs the {permission} permission")


def name_clean(name: Any, what: str) -> str:
    text = str(name if name is not None else "").strip()
    if not text:
        raise ChronosNameInvalidError(f"a {what} needs a name")
    if len(text) > NAME_MAX_LENGTH:
        raise ChronosNameInvalidError(f"a {what} name has at most {NAME_MAX_LENGTH} characters, not {len(text)}")
    if CONTROL.search(text):
        raise ChronosNameInvalidError(f"a {what} name cannot hold control characters")
    return text


def actor_name(actor: User | None) -> str:
    return str(getattr(actor, "username", "") or "(system)")


def hold_writers_off() -> None:
    """Writers of the two tables wait until this transaction ends; readers go on reading."""
    advisory_lock(TIME_TRAVEL_LOCK)
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE base_beings, relationships IN SHARE ROW EXCLUSIVE MODE")


def writes_tagged(kind: str, *, actor: User, operation: str, reason: str) -> None:
    """Tag this transaction's writes (restore, switch…) and record who and why, once."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('luxos.chronos_kind', %s, true)", [kind])
    context_apply(actor=actor, operation=operation, reason=reason)
