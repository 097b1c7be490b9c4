"""Who a tool acts as, and how a tool's outcome travels back: a document, or a domain error's code and detail.

A door (the stdio command, the HTTP view) names the acting user once with ``acting_as``; the SDK runs
each tool on a worker thread with a copy of the door's context, so every call reads the user afresh
(a user deactivated mid-session is refused at the next call) and writes through the ``agent`` door.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from mcp.types import CallToolResult, TextContent

from chronos.commandline import json_value
from chronos.context import change_context
from chronos.risk.services import safety_recorded
from luxsite.errors import DomainError, PermissionDenied
from luxsite.permissions import User

_actor_id: ContextVar[int | None] = ContextVar("luxos_agent_actor", default=None)


@contextlib.contextmanager
def acting_as(user: Any) -> Iterator[None]:
    """Run the tools called inside the block as ``user``."""
    token = _actor_id.set(user.pk)
    try:
        yield
    finally:
        _actor_id.reset(token)


def actor_current() -> User:
    """The acting user, read again: inactive or gone since the door named it, the call is refused."""
    actor_id = _actor_id.get()
    user = get_user_model().objects.filter(pk=actor_id, is_active=True).first() if actor_id is not None else None
    if user is None:
        raise PermissionDenied("the agent door acts as no active user")
    return user


def document_result(document: dict[str, Any]) -> CallToolResult:
    """A tool's answer: the document as structured content, and as JSON text for clients that read only text."""
    payload = json.loads(json.dumps(document, default=json_value))
    text = json.dumps(payload, ensure_ascii=False)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=payload)


def error_result(error: DomainError) -> CallToolResult:
    """A refusal as a tool error (``isError``) carrying the API's ``{code, detail}``."""
    result = document_result(error.as_dict())
    result.is_error = True
    return result


def act(operation: str, work: Callable[[User], dict[str, Any]]) -> CallToolResult:
    """Run one tool's work as the acting user through the agent door; a domain error becomes a tool error.

    The safety checkpoints a risky operation took first are named in its answer (``safety_checkpoints``).

    The work runs on the SDK's worker thread, whose database connection is closed afterwards: threads
    come and go with the SDK's pool, and a connection left behind would outlive its thread.
    """
    try:
        with change_context(door="agent", reason=f"mcp {operation}"), safety_recorded() as taken:
            document = work(actor_current())
        if taken:  # a risky operation took these first: restore one to undo it
            document["safety_checkpoints"] = [{"id": checkpoint.id, "name": checkpoint.name} for checkpoint in taken]
        return document_result(document)
    except DomainError as error:
        return error_result(error)
    finally:
        connection.close()
