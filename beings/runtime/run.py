"""One run, seen from the worker: the child's channel, its requests and output, how it ended."""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import signal
import socket
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from beings.runtime.cancel import Cancel
from beings.runtime.jobs import OutputHandler, RequestHandler, RequestRefused, RunResult, RunStatus, SandboxLimits
from beings.runtime.protocol import (
    OUTPUT_HEADER,
    ChannelClosed,
    FrameReader,
    FrameTimeout,
    ProtocolError,
    frame_encode,
    frame_send,
    json_dumps,
)

ERROR_TEXT = {"type": 200, "message": 4000, "traceback": 16000}


# How often a run's output so far may be handed to on_output while it runs.
OUTPUT_EVERY_SECONDS = 0.5


class Stillborn(Exception):
    """The child ended before it acknowledged its job (a spare killed while it waited): nothing of the being ran."""


class Run:
    """One conversation with a child, from its ready frame to its done frame (or its end)."""

    def __init__(
        self,
        child: Child,
        limits: SandboxLimits,
        on_request: RequestHandler | None,
        started: float,
        on_output: OutputHandler | None = None,
        cancel: Cancel | None = None,
    ) -> None:
        self.child = child
        self.cancel = cancel
        self.limits = limits
        self.on_request = on_request
        self.started = started
        self.on_output = on_output
        self.output_sent_at = time.monotonic()  # when on_output last got the output
        self.output_sent_size = 0  # how many bytes of it
        self.truncated = False  # what the child's done frame says
        self.layers: dict[str, bool] = {}
        self.calls = 0
        self.summons = 0

    def converse(self, job_frame: bytes) -> RunResult:
        """Hand the child its job and serve it to the end; Stillborn if it died before it held the job."""
        try:
            return self.conversation(job_frame)
        except (FrameTimeout, ChannelClosed, ProtocolError) as ended:
            if self.cancel is not None and self.cancel.cancelled:  # the child's end was the cancel's doing
                self.child.kill()
                return self.finish(RunStatus.CANCELLED, error=_error("Cancelled", "the run was cancelled while it ran"))
            if isinstance(ended, FrameTimeout):
                self.child.kill()
                wall = f"wall-clock limit of {self.limits.wall_seconds:g} s exceeded"
                return self.finish(RunStatus.TIMEOUT, error=_error("TimeoutError", wall))
            if isinstance(ended, ChannelClosed):
                return self.died()
            self.child.kill()
            broken = f"the sandbox child broke protocol: {ended}"
            return self.finish(RunStatus.FAILED, error=_error("ProtocolError", broken))

    def conversation(self, job_frame: bytes) -> RunResult:
        # From the fork on: starting a zygote on the first run is not the being's time.
        deadline = time.monotonic() + self.limits.wall_seconds
        reader = FrameReader(self.child.sock, max_bytes=self.limits.frame_bytes)
        try:
            ready, _size = reader.read(deadline)
            self.layers = _ready_layers(ready)
            missing = sorted(name for name, in_force in self.layers.items() if not in_force)
            if self.limits.strict and missing:
                return result_rejected(missing, self.started, self.layers)
            with contextlib.suppress(ChannelClosed):  # it stopped reading: what it said first is still to read
                frame_send(self.child.sock, job_frame, deadline)
            # Sent by the child once it holds the job, before any of the being's code is compiled.
            acknowledgement = reader.read(deadline)[0]
        except ChannelClosed:
            raise Stillborn from None
        if acknowledgement.get("op") == "refused" and acknowledgement.get("reason") == "memory":
            self.child.kill()
            too_large = (
                f"the job's inputs ({len(job_frame) - 4} bytes of JSON) are larger than the sandbox "
                f"memory limit of {self.limits.memory_bytes // 2**20} MiB"
            )
            return self.finish(RunStatus.FAILED, error=_error("JobTooLarge", too_large))
        if acknowledgement.get("op") != "started":
            raise ProtocolError("the child did not acknowledge its job")
        while True:
            message, size = self.next_frame(reader, deadline)
            op = message.get("op")
            if op in ("execution", "summon"):
                self.output_send()  # what it printed before it called shows while the call runs
                frame_send(self.child.sock, self.answer(message, size), deadline)
            elif op == "done":
                return self.done(message)
            else:
                raise ProtocolError(f"unexpected frame {str(op)[:40]!r}")

    def next_frame(self, reader: FrameReader, deadline: float) -> tuple[dict[str, Any], int]:
        """The child's next frame; meanwhile what it printed is handed to on_output when its time comes."""
        while self.on_output is not None:
            try:
                return reader.read(min(deadline, self.output_sent_at + OUTPUT_EVERY_SECONDS))
            except FrameTimeout:
                if time.monotonic() >= deadline:
                    raise
                self.output_send()  # a frame half read stays in the reader's buffer
        return reader.read(deadline)

    def output_send(self) -> None:
        """Hand on_output what the child printed so far, if it printed more since the last time."""
        self.output_sent_at = time.monotonic()
        if self.on_output is not None and self.child.printed_size() != self.output_sent_size:
            output = self.output()
            self.output_sent_size = self.child.printed_size()
            self.on_output(output.text())

    def output(self) -> _Output:
        """What the child printed, read from the memory it shares with the worker, cleaned and capped."""
        output = _Output(self.limits.output_bytes)
        data, truncated = self.child.printed()
        output.add(data.decode("utf-8", "replace"))
        output.truncated |= truncated or self.truncated
        return output

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
            self.truncated = True
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
        output = self.output()
        return RunResult(
            status=status,
            result=result,
            error=error,
            output=output.text(),
            output_truncated=output.truncated,
            duration=time.monotonic() - self.started,
            layers=self.layers,
            calls=self.calls,
            summons=self.summons,
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
        return {
            "op": "execution",
            "target": _field(message, "target", str),
            "args": _field(message, "args", list),
            "kwargs": _field(message, "kwargs", dict),
        }
    if set(message) != {"op", "name", "source", "type", "attributes", "tags"}:
        raise ProtocolError("a summon request with unexpected fields")
    tags = _field(message, "tags", list)
    if not all(isinstance(tag, str) for tag in tags):
        raise ProtocolError("summon tags must be strings")
    for name in ("source", "type"):
        if message[name] is not None and not isinstance(message[name], str):
            raise ProtocolError(f"summon {name} must be a string or null")
    return {
        "op": "summon",
        "name": _field(message, "name", str),
        "source": message["source"],
        "type": message["type"],
        "attributes": _field(message, "attributes", dict),
        "tags": tags,
    }


def _reply_error(error_type: str, message: str) -> bytes:
    return frame_encode({"ok": False, "error": {"type": error_type, "message": message}})


def _error(error_type: str, message: str) -> dict[str, str]:
    return {"type": error_type, "message": message, "traceback": ""}


def result_cancelled(started: float) -> RunResult:
    """A run cancelled before its child held the job: nothing of the being ran."""
    cancelled = _error("Cancelled", "the run was cancelled before it started")
    return RunResult(status=RunStatus.CANCELLED, error=cancelled, duration=time.monotonic() - started)


def result_rejected(missing: list[str], started: float, layers: dict[str, bool]) -> RunResult:
    message = f"strict sandbox: refusing to run without these layers in force: {', '.join(missing)}"
    return RunResult(
        status=RunStatus.REJECTED,
        error=_error("SandboxRejected", message),
        duration=time.monotonic() - started,
        layers=layers,
    )


STATUS_SECONDS = 2.0


@dataclass
class Child:
    pid: int
    pidfd: int
    sock: socket.socket
    status_fd: int
    output: mmap.mmap  # what the child prints, mapped read-only (see protocol.OUTPUT_HEADER)

    def printed_size(self) -> int:
        return int(OUTPUT_HEADER.unpack_from(self.output)[0])

    def printed(self) -> tuple[bytes, bool]:
        """The bytes the child printed and whether it cut them; its header is not trusted beyond the mapping."""
        size, truncated = OUTPUT_HEADER.unpack_from(self.output)
        size = min(size, len(self.output) - OUTPUT_HEADER.size)
        return self.output[OUTPUT_HEADER.size : OUTPUT_HEADER.size + size], bool(truncated)

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
        self.output.close()
        os.close(self.pidfd)
        os.close(self.status_fd)
