"""The run path: the completion signal, the fold of finished runs into their being, re-sent and redelivered runs."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from beings.executions.claim import execution_claim
from beings.executions.fold import being_fold, beings_fold_sweep
from beings.executions.jobs import execution_job
from beings.executions.queue import execution_wait
from beings.executions.reaper import executions_reap
from beings.executions.selectors import target_resolve
from beings.executions.services import execution_call, execution_cancel, execution_start
from beings.executions.signals import (
    Woken,
    execution_signal,
    execution_signal_confirm,
    execution_signal_subscribe,
    execution_signal_wait,
    outcome_apply,
    redis_client,
)
from beings.executions.worker import execution_run
from beings.models import BaseBeing, Execution
from beings.runtime.cancel import execution_channel
from beings.tests.executions.test_executions import BUSY, LOOP, lone_worker
from luxsite.celery import app
from luxsite.models import ApiToken
from luxsite.tests.helpers import refused, wait_for
from luxsite.tokens import token_authenticate, token_create

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


def test_a_wait_is_not_woken_by_an_earlier_runs_signal() -> None:
    """A thread's waits share a connection: a signal of the run it waited on before does not end the next wait."""
    earlier, later = uuid.uuid4(), uuid.uuid4()
    assert not execution_signal_wait(earlier, 0.1, ready=lambda: False)
    execution_signal(earlier, "succeeded")  # too late for its wait, and not the next wait's run
    started = time.monotonic()
    assert not execution_signal_wait(later, 0.5, ready=lambda: False)
    assert time.monotonic() - started >= 0.5
    threading.Timer(0.2, lambda: execution_signal(later, "failed")).start()
    assert execution_signal_wait(later, 5, ready=lambda: False)


def test_a_wait_subscribed_and_confirmed_ahead_hears_the_finish_without_looking() -> None:
    """Subscribed before the run was sent and confirmed, a wait takes the next signal and never asks ``ready``."""
    execution_id = uuid.uuid4()
    execution_signal_subscribe(execution_id)
    execution_signal_confirm(execution_id)
    assert not execution_signal_wait(execution_id, 0.3, ready=lambda: True)  # no look: the row cannot be ahead
    execution_signal_subscribe(execution_id)
    execution_signal_confirm(execution_id)
    execution_signal(execution_id, "failed")
    assert execution_signal_wait(execution_id, 5, ready=lambda: False) == Woken(b"failed")


def test_a_wait_subscribed_ahead_but_never_confirmed_still_looks() -> None:
    """A subscription whose confirmation was not read before the run left: the wait reads it, then looks at the row."""
    execution_id = uuid.uuid4()
    execution_signal_subscribe(execution_id)
    started = time.monotonic()
    assert execution_signal_wait(execution_id, 5, ready=lambda: True) == Woken()
    assert time.monotonic() - started < 1


def test_a_call_waits_on_its_insert_alone_and_a_refused_one_leaves_no_subscription(
    celery_worker, make_being, alice, bob
):
    """``execution_call`` (the API's wait) costs one statement, the insert; a refused call unsubscribes."""
    being = make_being("moody", genesis={"source": MOODY})
    target = target_resolve(ref=str(being.soul), user=alice)
    with CaptureQueriesContext(connection) as queries:
        done = execution_call(target=target, actor=alice, wait=20)
    assert (done.status, done.result) == ("succeeded", "ok")
    assert [query["sql"].split()[0] for query in queries.captured_queries] == ["WITH"]  # the insert
    assert redis_client().pubsub_channels("celery-task-meta-*") == []  # nor a subscription to a Celery result
    refused("permission_denied", lambda: execution_call(target=target, actor=bob, wait=20))
    assert not Execution.objects.filter(actor_id=bob.pk).exists()
    assert redis_client().pubsub_channels(execution_channel("*")) == []  # no run's channel is listened to


def test_a_call_whose_wait_ends_first_waits_for_its_insert_to_reach_the_disk(celery_worker, make_being, alice):
    """The insert commits without waiting for the disk; a run still queued or running when the wait ends is
    flushed before its id is given out (a finished one was, by its durable finish)."""
    target = target_resolve(ref=str(make_being("spinner", genesis={"source": LOOP}).soul), user=alice)
    with CaptureQueriesContext(connection) as queries:
        pending = execution_call(target=target, actor=alice, wait=0.3)
    assert pending.status in ("queued", "running")
    assert queries.captured_queries[-1]["sql"] == "SELECT pg_current_xact_id()"  # after reading how it stands
    execution_cancel(execution=pending, actor=alice)


PRINTS = "def run():\n    print('hi')\n    return {'b': [1, 2.5], 'a': None}\n"


def test_a_waiter_takes_the_outcome_from_the_signal_as_the_row_holds_it(celery_worker, make_being, alice):
    """A run its worker finished wakes its waiter with the outcome: the run as its row holds it, not read again."""
    being = make_being("printer", genesis={"source": PRINTS})
    execution = execution_start(target=target_resolve(ref=str(being.soul), user=alice), actor=alice)
    with CaptureQueriesContext(connection) as queries:
        done = execution_wait(execution=execution, timeout=20)
    assert (done.status, done.result, done.output) == ("succeeded", {"a": None, "b": [1, 2.5]}, "hi\n")
    # At most the one look at whether it had already finished, made before the wait began.
    assert len(queries.captured_queries) <= 1
    row = Execution.objects.get(pk=execution.pk)
    for field in Execution._meta.concrete_fields:
        if field.attname != "folded_at":  # the being's fold comes later and is no part of the run's outcome
            assert getattr(done, field.attname) == getattr(row, field.attname), field.attname


def test_a_wait_for_a_run_already_finished_reads_it_once(make_being, alice):
    """A run that ended before its waiter looked is read by that look itself: one statement, no second read."""
    being = make_being("moody", genesis={"source": MOODY})
    queued = start_unsent(being, alice)
    execution_run(execution_id=queued.pk, worker="here", queue="cpu")
    with CaptureQueriesContext(connection) as queries:
        done = execution_wait(execution=queued, timeout=5)
    assert (done.status, done.result) == ("succeeded", "ok")
    assert len(queries.captured_queries) == 1


def test_a_signal_without_an_outcome_leaves_the_run_to_be_read(make_being, alice):
    """A bare status (a cancel, the reaper) or a message that cannot be read changes nothing: the row is read."""
    being = make_being("moody", genesis={"source": MOODY})
    execution = start_unsent(being, alice)
    for message in (b"killed", b"{not json", b'{"status": "succeeded"}', None):
        assert not outcome_apply(execution, message)
        assert (execution.status, execution.result) == ("queued", None)


# --- the fold ---------------------------------------------------------------------------------------

MOODY = "def run(fail=False):\n    if fail:\n        raise ValueError('no')\n    return 'ok'\n"


def start_unsent(being: BaseBeing, actor: User, **start: Any) -> Execution:
    """A run recorded but never sent: only this process claims it, though a session's worker may be about."""
    with transaction.atomic():
        execution = execution_start(target=target_resolve(ref=str(being.soul), user=actor), actor=actor, **start)
        connection.run_on_commit.clear()
    return execution


def run_here(being: BaseBeing, actor: User, **kwargs: Any) -> Execution:
    """A run started and carried out in this process (no worker): its row finished, its being not yet told."""
    execution = start_unsent(being, actor, kwargs=kwargs)
    return execution_run(execution_id=execution.pk, worker="here", queue="cpu")


def test_a_run_writes_only_its_row_and_one_fold_writes_the_being(make_being, alice):
    """Runs leave their being untouched; one fold writes them all, in finish order, in one UPDATE of the being."""
    being = make_being("moody", genesis={"source": MOODY}, energy_level=10)
    before = BaseBeing.objects.get(pk=being.pk)
    runs = [run_here(being, alice, **kwargs) for kwargs in ({}, {"fail": True}, {})]
    after_runs = BaseBeing.objects.get(pk=being.pk)
    assert (after_runs.memories, after_runs.self_awareness, after_runs.energy_level) == (
        before.memories,
        before.self_awareness,
        10,
    )
    with CaptureQueriesContext(connection) as queries:
        assert being_fold(being.pk) == 3
    being_writes = [query for query in queries.captured_queries if "UPDATE base_beings" in query["sql"]]
    assert len(being_writes) == 1
    being.refresh_from_db()
    assert [event["execution"] for event in being.memories[-3:]] == [str(run.pk) for run in runs]
    assert (being.self_awareness["runs"], being.self_awareness["failures"], being.energy_level) == (3, 1, 11)
    assert not Execution.objects.filter(pk__in=[run.pk for run in runs], folded_at__isnull=True).exists()
    assert being_fold(being.pk) == 0


def test_concurrent_folds_take_each_run_once(make_being, alice):
    """Folds of one being at once (the debounced task and the sweep) write every run exactly once."""
    being = make_being("moody", genesis={"source": MOODY})
    runs = [run_here(being, alice) for _ in range(6)]
    counts: list[int] = []

    def fold() -> None:
        try:
            counts.append(being_fold(being.pk))
        finally:
            connection.close()

    folders = [threading.Thread(target=fold) for _ in range(4)]
    for folder in folders:
        folder.start()
    for folder in folders:
        folder.join(30)
    assert sum(counts) == 6
    being.refresh_from_db()
    assert [event["execution"] for event in being.memories if event.get("event") == "run"] == [
        str(run.pk) for run in runs
    ]
    assert being.self_awareness["runs"] == 6


def test_the_sweep_folds_runs_whose_fold_never_came(make_being, alice):
    """A worker that died between a run's finish and its fold loses nothing: the sweep folds the run."""
    being = make_being("moody", genesis={"source": MOODY})
    lost = run_here(being, alice)
    # As if the fold scheduled at its finish never ran: the run is finished and unfolded, a while ago.
    Execution.objects.filter(pk=lost.pk).update(finished_at=timezone.now() - timedelta(minutes=1))
    recent = run_here(being, alice)
    assert beings_fold_sweep() >= 2  # the being's recent run is folded with the old one
    being.refresh_from_db()
    assert [event["execution"] for event in being.memories[-2:]] == [str(lost.pk), str(recent.pk)]
    assert beings_fold_sweep() == 0


def test_a_stream_of_runs_is_folded_a_second_behind_never_left_to_the_sweep(celery_worker, make_being, alice):
    """Runs of one being finishing across several fold windows are each in the being within about a second:
    the scheduled folds take them all, none waits for the sweep (which folds only runs five seconds old)."""
    being = make_being("moody", genesis={"source": MOODY})
    runs = []
    for _ in range(8):
        runs.append(run_here(being, alice).pk)
        time.sleep(0.3)
    folded = Execution.objects.filter(pk__in=runs, folded_at__isnull=False)
    wait_for(lambda: folded.count() == len(runs), timeout=5)
    lags = []
    for run in folded:
        assert run.folded_at is not None and run.finished_at is not None
        lags.append((run.folded_at - run.finished_at).total_seconds())
    assert max(lags) < 1.6, lags
    being.refresh_from_db()
    assert being.self_awareness["runs"] == len(runs)


def test_runs_the_host_refused_are_remembered_not_counted(make_being, alice, bob):
    """A run rejected by the host (its starter lost the permission) is in memories but not a failure of the being."""
    being = make_being("moody", genesis={"source": MOODY}, energy_level=10)
    assign_perm("view_basebeing", bob, being)
    assign_perm("beings.execute_being", bob, being)
    execution = start_unsent(being, User.objects.get(pk=bob.pk), kwargs={})
    remove_perm("beings.execute_being", bob, being)
    assert execution_run(execution_id=execution.pk, worker="here", queue="cpu").status == "rejected"
    being_fold(being.pk)
    being.refresh_from_db()
    assert being.memories[-1]["status"] == "rejected"
    assert (being.self_awareness.get("runs", 0), being.self_awareness.get("failures", 0)) == (0, 0)
    assert being.energy_level == 10


# --- the claim, connections, tokens ------------------------------------------------------------------


def elsewhere(call: Callable[[], Any]) -> Any:
    """``call`` on another thread, so on a database connection of its own (as another worker would)."""
    answer: list[Any] = []

    def target() -> None:
        try:
            answer.append(call())
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    return answer[0]


def test_the_claim_brings_what_the_job_needs(make_being, alice):
    """A run of the being's current hash is claimed in one statement that carries its job: no other query.

    While its worker lives no other claim takes it; once the worker's connection is gone, the next claim does."""
    being = make_being("moody", genesis={"source": MOODY}, attributes={"colour": "blue"})
    execution = start_unsent(being, alice, args=[])
    with CaptureQueriesContext(connection) as queries:
        claimed = execution_claim(execution_id=execution.pk, worker="here", queue="cpu")
        assert claimed is not None
        job = execution_job(claimed)
    assert len(queries.captured_queries) == 1
    assert (job["source"], job["self"]["name"], job["attributes"]) == (MOODY, "moody", {"colour": "blue"})
    # Taken: another worker's claim of the running run (its worker alive: this connection) gets nothing.
    assert elsewhere(lambda: execution_claim(execution_id=execution.pk, worker="there", queue="cpu")) is None
    connection.close()  # the worker dies: its connection, and the run's lock, go with it
    retried = elsewhere(lambda: execution_claim(execution_id=execution.pk, worker="there", queue="cpu"))
    assert retried is not None and (retried.status, retried.attempts, retried.worker) == ("running", 2, "there")


def test_the_claim_is_prepared_once_and_survives_a_column_added_under_it(make_being, alice):
    """The claim is a statement prepared on the worker's connection; a migration that adds a column to the table
    while workers run (a deploy) does not break it."""
    being = make_being("moody", genesis={"source": MOODY})
    first, second = (start_unsent(being, alice) for _ in range(2))
    assert execution_claim(execution_id=first.pk, worker="here", queue="cpu") is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%WITH claimed AS%"])
        assert cursor.fetchone()[0] == 1
        cursor.execute("ALTER TABLE executions ADD COLUMN added_by_a_deploy integer")
    try:
        claimed = execution_claim(execution_id=second.pk, worker="here", queue="cpu")
        assert claimed is not None and (claimed.pk, claimed.status) == (second.pk, "running")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE executions DROP COLUMN added_by_a_deploy")


def test_a_broken_connection_costs_a_run_nothing(make_being, alice):
    """No check before each use: a connection cut since the last task fails the claim, which retries on a new one."""
    being = make_being("moody", genesis={"source": MOODY})
    execution = start_unsent(being, alice)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()

    def cut() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        finally:
            connection.close()

    cutter = threading.Thread(target=cut)
    cutter.start()
    cutter.join(10)
    done = execution_run(execution_id=execution.pk, worker="here", queue="cpu")
    assert (done.status, done.result) == ("succeeded", "ok")


def test_a_token_records_its_last_use_once_a_minute(alice):
    """Authenticating with a token writes its last use the first time, then not again within the minute."""
    token, secret = token_create(user=alice)
    assert token_authenticate(secret) == alice
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    with CaptureQueriesContext(connection) as queries:
        assert token_authenticate(secret) == alice
    assert [query for query in queries.captured_queries if query["sql"].startswith("UPDATE")] == []
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    token_authenticate(secret)
    later = ApiToken.objects.get(pk=token.pk).last_used_at
    assert later is not None and later > first


# --- runs whose worker died, runs whose message was lost --------------------------------------------------


@contextlib.contextmanager
def session_worker_paused(celery_worker: Any) -> Iterator[None]:
    """The session's worker takes nothing from the queues while the block runs."""
    for queue in ("cpu", "io"):
        app.control.cancel_consumer(queue, destination=[celery_worker.name], reply=True)
    try:
        yield
    finally:
        for queue in ("cpu", "io"):
            app.control.add_consumer(queue, destination=[celery_worker.name], reply=True)


def test_a_run_whose_pool_process_died_is_retried_at_once(celery_worker, subprocess_env, make_being, alice, tmp_path):
    """kill -9 the pool process running a run: the redelivered task runs it again at once (attempt 2), long before
    the reaper would, and a waiter blocked on the run follows it to its end."""
    being = make_being("spinner", genesis={"source": BUSY})
    with session_worker_paused(celery_worker), lone_worker(subprocess_env, tmp_path / "worker.log") as worker:
        with override_settings(LUXOS_SANDBOX_WALL_SECONDS=20.0, LUXOS_SANDBOX_CPU_SECONDS=20):
            execution = execution_start(
                target=target_resolve(ref=str(being.soul), user=alice), actor=alice, kwargs={"seconds": 2}
            )
        ended: list[Execution] = []
        waiter = threading.Thread(target=lambda: ended.append(execution_wait(execution=execution, timeout=40)))
        waiter.start()
        wait_for(Execution.objects.filter(pk=execution.pk, status="running", attempts=1).exists)
        [pool] = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
        killed_at = time.monotonic()
        os.kill(int(pool), signal.SIGKILL)
        waiter.join(40)
    assert ended, "the waiter did not return"
    done = ended[0]
    assert (done.status, done.result, done.attempts) == ("succeeded", 2, 2)
    # The reaper would have waited for the wall-clock limit and its grace (50 s) before retrying.
    assert time.monotonic() - killed_at < 15


def test_a_run_whose_message_was_lost_is_sent_again_and_runs(celery_worker, make_being, alice):
    """The web dies between commit and publish: the run stays queued until the reaper sends it again; then it runs
    once, however many copies arrive."""
    being = make_being("moody", genesis={"source": MOODY})
    with transaction.atomic():
        execution = execution_start(target=target_resolve(ref=str(being.soul), user=alice), actor=alice)
        connection.run_on_commit.clear()  # the publish that never happened
    time.sleep(1)
    assert Execution.objects.get(pk=execution.pk).status == "queued"
    with override_settings(LUXOS_EXECUTION_RESEND_SECONDS=0.5):
        assert executions_reap() == 1
        assert executions_reap() == 0  # sent again just now: not again before it has waited twice as long
    done = execution_wait(execution=execution, timeout=20)
    assert (done.status, done.result, done.attempts) == ("succeeded", "ok", 1)


# --- cancel ---------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=False)  # its runs stay queued: no worker sees them
def test_only_the_starter_and_superusers_cancel_a_run(make_being, alice, bob, root):
    """The owner of a being sees bob's run of it but may not cancel it; bob may, and so may a superuser."""
    being = make_being("moody", genesis={"source": MOODY})
    assign_perm("view_basebeing", bob, being)
    assign_perm("beings.execute_being", bob, being)
    bob = User.objects.get(pk=bob.pk)
    target = target_resolve(ref=str(being.soul), user=bob)
    first, second = (execution_start(target=target, actor=bob) for _ in range(2))
    refused("permission_denied", lambda: execution_cancel(execution=first, actor=alice))
    assert Execution.objects.get(pk=first.pk).status == "queued"
    assert execution_cancel(execution=first, actor=bob).status == "killed"
    assert execution_cancel(execution=second, actor=root).status == "killed"


def test_a_cancel_ends_a_running_child_at_once_and_frees_the_worker(
    celery_worker, subprocess_env, make_being, alice, tmp_path
):
    """Cancel a `while True` run on a one-process worker: its waiter wakes, and within a second the worker has
    taken and finished the next run, long before the looping run's 20 s wall-clock limit."""
    looping = make_being("looping", genesis={"source": LOOP})
    quick = make_being("moody", genesis={"source": MOODY})
    with session_worker_paused(celery_worker), lone_worker(subprocess_env, tmp_path / "worker.log"):
        with override_settings(LUXOS_SANDBOX_WALL_SECONDS=20.0, LUXOS_SANDBOX_CPU_SECONDS=20):
            execution = execution_start(target=target_resolve(ref=str(looping.soul), user=alice), actor=alice)
        wait_for(Execution.objects.filter(pk=execution.pk, status="running").exists)
        ended: list[Execution] = []
        waiter = threading.Thread(target=lambda: ended.append(execution_wait(execution=execution, timeout=20)))
        waiter.start()
        time.sleep(0.5)  # the waiter is subscribed, the child is looping
        cancelled_at = time.monotonic()
        execution_cancel(execution=execution, actor=alice)
        waiter.join(5)
        following = execution_start(target=target_resolve(ref=str(quick.soul), user=alice), actor=alice)
        done = execution_wait(execution=following, timeout=10)
        took = time.monotonic() - cancelled_at
    assert ended and ended[0].status == "killed"
    assert (done.status, done.result) == ("succeeded", "ok")
    assert took < 1.5, f"the next run finished {took:.2f} s after the cancel"
