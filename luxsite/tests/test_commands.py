"""The operator commands of the project wiring: createadmin and serve."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from beings.executions.schemas import MAX_WAIT_SECONDS
from beings.models import BaseBeing
from luxsite.celery import app
from luxsite.management.commands.serve import web_timeout

SERVE_START_TIMEOUT = 60.0
SERVE_STOP_TIMEOUT = 20.0
WAITS = 8
WAIT = 25.0
# A run that loops until its wall-clock limit, set just past the wait: no run ends before its wait does.
LOOP = "def run():\n    while True:\n        pass\n"
LOOP_LIMITS = {"LUXOS_SANDBOX_WALL_SECONDS": str(WAIT + 2), "LUXOS_SANDBOX_CPU_SECONDS": str(int(WAIT) + 5)}


def _createadmin() -> str:
    out = StringIO()
    call_command("createadmin", stdout=out)
    return out.getvalue()


def test_createadmin_generates_a_password_shown_once(db, django_user_model, client, settings):
    """A fresh install gets a superuser `admin` whose generated password is printed once and logs in."""
    settings.LUXOS_ADMIN_USER = "admin"
    settings.LUXOS_ADMIN_PASSWORD = ""

    first = _createadmin()
    second = _createadmin()

    shown = re.search(r"^admin password \(shown once\): (\S+)$", first, re.MULTILINE)
    assert shown is not None, first
    password = shown.group(1)
    assert "shown once" not in second
    assert "admin login: admin" in second
    user = django_user_model.objects.get(username="admin")
    assert user.is_superuser and user.is_staff
    assert client.login(username="admin", password=password)


def test_createadmin_takes_and_resets_the_password_from_the_environment(db, django_user_model, client, settings):
    """LUXOS_ADMIN_PASSWORD becomes the admin's password, also when the admin exists, and is never printed."""
    settings.LUXOS_ADMIN_USER = "operator"
    settings.LUXOS_ADMIN_PASSWORD = "first-Secret-41"
    first = _createadmin()
    settings.LUXOS_ADMIN_PASSWORD = "second-Secret-42"
    second = _createadmin()

    assert "Secret" not in first + second
    assert "shown once" not in first
    assert django_user_model.objects.filter(username="operator", is_superuser=True).count() == 1
    assert not client.login(username="operator", password="first-Secret-41")
    assert client.login(username="operator", password="second-Secret-42")


def test_serve_runs_the_site_and_workers_and_stops_everything_on_ctrl_c(subprocess_env, tmp_path):
    """`manage.py serve` answers on its port with both workers up; Ctrl-C stops it and every child, exiting 0."""
    serve, log = _start_serve(subprocess_env, tmp_path)
    try:
        _wait_for_page(f"http://127.0.0.1:{serve.port}/admin/login/", serve.process, log)
        host = socket.gethostname()
        _wait_for_workers([f"cpu@{host}", f"io@{host}"], serve.process, log)
        children = _descendants(serve.process.pid)
        assert (tmp_path / "run" / "serve.pid").read_text().strip() == str(serve.process.pid)

        serve.process.send_signal(signal.SIGINT)

        assert serve.process.wait(timeout=SERVE_STOP_TIMEOUT) == 0, log.read_text()
        assert [pid for pid in children if _running(pid)] == []
        assert not (tmp_path / "run" / "serve.pid").exists()
    finally:
        serve.kill()


def test_serve_stops_everything_when_a_child_dies(subprocess_env, tmp_path):
    """When one child dies, serve stops the others and exits non-zero, naming the one that died."""
    serve, log = _start_serve(subprocess_env, tmp_path)
    try:
        _wait_for_page(f"http://127.0.0.1:{serve.port}/admin/login/", serve.process, log)
        children = _descendants(serve.process.pid)
        beat = next(pid for pid in children if b"beat" in Path(f"/proc/{pid}/cmdline").read_bytes())

        os.kill(beat, signal.SIGKILL)

        assert serve.process.wait(timeout=SERVE_STOP_TIMEOUT) == 1, log.read_text()
        assert "beat exited unexpectedly" in log.read_text()
        assert [pid for pid in children if _running(pid)] == []
    finally:
        serve.kill()


@pytest.mark.django_db(transaction=True)
def test_serve_holds_eight_full_waits_while_the_home_page_answers_within_a_second(
    subprocess_env: dict[str, str],
    tmp_path: Path,
    make_being: Callable[..., BaseBeing],
    bearer: dict[str, str],
) -> None:
    """One web worker holds eight concurrent 25-second waits on runs still going (each answered 202 after its
    full wait, none cut short or queued behind another) while GET / answers within a second throughout; the
    worker's timeout is above the longest wait a request may ask for."""
    assert web_timeout() > MAX_WAIT_SECONDS
    being = make_being("looper", genesis={"source": LOOP})
    serve, log = _start_serve(subprocess_env, tmp_path, **LOOP_LIMITS)
    base = f"http://127.0.0.1:{serve.port}"
    try:
        _wait_for_page(f"{base}/", serve.process, log)

        def execute(_: int) -> tuple[int, float, dict[str, Any]]:
            started = time.monotonic()
            status, body = _post(f"{base}/api/beings/{being.soul}/execute", {"wait": WAIT}, bearer)
            return status, time.monotonic() - started, body

        with ThreadPoolExecutor(WAITS) as pool:
            waits = [pool.submit(execute, index) for index in range(WAITS)]
            home: list[float] = []
            while not all(wait.done() for wait in waits):
                home.append(_home_seconds(f"{base}/"))
                time.sleep(0.5)
            answers = [wait.result() for wait in waits]

        assert [status for status, _, _ in answers] == [202] * WAITS, log.read_text()
        assert all(WAIT <= elapsed < WAIT + 3 for _, elapsed, _ in answers), [elapsed for _, elapsed, _ in answers]
        assert "running" in {body["status"] for _, _, body in answers}  # a worker was running one all along
        assert len(home) > 10 and max(home) < 1.0, home  # asked every half second throughout the waits
        for _, _, body in answers:  # the runs still queued or looping end now, freeing the worker for the stop
            _cancel(f"{base}/api/executions/{body['id']}/cancel", bearer)
        serve.process.send_signal(signal.SIGINT)
        assert serve.process.wait(timeout=SERVE_STOP_TIMEOUT) == 0, log.read_text()
    finally:
        serve.kill()


def _home_seconds(url: str) -> float:
    """How long the home page took to answer 200; infinite when it did not answer within five seconds."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
    except TimeoutError:
        return math.inf
    return time.monotonic() - started


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=MAX_WAIT_SECONDS + 10) as response:
        return response.status, json.loads(response.read())


def _cancel(url: str, headers: dict[str, str]) -> None:
    """Cancel a run; one that ended meanwhile (409) needs nothing more."""
    try:
        _post(url, {}, headers)
    except urllib.error.HTTPError as error:
        if error.code != 409:
            raise


class _Serve:
    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port

    def kill(self) -> None:
        """Leave nothing behind when a test failed halfway."""
        if self.process.poll() is None:
            for pid in _descendants(self.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait()


def _start_serve(env: dict[str, str], tmp_path: Path, **settings_env: str) -> tuple[_Serve, Path]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **env,
        "LUXOS_VAR_DIR": str(tmp_path),  # the pid file and beat's schedule: apart from a `make run`'s
        "LUXOS_WEB_WORKERS": "1",
        "LUXOS_CPU_WORKERS": "1",
        "LUXOS_IO_WORKERS": "2",
        **settings_env,
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port)],
            cwd=settings.BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return _Serve(process, port), log


def _wait_for_page(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVE_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with code {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.status == 200
                return
        except urllib.error.HTTPError as error:
            pytest.fail(f"{url} answered {error.code}:\n{log.read_text()}")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)  # not listening yet, or its first answer slow on a loaded machine
    pytest.fail(f"{url} did not answer within {SERVE_START_TIMEOUT:.0f} s:\n{log.read_text()}")


def _wait_for_workers(names: list[str], process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVE_START_TIMEOUT
    answered: set[str] = set()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with code {process.returncode}:\n{log.read_text()}")
        for reply in app.control.ping(destination=names, timeout=0.5) or []:
            answered.update(reply)
        if answered == set(names):
            return
    pytest.fail(f"only {sorted(answered)} of {names} answered within {SERVE_START_TIMEOUT:.0f} s:\n{log.read_text()}")


def _descendants(root: int) -> set[int]:
    """Every process below ``root``, read from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):  # a process may exit while we read
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
