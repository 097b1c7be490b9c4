"""The embedded PostgreSQL and Redis: one of each per checkout, attached to by every process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings


def _python(code: str, env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _embedded(command: str, env: dict[str, str]) -> list[str]:
    return _python(f"import sys; from luxsite import embedded; sys.exit(embedded.main(['embedded', {command!r}]))", env)


def _server_pids(var: Path) -> tuple[str, str]:
    postgres = (var / "postgres" / "postmaster.pid").read_text().splitlines()[0]
    redis = (var / "redis" / "redis.pid").read_text().strip()
    return postgres, redis


def test_embedded_servers_start_once_are_shared_and_stop(tmp_path: Path):
    """With no URLs named, the first process starts PostgreSQL and Redis, the next attaches, stop stops both."""
    var = tmp_path / "var"
    env = {name: value for name, value in os.environ.items() if name not in {"DATABASE_URL", "REDIS_URL"}}
    env["LUXOS_VAR_DIR"] = str(var)
    attach = (
        "import os; from luxsite import embedded; embedded.ensure_services(); "
        "print(os.environ['DATABASE_URL']); print(os.environ['REDIS_URL'])"
    )
    try:
        first = _python(attach, env)
        pids = _server_pids(var)
        assert _embedded("status", env) == ["postgres: running", "redis: running"]
        assert _python(attach, env) == first
        assert _server_pids(var) == pids
        assert _python(
            "import os, psycopg; from luxsite import embedded; embedded.ensure_services(); "
            "print(psycopg.connect(os.environ['DATABASE_URL']).execute('SELECT 1').fetchone()[0])",
            env,
        ) == ["1"]
    finally:
        _embedded("stop", env)
    assert _embedded("status", env) == ["postgres: stopped", "redis: stopped"]


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


def test_importing_the_settings_starts_nothing(tmp_path: Path):
    """With no URLs named and nothing running, importing and reading the settings starts no server and writes nothing.

    An editor, a type checker or ``manage.py check`` reading them must not boot PostgreSQL and Redis; the
    entry points (manage.py, the WSGI app, the Celery app, the test session) start them.
    """
    var = tmp_path / "var"
    var.mkdir()
    env = {name: value for name, value in os.environ.items() if name not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(LUXOS_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="luxsite.settings")

    names = _python(
        "import luxsite.settings, django; django.setup(); from django.conf import settings; "
        "print(settings.DATABASES['default']['OPTIONS']['host']); print(settings.CELERY_BROKER_URL)",
        env,
    )

    assert names == [str(var.resolve() / "postgres"), "redis://127.0.0.1:6379/0"]
    assert list(var.iterdir()) == []
