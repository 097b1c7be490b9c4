"""The run path: the completion signal, the fold of finished runs into their being, re-sent and redelivered runs."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.db import transaction

from beings.executions.signals import execution_signal, execution_signal_wait

pytestmark = pytest.mark.django_db(transaction=True)


def test_signal_wakes_a_waiter_only_after_commit() -> None:
    """A status signalled inside a transaction reaches a waiter when it commits, not before."""
    execution_id = uuid.uuid4()
    woke: list[float] = []
    waiter = threading.Thread(
        target=lambda: woke.append(time.monotonic()) if execution_signal_wait(execution_id, 5) else None
    )
    waiter.start()
    time.sleep(0.2)
    with transaction.atomic():
        execution_signal(execution_id, "succeeded")
        time.sleep(0.3)
        committed = time.monotonic()
    waiter.join(5)
    assert woke and woke[0] >= committed


def test_signal_wait_sees_a_run_finished_before_it_subscribed() -> None:
    """A finish committed before the wait is read by ``ready`` once subscribed: no wait to the deadline."""
    started = time.monotonic()
    assert execution_signal_wait(uuid.uuid4(), 5, ready=lambda: True)
    assert time.monotonic() - started < 1


def test_signal_wait_times_out_without_a_signal() -> None:
    """Nobody signals: the wait returns False at its deadline."""
    started = time.monotonic()
    assert not execution_signal_wait(uuid.uuid4(), 0.3, ready=lambda: False)
    assert 0.3 <= time.monotonic() - started < 2
