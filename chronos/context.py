"""The change context: who makes a write, through which door, and why.

A door (the API, the admin, a command, a task) opens a context for the work it
does; every service writes the context into its transaction with
``context_apply`` so that the capture triggers store it beside each row change.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from django.db import connection

Door = Literal["api", "admin", "command", "task", "view", "migration", "shell", "agent"]


@dataclass(frozen=True)
class ChangeContext:
    door: Door = "shell"
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    reason: str = ""


_current: ContextVar[ChangeContext] = ContextVar("luxos_change_context", default=ChangeContext())  # noqa: B039


def context_current() -> ChangeContext:
    return _current.get()


@contextlib.contextmanager
def change_context(*, door: Door, reason: str = "", request_id: str | None = None) -> Iterator[ChangeContext]:
    """Run a block of work as coming through ``door``."""
    context = ChangeContext(door=door, reason=reason, request_id=request_id or uuid.uuid4().hex)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def context_apply(*, actor: Any, operation: str, reason: str = "") -> None:
    """Record the context of this write in the current transaction, for the capture triggers."""
    context = _current.get()
    if reason:
        context = replace(context, reason=reason)
    payload = {
        "actor_id": getattr(actor, "pk", None),
        "actor": getattr(actor, "username", None),
        "door": context.door,
        "operation": operation,
        "reason": context.reason,
        "request_id": context.request_id,
    }
    with connection.cursor() as cursor:
        # A new context: the next captured statement records it (chronos_begin), once.
        cursor.execute(
            "SELECT set_config('luxos.context', %s, true), set_config('luxos.context_row', '', true)",
            [json.dumps(payload)],
        )
