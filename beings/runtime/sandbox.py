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

The child prints into memory it shares with the worker (a sealed memfd from the zygote), not into
frames: what it printed is there to the last byte whenever it ends, killed or not. ``on_output(text)``,
when given, gets all the output so far while the run goes on: every ``OUTPUT_EVERY_SECONDS`` if the
child printed more, and before each ``execution()`` or ``summon()`` is answered; the ``RunResult``
still holds the whole of it. A job too large for the child's memory fails as ``JobTooLarge``.

The wall clock counts the whole run, the time spent in ``on_request`` included (a nested execution
should be given what remains); ``depth`` is carried for the worker, which knows the call chain.
This module does not import Django: ``SandboxLimits.from_settings(django.conf.settings)`` reads
the ``LUXOS_SANDBOX_*`` settings with getattr.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beings.runtime.cancel import cancel_watch_default
from beings.runtime.jobs import (
    OutputHandler,
    RequestHandler,
    RunResult,
    SandboxCheck,
    SandboxLimits,
    SandboxUnavailable,
    job_encode,
)
from beings.runtime.protocol import (
    ChannelClosed,
    FrameReader,
    FrameTimeout,
    ProtocolError,
)
from beings.runtime.run import Child, Run, Stillborn, result_cancelled, result_rejected

MESSAGE_BYTES = 1 << 16
ZYGOTE_START_SECONDS = 30.0
ZYGOTE_ANSWER_SECONDS = 10.0
CHECK_SECONDS = 10.0
ZYGOTE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
ZYGOTE_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); from beings.runtime.zygote import main; main(int(sys.argv[2]))"
)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class _Zygote:
    process: subprocess.Popen[bytes]
    sock: socket.socket
    owner: int
    layers: dict[str, dict[str, Any]]
    check: SandboxCheck | None = None


class Sandbox:
    """Runs jobs in confined children of a zygote it owns; safe to share between threads."""

    def __init__(self, *, python: str | None = None) -> None:
        self.python = python or sys.executable
        self._lock = threading.Lock()
        self._zygote: _Zygote | None = None
        self._run_requests: dict[SandboxLimits, bytes] = {}
        _instances.add(self)

    def run(
        self,
        job: Mapping[str, Any],
        limits: SandboxLimits | None = None,
        on_request: RequestHandler | None = None,
        on_output: OutputHandler | None = None,
        *,
        execution_id: object | None = None,
    ) -> RunResult:
        """Run one job and say how it went; InvalidJob if the job is malformed.

        With ``execution_id``, a cancel of that execution heard by the process's watch (its worker's
        channel, see ``cancel``) kills the child's process group at once, and the run ends ``cancelled``.
        """
        limits = limits or SandboxLimits()
        started = time.monotonic()
        job_frame = job_encode(job)
        if limits.strict:
            host = self._zygote_layers()
            missing = sorted(name for name, layer in host.items() if not layer["in_force"])
            if missing:
                in_force = {name: bool(layer["in_force"]) for name, layer in host.items()}
                return result_rejected(missing, started, in_force)
        request = self._run_request(limits)
        watching = cancel_watch_default().watch(execution_id) if execution_id is not None else None
        with watching or contextlib.nullcontext() as cancel:
            for _attempt in range(2):  # a second child when the first died before it held the job
                if cancel is not None and cancel.cancelled:
                    return result_cancelled(started)
                child = self._spawn(request)
                if cancel is not None:
                    cancel.arm(child)
                try:
                    return Run(child, limits, on_request, started, on_output, cancel).converse(job_frame)
                except Stillborn:
                    continue
                finally:
                    if cancel is not None:
                        cancel.disarm()
                    child.close()
            if cancel is not None and cancel.cancelled:
                return result_cancelled(started)
        raise SandboxUnavailable("the sandbox child died before it was ready, twice")

    def check(self, limits: SandboxLimits | None = None, *, read_paths: Iterable[str] = ()) -> SandboxCheck:
        """Fork a confined child that tries, in plain Python, what the layers must refuse."""
        limits = limits or SandboxLimits()
        request = {"op": "fork", "mode": "check", "limits": limits.for_child(), "read_paths": list(read_paths)}
        child = self._spawn(json.dumps(request).encode())
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

    def _run_request(self, limits: SandboxLimits) -> bytes:
        """The fork request of a run with these limits, encoded once: the zygote knows its spare fits by these bytes."""
        request = self._run_requests.get(limits)
        if request is None:
            fork = {"op": "fork", "mode": "run", "limits": limits.for_child(), "strict": limits.strict}
            request = self._run_requests[limits] = json.dumps(fork, sort_keys=True).encode()
        return request

    def _spawn(self, request: bytes) -> Child:
        status_read, status_write = os.pipe()
        try:
            reply, fds = self._ask(request, [status_write])
        except BaseException:
            os.close(status_read)
            raise
        finally:
            os.close(status_write)
        if "pid" not in reply or len(fds) != 3:
            os.close(status_read)
            for fd in fds:
                os.close(fd)
            raise SandboxUnavailable(f"the zygote could not fork: {reply.get('error', reply)}")
        pidfd, channel, output = fds
        try:
            printed = mmap.mmap(output, 0, prot=mmap.PROT_READ)
        finally:
            os.close(output)
        sock = socket.socket(fileno=channel)
        return Child(pid=int(reply["pid"]), pidfd=pidfd, sock=sock, status_fd=status_read, output=printed)

    def _ask(self, request: bytes, fds: list[int]) -> tuple[dict[str, Any], list[int]]:
        """One request to the zygote and its reply; a dead or mute zygote is replaced once."""
        with self._lock:
            for _attempt in range(2):
                zygote = self._zygote_ready()
                try:
                    socket.send_fds(zygote.sock, [request], fds)
                    data, received, _flags, _address = socket.recv_fds(zygote.sock, MESSAGE_BYTES, 3)
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
                env=ZYGOTE_ENV,
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                close_fds=True,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
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
