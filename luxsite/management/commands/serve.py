"""Serve LuxOS the way ``make run`` does: gunicorn, the cpu and io Celery workers and beat, supervised.

Each child runs in a process group of its own, so a Ctrl-C in the terminal reaches
only this supervisor, which then stops the children in order: SIGTERM to each
(a warm shutdown: running tasks finish), SIGKILL to the whole group of any that
is still running after ``STOP_TIMEOUT`` seconds.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from beings.executions.schemas import MAX_WAIT_SECONDS
from luxsite import embedded
from luxsite.workers import process_group_start, process_stop

STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.5
# gunicorn restarts a worker silent for this long; a wait must never come near it.
WEB_TIMEOUT_MARGIN = 30


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


class Command(BaseCommand):
    help = "Serve LuxOS with its Celery workers and beat; Ctrl-C or SIGTERM stops them all."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, help="port to bind (default: LUXOS_PORT or 8000)")
        parser.add_argument("--no-workers", action="store_true", help="serve the site only, without workers or beat")

    def handle(self, *args: Any, **options: Any) -> None:
        host = settings.LUXOS_HOST
        port = options["port"] or settings.LUXOS_PORT
        commands = _commands(host, port, with_workers=not options["no_workers"])
        pid_file = _claim_pid_file()
        self.stop_signal: int | None = None
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._request_stop)

        children: list[Child] = []
        try:
            for name, argv in commands:
                # The environment carries the DATABASE_URL and REDIS_URL settings resolved, so every
                # child attaches to the same (possibly embedded) servers.
                process = process_group_start(argv, env=dict(os.environ))
                children.append(Child(name, process))
            self._announce(host, port, [name for name, _ in commands])
            died = self._supervise(children)
        finally:
            self._stop(children)
            pid_file.unlink(missing_ok=True)
        if died is not None:
            raise CommandError(f"{died.name} exited unexpectedly with code {died.process.returncode}; stopped the rest")
        self.stdout.write("stopped")

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_signal = signum

    def _supervise(self, children: list[Child]) -> Child | None:
        """Wait for a stop signal; return the child that died first if one dies before it."""
        while self.stop_signal is None:
            for child in children:
                if child.process.poll() is not None:
                    return child
            time.sleep(POLL_INTERVAL)
        self.stdout.write(f"{signal.Signals(self.stop_signal).name} received, stopping")
        return None

    def _stop(self, children: list[Child]) -> None:
        for child in reversed(children):
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in children:
            # A leader that exited may leave processes behind in its group (a pool process); none may outlive us.
            if not process_stop(child.process, timeout=deadline - time.monotonic()):
                self.stderr.write(f"{child.name} did not stop within {STOP_TIMEOUT:.0f} s; killing it")

    def _announce(self, host: str, port: int, names: list[str]) -> None:
        shown_host = "127.0.0.1" if host in {"0.0.0.0", "::", "[::]"} else host
        url = f"http://{shown_host}:{port}"
        username = settings.LUXOS_ADMIN_USER
        self.stdout.write(
            f"LuxOS is running at {url}/\n"
            f"  admin:    {url}/admin/\n"
            f"  API docs: {url}/api/docs\n"
            f"  login:    {username} (password: LUXOS_ADMIN_PASSWORD, or as createadmin printed it once)\n"
            f"  running:  {', '.join(names)}\n"
            "Ctrl-C stops everything."
        )
        self.stdout.flush()


def _commands(host: str, port: int, *, with_workers: bool) -> list[tuple[str, list[str]]]:
    python = sys.executable
    log_level = settings.LUXOS_LOG_LEVEL
    # Threaded workers (gthread): a request waiting on a run holds one thread, not a whole worker.
    # No gunicorn control socket: it would live in $HOME, shared by every gunicorn of this user.
    web = (
        f"--bind {host}:{port} --workers {settings.LUXOS_WEB_WORKERS} "
        f"--worker-class gthread --threads {settings.LUXOS_WEB_THREADS} "
        f"--timeout {web_timeout()} --access-logfile - --no-control-socket"
    )
    commands = [("web", [python, "-m", "gunicorn", "luxsite.wsgi", *web.split()])]
    if with_workers:
        cpu = f"-Q cpu --pool prefork --concurrency {settings.LUXOS_CPU_WORKERS} --prefetch-multiplier 1 -n cpu@%h"
        io = f"-Q io --pool threads --concurrency {settings.LUXOS_IO_WORKERS} -n io@%h"
        schedule = Path(settings.CELERY_BEAT_SCHEDULE_FILENAME)
        schedule.parent.mkdir(parents=True, exist_ok=True)
        celery = [python, "-m", "celery", "-A", "luxsite"]
        commands += [
            ("cpu worker", [*celery, "worker", *cpu.split(), "--loglevel", log_level]),
            ("io worker", [*celery, "worker", *io.split(), "--loglevel", log_level]),
            ("beat", [*celery, "beat", "--schedule", str(schedule), "--loglevel", log_level]),
        ]
    return commands


def web_timeout() -> int:
    """Seconds gunicorn lets a worker go silent before it kills it: well above the longest `wait` a request holds."""
    return math.ceil(MAX_WAIT_SECONDS) + WEB_TIMEOUT_MARGIN


def _claim_pid_file() -> Path:
    """Record our pid for ``make stop``; refuse to start a second supervisor."""
    path = embedded.var_dir() / "run" / "serve.pid"
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError, ValueError):
        other = int(path.read_text())
        if other != os.getpid() and _is_serve(other):
            raise CommandError(f"serve is already running (pid {other}); stop it with `make stop`")
    path.write_text(f"{os.getpid()}\n")
    return path


def _is_serve(pid: int) -> bool:
    try:
        return b"serve" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
