"""``python -m bench``: run every benchmark on a fresh ``luxos_bench`` database and print the table.

Scales are 10k and 100k beings, and 1M too with ``BENCH_SCALE=large`` (``smoke``: 1k, to try it out).
The database lives on the server that settings would use (``DATABASE_URL``, or the embedded one) and
is dropped at the end unless ``--keep`` is given; Django never connects to the dev database.
``LUXOS_BENCH_DB_NAME`` (or ``LUXOS_EMBEDDED_DB_NAME`` naming a ``luxos_bench…`` database) and
``LUXOS_BENCH_REDIS_DB`` give a bench its own database and Redis, so that two can run side by side.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import django
import psycopg
from psycopg import sql

BENCH_PREFIX = "luxos_bench"
# Redis database of the bench's broker and results: the dev server uses 0 and test sessions 4-15.
BENCH_REDIS_DB = int(os.environ.get("LUXOS_BENCH_REDIS_DB") or 1)
SCALES = {"smoke": [1_000], "default": [10_000, 100_000], "large": [10_000, 100_000, 1_000_000]}
RESULTS = Path(__file__).resolve().parent / "results"


def server_url() -> str:
    """The DATABASE_URL settings resolve: the environment's, or the embedded server's (started if need be)."""
    from luxsite import embedded

    embedded.ensure_services()
    return os.environ["DATABASE_URL"]


def bench_database() -> str:
    """The database the bench drops and creates: always named ``luxos_bench…``, never the dev or a test one."""
    embedded = os.environ.get("LUXOS_EMBEDDED_DB_NAME", "")
    name = os.environ.get("LUXOS_BENCH_DB_NAME") or (embedded if embedded.startswith(BENCH_PREFIX) else BENCH_PREFIX)
    if not name.startswith(BENCH_PREFIX):
        raise SystemExit(f"LUXOS_BENCH_DB_NAME must start with {BENCH_PREFIX}, not {name!r}")
    return name


def database_url(url: str, name: str) -> str:
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def database_recreate(server: str, name: str, *, create: bool = True) -> None:
    """Drop database ``name`` on the server of ``server`` (a URL to another database), then create it afresh."""
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if create:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def main(argv: list[str]) -> int:
    database = bench_database()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help=f"keep the {database} database afterwards")
    parser.add_argument(
        "--only", choices=["runtime", "beings", "chronos", "risk", "merge"], help="run one group of benchmarks, not all"
    )
    arguments = parser.parse_args(argv)
    scale_name = os.environ.get("BENCH_SCALE") or "default"
    if scale_name not in SCALES:
        parser.error(f"BENCH_SCALE must be one of {', '.join(SCALES)}, not {scale_name!r}")

    server = server_url()
    if urlsplit(server).path.lstrip("/") == database:
        # The bench's database is dropped and created from another one: the server's own.
        server = database_url(server, "postgres")
    database_recreate(server, database)
    # Settings read DATABASE_URL once, at django.setup(): from here on Django only knows the bench database.
    os.environ["DATABASE_URL"] = database_url(server, database)
    # Likewise Redis and the soul reports, for this process and the bench's Celery worker alike.
    os.environ["REDIS_URL"] = urlsplit(os.environ["REDIS_URL"])._replace(path=f"/{BENCH_REDIS_DB}").geturl()
    souls = tempfile.mkdtemp(prefix="luxos-bench-souls-")
    os.environ["LUXOS_SOUL_LOG_DIR"] = souls
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "luxsite.settings")
    # whitenoise warns about STATIC_ROOT before collectstatic; the API requests here serve no static files.
    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, connections

    from bench import bench_beings, bench_chronos, bench_merge, bench_risk, runtime
    from bench.runner import table_markdown, table_text

    if settings.DATABASES["default"]["NAME"] != database:
        raise SystemExit(f"refusing to run: Django points at {settings.DATABASES['default']['NAME']!r}")
    started = time.perf_counter()
    try:
        call_command("migrate", verbosity=0)
        results = []
        if arguments.only in (None, "runtime"):
            print("== runtime", flush=True)
            runtime_started = time.perf_counter()
            results += runtime.run(scale_name)
            print(f"== runtime took {time.perf_counter() - runtime_started:.0f} s", flush=True)
        for scale in SCALES[scale_name] if arguments.only in (None, "beings") else []:
            print(f"== {scale:,} beings", flush=True)
            scale_started = time.perf_counter()
            results += bench_beings.run(scale)
            print(f"== {scale:,} beings took {time.perf_counter() - scale_started:.0f} s", flush=True)
        if arguments.only in (None, "chronos"):
            chronos_started = time.perf_counter()
            results += bench_chronos.run(SCALES[scale_name])
            print(f"== chronos took {time.perf_counter() - chronos_started:.0f} s", flush=True)
        if arguments.only in (None, "chronos", "risk"):
            results += bench_risk.run(SCALES[scale_name])
        if arguments.only in (None, "chronos", "merge"):
            results += bench_merge.run(SCALES[scale_name])
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            server_version = cursor.fetchone()[0]
    finally:
        connections.close_all()
        shutil.rmtree(souls, ignore_errors=True)
        if not arguments.keep:
            database_recreate(server, database, create=False)
    elapsed = time.perf_counter() - started
    about = (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, BENCH_SCALE={scale_name}, {elapsed:.0f} s; PostgreSQL "
        f"{server_version}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs. ratio = figure / baseline."
    )
    print(f"\n{table_text(results)}\n\n{about}")
    # A bench on a database of its own writes a file of its own.
    written = RESULTS / ("latest.md" if database == BENCH_PREFIX else f"{database}.md")
    written.parent.mkdir(exist_ok=True)
    written.write_text(f"{table_markdown(results)}\n\n{about}\n")
    print(f"written to {written.relative_to(Path.cwd()) if written.is_relative_to(Path.cwd()) else written}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
