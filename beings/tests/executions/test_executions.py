"""Executions: resolving what to run, queueing, real workers running beings in the sandbox, nesting, summons,
permissions, what a run leaves in its being, cancel, the reaper and a worker killed mid-run."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.db.models import Q
from django.test import override_settings
from django.utils import timezone
from guardian.shortcuts import assign_perm

from beings.evolution import being_evolve
from beings.executions import queue as execution_queue
from beings.executions.fold import being_fold
from beings.executions.queue import execution_wait
from beings.executions.reaper import executions_reap
from beings.executions.selectors import execution_get, execution_list, target_resolve
from beings.executions.services import execution_cancel, execution_start
from beings.executions.tasks import execution_run_task
from beings.executions.worker import execution_run
from beings.models import BaseBeing, Execution
from beings.souls import services as soul_services
from luxsite.celery import app
from luxsite.permissions import may
from luxsite.tests.helpers import WAIT_SECONDS, refused, wait_for
from relations.models import Relationship

# Production asks for evidence before a promotion; these tests promote to set the scene, the gate is tested on its own.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("promotion_evidence_waived")]

ECHO = "def run(a, b=2, greeting='hi'):\n    print(greeting, a, b)\n    return {'sum': a + b, 'greeting': greeting}\n"
LOOP = "def run():\n    while True:\n        pass\n"
BUSY = (
    "from datetime import datetime, timedelta\n\n"
    "def run(seconds=1):\n"
    "    end = datetime.now() + timedelta(seconds=seconds)\n"
    "    while datetime.now() < end:\n"
    "        pass\n"
    "    return seconds\n"
)
GREET = "VERSION = 'v1'\n\ndef run():\n    return VERSION\n"
GREET_V2 = GREET.replace("VERSION = 'v1'\n", "VERSION = 'v1'\nVERSION = 'v2'\n")  # one line added: an evolution
CALLS_GREET = (
    "def attempt(ref):\n"
    "    try:\n"
    "        return execution(ref)\n"
    "    except BeingCallError as error:\n"
    "        return str(error)\n"
    "def run():\n"
    "    return [attempt('greet'), attempt('unpromoted')]\n"
)
# Short limits for runs that must hit one: a run keeps the limits of the settings it was queued under.
SHORT = {"LUXOS_SANDBOX_CPU_SECONDS": 2, "LUXOS_SANDBOX_WALL_SECONDS": 3.0}
SANDBOX_PATHS = ("/work", "site-packages", "runtime", "zygote", "restricted", ".py")

worker_test = pytest.mark.django_db(transaction=True)


def function(make_being: Callable[..., BaseBeing], name: str, source: str, **fields: Any) -> BaseBeing:
    genesis = {"source": source, **fields.pop("genesis", {})}
    return make_being(name, genesis=genesis, **fields)


def start(being: BaseBeing, actor: User, **inputs: Any) -> Execution:
    return execution_start(target=target_resolve(ref=str(being.soul), user=actor), actor=actor, **inputs)


def finished(execution: Execution, timeout: float = WAIT_SECONDS) -> Execution:
    """The execution once a worker has finished it; the test fails if none does in time."""
    done = execution_wait(execution=execution, timeout=timeout)
    assert done.finished, f"execution {done.pk} still {done.status} after {timeout:g} s"
    return done


def err(execution: Execution) -> dict[str, str]:
    """The error of a run that has one."""
    assert execution.error is not None, f"execution {execution.pk} has no error: it {execution.status}"
    return dict(execution.error)


def fresh(user: User) -> User:
    """The user afresh: Django caches permissions on the instance."""
    return User.objects.get(pk=user.pk)


@contextlib.contextmanager
def no_new_executions(unchanged: Callable[[], contextlib.AbstractContextManager[None]]) -> Iterator[None]:
    before = Execution.objects.count()
    with unchanged():
        yield
    assert Execution.objects.count() == before


# --- what to run ------------------------------------------------------------------------------------


def test_owner_may_execute_what_they_create(make_being, alice, bob):
    """The creator of a being gets beings.execute_being on it; nobody else does."""
    being = make_being("mine")
    assert may(user=alice, action="execute_being", obj=being)
    assert not may(user=bob, action="execute_being", obj=being)


def test_target_by_soul_alias_hash_and_version(make_being, alice):
    """A soul, an alias or a hash prefix names the current version; `hash` picks an older one, rebuilt."""
    being = function(make_being, "adder", "def run(a, b):\n    return a + b\n")
    first = being.hash
    being = being_evolve(being=being, source=being.genesis["source"] + "LIMIT = 1\n", actor=alice).being
    for ref in (str(being.soul), "adder", being.hash[:12], being.hash):
        target = target_resolve(ref=ref, user=alice)
        assert (target.being.soul, target.hash, target.version, target.environment) == (being.soul, being.hash, 2, "")
    old = target_resolve(ref="adder", user=alice, hash=first[:16])
    assert (old.hash, old.version) == (first, 1)
    assert old.genotype["source"] == "def run(a, b):\n    return a + b\n"
    assert target_resolve(ref=first, user=alice).version == 1


def test_production_runs_the_promoted_hash_from_its_stored_genotype(make_being, alice):
    """In an environment the alias runs the hash promoted there, whatever the being became since."""
    alice.user_permissions.add(Permission.objects.get(codename="promote_soul"))
    alice = fresh(alice)
    being = function(make_being, "greet", GREET)
    soul_services.soul_promote(hash=being.hash, actor=alice)
    promoted = being.hash
    being_evolve(being=being, source=GREET_V2, actor=alice)
    for ref in ("greet", str(being.soul)):
        target = target_resolve(ref=ref, user=alice, environment="production")
        assert (target.hash, target.version, target.environment) == (promoted, 1, "production")
        assert target.genotype["source"] == GREET
    assert target_resolve(ref="greet", user=alice).version == 2


@pytest.mark.parametrize(
    ("ref", "options", "code"),
    [
        ("", {}, "target_invalid"),
        ("x" * 201, {}, "target_invalid"),
        ("00000000-0000-4000-8000-000000000000", {}, "being_not_found"),  # a soul no being has
        ("nobody-has-this-alias", {}, "alias_not_found"),
        ("0123456789abcdef", {}, "soul_not_found"),
        ("OWNED", {"hash": "0" * 64}, "soul_not_found"),
        ("OWNED", {"hash": "abc"}, "hash_invalid"),
        ("OWNED", {"hash": "0" * 64, "environment": "production"}, "target_invalid"),
        ("OWNED", {"environment": "moon"}, "environment_unknown"),
        ("OWNED", {"environment": "production"}, "not_promoted"),
        ("HIDDEN", {}, "being_not_found"),
    ],
)
def test_target_refusals(make_being, alice, bob, ref, options, code):
    """Unknown, invalid, unpromoted and invisible targets are refused with their own code."""
    owned = make_being("owned")
    hidden = make_being("hidden", actor=bob)
    ref = {"OWNED": str(owned.soul), "HIDDEN": str(hidden.soul)}.get(ref, ref)
    refused(code, lambda: target_resolve(ref=ref, user=alice, **options))


# --- queueing ----------------------------------------------------------------------------------------


def test_start_records_a_queued_run_pinned_with_limits_queue_and_priority(
    make_being, alice, django_capture_on_commit_callbacks
):
    """A run is recorded queued with the pinned hash, the settings' limits, the workload's queue and the
    energy's priority, and its task is sent only when the transaction commits."""
    being = function(make_being, "io-echo", ECHO, genesis={"workload": "io"}, energy_level=57)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        execution = start(being, alice, args=[1], kwargs={"b": 5})
    assert len(callbacks) == 1
    row = Execution.objects.get(pk=execution.pk)
    assert (row.status, row.being_id, row.hash, row.version) == ("queued", being.soul, being.hash, 1)
    assert row.alias == "io-echo"
    assert (row.args, row.kwargs, row.queue, row.priority, row.depth, row.attempts) == ([1], {"b": 5}, "io", 5, 0, 0)
    assert (row.environment, row.actor_id, row.actor_name, row.parent_id, row.root_id) == (
        "",
        alice.pk,
        "alice",
        None,
        None,
    )
    assert row.limits == {
        "cpu_seconds": settings.LUXOS_SANDBOX_CPU_SECONDS,
        "wall_seconds": settings.LUXOS_SANDBOX_WALL_SECONDS,
        "memory_bytes": settings.LUXOS_SANDBOX_MEMORY_BYTES,
        "output_bytes": settings.LUXOS_SANDBOX_OUTPUT_BYTES,
        "result_bytes": settings.LUXOS_SANDBOX_RESULT_BYTES,
        "depth": settings.LUXOS_SANDBOX_DEPTH,
        "calls": settings.LUXOS_SANDBOX_CALLS,
        "summons": settings.LUXOS_SANDBOX_SUMMONS,
        "strict": settings.LUXOS_SANDBOX_STRICT,
    }
    uuid.UUID(row.task_id)
    assert row.queued_at is not None and row.started_at is None


@pytest.mark.parametrize(
    ("energy", "priority", "broker"),
    [(None, 0, 9), (-5, 0, 9), (0, 0, 9), (9, 0, 9), (10, 1, 8), (57, 5, 4), (99, 9, 0), (100, 9, 0), (10**6, 9, 0)],
)
def test_energy_orders_the_queue(energy, priority, broker):
    """Ten energy points a priority step, higher first; on Redis the transport serves priority 0 first."""
    assert execution_queue.priority_of(energy) == priority
    assert execution_queue.broker_priority(priority) == broker
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["priority_steps"] == list(range(10))


@pytest.mark.parametrize(
    ("inputs", "code"),
    [
        ({"args": {"a": 1}}, "execution_input_invalid"),
        ({"args": "1, 2"}, "execution_input_invalid"),
        ({"kwargs": [1, 2]}, "execution_input_invalid"),
        ({"kwargs": {1: "a"}}, "execution_input_invalid"),
        ({"kwargs": {"a": "nul\x00"}}, "execution_input_invalid"),
        ({"args": [{"k\x00": 1}]}, "execution_input_invalid"),
        ({"args": ["\ud800"]}, "execution_input_invalid"),
        ({"args": [float("nan")]}, "execution_input_invalid"),
        ({"kwargs": {"a": {"b": float("-inf")}}}, "execution_input_invalid"),
        ({"kwargs": {"a": "x" * 300_000}}, "document_too_large"),
    ],
)
def test_bad_inputs_are_refused_and_nothing_is_recorded(make_being, alice, unchanged, inputs, code):
    """Arguments that are not a JSON list/object, that PostgreSQL cannot store, or that are too large: refused."""
    being = function(make_being, "echo", ECHO)
    with no_new_executions(unchanged):
        refused(code, lambda: start(being, alice, **inputs))


def test_a_user_may_not_run_what_they_may_only_view(make_being, alice, bob, unchanged):
    """View without execute: 403, and no run is recorded."""
    being = function(make_being, "echo", ECHO)
    assign_perm("view_basebeing", bob, being)
    target = target_resolve(ref=str(being.soul), user=bob)
    with no_new_executions(unchanged):
        error = refused("permission_denied", lambda: execution_start(target=target, actor=bob))
    assert error.status == 403


def test_only_function_and_class_beings_run(make_being, alice, unchanged):
    """A data being has no code: 409."""
    data = make_being("facts", kind="data")
    with no_new_executions(unchanged):
        refused("not_runnable", lambda: start(data, alice))


# --- running, in this process (the worker's code without Celery) ------------------------------------


def test_a_result_postgresql_cannot_store_is_a_clear_failure(make_being, alice):
    """NUL characters or lone surrogates in a result end the run failed with a message, never a crash."""
    nul = start(function(make_being, "nul", "def run():\n    return {'text': 'a' + chr(0) + 'b'}\n"), alice)
    surrogate = start(function(make_being, "surrogate", "def run():\n    return [chr(55296)]\n"), alice)
    for execution, problem in ((nul, "NUL characters"), (surrogate, "lone surrogates")):
        done = execution_run(execution_id=execution.pk, worker="here", queue="cpu")
        assert (done.status, done.result, err(done)["type"]) == ("failed", None, "ResultError")
        assert problem in err(done)["message"] and "PostgreSQL cannot store" in err(done)["message"]


def test_memories_stay_bounded(make_being, alice):
    """Each run appends one event to memories; only the newest LUXOS_MEMORY_LIMIT are kept."""
    being = function(make_being, "echo", ECHO)
    with override_settings(LUXOS_MEMORY_LIMIT=2):
        runs = [
            execution_run(execution_id=start(being, alice, args=[n]).pk, worker="here", queue="cpu") for n in range(3)
        ]
        assert being_fold(being.pk) == 3
    being.refresh_from_db()
    assert [event["execution"] for event in being.memories] == [str(run.pk) for run in runs[1:]]
    assert being.self_awareness["runs"] == 3
    # Memories kept by topic take the events under "events"; the topics stay.
    BaseBeing.objects.filter(pk=being.pk).update(memories={"facts": ["sky is blue"], "events": "not a list"})
    with override_settings(LUXOS_MEMORY_LIMIT=1):
        last = execution_run(execution_id=start(being, alice, args=[9]).pk, worker="here", queue="cpu")
        being_fold(being.pk)
    being.refresh_from_db()
    assert being.memories["facts"] == ["sky is blue"]
    assert [event["execution"] for event in being.memories["events"]] == [str(last.pk)]
    assert being.memories["events"][0]["status"] == "succeeded"


def test_a_finished_run_is_never_run_again(make_being, alice):
    """Claiming is one UPDATE: a second delivery of a finished run changes nothing."""
    being = function(make_being, "echo", ECHO)
    done = execution_run(execution_id=start(being, alice, args=[1]).pk, worker="here", queue="cpu")
    being_fold(being.pk)
    being.refresh_from_db()
    again = execution_run(execution_id=done.pk, worker="elsewhere", queue="io")
    assert being_fold(being.pk) == 0
    assert (again.status, again.attempts, again.worker, again.finished_at) == ("succeeded", 1, "here", done.finished_at)
    assert BaseBeing.objects.get(pk=being.pk).memories == being.memories


def test_a_permission_withdrawn_while_queued_rejects_the_run(make_being, alice, bob):
    """Execute permission is checked again when the run starts."""
    being = function(make_being, "echo", ECHO)
    assign_perm("view_basebeing", bob, being)
    assign_perm("beings.execute_being", bob, being)
    execution = start(being, fresh(bob), args=[1])
    from guardian.shortcuts import remove_perm

    remove_perm("beings.execute_being", bob, being)
    done = execution_run(execution_id=execution.pk, worker="here", queue="cpu")
    assert (done.status, err(done)["type"], done.result) == ("rejected", "PermissionDenied", None)


# --- cancelling --------------------------------------------------------------------------------------


def test_cancel_a_queued_run(make_being, alice, bob):
    """A queued run cancelled is killed without running; a worker that takes it later skips it; twice is 409."""
    being = function(make_being, "echo", ECHO, energy_level=5)
    execution = start(being, alice, args=[1])
    cancelled = execution_cancel(execution=execution, actor=alice)
    assert (cancelled.status, err(cancelled)["type"], err(cancelled)["message"]) == (
        "killed",
        "Cancelled",
        "cancelled by alice",
    )
    assert cancelled.finished_at is not None and cancelled.started_at is None
    later = execution_run(execution_id=execution.pk, worker="here", queue="cpu")
    assert (later.status, later.attempts, later.output) == ("killed", 0, "")
    assert being_fold(being.pk) == 1
    being.refresh_from_db()
    # A cancel says nothing about the being: remembered, not counted.
    assert being.energy_level == 5
    assert being.memories[-1]["status"] == "killed"
    assert being.self_awareness.get("runs", 0) == being.self_awareness.get("failures", 0) == 0
    assert "last_error" not in being.self_awareness
    refused("execution_finished", lambda: execution_cancel(execution=execution, actor=alice))
    refused("execution_not_found", lambda: execution_cancel(execution=execution, actor=bob))


# --- reading -----------------------------------------------------------------------------------------


def test_who_sees_which_executions(make_being, alice, bob, root, django_user_model):
    """You see the runs you started and the runs of beings you may change; a superuser sees all."""
    carol = django_user_model.objects.create_user("carol")
    hers = function(make_being, "hers", ECHO)
    assign_perm("view_basebeing", bob, hers)
    assign_perm("beings.execute_being", bob, hers)
    by_alice = start(hers, alice, args=[1])
    by_bob = start(hers, fresh(bob), args=[2])
    his = start(function(make_being, "his", ECHO, actor=bob), fresh(bob), args=[3])

    def ids(user: User, **filters: Any) -> list[uuid.UUID]:
        return [execution.pk for execution in execution_list(user=user, **filters).items]

    assert ids(alice) == [by_bob.pk, by_alice.pk]
    assert ids(bob) == [his.pk, by_bob.pk]
    assert ids(carol) == []
    assert ids(root) == [his.pk, by_bob.pk, by_alice.pk]
    assert execution_get(id=by_bob.pk, user=alice) == by_bob
    refused("execution_not_found", lambda: execution_get(id=by_alice.pk, user=bob))
    refused("execution_not_found", lambda: execution_get(id=uuid.uuid4(), user=alice))
    refused("execution_not_found", lambda: execution_get(id="not-a-uuid", user=alice))


def test_list_filters_and_pages(make_being, alice):
    """Filters by being, status and environment; keyset pages newest first; bad filters are refused."""
    one, two = function(make_being, "one", ECHO), function(make_being, "two", ECHO)
    runs = [start(one, alice, args=[1]), start(two, alice, args=[2]), start(one, alice, args=[3])]
    cancelled = execution_cancel(execution=runs[0], actor=alice)
    assert [e.pk for e in execution_list(user=alice, being=one).items] == [runs[2].pk, runs[0].pk]
    assert [e.pk for e in execution_list(user=alice, status="killed").items] == [cancelled.pk]
    assert len(execution_list(user=alice, environment="development").items) == 3
    assert execution_list(user=alice, environment="production").items == []
    first = execution_list(user=alice, limit=2)
    second = execution_list(user=alice, limit=2, after=first.next_cursor)
    assert [e.pk for e in first.items + second.items] == [runs[2].pk, runs[1].pk, runs[0].pk]
    assert second.next_cursor is None
    refused("bad_status", lambda: execution_list(user=alice, status="sleeping"))
    refused("environment_unknown", lambda: execution_list(user=alice, environment="moon"))
    refused("invalid_cursor", lambda: execution_list(user=alice, after="garbage"))
    refused("bad_limit", lambda: execution_list(user=alice, limit=501))


# --- the reaper --------------------------------------------------------------------------------------


def test_reaper_retries_once_then_kills(make_being, alice, django_capture_on_commit_callbacks):
    """A run stale in `running` goes back to its queue once, and is killed the second time; fresh runs stay."""
    being = function(make_being, "echo", ECHO)
    stale, fresh_run, nested = start(being, alice), start(being, alice), start(being, alice)
    long_ago = timezone.now() - timedelta(minutes=10)
    Execution.objects.filter(pk=stale.pk).update(status="running", attempts=1, started_at=long_ago, worker="dead@x")
    Execution.objects.filter(pk=fresh_run.pk).update(status="running", attempts=1, started_at=timezone.now())
    Execution.objects.filter(pk=nested.pk).update(
        status="running", attempts=1, started_at=long_ago, depth=1, parent=stale
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert executions_reap() == 2
    retried = Execution.objects.get(pk=stale.pk)
    assert (retried.status, retried.attempts, retried.started_at) == ("queued", 1, None)
    sends = [callback for callback in callbacks if callback.__qualname__.startswith("execution_enqueuer")]
    assert retried.task_id != stale.task_id and len(sends) == 1
    killed = Execution.objects.get(pk=nested.pk)
    assert (killed.status, err(killed)["type"]) == ("killed", "WorkerLost")
    assert Execution.objects.get(pk=fresh_run.pk).status == "running"

    Execution.objects.filter(pk=stale.pk).update(status="running", attempts=2, started_at=long_ago)
    assert executions_reap() == 1
    dead = Execution.objects.get(pk=stale.pk)
    assert (dead.status, err(dead)["type"]) == ("killed", "WorkerLost")
    assert "attempt 2 of 2" in err(dead)["message"] and dead.finished_at is not None
    assert executions_reap() == 0


# --- through real workers ----------------------------------------------------------------------------


@worker_test
def test_a_run_on_a_worker_returns_result_output_and_where_it_ran(celery_worker, make_being, alice):
    """Defaults from attributes.arguments, overridden by kwargs; output, timings, worker, queue, layers recorded."""
    being = function(make_being, "echo", ECHO, attributes={"arguments": {"b": 10, "greeting": "hello"}})
    done = finished(start(being, alice, args=[1], kwargs={"greeting": "hey"}))
    assert (done.status, done.result, done.output) == ("succeeded", {"sum": 11, "greeting": "hey"}, "hey 1 10\n")
    assert (done.worker, done.queue, done.attempts, done.error) == (celery_worker.name, "cpu", 1, None)
    assert done.started_at and done.finished_at and done.duration_ms
    assert done.queued_at <= done.started_at <= done.finished_at
    assert 0 < done.duration_ms < 10_000
    assert done.layers == {"rlimits": True, "network": True, "user": True, "landlock": True, "seccomp": True}


@worker_test
def test_self_snapshot_and_class_beings(celery_worker, make_being, alice):
    """`self` is the being's read-only snapshot; a class being is built with its attributes, its method called."""
    source = (
        "class Counter:\n"
        "    def __init__(self, attributes):\n"
        "        self.start = attributes['start']\n"
        "    def run(self, step=1):\n"
        "        return {'next': self.start + step}\n"
    )
    counter = make_being(
        "counter", kind="class", genesis={"source": source}, attributes={"start": 40}, tags=["demo"], energy_level=3
    )
    looker = function(make_being, "looker", "def run():\n    return {k: self[k] for k in self}\n")
    ran = finished(start(counter, alice, kwargs={"step": 2}))
    seen = finished(start(looker, alice))
    assert ran.result == {"next": 42}
    looker.refresh_from_db()
    assert seen.result == {
        "soul": str(looker.soul),
        "name": "looker",
        "version": 1,
        "hash": looker.hash,
        "tags": [],
        "energy_level": 0,
        "attributes": {},
        "self_awareness": {},
    }


@worker_test
def test_errors_carry_only_the_beings_frames(celery_worker, make_being, alice):
    """An exception fails the run with its type, message and a traceback of the being's own lines."""
    being = function(make_being, "divider", "def inner(x):\n    return 1 / x\n\ndef run():\n    return inner(0)\n")
    done = finished(start(being, alice))
    assert (done.status, err(done)["type"], err(done)["message"]) == ("failed", "ZeroDivisionError", "division by zero")
    assert 'File "<being>", line 2, in inner' in err(done)["traceback"]
    assert not any(path in err(done)["traceback"] for path in SANDBOX_PATHS)
    assert done.result is None


@worker_test
def test_limits_stop_hostile_beings_and_the_worker_serves_the_next_run(celery_worker, make_being, alice):
    """An endless loop and a memory bomb are stopped by a limit with a clear error, an output flood is cut at
    the output limit; then a plain run still succeeds on the same worker."""
    with override_settings(**SHORT):
        loop = start(function(make_being, "loop", LOOP), alice)
        bomb = start(function(make_being, "bomb", "def run():\n    return len('x' * (1024 ** 3))\n"), alice)
        flood = start(
            function(
                make_being,
                "flood",
                "def run():\n    for _ in range(2000):\n        print('x' * 999)\n    return 'done'\n",
            ),
            alice,
        )
    loop, bomb, flood = finished(loop), finished(bomb), finished(flood)
    assert (loop.status, err(loop)["type"]) == ("timeout", "TimeoutError")
    assert "limit" in err(loop)["message"]
    assert (bomb.status, err(bomb)["type"]) == ("failed", "MemoryError")
    assert (flood.status, flood.result, flood.output_truncated) == ("succeeded", "done", True)
    assert len(flood.output.encode()) == settings.LUXOS_SANDBOX_OUTPUT_BYTES
    after = finished(start(function(make_being, "echo", ECHO), alice, args=[1]))
    assert (after.status, after.worker) == ("succeeded", celery_worker.name)


@worker_test
def test_nested_calls_are_child_executions_and_counted_invokes(celery_worker, make_being, alice):
    """execution() by alias runs the callee inline as a child run; the `invokes` link counts the calls."""
    adder = function(make_being, "adder", "def run(a, b=0):\n    return a + b\n")
    caller = function(
        make_being, "caller", "def run():\n    return [execution('adder', 1, b=2), execution('adder', 10)]\n"
    )
    done = finished(start(caller, alice))
    assert (done.status, done.result, done.calls) == ("succeeded", [3, 10], 2)
    children = list(Execution.objects.filter(parent=done).order_by("queued_at"))
    assert [(c.being_id, c.args, c.kwargs, c.status, c.result) for c in children] == [
        (adder.soul, [1], {"b": 2}, "succeeded", 3),
        (adder.soul, [10], {}, "succeeded", 10),
    ]
    assert {(c.root_id, c.depth, c.worker, c.actor_id) for c in children} == {
        (done.pk, 1, celery_worker.name, alice.pk)
    }
    assert children[0].limits["wall_seconds"] < done.limits["wall_seconds"]
    link = Relationship.objects.get(source=caller, target=adder)
    assert (link.tags, link.energy_level) == (["invokes"], 2)
    assert link.attributes["last_call"]["execution"] == str(children[1].pk)
    assert "args" not in link.attributes["last_call"], "the inputs are the starter's, not the link's viewers'"
    assert may(user=alice, action="change", obj=link)


@worker_test
def test_a_failing_callee_is_a_being_call_error_for_its_caller(celery_worker, make_being, alice):
    """The caller sees the callee's failure as BeingCallError with the callee's error type, and may catch it."""
    function(make_being, "broken", "def run():\n    raise KeyError('lost')\n")
    catcher = function(
        make_being,
        "catcher",
        (
            "def run():\n"
            "    try:\n"
            "        execution('broken')\n"
            "    except BeingCallError as error:\n"
            "        return str(error)\n"
        ),
    )
    done = finished(start(catcher, alice))
    assert (done.status, done.result) == ("succeeded", "KeyError: 'lost'")


@worker_test
def test_a_cycle_through_execution_is_stopped_by_the_depth_limit(celery_worker, make_being, alice):
    """A calls B calls A ...: the call past LUXOS_SANDBOX_DEPTH is refused and every level fails clearly."""
    ping = function(make_being, "ping", "def run():\n    return execution('pong')\n")
    pong = function(make_being, "pong", "def run():\n    return execution('ping')\n")
    done = finished(start(ping, alice))
    limit = settings.LUXOS_SANDBOX_DEPTH
    assert (done.status, err(done)["type"]) == ("failed", "BeingCallError")
    assert err(done)["message"] == f"CallDepthExceeded: call depth {limit + 1} exceeds the limit of {limit}"
    chain = Execution.objects.filter(Q(pk=done.pk) | Q(root=done.pk)).order_by("depth")
    assert [(e.depth, e.status) for e in chain] == [(depth, "failed") for depth in range(limit + 1)]
    assert Relationship.objects.get(source=ping, target=pong).energy_level == 3
    assert Relationship.objects.get(source=pong, target=ping).energy_level == 2


@worker_test
def test_summon_creates_a_being_through_the_services(celery_worker, make_being, alice):
    """summon() creates a being owned by the user who ran the summoner, linked `summoned`, recorded as a child
    run, and returns its soul, which execution() can run at once."""
    summoner = function(
        make_being,
        "summoner",
        (
            "def run():\n"
            "    soul = summon(name='child', source='def run(x):\\n    return x * 2\\n', attributes={'born': 1},\n"
            "                  tags=['young'])\n"
            "    return {'soul': soul, 'ran': execution(soul, 21)}\n"
        ),
    )
    done = finished(start(summoner, alice))
    assert done.status == "succeeded", done.error
    assert done.result is not None
    child = BaseBeing.objects.get(soul=done.result["soul"])
    assert done.result["ran"] == 42
    assert (child.name, child.kind, child.attributes, child.tags) == ("child", "function", {"born": 1}, ["young"])
    assert all(may(user=alice, action=action, obj=child) for action in ("view", "change", "delete", "execute_being"))
    assert Relationship.objects.get(source=summoner, target=child, tags__contains=["summoned"])
    summon, call = Execution.objects.filter(parent=done).order_by("queued_at")
    assert (summon.being_id, summon.status, summon.result, summon.depth) == (
        child.soul,
        "succeeded",
        {"soul": str(child.soul)},
        1,
    )
    assert (call.being_id, call.result) == (child.soul, 42)
    assert done.summons == 1 and done.calls == 1


@worker_test
def test_summon_refusals_reach_the_being(celery_worker, make_being, alice):
    """Invalid source, an unknown type and NUL characters come back to the being as BeingCallError codes."""
    prober = function(
        make_being,
        "prober",
        (
            "def attempt(**spec):\n"
            "    try:\n"
            "        return summon(**spec)\n"
            "    except BeingCallError as error:\n"
            "        return error.error_type\n"
            "def run():\n"
            "    return [attempt(name='bad', source='def run(:'), attempt(name='odd', type='spaceship'),\n"
            "            attempt(name='nul' + chr(0))]\n"
        ),
    )
    done = finished(start(prober, alice))
    assert done.result == ["source_syntax_error", "genesis_invalid", "SummonInvalid"]
    assert not BaseBeing.objects.filter(genesis__name__in=["bad", "odd"]).exists()


@worker_test
def test_call_budget_and_summon_quota_hold_per_run(celery_worker, make_being, alice):
    """Calls beyond LUXOS_SANDBOX_CALLS and summons beyond LUXOS_SANDBOX_SUMMONS are refused to the being."""
    function(make_being, "one", "def run():\n    return 1\n")
    greedy = function(
        make_being,
        "greedy",
        (
            "def attempt(call):\n"
            "    try:\n"
            "        return call()\n"
            "    except BeingCallError as error:\n"
            "        return error.error_type\n"
            "def run():\n"
            "    calls = [attempt(lambda: execution('one')) for _ in range(3)]\n"
            "    summons = [attempt(lambda: summon(name='spawn', source='def run():\\n    return ' + str(n) + '\\n'))\n"
            "               for n in range(3)]\n"
            "    return {'calls': calls, 'summons': [s if s == 'SummonQuotaExceeded' else 'soul' for s in summons]}\n"
        ),
    )
    with override_settings(LUXOS_SANDBOX_CALLS=2, LUXOS_SANDBOX_SUMMONS=2):
        done = finished(start(greedy, alice))
    assert done.result == {"calls": [1, 1, "CallBudgetExceeded"], "summons": ["soul", "soul", "SummonQuotaExceeded"]}
    assert BaseBeing.objects.filter(genesis__name="spawn").count() == 2
    assert Execution.objects.filter(parent=done).count() == 4


@worker_test
def test_summon_quota_and_call_budget_count_the_nested_runs_too(celery_worker, make_being, alice):
    """A being cannot multiply its allowance by calling itself: summons and calls are counted for the whole run."""
    spawner = function(
        make_being,
        "spawner",
        (
            "def run(level=0):\n"
            "    souls = [summon(name='spawned_%d_%d' % (level, n)) for n in range(2)]\n"
            "    if level < 3:\n"
            "        souls += execution('spawner', level=level + 1)\n"
            "    return souls\n"
        ),
    )
    with override_settings(LUXOS_SANDBOX_SUMMONS=3, LUXOS_SANDBOX_CALLS=5):
        done = finished(start(spawner, alice))
    assert done.status == Execution.Status.FAILED
    assert done.error is not None
    assert done.error["type"] == "BeingCallError", done.error
    assert done.error["message"] == (
        "SummonQuotaExceeded: a run may make at most 3 summon() calls, those of the runs it calls included"
    )
    assert BaseBeing.objects.filter(genesis__name__startswith="spawned_").count() == 3


@worker_test
def test_execution_inside_a_run_has_only_the_starters_permissions(celery_worker, make_being, alice, bob):
    """A being run by bob cannot reach alice's being through execution(): refused, nothing run, no link."""
    secret = function(make_being, "secret", "def run():\n    return 'alice only'\n")
    viewable = function(make_being, "viewable", "def run():\n    return 'seen'\n")
    assign_perm("view_basebeing", bob, viewable)
    reacher = function(
        make_being,
        "reacher",
        (
            "def attempt(ref):\n"
            "    try:\n"
            "        return execution(ref)\n"
            "    except BeingCallError as error:\n"
            "        return str(error)\n"
            f"def run():\n    return [attempt('{secret.soul}'), attempt('secret'), attempt('{viewable.soul}')]\n"
        ),
        actor=bob,
    )
    done = finished(start(reacher, fresh(bob)))
    assert done.status == "succeeded"
    assert done.result == [
        f"being_not_found: no being has soul {secret.soul}",
        "alias_not_found: no being you may view is named 'secret'",
        "permission_denied: you may not execute this being",
    ]
    assert not Execution.objects.filter(being__in=[secret, viewable]).exists()
    assert not Relationship.objects.filter(source=reacher).exists()


@worker_test
def test_production_alias_runs_the_pinned_hash_after_an_evolution(celery_worker, make_being, alice):
    """The alias in production keeps running the promoted version, and so do execution() calls made by a
    production run; in development the newest. A callee not promoted there is refused in production."""
    alice.user_permissions.add(Permission.objects.get(codename="promote_soul"))
    alice = fresh(alice)
    being = function(make_being, "greet", GREET)
    caller = function(make_being, "caller", CALLS_GREET)
    function(make_being, "unpromoted", "def run():\n    return 'dev only'\n")
    for promoted in (being, caller):
        soul_services.soul_promote(hash=promoted.hash, actor=alice)
    evolved = being_evolve(being=being, source=GREET_V2, actor=alice).being
    assert evolved.soul == being.soul

    def run(ref: str, environment: str | None) -> Execution:
        return execution_start(target=target_resolve(ref=ref, user=alice, environment=environment), actor=alice)

    runs = [run("greet", "production"), run("greet", None), run("caller", "production"), run("caller", None)]
    production, development, nested_production, nested_development = (finished(r) for r in runs)
    assert (production.result, production.hash, production.version, production.environment) == (
        "v1",
        being.hash,
        1,
        "production",
    )
    assert (development.result, development.version, development.environment) == ("v2", 2, "")
    assert nested_production.result == ["v1", "not_promoted: no hash of 'unpromoted' is promoted to production"]
    assert nested_development.result == ["v2", "dev only"]
    child = Execution.objects.get(parent=nested_production)
    assert (child.hash, child.environment) == (being.hash, "production")


@worker_test
def test_runs_update_self_awareness_memories_and_energy(celery_worker, make_being, alice):
    """Successes raise energy and failures lower it; self_awareness counts runs; memories hold each run.

    The runs are written into the being off their path: a fold a second after they end, with no call of ours."""
    being = function(
        make_being,
        "moody",
        "def run(fail=False):\n    if fail:\n        raise ValueError('no')\n    return 'ok'\n",
        energy_level=10,
    )
    outcomes = [finished(start(being, alice, kwargs=kwargs)) for kwargs in ({}, {}, {"fail": True})]
    folded = Execution.objects.filter(pk__in=[o.pk for o in outcomes], folded_at__isnull=False)
    wait_for(lambda: folded.count() == 3, timeout=10)
    being.refresh_from_db()
    assert being.energy_level == 11
    awareness = being.self_awareness
    assert (awareness["runs"], awareness["successes"], awareness["failures"], awareness["success_rate"]) == (
        3,
        2,
        1,
        0.6667,
    )
    assert awareness["last_error"]["type"] == "ValueError"
    assert awareness["last_error"]["execution"] == str(outcomes[2].pk)
    assert "message" not in awareness["last_error"], "the message may quote the starter's inputs"
    assert awareness["mean_duration_ms"] == pytest.approx(sum(o.duration_ms or 0 for o in outcomes) / 3, rel=1e-3)
    assert [(event["execution"], event["status"]) for event in being.memories[-3:]] == [
        (str(o.pk), o.status) for o in outcomes
    ]


@worker_test
def test_the_same_task_sent_twice_runs_once(celery_worker, make_being, alice):
    """A redelivered task of a finished run does nothing: the run, its being and its memories stay as they were."""
    being = function(make_being, "echo", ECHO)
    done = finished(start(being, alice, args=[1]))
    wait_for(lambda: Execution.objects.filter(pk=done.pk, folded_at__isnull=False).exists(), timeout=10)
    being.refresh_from_db()
    # The task's own code, in this process: executions keep no Celery result to read back.
    answer = execution_run_task.apply(args=(str(done.pk),)).get()
    assert answer == {"execution": str(done.pk), "status": "succeeded"}
    again = Execution.objects.get(pk=done.pk)
    assert (again.attempts, again.finished_at, again.result) == (1, done.finished_at, done.result)
    assert BaseBeing.objects.get(pk=being.pk).memories == being.memories


@worker_test
def test_cancel_a_running_run(celery_worker, make_being, alice):
    """A running run cancelled is killed at once and a waiter blocked on it wakes within a second;
    the worker discards the outcome and serves the next run."""
    being = function(make_being, "loop", LOOP)
    with override_settings(**SHORT):
        execution = start(being, alice)
    wait_for(lambda: Execution.objects.get(pk=execution.pk).status == "running")
    woke: list[tuple[float, str]] = []
    waiter = threading.Thread(
        target=lambda: woke.append((time.monotonic(), execution_wait(execution=execution, timeout=20).status))
    )
    waiter.start()
    time.sleep(0.5)  # the waiter is blocked on the running run
    cancelled = execution_cancel(execution=execution, actor=alice)
    at = time.monotonic()
    assert (cancelled.status, err(cancelled)["message"]) == ("killed", "cancelled by alice")
    waiter.join(5)
    assert woke and woke[0][1] == "killed" and woke[0][0] - at < 1.0
    after = Execution.objects.get(pk=execution.pk)
    assert (after.status, err(after)["type"], after.result) == ("killed", "Cancelled", None)
    assert finished(start(function(make_being, "echo", ECHO), alice, args=[1])).status == "succeeded"


PRINTS_AND_WAITS = (
    "from datetime import datetime, timedelta\n\n"
    "def run(seconds=2):\n"
    "    print('first line')\n"
    "    end = datetime.now() + timedelta(seconds=seconds)\n"
    "    while datetime.now() < end:\n"
    "        pass\n"
    "    print('last line')\n"
    "    return seconds\n"
)


@worker_test
def test_output_is_on_the_row_while_the_run_runs(celery_worker, make_being, alice):
    """What a run printed is stored as it runs, not only at the end; the final write keeps the whole output."""
    being = function(make_being, "talker", PRINTS_AND_WAITS)
    execution = start(being, alice, kwargs={"seconds": 2})

    seen = wait_for(
        lambda: Execution.objects.filter(pk=execution.pk, status="running", output__contains="first line").first()
    )

    assert seen.output == "first line\n"
    done = finished(execution)
    assert (done.status, done.output) == ("succeeded", "first line\nlast line\n")


@worker_test
def test_higher_energy_runs_first_on_a_busy_worker(celery_worker, make_being, alice, bob):
    """With every worker process busy, a high-energy run queued after another user's low-energy ones starts first."""
    busy = function(make_being, "busy", BUSY)
    blockers = [start(busy, alice, kwargs={"seconds": seconds}) for seconds in (1.5, 3)]
    wait_for(lambda: Execution.objects.filter(pk__in=[b.pk for b in blockers], status="running").count() == 2)
    low = function(make_being, "low", ECHO, energy_level=0, actor=bob)
    high = function(make_being, "high", ECHO, energy_level=95)
    lows = [start(low, fresh(bob), args=[n]) for n in range(2)]
    urgent = start(high, alice, args=[9])
    lows, urgent = [finished(run) for run in lows], finished(urgent)
    assert (urgent.priority, lows[0].priority) == (9, 0)
    assert urgent.started_at and all(run.started_at and urgent.started_at < run.started_at for run in lows)
    for blocker in blockers:
        finished(blocker)


# --- a worker killed mid-run -------------------------------------------------------------------------


@contextlib.contextmanager
def lone_worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A worker of our own (one process) in its own process group, killed at the end whatever happened."""
    name = f"lone-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "luxsite",
        "worker",
        "-n",
        name,
        "-Q",
        "cpu,io",
        "-c",
        "1",
        "--pool",
        "prefork",
        "--without-heartbeat",
        "--without-mingle",
        "--without-gossip",
        "-l",
        "WARNING",
    ]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=settings.BASE_DIR,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    try:
        wait_for(lambda: app.control.ping(destination=[name], timeout=0.5), timeout=60)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@worker_test
def test_a_worker_killed_mid_run_leaves_nothing_running(celery_worker, subprocess_env, make_being, alice, tmp_path):
    """SIGKILL the worker running a run: the reaper queues it again once; killed a second time, it ends killed."""
    for queue in ("cpu", "io"):  # the session's worker must not take this run
        app.control.cancel_consumer(queue, destination=[celery_worker.name], reply=True)
    try:
        being = function(make_being, "spinner", BUSY)
        with override_settings(**SHORT):
            execution = start(being, alice, kwargs={"seconds": 60})
        log = tmp_path / "worker.log"
        with override_settings(LUXOS_EXECUTION_REAP_GRACE_SECONDS=0.5):
            for attempt in (1, 2):
                running = Execution.objects.filter(pk=execution.pk, status="running", attempts=attempt)
                with lone_worker(subprocess_env, log) as worker:
                    wait_for(running.exists)
                    os.killpg(worker.pid, signal.SIGKILL)
                assert wait_for(executions_reap, timeout=20) == 1
                expected = "queued" if attempt == 1 else "killed"
                assert Execution.objects.get(pk=execution.pk).status == expected
    finally:
        for queue in ("cpu", "io"):
            app.control.add_consumer(queue, destination=[celery_worker.name], reply=True)
    dead = Execution.objects.get(pk=execution.pk)
    assert (dead.status, dead.attempts, err(dead)["type"]) == ("killed", 2, "WorkerLost")
    assert "attempt 2 of 2" in err(dead)["message"]
    assert not Execution.objects.filter(status="running").exists()
    being_fold(being.pk)
    being.refresh_from_db()
    assert being.memories[-1]["status"] == "killed"
