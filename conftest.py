"""Fixtures for every app: a Redis database of the tests' own and a real Celery worker.

Tests send Celery tasks to Redis database 15 (14, 13, ... for xdist workers gw1, gw2, ...),
flushed when the session starts, so a ``make run`` on the same machine (database 0) never
consumes a test's task and a test never sees a task of ``make run``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

pytest_plugins = ["luxsite.tests.fixtures"]

WORKER_START_TIMEOUT = 60.0
WORKER_STOP_TIMEOUT = 10.0
# `celery -A luxsite worker`, plus one thing for tests: a transactional test's flush recreates the content types
# under new ids, so each task forgets the ids its process cached for an earlier test. (Replacing the process after
# every task, --max-tasks-per-child 1, does the same but makes every later task wait about 5 s for a new process.)
WORKER_BOOT = """
import sys
from celery.signals import task_prerun
from luxsite.celery import app

@task_prerun.connect
def content_types_forget(**_):
    from django.contrib.contenttypes.models import ContentType
    ContentType.objects.clear_cache()

app.worker_main(["worker", *sys.argv[1:]])
"""
SOUL_LOG_DIR = pytest.StashKey[str]()
SESSION_LOCKS = pytest.StashKey[list[IO[str]]]()


def pytest_configure(config: pytest.Config) -> None:
    """Point this process's Celery app and settings at the test Redis database, before any task is sent."""
    from django.conf import settings

    from luxsite.celery import app
    from luxsite.embedded import ensure_services, redis_url

    # Importing settings started nothing: the test session is an entry point and starts what it uses.
    ensure_services()
    settings.REDIS_URL = redis_url()
    url = _test_redis_url(settings.REDIS_URL, config)
    _session_claim(config, url)
    settings.REDIS_URL = settings.CELERY_BROKER_URL = settings.CELERY_RESULT_BACKEND = url
    # Password hashing is deliberately slow; tests create many users and need none of its strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    app.conf.update(broker_url=url, result_backend=url)
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    # Reports and environment files of test beings go to the session's own directory, never var/souls;
    # through the environment, worker subprocesses write there too.
    souls = tempfile.mkdtemp(prefix="luxos-test-souls-")
    config.stash[SOUL_LOG_DIR] = souls
    os.environ["LUXOS_SOUL_LOG_DIR"] = souls
    settings.LUXOS_SOUL_LOG_DIR = Path(souls)
    # Chronos' exports and uploads too, never var/chronos.
    timelines = os.path.join(souls, "chronos")
    os.environ["CHRONOS_TIMELINES_DIR"] = timelines
    settings.CHRONOS_TIMELINES_DIR = Path(timelines)


def _session_claim(config: pytest.Config, redis_url: str) -> None:
    """Refuse to start a second session on the test database or Redis database another session is using.

    Two sessions on one name would drop each other's database and flush each other's queued tasks,
    and fail in ways that look like bugs; a held lock file per name says what to do instead.
    """
    from django.db import connection

    from luxsite.embedded import var_dir

    database = connection.settings_dict["TEST"]["NAME"] or f"test_{connection.settings_dict['NAME']}"
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker:  # an xdist worker: pytest-django gives it a database of its own, and it has a Redis database of its own
        database = f"{database}_{worker}"
    directory = var_dir() / "run"
    directory.mkdir(parents=True, exist_ok=True)
    for name in (f"test-database-{database}", f"test-redis-{urlsplit(redis_url).path.strip('/')}"):
        handle = (directory / f"{name}.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise pytest.UsageError(
                f"another test session on this machine holds {name}: give this one its own names with "
                "LUXOS_TEST_DB_NAME=test_<something> and LUXOS_TEST_REDIS_DB=<1-14>"
            ) from None
        config.stash.setdefault(SESSION_LOCKS, []).append(handle)  # held until the process exits


def pytest_unconfigure(config: pytest.Config) -> None:
    if SOUL_LOG_DIR in config.stash:
        shutil.rmtree(config.stash[SOUL_LOG_DIR], ignore_errors=True)


def _test_redis_base() -> int:
    """Redis database of the tests: LUXOS_TEST_REDIS_DB, else one derived from LUXOS_TEST_DB_NAME, else 15.

    Two sessions on one machine with different test database names then mostly get different
    Redis databases too, so one session's flush does not drop the other's queued tasks.
    """
    if os.environ.get("LUXOS_TEST_REDIS_DB"):
        return int(os.environ["LUXOS_TEST_REDIS_DB"])
    name = os.environ.get("LUXOS_TEST_DB_NAME")
    return 15 - zlib.crc32(name.encode()) % 12 if name else 15


def _test_redis_url(url: str, config: pytest.Config) -> str:
    worker_id = getattr(config, "workerinput", {}).get("workerid", "gw0")
    database = _test_redis_base() - int(worker_id.removeprefix("gw"))
    if database < 1:
        raise pytest.UsageError("too many xdist workers: each needs a Redis database of its own (1-15)")
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def subprocess_env(django_db_setup: None) -> dict[str, str]:
    """The environment for a subprocess that must use the test database and the test Redis database."""
    from django.conf import settings
    from django.db import connection

    env = dict(os.environ)
    test_database = str(connection.settings_dict["NAME"])
    env["DATABASE_URL"] = urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{test_database}"))
    env["REDIS_URL"] = settings.REDIS_URL
    return env


@dataclass(frozen=True)
class CeleryTestWorker:
    name: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def celery_worker(
    subprocess_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CeleryTestWorker]:
    """A real Celery worker (prefork, two processes) consuming the cpu and io queues for the session.

    It uses the test database and the test Redis database. It commits in transactions of its own, so
    a test that uses it and touches the database must use ``transactional_db``: under ``db`` the
    test's rows stay in a transaction the worker never sees.
    """
    from luxsite.celery import app
    from luxsite.workers import WorkerNotReadyError, process_group_start, process_stop, worker_wait

    name = f"test-{os.getpid()}@{socket.gethostname()}"
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    options = "-Q cpu,io -c 2 --pool prefork --without-heartbeat --without-mingle --without-gossip -l WARNING"
    command = [sys.executable, "-c", WORKER_BOOT, "-n", name, *options.split()]
    with log.open("wb") as output:
        process = process_group_start(command, env=subprocess_env, output=output)
    try:
        try:
            worker_wait(app, name=name, process=process, timeout=WORKER_START_TIMEOUT, log=log)
        except WorkerNotReadyError as error:
            pytest.fail(str(error))
        yield CeleryTestWorker(name=name, process=process)
    finally:
        process_stop(process, timeout=WORKER_STOP_TIMEOUT)


# Markers by what a test needs, from its fixtures, so `make test-fast` can leave out the slow kinds.
MARKERS_BY_FIXTURE = {"live_server": "browser", "celery_worker": "worker", "subprocess_env": "worker"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that go through the live server (``browser``) or need a real Celery worker (``worker``)."""
    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & set(MARKERS_BY_FIXTURE):
            item.add_marker(MARKERS_BY_FIXTURE[fixture])


def _transactional(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("django_db")
    fixtures = set(getattr(item, "fixturenames", ()))
    return bool(marker and marker.kwargs.get("transaction")) or bool({"transactional_db", "live_server"} & fixtures)


@pytest.fixture(autouse=True)
def core_beings_after_flush(request: pytest.FixtureRequest) -> None:
    """Transactional tests start with the core beings that the flush after the previous one removed.

    Django empties every table after a transactional test, the rows of data migrations
    included; serialized rollback cannot put them back because the change log is
    append-only, so the core beings are ensured again instead.
    """
    if not _transactional(request.node):
        return
    request.getfixturevalue("transactional_db")
    from beings.kinds import core_beings_ensure
    from beings.models import BaseBeing

    core_beings_ensure(BaseBeing)
