"""What the sandbox takes and gives: the job, its limits, the result, and the errors a caller may meet."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from beings.runtime.protocol import (
    frame_encode,
)
from beings.runtime.restricted import being_bytecode

KIB = 1024


MIB = 1024 * KIB


KINDS = ("function", "class")


RequestHandler = Callable[[dict[str, Any]], Any]


OutputHandler = Callable[[str], None]


class RunStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    KILLED = "killed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class InvalidJob(ValueError):
    """The job handed to run() is malformed: the caller's bug, not the being's."""


class SandboxUnavailable(RuntimeError):
    """The zygote cannot be started or does not answer."""


class RequestRefused(Exception):
    """Raised by on_request to refuse an execution() or summon(); the being sees BeingCallError."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


_SETTINGS = {
    "cpu_seconds": "LUXOS_SANDBOX_CPU_SECONDS",
    "wall_seconds": "LUXOS_SANDBOX_WALL_SECONDS",
    "memory_bytes": "LUXOS_SANDBOX_MEMORY_BYTES",
    "output_bytes": "LUXOS_SANDBOX_OUTPUT_BYTES",
    "result_bytes": "LUXOS_SANDBOX_RESULT_BYTES",
    "depth": "LUXOS_SANDBOX_DEPTH",
    "calls": "LUXOS_SANDBOX_CALLS",
    "summons": "LUXOS_SANDBOX_SUMMONS",
    "strict": "LUXOS_SANDBOX_STRICT",
}


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may use. ``strict`` refuses to run when any layer is not in force."""

    cpu_seconds: int = 5
    wall_seconds: float = 10.0
    memory_bytes: int = 256 * MIB
    output_bytes: int = 64 * KIB
    result_bytes: int = 1 * MIB
    depth: int = 5
    calls: int = 50
    summons: int = 10
    strict: bool = False

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "wall_seconds", "memory_bytes", "output_bytes", "result_bytes", "depth"):
            if getattr(self, name) <= 0:
                raise ValueError(f"sandbox limit {name} must be positive, not {getattr(self, name)!r}")
        if self.calls < 0 or self.summons < 0:
            raise ValueError("sandbox call and summon budgets cannot be negative")
        if self.memory_bytes < 64 * MIB:
            raise ValueError("sandbox memory_bytes below 64 MiB leaves the interpreter no room")

    @classmethod
    def from_settings(cls, source: Mapping[str, Any] | object) -> SandboxLimits:
        """Limits from ``LUXOS_SANDBOX_*`` names of a settings object or a mapping (os.environ works)."""
        values: dict[str, Any] = {}
        for name, setting in _SETTINGS.items():
            value = source.get(setting) if isinstance(source, Mapping) else getattr(source, setting, None)
            if value is None or value == "":
                continue
            if name == "strict" and isinstance(value, str):
                values[name] = value.strip().lower() in ("1", "true", "yes", "on")
            elif name == "strict":
                values[name] = bool(value)
            elif name == "wall_seconds":
                values[name] = float(value)
            else:
                values[name] = int(value)
        return cls(**values)

    @property
    def frame_bytes(self) -> int:
        """The largest frame a child may send: a result, or an output chunk, with room for an error."""
        return self.result_bytes + 512 * KIB

    def for_child(self) -> dict[str, int]:
        return {
            "cpu_seconds": max(1, int(self.cpu_seconds)),
            "memory_bytes": self.memory_bytes,
            "output_bytes": self.output_bytes,
            "result_bytes": self.result_bytes,
        }


@dataclass(frozen=True)
class RunResult:
    """The outcome of one run. ``error`` is ``{"type", "message", "traceback"}`` unless it succeeded;
    ``layers`` says which layers were in force for the child; ``duration`` is in seconds."""

    status: RunStatus
    result: Any = None
    error: dict[str, str] | None = None
    output: str = ""
    output_truncated: bool = False
    duration: float = 0.0
    layers: dict[str, bool] = field(default_factory=dict)
    calls: int = 0
    summons: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SandboxCheck:
    """What a confined self-test child could and could not do, and the layers it proves in force."""

    layers: dict[str, dict[str, Any]]
    facts: dict[str, Any]

    @property
    def missing(self) -> list[str]:
        return [name for name, layer in self.layers.items() if not layer["in_force"]]


def job_encode(job: Mapping[str, Any]) -> bytes:
    """The job as the frame the child reads; InvalidJob when it is malformed."""
    source = job.get("source")
    kind = job.get("kind", "function")
    entrypoint = job.get("entrypoint") or "run"
    class_name = job.get("class_name")
    attributes = job.get("attributes") or {}
    checks = {
        "source must be a string": isinstance(source, str),
        f"kind must be one of {', '.join(KINDS)}": kind in KINDS,
        "entrypoint must be a public identifier": _public_identifier(entrypoint),
        "class_name must be a public identifier": class_name is None or _public_identifier(class_name),
        "self must be an object": isinstance(job.get("self") or {}, dict),
        "attributes must be an object": isinstance(attributes, dict),
        "attributes.arguments must be an object": isinstance(attributes.get("arguments") or {}, dict),
        "args must be a list": isinstance(job.get("args") or [], list | tuple),
        "kwargs must be an object": isinstance(job.get("kwargs") or {}, dict),
    }
    for problem, fine in checks.items():
        if not fine:
            raise InvalidJob(f"the job's {problem}")
    normalized = {
        "source": source,
        "code": being_bytecode(source),
        "kind": kind,
        "entrypoint": entrypoint,
        "class_name": class_name,
        "self": job.get("self") or {},
        "attributes": attributes,
        "args": list(job.get("args") or []),
        "kwargs": job.get("kwargs") or {},
    }
    try:
        return frame_encode(normalized)
    except (TypeError, ValueError, RecursionError) as error:
        raise InvalidJob(f"the job is not JSON: {error}") from None


def _public_identifier(name: Any) -> bool:
    return isinstance(name, str) and name.isidentifier() and not name.startswith("_")
