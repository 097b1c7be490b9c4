"""Naming a failure's error class from what is known of it: an exception, an error document, or a message.

A recorded failure is never "unknown": the exception's type or the domain error's code when there is one,
the type named in a run's error document or in the last line of a traceback, a kind recognised in the
message (a timeout, a kill, memory), and at the very least ``<operation>_failed``.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from typing import Any

from luxsite.errors import DomainError

ErrorLike = BaseException | str | Mapping[str, Any] | None

# "ValueError: bad input" or "beings.exceptions.Boom: ..." as a line of a traceback: the last one is the error.
TRACEBACK_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)", re.M)
# Outside a traceback, only a name that says it is an error.
ERROR_NAME = re.compile(r"\b([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Timeout))\b")
KINDS = (
    (re.compile(r"\btim(?:e|ed)[ _-]?out\b", re.I), "timeout"),
    (re.compile(r"\b(?:killed|sigkill|sigterm|cancel(?:l)?ed)\b", re.I), "killed"),
    (re.compile(r"\b(?:out of memory|memoryerror|oom)\b", re.I), "out_of_memory"),
    (re.compile(r"\bpermission denied\b", re.I), "permission_denied"),
    (re.compile(r"\bnot found\b", re.I), "not_found"),
    (re.compile(r"\b(?:conflict|already exists)\b", re.I), "conflict"),
)
CLASS_MAX = 200
MESSAGE_MAX = 4000


def _type_name(kind: type[BaseException]) -> str:
    if getattr(builtins, kind.__name__, None) is kind:
        return kind.__name__
    return f"{kind.__module__}.{kind.__qualname__}"


def _from_text(text: str) -> str:
    found = TRACEBACK_LINE.findall(text) if "Traceback" in text else ERROR_NAME.findall(text)
    if found:
        return str(found[-1])
    for pattern, kind in KINDS:
        if pattern.search(text):
            return kind
    return ""


def error_class(*, operation: str, error: ErrorLike) -> str:
    """The error class of a failure of ``operation``: never empty and never "unknown"."""
    name = ""
    if isinstance(error, DomainError):
        name = error.code
    elif isinstance(error, BaseException):
        name = _type_name(type(error))
    elif isinstance(error, Mapping):
        name = str(error.get("code") or error.get("type") or "").strip()
        if not name:
            name = _from_text(" ".join(str(error.get(key) or "") for key in ("message", "detail", "traceback")))
    elif isinstance(error, str):
        name = _from_text(error)
    if not name or name.lower() == "unknown":
        name = f"{operation}_failed"
    return name[:CLASS_MAX]


def error_message(error: ErrorLike) -> str:
    """The failure's message in a line or a few: what a reader of the lesson needs to recognise it."""
    if isinstance(error, DomainError):
        text = error.detail
    elif isinstance(error, BaseException):
        text = str(error) or type(error).__name__
    elif isinstance(error, Mapping):
        text = str(error.get("message") or error.get("detail") or error.get("type") or "")
    else:
        text = str(error or "")
    return text.strip()[:MESSAGE_MAX]
