"""The embedded PostgreSQL and Redis: one of each per checkout, attached to by every process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings

from luxsite import embedded


def _uses_embedded_services() -> bool:
    database = urlsplit(os.environ["DATABASE_URL"])
    redis_port_file = embedded.var_dir() / "redis" / "port"
    return (
        parse_qs(database.query).get("host") == [str(embedded.var_dir() / "postgres")]
        and redis_port_file.exists()
        and urlsplit(os.environ["REDIS_URL"]).port == int(redis_port_file.read_text())
    )


pytestmark = pytest.mark.skipif(
    not _uses_embedded_services(), reason="DATABASE_URL and REDIS_URL name external services"
)


def _python(code: str, env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _server_pids() -> tuple[str, str]:
    postgres = (embedded.var_dir() / "postgres" / "postmaster.pid").read_text().splitlines()[0]
    redis = (embedded.var_dir() / "redis" / "redis.pid").read_text().strip()
    return postgres, redis


def test_status_reports_both_servers_running():
    """`python -m luxsite.embedded status` says both embedded servers are running."""
    done = subprocess.run(
        [sys.executable, "-m", "luxsite.embedded", "status"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["postgres: running", "redis: running"]


def test_a_second_process_attaches_to_the_running_servers():
    """A process that names no services gets the URLs of the servers already running, not new servers."""
    pids_before = _server_pids()
    env = {name: value for name, value in os.environ.items() if name not in {"DATABASE_URL", "REDIS_URL"}}

    urls = _python(
        "import os; from luxsite import embedded; embedded.ensure_services(); "
        "print(os.environ['DATABASE_URL']); print(os.environ['REDIS_URL'])",
        env,
    )

    assert urls == [os.environ["DATABASE_URL"], os.environ["REDIS_URL"]]
    assert _server_pids() == pids_before


def test_settings_start_nothing_when_services_are_named(tmp_path: Path):
    """With DATABASE_URL and REDIS_URL set, loading the settings uses them and starts or writes nothing."""
    var = tmp_path / "var"
    var.mkdir()
    env = {**os.environ, "LUXOS_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "luxsite.settings"}

    names = _python(
        "from django.conf import settings; print(settings.DATABASES['default']['NAME']); print(settings.REDIS_URL)",
        env,
    )

    assert names == [urlsplit(os.environ["DATABASE_URL"]).path.lstrip("/"), os.environ["REDIS_URL"]]
    assert list(var.iterdir()) == []
