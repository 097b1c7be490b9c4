"""The runtime: the sandbox's own cost per run, and executions through the service against raw Celery no-op tasks.

Both sides of each comparison use one Celery worker that this module starts (prefork, LUXOS_CPU_WORKERS
processes, the cpu and io queues, ``bench.tasks`` included) on the bench database and the bench's own Redis
database, and both are measured in the same run, alternating, after a warm-up that boots every pool process's
sandbox zygote.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth.models import User

from beings import genotype
from beings.executions.queue import execution_wait
from beings.executions.selectors import Target, target_resolve
from beings.executions.services import execution_start
from beings.models import Execution
from beings.runtime.jobs import RunStatus, SandboxLimits
from beings.runtime.sandbox import sandbox_default
from beings.services import being_create
from bench.runner import Result, latencies, median, p95, timed
from bench.tasks import noop_task
from luxsite.celery import app
from luxsite.workers import process_group_start, process_stop, worker_wait

REPEAT = int(os.environ.get("BENCH_REPEAT", "2"))
# Runs per latency series and executions per throughput burst, by BENCH_SCALE.
SANDBOX_RUNS = {"smoke": 100, "default": 500, "large": 1000}
ROUND_TRIPS = {"smoke": 30, "default": 200, "large": 300}
BURST = {"smoke": 50, "default": 200, "large": 500}
BUDGET = 60.0  # seconds per latency series: fewer runs (at least 20) when a call is slow
WORKER_START_SECONDS = 60.0
WORKER_STOP_SECONDS = 10.0
FINISH_SECONDS = 120.0  # a burst that takes longer than this is a broken worker, not a slow one
SOURCE = "def run(value=1):\n    return value + 1\n"


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
    busy_before = cpu_busy_seconds()
    measured = latencies(sandboxed, runs=runs, warmup=10, budget=BUDGET)
    cpu_per_run = (cpu_busy_seconds() - busy_before) / (len(measured) + 10)
    forked = latencies(fork_bare, runs=runs, warmup=10, budget=BUDGET)
    namespace: dict[str, Any] = {}
    # Our own constant source: the floor of calling the being's function with no sandbox at all.
    exec(compile(SOURCE, "<bench>", "exec"), namespace)
    in_process = latencies(lambda: namespace["run"](value=41), runs=runs, warmup=10)
    notes = (
        f"{len(measured)} runs on a warm zygote; layers in force: {in_force}"
        + (f"; MISSING: {missing}" if missing else "")
        + f"; CPU per run, all processes: {cpu_per_run * 1000:.2f} ms"
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
            target="≤ 10 ms",
            passed=median(measured) <= 10,
            notes=notes,
        ),
        Result("sandbox: run of a trivial being (p95)", len(measured), p95(measured), "ms", p95(forked), notes=notes),
    ]


def cpu_busy_seconds() -> float:
    """CPU time the whole machine has spent busy (not idle, not waiting on I/O), from /proc/stat."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def fork_bare() -> None:
    """The floor of any fork-per-run design: fork this (Django-loaded) process and reap a child that just exits."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


@contextlib.contextmanager
def worker_running(*, concurrency: int, log: Path) -> Iterator[str]:
    """A Celery worker on the bench database and Redis database, consuming cpu and io, until the block ends."""
    name = f"bench-{os.getpid()}@{socket.gethostname()}"
    options = (
        f"-Q cpu,io --pool prefork --concurrency {concurrency} --prefetch-multiplier 1 -I bench.tasks"
        " --without-heartbeat --without-mingle --without-gossip -l WARNING"
    )
    command = [sys.executable, "-m", "celery", "-A", "luxsite", "worker", "-n", name, *options.split()]
    with log.open("wb") as output:
        process = process_group_start(command, output=output)
    try:
        worker_wait(app, name=name, process=process, timeout=WORKER_START_SECONDS, log=log)
        yield name
    finally:
        process_stop(process, timeout=WORKER_STOP_SECONDS)


class RuntimeBench:
    """The actor, the trivial beings and the queue both sides use; one round trip or burst of either side."""

    def __init__(self) -> None:
        self.actor, _ = User.objects.get_or_create(username="bench-runtime", defaults={"is_superuser": True})
        self.queue = genotype.CPU
        # (execution id, wall-clock seconds before execution_start, after execution_wait) of each round trip.
        self.trips: list[tuple[uuid.UUID, float, float]] = []

    def being_new(self, name: str) -> Target:
        """A trivial being of its own (so its memories start empty), ready to run."""
        being = being_create(data={"genesis": {"name": name, "type": "function", "source": SOURCE}}, actor=self.actor)
        self.queue = str(being.genesis.get("workload") or genotype.CPU)
        return target_resolve(ref=str(being.soul), user=self.actor)

    def raw_round_trip(self) -> None:
        noop_task.apply_async(queue=self.queue).get(timeout=FINISH_SECONDS)

    def raw_burst(self, count: int) -> None:
        results = [noop_task.apply_async(queue=self.queue) for _ in range(count)]
        for result in results:
            result.get(timeout=FINISH_SECONDS)

    def service_start(self, target: Target) -> Execution:
        return execution_start(target=target, kwargs={"value": 41}, actor=self.actor)

    def service_round_trip(self, target: Target) -> None:
        began = time.time()
        execution = self.service_start(target)
        executions_wait([execution])
        self.trips.append((execution.pk, began, time.time()))

    def service_burst(self, target: Target, count: int) -> None:
        executions_wait([self.service_start(target) for _ in range(count)])


def executions_wait(started: list[Execution]) -> None:
    """Wait as the API's ``wait`` does (``execution_wait``) for each run; raise unless each returned 42."""
    deadline = time.monotonic() + FINISH_SECONDS
    for execution in started:
        done = execution_wait(execution=execution, timeout=max(0.0, deadline - time.monotonic()))
        if done.status != Execution.Status.SUCCEEDED or done.result != 42:
            raise RuntimeError(
                f"execution {done.pk} of the trivial being ended {done.status}: {done.result!r} {done.error!r}"
            )


def celery_bench(*, round_trips: int, burst: int, concurrency: int) -> list[Result]:
    """Round trip and throughput of the trivial being through the service against raw no-op tasks."""
    with redis.Redis.from_url(settings.CELERY_BROKER_URL) as client:
        client.flushdb()
    with tempfile.TemporaryDirectory(prefix="luxos-bench-worker-") as directory:
        log = Path(directory) / "worker.log"
        try:
            with worker_running(concurrency=concurrency, log=log):
                return _celery_measure(RuntimeBench(), round_trips=round_trips, burst=burst, concurrency=concurrency)
        except Exception:
            print(f"bench worker log:\n{log.read_text()[-20000:]}", file=sys.stderr, flush=True)
            raise


def _celery_measure(bench: RuntimeBench, *, round_trips: int, burst: int, concurrency: int) -> list[Result]:
    """Fresh beings first (few memories), then a being whose memories hold LUXOS_MEMORY_LIMIT events: every
    run rewrites them, so a being that has run that often is the steady state."""
    fresh = bench.being_new("bench_trivial")
    # Every pool process boots its zygote on its first run: a burst reaches them all before anything is timed.
    bench.service_burst(fresh, 4 * concurrency)
    bench.raw_burst(4 * concurrency)
    setup = f"{concurrency} prefork processes, queue {bench.queue}, same worker and Redis"
    results = _round_trips(bench, fresh, runs=round_trips, what="fresh being", setup=setup)
    seconds: dict[str, list[float]] = {"service": [], "raw": []}
    for repetition in range(REPEAT):
        target = bench.being_new(f"bench_trivial_burst_{repetition}")
        ways: tuple[tuple[str, Callable[[], None]], ...] = (
            ("service", partial(bench.service_burst, target, burst)),
            ("raw", partial(bench.raw_burst, burst)),
        )
        for way, work in ways if repetition % 2 == 0 else ways[::-1]:
            seconds[way].append(timed(work))
    results.append(_throughput(burst, seconds, what="fresh beings", setup=setup))

    limit = int(settings.LUXOS_MEMORY_LIMIT)
    full = bench.being_new("bench_trivial_remembering")
    filling = timed(partial(bench.service_burst, full, limit))
    setup += f"; {limit} runs to fill its memories took {filling:.1f} s"
    results += _round_trips(bench, full, runs=round_trips, what=f"being with {limit} memories", setup=setup)
    service_seconds = timed(partial(bench.service_burst, full, burst))
    seconds = {"service": [service_seconds], "raw": [timed(partial(bench.raw_burst, burst))]}
    results.append(_throughput(burst, seconds, what=f"being with {limit} memories", setup=setup))
    return results


def _round_trips(bench: RuntimeBench, target: Target, *, runs: int, what: str, setup: str) -> list[Result]:
    bench.trips.clear()
    service_ms = latencies(partial(bench.service_round_trip, target), runs=runs, budget=BUDGET)
    raw_ms = latencies(bench.raw_round_trip, runs=runs, budget=BUDGET)
    notes = f"{len(service_ms)} round trips, baseline {len(raw_ms)}; {setup}; {_phases(bench.trips)}"
    name = f"runtime: execution round trip vs raw no-op, {what}"
    ratio = median(service_ms) / median(raw_ms)
    return [
        Result(
            f"{name} (median)",
            len(service_ms),
            median(service_ms),
            "ms",
            median(raw_ms),
            target="≤ 250%",
            passed=ratio <= 2.5,
            notes=notes,
        ),
        Result(f"{name} (p95)", len(service_ms), p95(service_ms), "ms", p95(raw_ms), notes=notes),
    ]


def _phases(trips: list[tuple[uuid.UUID, float, float]]) -> str:
    """Where a round trip's time goes (medians), from the client's clock and the execution's own timestamps."""
    rows = Execution.objects.in_bulk([execution_id for execution_id, _began, _ended in trips])
    phases: dict[str, list[float]] = {
        "start to running": [],
        "running to finished": [],
        "of which sandbox": [],
        "finished to the wait's return": [],
    }
    for execution_id, began, ended in trips:
        execution = rows[execution_id]
        if execution.started_at is None or execution.finished_at is None or execution.duration_ms is None:
            continue
        started, finished = execution.started_at.timestamp(), execution.finished_at.timestamp()
        phases["start to running"].append((started - began) * 1000)
        phases["running to finished"].append((finished - started) * 1000)
        phases["of which sandbox"].append(execution.duration_ms)
        phases["finished to the wait's return"].append((ended - finished) * 1000)
    if not phases["of which sandbox"]:
        return "no phases recorded"
    return "phases, median ms: " + ", ".join(f"{name} {median(values):.1f}" for name, values in phases.items())


def _throughput(burst: int, seconds: dict[str, list[float]], *, what: str, setup: str) -> Result:
    service_rate, raw_rate = burst / min(seconds["service"]), burst / min(seconds["raw"])
    return Result(
        f"runtime: execution throughput vs raw no-op, {what}",
        burst,
        service_rate,
        "runs/s",
        raw_rate,
        target="≥ 50%",
        passed=service_rate / raw_rate >= 0.5,
        notes=f"best of {len(seconds['service'])} bursts of {burst} started at once; seconds service "
        f"{_seconds(seconds['service'])}, raw {_seconds(seconds['raw'])}; {setup}",
    )


def _seconds(values: list[float]) -> str:
    return "/".join(f"{value:.2f}" for value in values)


def run(scale_name: str) -> list[Result]:
    """Every runtime benchmark, with series and bursts sized by BENCH_SCALE."""
    concurrency = int(settings.LUXOS_CPU_WORKERS)
    results = sandbox_bench(SANDBOX_RUNS[scale_name])
    return results + celery_bench(round_trips=ROUND_TRIPS[scale_name], burst=BURST[scale_name], concurrency=concurrency)
