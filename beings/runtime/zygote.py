"""The zygote: a fresh interpreter without Django or secrets that forks one sandbox child per run.

``Sandbox`` starts it with ``python -I`` in a minimal environment and talks to it over a
SOCK_SEQPACKET socket: each request is one JSON message, with file descriptors attached.

- ``{"op": "fork", "mode": "run"|"check", "limits": {...}, "strict": bool}`` with the write end of
  a status pipe attached: the zygote answers ``{"pid": n}`` with a pidfd of a confined child and the
  worker's end of the child's channel attached, and when the child exits writes its wait status
  (4 bytes) to the status pipe, which only the zygote holds.
- ``{"op": "layers"}``: what the zygote prepared (``{"layers": {name: {"in_force", "detail"}}}``).

At start the zygote leaves the network (its children inherit the empty namespace), has the seccomp
filter compiled (in a child of its own: see ``forked_call``), creates the Landlock ruleset, builds
what every run's globals share (see ``restricted.globals_build``), warms up by running a trivial
being, and freezes the heap. Forks stay cheap as long as the zygote stays small and touches little
memory between them: each page either process then writes is copied, and this is most of a run's
CPU. It exits when the worker closes the socket, killing its children.

When a run's child has ended, it forks a spare for the next run: a child for the same request that
confines itself and waits for its job while the worker records the last one, so that a run does
not wait for a fork and the layers, and the spare's fork does not take a CPU from a running child.
The request's bytes, as the worker encoded them (once per limits), tell whether a spare fits. A
spare has seen nothing but the zygote (jobs go from the worker to a child directly); one forked for
other limits, or found dead, is discarded.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import gc
import json
import mmap
import os
import re
import select
import signal
import socket
import statistics
import struct
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, NoReturn

from beings.runtime import layers, restricted
from beings.runtime.channel import ChildChannel
from beings.runtime.protocol import OUTPUT_HEADER, ChannelClosed, fd_read_frame, fd_write, frame_encode, json_dumps
from beings.runtime.selftest import facts_gather, layers_verify

STATUS = struct.Struct("!i")
MESSAGE_BYTES = 1 << 16
RESERVE_BYTES = 1 << 20
WARMUP = """
import json, math
from collections import Counter

snapshot = self

class Greeter:
    def __init__(self, attributes):
        self.name = attributes.get("name", "world")

    def run(self, n=1):
        print("hello", self.name)
        return json.loads(json.dumps({"n": math.sqrt(n), "count": Counter("ab")["a"], "self": snapshot}))
"""


class Forked(NamedTuple):
    """A confined child as the zygote holds it: ``channel`` is the worker's end of its socket."""

    pid: int
    pidfd: int
    channel: int
    output: int  # the memfd the child prints into, which the worker maps
    request: bytes  # the fork request it was made for, as the worker encoded it


class Zygote:
    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.network = layers.network_leave()
        self.landlock = layers.landlock_prepare()
        self.seccomp = layers.seccomp_prepare(forked_call(layers.seccomp_compile))
        self.devnull = os.open(os.devnull, os.O_RDWR)
        # pidfd -> (pid, status write end); a spare has no status pipe until it is handed out.
        self.children: dict[int, tuple[int, int | None]] = {}
        self.spare: Forked | None = None
        # The last run's fork request (decoded, and as the worker encoded it): a spare is forked for it when a run ends.
        self.spare_for: tuple[dict[str, Any], bytes] | None = None
        self.poller = select.epoll()

    def report(self) -> dict[str, dict[str, bool | str]]:
        """What this host offers a child, before any child proves it (see the check mode)."""
        landlock = (
            self.landlock
            if isinstance(self.landlock, layers.Layer)
            else layers.Layer("landlock", True, f"ABI {self.landlock.abi}: ruleset ready")
        )
        seccomp = (
            self.seccomp
            if isinstance(self.seccomp, layers.Layer)
            else layers.Layer("seccomp", True, f"filter of {self.seccomp.refused} refused syscalls ready")
        )
        root = os.geteuid() == 0
        user = layers.Layer(
            "user",
            root,
            "root: children drop to nobody" if root else f"not root, so children keep the worker's uid {os.geteuid()}",
        )
        found = [layers.Layer("rlimits", True, "set in each child"), self.network, user, landlock, seccomp]
        return {layer.name: layer.as_dict() for layer in found}

    def serve(self) -> None:
        # A SIGINT ends the zygote as it ends its children (they die with it): the default disposition, which
        # its children inherit rather than each paying a tenth of a millisecond for signal() after its fork.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        warm_up()
        self.poller.register(self.control, select.EPOLLIN)
        self.control.sendall(json_dumps({"op": "hello", "pid": os.getpid(), "layers": self.report()}).encode())
        gc.collect()
        gc.freeze()
        try:
            while True:
                for fd, _events in self.poller.poll():
                    if fd == self.control.fileno():
                        if not self.answer():
                            return
                    else:
                        self.reap(fd)
        finally:
            for pidfd in self.children:
                with contextlib.suppress(OSError):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)

    def answer(self) -> bool:
        """Serve one request; False when the worker has gone."""
        data, fds, _flags, _address = socket.recv_fds(self.control, MESSAGE_BYTES, 4)
        if not data:
            for fd in fds:
                os.close(fd)
            return False
        if len(fds) == 1 and self.spare_for is not None and data == self.spare_for[1]:
            self.fork(self.spare_for[0], data, status=fds[0])  # the last run's request again: known without decoding
            return True
        request = json.loads(data)
        if request.get("op") == "fork" and len(fds) == 1:
            self.fork(request, data, status=fds[0])
        elif request.get("op") == "layers":
            self.reply({"layers": self.report()})
        else:
            for fd in fds:
                os.close(fd)
            self.reply({"error": f"unknown request {request.get('op')!r}"})
        return True

    def reply(self, message: Mapping[str, Any], fds: list[int] | None = None) -> None:
        socket.send_fds(self.control, [json_dumps(message).encode()], fds or [])

    def fork(self, request: dict[str, Any], key: bytes, *, status: int) -> None:
        """Hand the worker a child for ``request`` (the spare, if made for the same ``key``, the request's bytes)."""
        run = request.get("mode") == "run"
        try:
            child = (self.spare_take(key) if run else None) or self.child_fork(request, key)
        except OSError as error:
            os.close(status)
            self.reply({"error": f"fork failed: {error.strerror}"})
            return
        self.children[child.pidfd] = (child.pid, status)
        try:
            socket.send_fds(self.control, [b'{"pid":%d}' % child.pid], [child.pidfd, child.channel, child.output])
        finally:
            os.close(child.channel)
            os.close(child.output)
        if run:
            self.spare_for = (request, key)

    def child_fork(self, request: dict[str, Any], key: bytes) -> Forked:
        output = output_memory(int(request["limits"]["output_bytes"]))
        worker_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            pid = os.fork()
        except OSError:
            worker_end.close()
            child_end.close()
            os.close(output)
            raise
        if pid == 0:
            child_main(self, request, child_end.fileno(), output)
        child_end.close()
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # the child does it too: whoever is first wins the race
        pidfd = os.pidfd_open(pid)
        self.children[pidfd] = (pid, None)
        self.poller.register(pidfd, select.EPOLLIN)
        return Forked(pid=pid, pidfd=pidfd, channel=worker_end.detach(), output=output, request=key)

    def spare_take(self, key: bytes) -> Forked | None:
        """The spare, if it was made for this very request and still lives; otherwise it is discarded."""
        spare, self.spare = self.spare, None
        if spare is None:
            return None
        if spare.request == key and _alive(spare.pidfd):
            return spare
        with contextlib.suppress(OSError):  # reaped, as any child, when its pidfd turns readable
            signal.pidfd_send_signal(spare.pidfd, signal.SIGKILL)
        os.close(spare.channel)
        os.close(spare.output)
        return None

    def reap(self, pidfd: int) -> None:
        pid, status_fd = self.children.pop(pidfd)
        self.poller.unregister(pidfd)
        if self.spare is not None and self.spare.pidfd == pidfd:  # died while it waited for a job
            os.close(self.spare.channel)
            os.close(self.spare.output)
            self.spare = None
        os.close(pidfd)
        _pid, status = os.waitpid(pid, 0)
        if status_fd is None:
            return
        with contextlib.suppress(OSError):  # the worker may have stopped listening
            os.write(status_fd, STATUS.pack(status))
        os.close(status_fd)
        if self.spare is None and self.spare_for is not None:
            with contextlib.suppress(OSError):  # no spare: the next run forks its own child
                self.spare = self.child_fork(*self.spare_for)


def forked_call(function: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """What ``function`` returns (JSON), called in a child that exits then: what it imports stays out of the
    zygote, whose every module is more to copy at each fork, and some (threading) have hooks that run in
    every child after its fork."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(read)
            fd_write(write, json_dumps(function()).encode())
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    os.close(write)
    with open(read, "rb") as answer:
        data = answer.read()
    _pid, status = os.waitpid(pid, 0)
    if not data or status != 0:
        return {"error": f"{function.__name__} failed in its process (wait status {status})"}
    result: dict[str, Any] = json.loads(data)
    return result


def output_memory(size: int) -> int:
    """A memfd of the output header and ``size`` bytes, sealed at that size: the child cannot shrink what the
    worker maps (a read past the end would kill the worker with SIGBUS)."""
    fd = os.memfd_create("luxos-output", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, OUTPUT_HEADER.size + size)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    except OSError:
        os.close(fd)
        raise
    return fd


def _alive(pidfd: int) -> bool:
    """A pidfd turns readable when its process exits."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return not poller.poll(0)


def warm_up() -> None:
    """Run once what children would otherwise each do for the first time (lazy imports, caches)."""
    capabilities = restricted.Capabilities(execution=_refuse, summon=_refuse)
    sink = restricted.OutputSink(bytearray(OUTPUT_HEADER.size + 1024))
    job = {"source": WARMUP, "kind": "class", "self": {"soul": "warm"}, "attributes": {"name": "zygote"}}
    restricted.result_encode(restricted.being_run(job, capabilities=capabilities, sink=sink), limit=1 << 20)
    with contextlib.suppress(SyntaxError):
        restricted.being_compile("import os\nos.__dict__\n")
    datetime.datetime.strptime("2024-02-03", "%Y-%m-%d")
    datetime.datetime.now().astimezone()
    time.localtime()
    re.compile(r"\w+").findall("warm up")
    statistics.stdev([1.0, 2.0, 4.0])


def _refuse(*args: Any, **kwargs: Any) -> NoReturn:
    raise restricted.BeingCallError("Unavailable", "not while warming up")


def child_main(zygote: Zygote, request: dict[str, Any], channel: int, output: int) -> NoReturn:
    """The forked child: confine itself, then run the job or the self-test. Never returns."""
    code = 0
    try:
        printed = mmap.mmap(output, 0)
        os.close(output)
        confined = child_confine(zygote, request["limits"], channel)
        if request.get("mode") == "check":
            child_check(channel, confined, request.get("read_paths") or [])
        else:
            child_run(channel, confined, request, printed)
    except BaseException:  # nothing may return into the zygote's loop
        code = 70
    finally:
        os._exit(code)


def child_confine(zygote: Zygote, limits: dict[str, Any], channel: int) -> list[layers.Layer]:
    """Put on every layer, in the order that lets each be set: the seccomp filter last."""
    os.setpgid(0, 0)
    for fd in (0, 1, 2):
        os.dup2(zygote.devnull, fd)
    ruleset = zygote.landlock.fd if isinstance(zygote.landlock, layers.LandlockRuleset) else -1
    _close_all_but({channel, ruleset})
    confined = [layers.rlimits_apply(cpu_seconds=int(limits["cpu_seconds"]), memory_bytes=int(limits["memory_bytes"]))]
    confined.append(zygote.network)
    confined.append(layers.user_drop())
    # Set after the uid change, which clears it; the child dies with the zygote.
    layers.prctl(layers.PR_SET_PDEATHSIG, signal.SIGKILL)
    layers.prctl(layers.PR_SET_DUMPABLE, 0)
    no_new_privs = layers.no_new_privs()
    if no_new_privs:
        confined.append(layers.landlock_apply(zygote.landlock))
    else:
        confined.append(layers.Layer("landlock", False, "PR_SET_NO_NEW_PRIVS failed"))
    if ruleset >= 0:
        os.close(ruleset)
    if no_new_privs:
        confined.append(layers.seccomp_apply(zygote.seccomp))
    else:
        confined.append(layers.Layer("seccomp", False, "PR_SET_NO_NEW_PRIVS failed"))
    return confined


def _close_all_but(keep: set[int]) -> None:
    low = 3
    for fd in sorted(fd for fd in keep if fd >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def child_run(fd: int, confined: list[layers.Layer], request: dict[str, Any], printed: mmap.mmap) -> None:
    limits = request["limits"]
    channel = ChildChannel(fd, request_bytes=int(limits["result_bytes"]))
    in_force = {layer.name: layer.in_force for layer in confined}
    channel.send({"op": "ready", "layers": in_force})
    if request.get("strict") and not all(in_force.values()):
        return  # the worker refuses to send the job; this is belt and braces
    # Address space held back (RLIMIT_AS counts it, untouched it costs nothing) to report a MemoryError.
    reserve: mmap.mmap | None = mmap.mmap(-1, RESERVE_BYTES)
    try:
        job = fd_read_frame(fd)
    except MemoryError:  # the job alone does not fit in the child's address space
        del reserve
        channel.send({"op": "refused", "reason": "memory"})
        return
    channel.send({"op": "started"})
    sink = restricted.OutputSink(printed)
    try:
        value = restricted.being_run(job, capabilities=channel.capabilities(), sink=sink)
        result = restricted.result_encode(value, limit=int(limits["result_bytes"]))
        del value
        done = f'{{"op":"done","ok":true,"truncated":{json.dumps(sink.truncated)},"result":{result}}}'.encode()
    except ChannelClosed:
        raise
    except BaseException as error:  # whatever being code raises is its outcome
        if reserve is not None:
            reserve.close()
        reserve = None
        described = restricted.error_describe(error, job.get("source", ""))
        del error
        done = frame_encode({"op": "done", "ok": False, "truncated": sink.truncated, "error": described})[4:]
    if reserve is not None:
        reserve.close()
    fd_write(fd, struct.pack("!I", len(done)) + done)


def child_check(fd: int, confined: list[layers.Layer], read_paths: list[str]) -> None:
    """The self-test: try, in plain Python, what the layers must refuse, and report what happened."""
    facts = facts_gather(read_paths)
    verified = layers_verify({layer.name: layer for layer in confined}, facts)
    ChildChannel(fd, request_bytes=0).send({"op": "check", "layers": verified, "facts": facts})


def main(control_fd: int) -> None:
    Zygote(socket.socket(fileno=control_fd)).serve()
