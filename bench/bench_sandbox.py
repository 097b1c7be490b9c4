"""The sandbox's own cost per run: ``Sandbox.run`` of a trivial being on a warm zygote, against a bare fork."""

from __future__ import annotations

import os
import time

from django.conf import settings

from beings.runtime.jobs import RunStatus, SandboxLimits
from beings.runtime.sandbox import sandbox_default
from bench.runner import BUDGET, Result, latencies, median, p95

SANDBOX_RUNS = {"smoke": 100, "default": 500, "large": 1000}
SOURCE = "def run(value=1):\n    return value + 1\n"


def trivial_run(value: int = 1) -> int:
    """SOURCE's function written in the bench: the floor of calling it in this process, with no sandbox at all."""
    return value + 1


def sandbox_bench(runs: int) -> list[Result]:
    """``Sandbox.run`` of a trivial being on a warm zygote against a bare ``os.fork()`` + ``waitpid``."""
    sandbox = sandbox_default()
    sandbox.start()
    limits = SandboxLimits.from_settings(settings)
    job = {
        "source": SOURCE,
        "kind": "function",
        "entrypoint": "run",
        "self": {},
        "attributes": {},
        "args": [],
        "kwargs": {"value": 41},
    }

    def sandboxed() -> None:
        outcome = sandbox.run(job, limits)
        if outcome.status != RunStatus.SUCCEEDED or outcome.result != 42:
            raise RuntimeError(f"the sandbox failed a trivial run: {outcome.status} {outcome.error}")

    layers = sandbox.layers_report()
    in_force = ", ".join(name for name, layer in layers.items() if layer["in_force"]) or "none"
    missing = ", ".join(name for name, layer in layers.items() if not layer["in_force"])
    zygote = sandbox.zygote_pid
    if zygote is None:
        raise RuntimeError("the sandbox's zygote did not start")
    busy_before = sandbox_cpu_seconds(zygote)
    measured = latencies(sandboxed, runs=runs, warmup=10, budget=BUDGET)
    cpu_per_run = (sandbox_cpu_seconds(zygote) - busy_before) / (len(measured) + 10)
    forked = latencies(fork_bare, runs=runs, warmup=10, budget=BUDGET)
    in_process = latencies(lambda: trivial_run(value=41), runs=runs, warmup=10)
    notes = (
        f"{len(measured)} runs on a warm zygote; layers in force: {in_force}"
        + (f"; MISSING: {missing}" if missing else "")
        + f"; CPU per run (this process, the zygote and its children): {cpu_per_run * 1000:.2f} ms"
        + "; baseline os.fork()+waitpid of a child that exits; "
        + f"in-process call {median(in_process) * 1000:.2f} µs"
    )
    return [
        Result(
            "sandbox: run of a trivial being (median)",
            len(measured),
            median(measured),
            "ms",
            median(forked),
            target="≤ 3 ms",
            passed=median(measured) <= 3,
            notes=notes,
        ),
        Result("sandbox: run of a trivial being (p95)", len(measured), p95(measured), "ms", p95(forked), notes=notes),
    ]


def sandbox_cpu_seconds(zygote: int) -> float:
    """CPU time spent by this process, the zygote and the children it has reaped (user and system, from /proc):
    a run's whole cost, whatever else the machine is doing."""
    with open(f"/proc/{zygote}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK") + time.process_time()


def fork_bare() -> None:
    """The floor of any fork-per-run design: fork this (Django-loaded) process and reap a child that just exits."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
