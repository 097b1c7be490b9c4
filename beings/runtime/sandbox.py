"""The worker's side of the sandbox: ``Sandbox.run(job, limits, on_request) -> RunResult``.

The worker never runs being code. A ``Sandbox`` owns one zygote per process (started on first use,
restarted when it dies, started afresh in a process forked from the one that owned it) and asks it
for a child per run. It then talks to the child directly over a socket, trusting nothing it reads:
frames are size-capped and checked (see ``protocol``), the whole run has a wall-clock deadline after
which the child's process group is killed, output and result are capped, and ``execution()`` and
``summon()`` requests are counted against the run's budget before they reach ``on_request``.

A job is a JSON object::

    {"source": str, "kind": "function"|"class", "entrypoint": "run", "class_name": str|None,
     "self": {...snapshot...}, "attributes": {..., "arguments": {...defaults...}},
     "args": [...], "kwargs": {...}}

``on_request(request) -> value`` gets ``{"op": "execution", "target", "args", "kwargs"}`` or
``{"op": "summon", "name", "source", "type", "attributes", "tags"}``, every value JSON from hostile
code; what it returns (JSON) is what the call returns in the being. To refuse, it raises
``RequestRefused(error_type, message)``, which the being sees as ``BeingCallError``. Any other
exception aborts the run: the child is killed and the exception propagates to the caller.

``on_output(text)``, when given, gets all the output kept so far while the run goes on: at most
every ``OUTPUT_EVERY_SECONDS``, and as soon as that allows after the last chunk (not only when the
next one comes); the ``RunResult`` still holds the whole of it.

The wall clock counts the whole run, the time spent in ``on_request`` included (a nested execution
should be given what remains); ``depth`` is carried for the worker, which knows the call chain.
This module does not import Django: ``SandboxLimits.from_settings(django.conf.settings)`` reads
the ``LUXOS_SANDBOX_*`` settings with getattr.
"""

from __future__ import annotations

import contextlib
import enum
import json
import math
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from beings.runtime.protocol import (
    ChannelClosed,
    FrameReader,
    FrameTimeout,
    ProtocolError,
    frame_encode,
    frame_send,
    json_dumps,
)

KIB = 1024
MIB = 1024 * KIB
MESSAGE_BYTES = 1 << 16
ZYGOTE_START_SECONDS = 30.0
ZYGOTE_ANSWER_SECONDS = 10.0
STATUS_SECONDS = 2.0
CHECK_SECONDS = 10.0
ZYGOTE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
ZYGOTE_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); from beings.runtime.zygote import main; main(int(sys.argv[2]))"
)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
KINDS = ("function", "class")
ERROR_TEXT = {"type": 200, "message": 4000, "traceback": 16000}

# How often a run's output so far may be handed to on_output while it runs.
OUTPUT_EVERY_SECONDS = 0.5

RequestHandler = Callable[[dict[str, Any]], Any]
OutputHandler = Callable[[str], None]


class RunStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    KILLED = "killed"
    REJECTED = "rejected"


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
        return {"cpu_seconds": max(1, int(self.cpu_seconds)), "memory_bytes": self.memory_bytes,
                "output_bytes": self.output_bytes, "result_bytes": self.result_bytes}


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
        "source": source, "kind": kind, "entrypoint": entrypoint, "class_name": class_name,
        "self": job.get("self") or {}, "attributes": attributes, "args": list(job.get("args") or []),
        "kwargs": job.get("kwargs") or {},
    }
    try:
        return frame_encode(normalized)
    except (TypeError, ValueError, RecursionError) as error:
        raise InvalidJob(f"the job is not JSON: {error}") from None


def _public_identifier(name: Any) -> bool:
    return isinstance(name, str) and name.isidentifier() and not name.startswith("_")


@dataclass
class _Zygote:
    process: subprocess.Popen[bytes]
    sock: socket.socket
    owner: int
    layers: dict[str, dict[str, Any]]
    check: SandboxCheck | None = None


@dataclass
class _Child:
    pid: int
    pidfd: int
    sock: socket.socket
    status_fd: int

    def alive(self) -> bool:
        poller = select.poll()
        poller.register(self.pidfd, select.POLLIN)
        return not poller.poll(0)

    def kill(self) -> None:
        """SIGKILL the child's process group while the child lives (so its pid is not reused), and the child."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    def wait_status(self, timeout: float) -> int | None:
        """The child's wait status, which the zygote writes when it reaps it; None if the zygote died."""
        poller = select.poll()
        poller.register(self.status_fd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            return None
        data = os.read(self.status_fd, 4)
        return int(struct.unpack("!i", data)[0]) if len(data) == 4 else None

    def close(self) -> None:
        self.kill()
        self.sock.close()
        os.close(self.pidfd)
        os.close(self.status_fd)


class Sandbox:
    """Runs jobs in confined children of a zygote it owns; safe to share between threads."""

    def __init__(self, *, python: str | None = None) -> None:
        self.python = python or sys.executable
        self._lock = threading.Lock()
        self._zygote: _Zygote | None = None
        _instances.add(self)

    def run(
        self, job: Mapping[str, Any], limits: SandboxLimits | None = None, on_request: RequestHandler | None = None,
        on_output: OutputHandler | None = None,
    ) -> RunResult:
        """Run one job and say how it went; InvalidJob if the job is malformed."""
        limits = limits or SandboxLimits()
        started = time.monotonic()
        job_frame = job_encode(job)
        if limits.strict:
            host = self._zygote_layers()
            missing = sorted(name for name, layer in host.items() if not layer["in_force"])
            if missing:
                return _rejected(missing, started, {name: bool(layer["in_force"]) for name, layer in host.items()})
        request = {"op": "fork", "mode": "run", "limits": limits.for_child(), "strict": limits.strict}
        for _attempt in range(2):  # a second child when the first died before it held the job
            child = self._spawn(request)
            try:
                return _Run(child, limits, on_request, started, on_output).converse(job_frame)
            except _Stillborn:
                continue
            finally:
                child.close()
        raise SandboxUnavailable("the sandbox child died before it was ready, twice")

    def check(self, limits: SandboxLimits | None = None, *, read_paths: Iterable[str] = ()) -> SandboxCheck:
        """Fork a confined child that tries, in plain Python, what the layers must refuse."""
        limits = limits or SandboxLimits()
        request = {"op": "fork", "mode": "check", "limits": limits.for_child(), "read_paths": list(read_paths)}
        child = self._spawn(request)
        try:
            reader = FrameReader(child.sock, max_bytes=MESSAGE_BYTES * 4)
            message, _size = reader.read(time.monotonic() + CHECK_SECONDS)
        except (FrameTimeout, ChannelClosed, ProtocolError) as error:
            raise SandboxUnavailable(f"the sandbox self-test failed: {type(error).__name__} {error}") from None
        finally:
            child.close()
        if message.get("op") != "check":
            raise SandboxUnavailable("the sandbox self-test answered out of protocol")
        return SandboxCheck(layers=message["layers"], facts=message["facts"])

    def layers_report(self) -> dict[str, dict[str, Any]]:
        """Layer -> {"in_force": bool, "detail": str}, proven by a self-test child once per zygote."""
        self._zygote_layers()
        zygote = self._zygote
        if zygote is not None and zygote.check is not None:
            return zygote.check.layers
        check = self.check()
        if zygote is not None:
            zygote.check = check
        return check.layers

    def start(self) -> None:
        """Start the zygote now rather than on the first run (a worker calls this when it boots)."""
        self._zygote_layers()

    @property
    def zygote_pid(self) -> int | None:
        zygote = self._zygote
        return zygote.process.pid if zygote is not None and zygote.owner == os.getpid() else None

    def close(self) -> None:
        """Stop the zygote (it kills its children); the next run starts a new one."""
        with self._lock:
            if self._zygote is not None:
                self._zygote_stop(self._zygote)

    def _zygote_layers(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return self._zygote_ready().layers

    def _spawn(self, request: dict[str, Any]) -> _Child:
        status_read, status_write = os.pipe()
        try:
            reply, fds = self._ask(request, [status_write])
        except BaseException:
            os.close(status_read)
            raise
        finally:
            os.close(status_write)
        if "pid" not in reply or len(fds) != 2:
            os.close(status_read)
            for fd in fds:
                os.close(fd)
            raise SandboxUnavailable(f"the zygote could not fork: {reply.get('error', reply)}")
        pidfd, channel = fds
        return _Child(pid=int(reply["pid"]), pidfd=pidfd, sock=socket.socket(fileno=channel), status_fd=status_read)

    def _ask(self, request: dict[str, Any], fds: list[int]) -> tuple[dict[str, Any], list[int]]:
        """One request to the zygote and its reply; a dead or mute zygote is replaced once."""
        with self._lock:
            for _attempt in range(2):
                zygote = self._zygote_ready()
                try:
                    socket.send_fds(zygote.sock, [json.dumps(request).encode()], fds)
                    data, received, _flags, _address = socket.recv_fds(zygote.sock, MESSAGE_BYTES, 2)
                except OSError:
                    data, received = b"", []
                if data:
                    return json.loads(data), received
                for fd in received:
                    os.close(fd)
                self._zygote_stop(zygote)
        raise SandboxUnavailable("the sandbox zygote does not answer")

    def _zygote_ready(self) -> _Zygote:
        zygote = self._zygote
        if zygote is not None and (zygote.owner != os.getpid() or zygote.process.poll() is not None):
            self._zygote_stop(zygote)
            zygote = None
        if zygote is None:
            zygote = self._zygote = self._zygote_start()
        return zygote

    def _zygote_start(self) -> _Zygote:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            process = subprocess.Popen(
                [self.python, "-I", "-c", ZYGOTE_BOOT, str(PROJECT_ROOT), str(theirs.fileno())],
                env=ZYGOTE_ENV, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                close_fds=True, pass_fds=(theirs.fileno(),), start_new_session=True,
            )
        finally:
            theirs.close()
        ours.settimeout(ZYGOTE_START_SECONDS)
        try:
            hello = ours.recv(MESSAGE_BYTES)
        except OSError:
            hello = b""
        if not hello:
            ours.close()
            process.kill()
            code = process.wait()
            raise SandboxUnavailable(f"the sandbox zygote did not start (exit code {code})")
        ours.settimeout(ZYGOTE_ANSWER_SECONDS)
        return _Zygote(process=process, sock=ours, owner=os.getpid(), layers=json.loads(hello)["layers"])

    def _zygote_stop(self, zygote: _Zygote) -> None:
        self._zygote = None if self._zygote is zygote else self._zygote
        zygote.sock.close()
        if zygote.owner != os.getpid():
            return  # the zygote of the process we were forked from: not ours to stop
        try:
            zygote.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            zygote.process.kill()
            zygote.process.wait()


_instances: weakref.WeakSet[Sandbox] = weakref.WeakSet()
_default: Sandbox | None = None
_default_lock = threading.Lock()


def sandbox_default() -> Sandbox:
    """The process's Sandbox, created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Sandbox()
        return _default


def _after_fork_in_child() -> None:
    # A lock held by another thread at the fork would never be released in the child.
    global _default_lock
    _default_lock = threading.Lock()
    for instance in list(_instances):
        instance._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class _Stillborn(Exception):
    """The child ended before it acknowledged its job (a spare killed while it waited): nothing of the being ran."""


class _Run:
    """One conversation with a child, from its ready frame to its done frame (or its end)."""

    def __init__(
        self, child: _Child, limits: SandboxLimits, on_request: RequestHandler | None, started: float,
        on_output: OutputHandler | None = None,
    ) -> None:
        self.child = child
        self.limits = limits
        self.on_request = on_request
        self.started = started
        self.output = _Output(limits.output_bytes)
        self.on_output = on_output
        self.output_sent_at = -math.inf  # when on_output last got the output
        self.output_unsent = False
        self.layers: dict[str, bool] = {}
        self.calls = 0
        self.summons = 0

    def converse(self, job_frame: bytes) -> RunResult:
        # From the fork on: starting a zygote on the first run is not the being's time.
        deadline = time.monotonic() + self.limits.wall_seconds
        reader = FrameReader(self.child.sock, max_bytes=self.limits.frame_bytes)
        try:
            try:
                ready, _size = reader.read(deadline)
                self.layers = _ready_layers(ready)
                missing = sorted(name for name, in_force in self.layers.items() if not in_force)
                if self.limits.strict and missing:
                    return _rejected(missing, self.started, self.layers)
                frame_send(self.child.sock, job_frame, deadline)
                # Sent by the child once it holds the job, before any of the being's code is compiled.
                if reader.read(deadline)[0].get("op") != "started":
                    raise ProtocolError("the child did not acknowledge its job")
            except ChannelClosed:
                raise _Stillborn from None
            while True:
                message, size = self.next_frame(reader, deadline)
                op = message.get("op")
                if op == "output":
                    self.output.add(_field(message, "data", str))
                    self.output_unsent = True
                    if time.monotonic() >= self.output_sent_at + OUTPUT_EVERY_SECONDS:
                        self.output_send()
                elif op in ("execution", "summon"):
                    if self.output_unsent:  # what it printed before it called shows while the call runs
                        self.output_send()
                    frame_send(self.child.sock, self.answer(message, size), deadline)
                elif op == "done":
                    return self.done(message)
                else:
                    raise ProtocolError(f"unexpected frame {str(op)[:40]!r}")
        except FrameTimeout:
            self.child.kill()
            wall = f"wall-clock limit of {self.limits.wall_seconds:g} s exceeded"
            return self.finish(RunStatus.TIMEOUT, error=_error("TimeoutError", wall))
        except ChannelClosed:
            return self.died()
        except ProtocolError as error:
            self.child.kill()
            broken = f"the sandbox child broke protocol: {error}"
            return self.finish(RunStatus.FAILED, error=_error("ProtocolError", broken))

    def next_frame(self, reader: FrameReader, deadline: float) -> tuple[dict[str, Any], int]:
        """The child's next frame; while output waits to be handed on, it is handed on when its time comes."""
        while self.output_unsent and self.on_output is not None:
            due = self.output_sent_at + OUTPUT_EVERY_SECONDS
            try:
                return reader.read(min(deadline, due))
            except FrameTimeout:
                if time.monotonic() >= deadline:
                    raise
                self.output_send()  # a frame half read stays in the reader's buffer
        return reader.read(deadline)

    def output_send(self) -> None:
        self.output_unsent = False
        self.output_sent_at = time.monotonic()
        if self.on_output is not None:
            self.on_output(self.output.text())

    def answer(self, message: dict[str, Any], size: int) -> bytes:
        """The reply frame to an execution() or summon() request."""
        op = message["op"]
        if size > self.limits.result_bytes:
            raise ProtocolError(f"a {op} request of {size} bytes exceeds the limit of {self.limits.result_bytes}")
        request = _request_checked(message)
        if op == "execution":
            self.calls += 1
            if self.calls > self.limits.calls:
                budget = f"a run may make at most {self.limits.calls} execution() calls"
                return _reply_error("CallBudgetExceeded", budget)
        else:
            self.summons += 1
            if self.summons > self.limits.summons:
                quota = f"a run may make at most {self.limits.summons} summon() calls"
                return _reply_error("SummonQuotaExceeded", quota)
        if self.on_request is None:
            return _reply_error("Unavailable", f"{op}() is not available here")
        try:
            value = self.on_request(request)
        except RequestRefused as refusal:
            return _reply_error(_clean(refusal.error_type, 200), _clean(refusal.message, 4000))
        reply = frame_encode({"ok": True, "value": value})
        if len(reply) - 4 > self.limits.result_bytes:
            return _reply_error("ReplyTooLarge", f"the reply exceeds {self.limits.result_bytes} bytes")
        return reply

    def done(self, message: dict[str, Any]) -> RunResult:
        if message.get("truncated") is True:
            self.output.truncated = True
        if message.get("ok") is True and "result" in message:
            result = message["result"]
            size = len(json_dumps(result))
            if size > self.limits.result_bytes:
                too_large = f"result is {size} bytes of JSON; the limit is {self.limits.result_bytes}"
                return self.finish(RunStatus.FAILED, error=_error("ResultTooLarge", too_large))
            return self.finish(RunStatus.SUCCEEDED, result=result)
        if message.get("ok") is False and isinstance(message.get("error"), dict):
            error = message["error"]
            described = {key: _clean(_field(error, key, str), limit) for key, limit in ERROR_TEXT.items()}
            return self.finish(RunStatus.FAILED, error=described)
        raise ProtocolError("a done frame without a result or an error")

    def died(self) -> RunResult:
        """The child closed its channel before it was done: say why, from its wait status."""
        status = self.child.wait_status(STATUS_SECONDS)
        if status is None:
            self.child.kill()
            return self.finish(RunStatus.KILLED, error=_error("Killed", "the sandbox process vanished"))
        code = os.waitstatus_to_exitcode(status)
        if code == -signal.SIGXCPU:
            cpu = f"CPU time limit of {self.limits.cpu_seconds} s exceeded"
            return self.finish(RunStatus.TIMEOUT, error=_error("TimeoutError", cpu))
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            return self.finish(RunStatus.KILLED, error=_error("Killed", f"the sandbox process was killed by {name}"))
        return self.finish(RunStatus.KILLED, error=_error("Killed", f"the sandbox process exited early (code {code})"))

    def finish(self, status: RunStatus, *, result: Any = None, error: dict[str, str] | None = None) -> RunResult:
        return RunResult(
            status=status, result=result, error=error, output=self.output.text(),
            output_truncated=self.output.truncated, duration=time.monotonic() - self.started,
            layers=self.layers, calls=self.calls, summons=self.summons,
        )


class _Output:
    """Printed text as the worker keeps it: valid UTF-8 without NUL, at most ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.truncated = False

    def add(self, text: str) -> None:
        data = _clean(text, len(text)).encode()
        room = self.limit - self.size
        if len(data) > room:
            data = data[:room]
            self.truncated = True
        self.parts.append(data.decode(errors="ignore"))
        self.size += len(data)

    def text(self) -> str:
        return "".join(self.parts)


def _clean(text: str, limit: int) -> str:
    """Text a database and a log can hold: no lone surrogates, no NUL, at most limit characters."""
    return text[:limit].encode("utf-8", "replace").decode().replace("\x00", "\ufffd")


def _field(message: Mapping[str, Any], name: str, kind: type) -> Any:
    value = message.get(name)
    if not isinstance(value, kind):
        raise ProtocolError(f"field {name!r} is not a {kind.__name__}")
    return value


def _ready_layers(message: dict[str, Any]) -> dict[str, bool]:
    if message.get("op") != "ready" or not isinstance(message.get("layers"), dict):
        raise ProtocolError("the first frame is not ready")
    return {str(name)[:40]: value is True for name, value in message["layers"].items()}


def _request_checked(message: dict[str, Any]) -> dict[str, Any]:
    """A request rebuilt from its checked fields only."""
    if message["op"] == "execution":
        if set(message) != {"op", "target", "args", "kwargs"}:
            raise ProtocolError("an execution request with unexpected fields")
        return {"op": "execution", "target": _field(message, "target", str), "args": _field(message, "args", list),
                "kwargs": _field(message, "kwargs", dict)}
    if set(message) != {"op", "name", "source", "type", "attributes", "tags"}:
        raise ProtocolError("a summon request with unexpected fields")
    tags = _field(message, "tags", list)
    if not all(isinstance(tag, str) for tag in tags):
        raise ProtocolError("summon tags must be strings")
    for name in ("source", "type"):
        if message[name] is not None and not isinstance(message[name], str):
            raise ProtocolError(f"summon {name} must be a string or null")
    return {"op": "summon", "name": _field(message, "name", str), "source": message["source"], "type": message["type"],
            "attributes": _field(message, "attributes", dict), "tags": tags}


def _reply_error(error_type: str, message: str) -> bytes:
    return frame_encode({"ok": False, "error": {"type": error_type, "message": message}})


def _error(error_type: str, message: str) -> dict[str, str]:
    return {"type": error_type, "message": message, "traceback": ""}


def _rejected(missing: list[str], started: float, layers: dict[str, bool]) -> RunResult:
    message = f"strict sandbox: refusing to run without these layers in force: {', '.join(missing)}"
    return RunResult(status=RunStatus.REJECTED, error=_error("SandboxRejected", message),
                     duration=time.monotonic() - started, layers=layers)
