"""Child processes in a process group of their own: Celery workers started, awaited by ping, and stopped.

The test session, the benchmarks and ``manage.py serve`` start their workers with these, so a
worker's pool processes (and their sandboxes' children) never outlive whoever started it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

from celery import Celery
from django.conf import settings


class WorkerNotReadyError(RuntimeError):
    """A worker exited, or did not answer a ping, before it was ready."""


def process_group_start(
    argv: list[str], *, env: dict[str, str] | None = None, output: IO[bytes] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` from the project's directory as the leader of a new process group."""
    stderr = subprocess.STDOUT if output is not None else None
    return subprocess.Popen(
        argv,
        env=env,
        cwd=settings.BASE_DIR,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=stderr,
        process_group=0,
    )


def worker_wait(app: Celery, *, name: str, process: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    """Return once the worker ``name`` answers a ping; WorkerNotReadyError, with its log, if it exits or is silent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise WorkerNotReadyError(f"the Celery worker exited with code {process.returncode}:\n{log.read_text()}")
        if app.control.ping(destination=[name], timeout=0.5):
            return
    raise WorkerNotReadyError(f"the Celery worker did not answer a ping within {timeout:.0f} s:\n{log.read_text()}")


def process_stop(process: subprocess.Popen[bytes], *, timeout: float) -> bool:
    """Terminate a group leader, kill it after ``timeout`` seconds, then its whole group; whether it stopped in time."""
    if process.poll() is None:
        process.terminate()
    stopped = True
    try:
        process.wait(timeout=max(0.0, timeout))
    except subprocess.TimeoutExpired:
        stopped = False
        process.kill()
        process.wait()
    # Pool processes left behind by a leader that exited share its process group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    return stopped
