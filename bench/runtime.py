"""The runtime: executions against raw Celery no-op tasks on both queues (the sandbox's own cost: ``bench_sandbox``).

The workers are those ``make run`` starts (``cpu``: prefork, LUXOS_CPU_WORKERS processes; ``io``: threads,
LUXOS_IO_WORKERS), ``bench.tasks`` included, and the web tier is gunicorn as ``serve`` runs it, all on the
bench database and the bench's own Redis database. Runs and no-ops of one figure are measured in the same
run, taking turns (``interleaved``), after a warm-up that boots every pool process's sandbox zygote.
A round trip is measured through the service (``execution_call``, as the API's ``wait`` runs it) and through
HTTP (``POST /api/beings/{soul}/execute`` with ``wait`` and a token); a burst starts its runs with
``execution_start`` and then waits for each with ``execution_wait``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import redis
from django.conf import settings
from django.contrib.auth.models import User

from beings import genotype
from beings.executions.queue import execution_wait
from beings.executions.selectors import Target, target_resolve
from beings.executions.services import execution_call, execution_start
from beings.models import BaseBeing, Execution
from beings.services import being_create
from bench.bench_sandbox import SANDBOX_RUNS, SOURCE, sandbox_bench
from bench.runner import BUDGET, Result, median, p95, timed
from bench.tasks import noop_task
from luxsite.celery import app
from luxsite.tokens import token_create
from luxsite.workers import process_group_start, process_stop, worker_wait

REPEAT = int(os.environ.get("BENCH_REPEAT", "2"))
# Runs per latency series and executions per throughput burst, by BENCH_SCALE.
ROUND_TRIPS = {"smoke": 30, "default": 200, "large": 300}
BURST = {"smoke": 50, "default": 200, "large": 500}
BURST_BEINGS = 20  # a burst "over many beings" spreads over this many
WORKER_START_SECONDS = 60.0
WORKER_STOP_SECONDS = 10.0
BLOCK = 10  # round trips of one way in a row, when ways take turns
FINISH_SECONDS = 120.0  # a burst that takes longer than this is a broken worker, not a slow one


@contextlib.contextmanager
def workers_running(*, concurrency: int, directory: Path) -> Iterator[Path]:
    """The cpu (prefork) and io (threads) workers and gunicorn, on the bench database and Redis; yields the logs."""
    tag = f"bench-{os.getpid()}"
    celery = [sys.executable, "-m", "celery", "-A", "luxsite", "worker", "-I", "bench.tasks", "-l", "WARNING"]
    quiet = ["--without-heartbeat", "--without-mingle", "--without-gossip"]
    cpu = [*celery, "-n", f"{tag}-cpu@%h", "-Q", "cpu", "--pool", "prefork", "--concurrency", str(concurrency)]
    io = [
        *celery,
        "-n",
        f"{tag}-io@%h",
        "-Q",
        "io",
        "--pool",
        "threads",
        "--concurrency",
        str(settings.LUXOS_IO_WORKERS),
    ]
    port = _free_port()
    web = [sys.executable, "-m", "gunicorn", "luxsite.wsgi", "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread"]
    web += ["--workers", str(settings.LUXOS_WEB_WORKERS), "--threads", str(settings.LUXOS_WEB_THREADS)]
    web += ["--no-control-socket"]
    processes = []
    try:
        for name, command in (
            ("cpu", [*cpu, "--prefetch-multiplier", "1", *quiet]),
            ("io", [*io, *quiet]),
            ("web", web),
        ):
            with (directory / f"{name}.log").open("wb") as output:
                processes.append(process_group_start(command, output=output))
        host = socket.gethostname()
        for name, process in zip(("cpu", "io"), processes, strict=False):
            worker_wait(
                app,
                name=f"{tag}-{name}@{host}",
                process=process,
                timeout=WORKER_START_SECONDS,
                log=directory / f"{name}.log",
            )
        _web_wait(port)
        os.environ["LUXOS_BENCH_WEB_PORT"] = str(port)
        yield directory
    finally:
        for process in processes:
            process_stop(process, timeout=WORKER_STOP_SECONDS)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _web_wait(port: int) -> None:
    deadline = time.monotonic() + WORKER_START_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/api/health")
            connection.getresponse().read()
            return
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer")


class RuntimeBench:
    """The actor, its token, the trivial beings; one round trip or burst of runs or of no-ops on a queue."""

    def __init__(self) -> None:
        self.actor, _ = User.objects.get_or_create(username="bench-runtime", defaults={"is_superuser": True})
        _token, secret = token_create(user=self.actor, name="bench")
        self.headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        self.web = http.client.HTTPConnection("127.0.0.1", int(os.environ["LUXOS_BENCH_WEB_PORT"]), timeout=60)
        # (execution id, wall-clock seconds before execution_start, after execution_wait) of each round trip.
        self.trips: list[tuple[uuid.UUID, float, float]] = []

    def being_new(self, name: str, queue: str) -> Target:
        """A trivial being of its own (so its memories start empty) on ``queue``, ready to run."""
        genesis = {"name": name, "type": "function", "source": SOURCE, "workload": queue}
        being = being_create(data={"genesis": genesis}, actor=self.actor)
        return target_resolve(ref=str(being.soul), user=self.actor)

    def raw_round_trip(self, queue: str) -> None:
        noop_task.apply_async(queue=queue).get(timeout=FINISH_SECONDS)

    def raw_burst(self, queue: str, count: int) -> None:
        results = [noop_task.apply_async(queue=queue) for _ in range(count)]
        for result in results:
            result.get(timeout=FINISH_SECONDS)

    def service_start(self, target: Target) -> Execution:
        return execution_start(target=target, kwargs={"value": 41}, actor=self.actor)

    def service_round_trip(self, target: Target) -> None:
        """One run started and waited for as the API's ``wait`` does (``execution_call``)."""
        began = time.time()
        done = execution_call(target=target, kwargs={"value": 41}, actor=self.actor, wait=FINISH_SECONDS)
        self.trips.append((done.pk, began, time.time()))
        answered_42(done)

    def http_round_trip(self, target: Target) -> None:
        body = json.dumps({"kwargs": {"value": 41}, "wait": 30})
        path = f"/api/beings/{target.being.pk}/execute"
        try:
            self.web.request("POST", path, body=body, headers=self.headers)
            response = self.web.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.web.close()  # the server closed the kept-alive connection between two requests: a new one
            self.web.request("POST", path, body=body, headers=self.headers)
            response = self.web.getresponse()
        answer = json.loads(response.read())
        if response.getheader("Connection", "").lower() == "close":
            self.web.close()
        if response.status != 200 or answer.get("result") != 42:
            raise RuntimeError(f"POST execute answered {response.status}: {answer}")

    def service_burst(self, targets: list[Target], count: int) -> None:
        executions_wait([self.service_start(targets[n % len(targets)]) for n in range(count)])


def executions_wait(started: list[Execution]) -> None:
    """Wait as the API's ``wait`` does (``execution_wait``) for each run; raise unless each returned 42."""
    deadline = time.monotonic() + FINISH_SECONDS
    for execution in started:
        answered_42(execution_wait(execution=execution, timeout=max(0.0, deadline - time.monotonic())))


def answered_42(done: Execution) -> None:
    if done.status != Execution.Status.SUCCEEDED or done.result != 42:
        raise RuntimeError(
            f"execution {done.pk} of the trivial being ended {done.status}: {done.result!r} {done.error!r}"
        )


def interleaved(ways: tuple[Callable[[], None], ...], *, runs: int, budget: float) -> list[list[float]]:
    """Milliseconds of ``runs`` calls of each way, in blocks of ``BLOCK`` calls of one way after the other; fewer
    (at least 20) after ``budget`` seconds.

    Within a block a way runs back to back, as a series of its own would, and the blocks take turns, so
    that every way sees the same machine over the whole measure. The first call of a block is not
    counted: it would pay for what the other way's last call left behind (a run's spare fork, its fold).
    """
    measured: list[list[float]] = [[] for _ in ways]
    deadline = time.monotonic() + budget
    while len(measured[0]) < runs and (len(measured[0]) < 20 or time.monotonic() < deadline):
        for way, into in zip(ways, measured, strict=True):
            way()
            into.extend(timed(way) * 1000 for _ in range(BLOCK))
    return measured


def memories_fill(target: Target) -> None:
    """The being at its memory bound: LUXOS_MEMORY_LIMIT run events and the counts of as many runs."""
    limit = int(settings.LUXOS_MEMORY_LIMIT)
    event = {"event": "run", "at": "2026-01-01T00:00:00+00:00", "status": "succeeded", "version": 1, "duration_ms": 2.0}
    events = [{**event, "execution": str(uuid.uuid4())} for _ in range(limit)]
    awareness = {"runs": limit, "successes": limit, "failures": 0, "success_rate": 1.0, "mean_duration_ms": 2.0}
    BaseBeing.objects.filter(pk=target.being.pk).update(memories=events, self_awareness=awareness, energy_level=100)


def celery_bench(*, round_trips: int, burst: int, concurrency: int) -> list[Result]:
    """Round trips (service, HTTP) and throughput of the trivial being against raw no-op tasks, on each queue."""
    with redis.Redis.from_url(settings.CELERY_BROKER_URL) as client:
        client.flushdb()
    with tempfile.TemporaryDirectory(prefix="luxos-bench-worker-") as directory:
        logs = Path(directory)
        try:
            with workers_running(concurrency=concurrency, directory=logs):
                bench = RuntimeBench()
                results: list[Result] = []
                for queue in (genotype.CPU, genotype.IO):
                    results += _queue_measure(
                        bench, queue, round_trips=round_trips, burst=burst, concurrency=concurrency
                    )
                return results
        except Exception:
            for log in sorted(logs.glob("*.log")):
                print(f"bench {log.name}:\n{log.read_text()[-10000:]}", file=sys.stderr, flush=True)
            raise


def _queue_measure(bench: RuntimeBench, queue: str, *, round_trips: int, burst: int, concurrency: int) -> list[Result]:
    fresh = bench.being_new(f"bench_{queue}_fresh", queue)
    full = bench.being_new(f"bench_{queue}_remembering", queue)
    memories_fill(full)
    # Every pool process boots its zygote on its first run: a burst reaches them all before anything is timed.
    bench.service_burst([fresh, full], 4 * concurrency)
    bench.raw_burst(queue, 4 * concurrency)
    pool = f"{concurrency} prefork processes" if queue == genotype.CPU else f"{settings.LUXOS_IO_WORKERS} threads"
    setup = f"queue {queue} ({pool}), same workers and Redis"
    for _ in range(2 * settings.LUXOS_WEB_THREADS):  # every web thread has served a run before any is timed
        bench.http_round_trip(fresh)
    bench.trips.clear()
    # Interleaved, in blocks taking turns, so that the three see the same machine: service, HTTP, the raw no-op.
    round_trips_each = (
        partial(bench.service_round_trip, fresh),
        partial(bench.http_round_trip, fresh),
        partial(bench.raw_round_trip, queue),
    )
    service_ms, http_ms, raw_ms = interleaved(round_trips_each, runs=round_trips, budget=3 * BUDGET)
    phases = _phases(bench.trips, queue)
    results = [
        _ratio_row(f"runtime {queue}: round trip through the service vs raw no-op", service_ms, raw_ms, 3.0, setup),
        _ratio_row(f"runtime {queue}: round trip through HTTP (wait, token) vs raw no-op", http_ms, raw_ms, 4.0, setup),
        *phases,
    ]
    # The being at its memory bound against a fresh one, in turn.
    at_bound = (partial(bench.service_round_trip, full), partial(bench.service_round_trip, fresh))
    full_ms, fresh_ms = interleaved(at_bound, runs=round_trips, budget=2 * BUDGET)
    limit = int(settings.LUXOS_MEMORY_LIMIT)
    results.append(
        _ratio_row(f"runtime {queue}: round trip, being with {limit} memories vs fresh", full_ms, fresh_ms, 1.2, setup)
    )
    many = [bench.being_new(f"bench_{queue}_many_{n}", queue) for n in range(BURST_BEINGS)]
    for what, targets, floor in ((f"{BURST_BEINGS} beings", many, 0.35), ("one being", [fresh], 0.25)):
        seconds: dict[str, list[float]] = {"service": [], "raw": []}
        for repetition in range(REPEAT):
            ways: tuple[tuple[str, Callable[[], None]], ...] = (
                ("service", partial(bench.service_burst, targets, burst)),
                ("raw", partial(bench.raw_burst, queue, burst)),
            )
            for way, work in ways if repetition % 2 == 0 else ways[::-1]:
                seconds[way].append(timed(work))
        results.append(_throughput(burst, seconds, what=f"{queue}: a burst over {what}", floor=floor, setup=setup))
    return results


def _ratio_row(name: str, measured: list[float], baseline: list[float], most: float, setup: str) -> Result:
    ratio = median(measured) / median(baseline)
    notes = (
        f"{len(measured)} runs, baseline {len(baseline)}; p95 {p95(measured):.2f} ms vs {p95(baseline):.2f} ms; {setup}"
    )
    return Result(
        f"{name} (median)",
        len(measured),
        median(measured),
        "ms",
        median(baseline),
        target=f"≤ {most * 100:.0f}%",
        passed=ratio <= most,
        notes=notes,
    )


def _phases(trips: list[tuple[uuid.UUID, float, float]], queue: str) -> list[Result]:
    """Where a round trip's time goes (medians), from the client's clock and the execution's own timestamps."""
    rows = Execution.objects.in_bulk([execution_id for execution_id, _began, _ended in trips])
    phases: dict[str, list[float]] = {
        "start → running": [],
        "running → finished": [],
        "of which the sandbox": [],
        "finished → the wait's return": [],
    }
    for execution_id, began, ended in trips:
        execution = rows[execution_id]
        if execution.started_at is None or execution.finished_at is None or execution.duration_ms is None:
            continue
        started, finished = execution.started_at.timestamp(), execution.finished_at.timestamp()
        phases["start → running"].append((started - began) * 1000)
        phases["running → finished"].append((finished - started) * 1000)
        phases["of which the sandbox"].append(execution.duration_ms)
        phases["finished → the wait's return"].append((ended - finished) * 1000)
    notes = "of the service round trips above; start is the call of execution_call, return when it returns"
    return [
        Result(
            f"runtime {queue}: round trip phase, {name} (median)", len(values), median(values), "ms", None, notes=notes
        )
        for name, values in phases.items()
        if values
    ]


def _throughput(burst: int, seconds: dict[str, list[float]], *, what: str, floor: float, setup: str) -> Result:
    service_rate, raw_rate = burst / min(seconds["service"]), burst / min(seconds["raw"])
    return Result(
        f"runtime {what}: throughput vs raw no-op",
        burst,
        service_rate,
        "runs/s",
        raw_rate,
        target=f"≥ {floor * 100:.0f}%",
        passed=service_rate / raw_rate >= floor,
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
