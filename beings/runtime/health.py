"""The health of this host: the database answers, the sandbox's isolation layers are in force.

One report for ``GET /api/health`` and ``manage.py health``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import Error as DatabaseError
from django.db import connection

from beings.runtime.jobs import SandboxUnavailable
from beings.runtime.sandbox import Sandbox

_layers: dict[str, dict[str, Any]] | None = None
_layers_lock = threading.Lock()


@dataclass(frozen=True)
class HealthReport:
    """What this process finds: the database (a problem in one line when it fails) and the sandbox's layers."""

    database_problem: str | None
    sandbox: dict[str, dict[str, Any]]  # layer -> {in_force, detail}
    sandbox_problem: str | None  # why the sandbox could not be checked
    sandbox_problem_line: str | None  # the same as one line, with the error's type
    strict: bool  # LUXOS_SANDBOX_STRICT: being code is refused while a layer is missing

    @property
    def database(self) -> bool:
        return self.database_problem is None

    @property
    def layers_in_force(self) -> list[str]:
        return [name for name, layer in self.sandbox.items() if layer["in_force"]]

    @property
    def layers_missing(self) -> list[str]:
        return [name for name, layer in self.sandbox.items() if not layer["in_force"]]

    @property
    def sandbox_ok(self) -> bool:
        """The sandbox could be checked, and runs would not be refused for a missing layer."""
        return self.sandbox_problem is None and not (self.strict and self.layers_missing)

    @property
    def healthy(self) -> bool:
        return self.database and self.sandbox_ok


def health_report() -> HealthReport:
    """Whether the database answers ``SELECT 1`` and which sandbox layers are in force on this host."""
    try:
        sandbox, problem, line = sandbox_layers(), None, None
    except SandboxUnavailable as error:
        sandbox, problem, line = {}, str(error), one_line(error)
    return HealthReport(
        database_problem=_database_problem(),
        sandbox=sandbox,
        sandbox_problem=problem,
        sandbox_problem_line=line,
        strict=bool(settings.LUXOS_SANDBOX_STRICT),
    )


def _database_problem() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            row = cursor.fetchone()
    except DatabaseError as error:
        return one_line(error)
    return None if row == (1,) else f"SELECT 1 returned {row!r}"


def one_line(error: BaseException) -> str:
    """An error as one line: its type and the first line of its message."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def sandbox_layers() -> dict[str, dict[str, Any]]:
    """Layer -> {in_force, detail} on this host, proven once per process by a self-test child.

    A sandbox of its own, closed afterwards: a web process that reports health keeps no zygote.
    """
    global _layers
    with _layers_lock:
        if _layers is None:
            sandbox = Sandbox()
            try:
                _layers = sandbox.layers_report()
            finally:
                sandbox.close()
        return _layers
