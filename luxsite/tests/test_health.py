"""The health probe through a real worker, the health command, and the Celery contract it relies on."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta
from io import StringIO

import pytest
import redis
from celery.result import AsyncResult
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from luxsite.celery import app
from luxsite.tasks import health


@pytest.mark.parametrize("queue", ["io", "cpu"])
def test_health_task_runs_on_a_worker_of_each_queue(celery_worker, queue):
    """A health task sent to either queue comes back from the worker, which reached the database."""
    answer = health.apply_async(queue=queue).get(timeout=30)

    assert answer["status"] == "ok"
    assert answer["database"] is True
    assert answer["worker"] == celery_worker.name
    assert abs(timezone.now() - datetime.fromisoformat(answer["at"])) < timedelta(minutes=1)


def test_health_command_reports_database_redis_and_worker(celery_worker, transactional_db):
    """`manage.py health --task` succeeds and names the worker that answered."""
    out = StringIO()

    call_command("health", "--task", "--timeout", "30", stdout=out)

    lines = out.getvalue().splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["database", "ok"],
        ["redis", "ok"],
        ["sandbox", "ok"],
        ["task:io", "ok"],
    ]
    assert celery_worker.name in lines[3]


def test_health_command_fails_when_redis_is_unreachable(transactional_db):
    """With Redis down the command exits non-zero, says Redis failed, and does not wait for a worker."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    out = StringIO()

    with override_settings(REDIS_URL=f"redis://127.0.0.1:{closed_port}/0"), pytest.raises(CommandError) as failure:
        call_command("health", "--task", stdout=out)

    assert str(failure.value) == "health check failed: redis, task:io"
    assert "skipped" in out.getvalue()


def test_celery_speaks_json_only_and_acknowledges_late():
    """Tasks and results are JSON, acknowledged after they run, and requeued when a worker process dies."""
    conf = app.conf

    assert (conf.task_serializer, conf.result_serializer) == ("json", "json")
    assert list(conf.accept_content) == ["json"]
    assert list(conf.result_accept_content) == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert set(app.amqp.queues) == {"cpu", "io"}
    assert conf.task_default_queue == "cpu"


def test_worker_discards_a_pickled_task_without_running_it(celery_worker):
    """A task message serialized with pickle is discarded unrun: workers never unpickle what Redis holds."""
    pickled = app.send_task("luxsite.tasks.health", queue="io", serializer="pickle")
    # The worker takes messages from a queue in order: once the JSON task behind it has run,
    # the pickled one has been handled.
    behind = health.apply_async(queue="io")

    assert behind.get(timeout=30)["status"] == "ok"
    assert AsyncResult(pickled.id, app=app).state == "PENDING"
    with redis.Redis.from_url(app.conf.broker_url) as client:
        assert client.llen("io") == 0
