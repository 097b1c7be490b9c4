"""The sandbox child's self-test: try, in plain Python, what the layers must refuse; prove each layer."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import sys
from typing import Any

from beings.runtime import layers

_EPERM = "refused: PermissionError errno 1"


_EACCES = "refused: PermissionError errno 13"


def _attempt(action: Any) -> str:
    try:
        action()
    except OSError as error:
        return f"refused: {type(error).__name__} errno {error.errno}"
    except RuntimeError as error:
        return f"refused: {error}"
    return "allowed"


def _fork_and_reap() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def _read(path: str) -> None:
    with open(path, "rb") as file:
        file.read(1)


def _write_probe() -> None:
    path = f"/tmp/luxos-sandbox-probe-{os.getpid()}"
    try:
        with open(path, "w") as file:
            file.write("x")
            file.flush()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _thread_start() -> None:
    import _thread

    _thread.start_new_thread(lambda: None, ())


def _nice(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


def facts_gather(read_paths: list[str]) -> dict[str, Any]:
    """What a confined child can and cannot do; the worker's tests and ``sandbox check`` read these."""
    return {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "groups": os.getgroups(),
        "django_imported": "django" in sys.modules,
        "modules": sorted(name for name in sys.modules if name.split(".")[0] in {"django", "luxsite"}),
        "environ": sorted(os.environ),
        "no_new_privs": layers.prctl(layers.PR_GET_NO_NEW_PRIVS),
        "seccomp_mode": layers.prctl(layers.PR_GET_SECCOMP),
        "socket_inet": _attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()),
        "socket_unix": _attempt(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()),
        "fork": _attempt(_fork_and_reap),
        "thread": _attempt(_thread_start),
        "exec": _attempt(lambda: os.execv("/nonexistent/luxos-probe", ["probe"])),
        "kill_self": _attempt(lambda: os.kill(os.getpid(), 0)),
        "kill_parent": _attempt(lambda: os.kill(os.getppid(), 0)),
        # The zygote, which has the worker's uid when the worker is not root: its limits, priority, CPUs.
        "prlimit_parent": _attempt(lambda: resource.prlimit(os.getppid(), resource.RLIMIT_NOFILE)),
        "setpriority_parent": _attempt(lambda: os.setpriority(os.PRIO_PROCESS, os.getppid(), _nice(os.getppid()))),
        "affinity_parent": _attempt(lambda: os.sched_setaffinity(os.getppid(), os.sched_getaffinity(os.getppid()))),
        "prlimit_self": _attempt(lambda: resource.prlimit(0, resource.RLIMIT_NOFILE)),
        "setpriority_self": _attempt(lambda: os.setpriority(os.PRIO_PROCESS, 0, _nice(0))),
        "write_tmp": _attempt(_write_probe),
        "read": {path: _attempt(lambda path=path: _read(path)) for path in ["/etc/passwd", *read_paths]},
        "rlimits": {
            name: list(resource.getrlimit(getattr(resource, name)))
            for name in ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE")
        },
    }


def layers_verify(applied: dict[str, layers.Layer], facts: dict[str, Any]) -> dict[str, dict[str, bool | str]]:
    """Each applied layer, in force only if the self-test shows it working."""
    # EPERM is the filter's answer; another errno (ENOENT for exec, say) means the call got through it.
    eperm = all(
        facts[name] == _EPERM
        for name in ("socket_inet", "fork", "exec", "kill_self", "prlimit_parent", "setpriority_parent")
    )
    proofs = {
        "rlimits": facts["rlimits"]["RLIMIT_NPROC"] == [0, 0] and facts["rlimits"]["RLIMIT_FSIZE"] == [0, 0],
        "network": True,
        "user": facts["uid"] == layers.NOBODY and not facts["groups"],
        # /etc/passwd is readable by nobody: only Landlock refuses it.
        "landlock": facts["read"]["/etc/passwd"] == _EACCES and facts["write_tmp"] != "allowed",
        "seccomp": facts["seccomp_mode"] == layers.SECCOMP_MODE_FILTER and eperm,
    }
    report = {}
    for name, layer in applied.items():
        proven = proofs.get(name, True)
        detail = layer.detail if proven or not layer.in_force else f"{layer.detail}; but the self-test got through"
        report[name] = {"in_force": layer.in_force and proven, "detail": detail}
    return report
