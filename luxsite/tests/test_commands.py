"""The operator commands of the project wiring: createadmin and serve."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from luxsite.celery import app

SERVE_START_TIMEOUT = 60.0
SERVE_STOP_TIMEOUT = 20.0


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


def _start_serve(env: dict[str, str], tmp_path: Path) -> tuple[_Serve, Path]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **env,
        "LUXOS_VAR_DIR": str(tmp_path),  # the pid file and beat's schedule: apart from a `make run`'s
        "LUXOS_WEB_WORKERS": "1",
        "LUXOS_CPU_WORKERS": "1",
        "LUXOS_IO_WORKERS": "2",
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
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)  # not listening yet
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
