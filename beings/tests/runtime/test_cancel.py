"""A cancel on the worker's channel ends the run's sandbox child at once, and the worker serves the next run."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import redis
from django.conf import settings

from beings.runtime.cancel import cancel_channel, cancel_message, cancel_watch_default, execution_channel
from beings.runtime.jobs import RunResult, RunStatus, SandboxLimits
from beings.runtime.sandbox import sandbox_default

LOOP = "def run():\n    print('looping')\n    print('still looping')\n    while True:\n        pass\n"
# Far beyond the test's one second: only the cancel can end the run in time.
PATIENT = SandboxLimits(cpu_seconds=30, wall_seconds=30)
# The worker these tests' runs are claimed by: this process listens on its channel, as a worker does before it claims.
WORKER = f"test-{uuid.uuid4().hex[:8]}@here"


def _cancel(client: redis.Redis, *execution_ids: uuid.UUID) -> int:
    """Publish the cancel of these runs on the worker's channel; how many processes heard it."""
    return int(client.publish(cancel_channel(WORKER), cancel_message(execution_ids)))


def _children(parent: int) -> dict[int, int]:
    """Pid -> CPU ticks used, of the processes whose parent is ``parent``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found[int(entry.name)] = int(fields[11]) + int(fields[12])
    return found


def _looping_child(zygote: int, deadline: float) -> int:
    """The zygote's child that burns CPU: the one running the loop (a spare waits for its job)."""
    while time.monotonic() < deadline:
        busy = {pid: ticks for pid, ticks in _children(zygote).items() if ticks > 0}
        if busy:
            return max(busy, key=busy.__getitem__)
        time.sleep(0.02)
    raise AssertionError("no child of the zygote is running the loop")


def test_cancel_kills_the_child_at_once_and_the_next_run_goes_on() -> None:
    """The run's id on its worker's channel kills its looping child within a second; the run says cancelled,
    keeps what it printed, and the same sandbox runs the next job straight after."""
    sandbox = sandbox_default()
    sandbox.start()
    assert cancel_watch_default().listen(WORKER)
    for _ in range(10):  # runs watched one after another
        quick = sandbox.run({"source": "def run():\n    return 1\n"}, PATIENT, execution_id=uuid.uuid4())
        assert quick.status == RunStatus.SUCCEEDED
    execution_id = uuid.uuid4()
    printed = threading.Event()
    outcome: list[RunResult] = []

    def work() -> None:
        job = {"source": LOOP}
        outcome.append(sandbox.run(job, PATIENT, None, lambda text: printed.set(), execution_id=execution_id))

    runner = threading.Thread(target=work)
    runner.start()
    assert printed.wait(10), "the being never printed"
    zygote = sandbox.zygote_pid
    assert zygote is not None
    child = _looping_child(zygote, time.monotonic() + 5)

    with redis.Redis.from_url(settings.REDIS_URL) as client:
        published = time.monotonic()
        assert _cancel(client, uuid.uuid4(), execution_id) == 1
    runner.join(1)
    assert not runner.is_alive(), "the run did not end within a second of its cancel"
    while os.path.exists(f"/proc/{child}") and time.monotonic() < published + 1:
        time.sleep(0.01)
    assert not os.path.exists(f"/proc/{child}"), "the child outlived its cancel by a second"

    (result,) = outcome
    assert result.status == RunStatus.CANCELLED
    assert result.error is not None
    assert result.error["type"] == "Cancelled"
    assert result.output == "looping\nstill looping\n"
    following = sandbox.run({"source": "def run():\n    return 'next'\n"}, PATIENT)
    assert (following.status, following.result) == (RunStatus.SUCCEEDED, "next")
    assert time.monotonic() - published < 2


def test_a_cancel_heard_before_the_run_reached_its_sandbox_still_ends_it() -> None:
    """A cancel that came between the claim and the sandbox (the process heard it, no run had the id yet) ends
    the run as soon as it starts, instead of letting it run to its wall-clock limit."""
    sandbox = sandbox_default()
    watch = cancel_watch_default()
    assert watch.listen(WORKER)
    execution_id = uuid.uuid4()
    with redis.Redis.from_url(settings.REDIS_URL) as client:
        assert _cancel(client, execution_id) == 1
    time.sleep(0.3)  # heard by the watch's thread
    started = time.monotonic()
    result = sandbox.run({"source": LOOP}, PATIENT, execution_id=execution_id)
    assert result.status == RunStatus.CANCELLED
    assert time.monotonic() - started < 2


def test_other_news_does_not_stop_the_run() -> None:
    """Only the run's id on its worker's channel ends it: another run's cancel, or news on the run's own channel
    (which only wakes its waiters), do not."""
    sandbox = sandbox_default()
    assert cancel_watch_default().listen(WORKER)
    execution_id = uuid.uuid4()
    with redis.Redis.from_url(settings.REDIS_URL) as client:

        def noisy(request: dict[str, object]) -> str:
            client.publish(execution_channel(execution_id), "cancelled")
            _cancel(client, uuid.uuid4())
            time.sleep(0.2)  # time for the watch to hear both
            return "answered"

        result = sandbox.run(
            {"source": "def run():\n    return execution('x')\n"}, PATIENT, noisy, execution_id=execution_id
        )
    assert (result.status, result.result) == (RunStatus.SUCCEEDED, "answered")


def test_a_cancel_during_a_call_ends_the_run_before_its_next_call() -> None:
    """A cancel heard while the worker answers a call kills the child: the being makes no further call."""
    sandbox = sandbox_default()
    assert cancel_watch_default().listen(WORKER)
    execution_id = uuid.uuid4()
    calls: list[str] = []
    with redis.Redis.from_url(settings.REDIS_URL) as client:

        def cancel_then_answer(request: dict[str, object]) -> str:
            _cancel(client, execution_id)
            time.sleep(0.5)
            calls.append(str(request["target"]))
            return "too late"

        source = "def run():\n    execution('first')\n    execution('second')\n    return 'finished'\n"
        result = sandbox.run({"source": source}, PATIENT, cancel_then_answer, execution_id=execution_id)
    assert result.status == RunStatus.CANCELLED
    assert calls == ["first"]
