"""Check the database, Redis and the sandbox layers in force and, with ``--task``, that a worker answers."""

from __future__ import annotations

import time
from typing import Any

import redis
from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from kombu.exceptions import OperationalError as BrokerError

from beings.runtime.health import HealthReport, health_report, one_line
from luxsite.tasks import health


class Command(BaseCommand):
    help = "Check the database, Redis and the sandbox; with --task, run the health task on a worker and await it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--task", action="store_true", help="also send luxsite.tasks.health to a worker")
        parser.add_argument("--queue", choices=["io", "cpu"], default="io", help="queue for --task (default io)")
        parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the task (default 30)")

    def handle(self, *args: Any, **options: Any) -> None:
        report = health_report()
        rows = [_check_database(report), _check_redis(), _check_sandbox(report)]
        if options["task"]:
            if rows[1][1] == "ok":
                rows.append(_check_task(options["queue"], options["timeout"]))
            else:
                rows.append((f"task:{options['queue']}", "skipped", "Redis is unreachable"))

        width = max(len(name) for name, _, _ in rows)
        for name, status, detail in rows:
            self.stdout.write(f"{name:<{width}}  {status:<7}  {detail}")
        failed = [name for name, status, _ in rows if status != "ok"]
        if failed:
            raise CommandError(f"health check failed: {', '.join(failed)}")


def _check_database(report: HealthReport) -> tuple[str, str, str]:
    if not report.database:
        return ("database", "FAILED", str(report.database_problem))
    return ("database", "ok", f"{connection.vendor} {connection.settings_dict['NAME']}")


def _check_redis() -> tuple[str, str, str]:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        return ("redis", "FAILED", one_line(error))
    finally:
        client.close()
    options = client.connection_pool.connection_kwargs
    return ("redis", "ok", f"PONG from {options.get('host', options.get('path'))}:{options.get('port', '')}")


def _check_sandbox(report: HealthReport) -> tuple[str, str, str]:
    """The being sandbox's layers on this host; a missing one fails only under LUXOS_SANDBOX_STRICT."""
    if report.sandbox_problem_line is not None:
        return ("sandbox", "FAILED", report.sandbox_problem_line)
    in_force, missing = report.layers_in_force, report.layers_missing
    if not missing:
        return ("sandbox", "ok", f"in force: {', '.join(in_force)}")
    detail = f"in force: {', '.join(in_force) or 'none'}; MISSING: {', '.join(missing)}"
    if report.strict:
        return ("sandbox", "FAILED", f"{detail} (LUXOS_SANDBOX_STRICT refuses to run being code)")
    return ("sandbox", "ok", f"{detail} (LUXOS_SANDBOX_STRICT is off)")


def _check_task(queue: str, timeout: float) -> tuple[str, str, str]:
    name = f"task:{queue}"
    started = time.monotonic()
    try:
        result = health.apply_async(queue=queue)
    except BrokerError as error:
        return (name, "FAILED", f"could not send: {one_line(error)}")
    try:
        answer = result.get(timeout=timeout, propagate=False)
    except CeleryTimeoutError:
        return (name, "FAILED", f"no worker answered on queue {queue} within {timeout:g} s")
    succeeded = result.successful()
    result.forget()
    if not succeeded:
        return (name, "FAILED", f"the task failed: {answer!r}")
    if not answer.get("database"):
        return (name, "FAILED", f"{answer['worker']} cannot reach the database")
    return (name, "ok", f"{answer['worker']} answered in {time.monotonic() - started:.2f} s")
