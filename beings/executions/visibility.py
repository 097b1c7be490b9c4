"""What of a run each viewer sees: the being's owner that it happened, its starter what went in and came out.

``executions_visible`` (selectors) says which runs a user may see at all: those they started and
those of beings they may change. Of a run somebody else started, the owner of the being sees its
status, timings, where it ran and the type of its error; its inputs (args, kwargs), result, output
and error message are the starter's, and superusers', alone. Every door shows a run through
``execution_shown``.
"""

from __future__ import annotations

import copy
from typing import Any

from beings.models import Execution
from luxsite.permissions import User

HIDDEN = "hidden: the inputs, result and output of a run are for the user who started it"


def execution_contents_visible(*, execution: Execution, user: User) -> bool:
    """Whether ``user`` may see what the run was given and what it gave: its starter, or a superuser."""
    if not user.is_authenticated:
        return False
    return bool(getattr(user, "is_superuser", False)) or (
        execution.actor_id is not None and execution.actor_id == user.pk
    )


def execution_shown(execution: Execution, *, user: User) -> Execution:
    """The run as ``user`` may see it (one they may see at all): whole, or without its inputs and outcome.

    A hidden run is a copy, marked ``contents_hidden``: args and kwargs None, no result, no output,
    and of its error only the type. The copy is for showing, never for saving.
    """
    if execution_contents_visible(execution=execution, user=user):
        return execution
    shown = copy.copy(execution)
    shown.args = None
    shown.kwargs = None
    shown.result = None
    shown.output = ""
    shown.output_truncated = False
    shown.error = _error_type_only(execution.error)
    shown.contents_hidden = True  # type: ignore[attr-defined]
    return shown


def contents_hidden(execution: Execution) -> bool:
    """Whether ``execution`` is a copy made by ``execution_shown`` without its inputs and outcome."""
    return bool(getattr(execution, "contents_hidden", False))


def _error_type_only(error: Any) -> dict[str, str] | None:
    if not error:
        return None
    kind = error.get("type", "") if isinstance(error, dict) else ""
    return {"type": str(kind), "message": "", "traceback": ""}
