"""A restore killed at a random instant (kill -9 of its process, or its connection cut) leaves the tables untouched."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection

from beings.models import BaseBeing
from chronos.models import Change, Checkpoint
from chronos.services import checkpoint_create, checkpoint_restore
from chronos.tests.helpers import connect, tables_dump
from luxsite.tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

BEINGS = 10_000
ROUNDS = 5  # UPDATEs of every being after the checkpoint: BEINGS * ROUNDS changes to undo
CHECKPOINT = "before-the-storm"
RESTORE_TIMEOUT = 300.0


def digest() -> str:
    """The sha256 of both tables' ordered dump: equal digests, equal bytes."""
    return hashlib.sha256(json.dumps(tables_dump(), sort_keys=True).encode()).hexdigest()


def storm(root: User, make_being: Callable[..., BaseBeing]) -> tuple[Checkpoint, str]:
    """10,000 beings, a checkpoint, then 50,000 changes after it; the checkpoint and the digest of the tables there."""
    template = make_being("storm", actor=root, tags=["storm"], attributes={"n": 0, "seen": [0]}, memories=[])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO base_beings (soul, tags, energy_level, genesis, attributes, memories, self_awareness) "
            "SELECT gen_random_uuid(), tags, energy_level, jsonb_set(genesis, '{name}', to_jsonb('storm-' || n)), "
            "attributes, memories, self_awareness FROM base_beings, generate_series(2, %s) AS n WHERE soul = %s",
            [BEINGS, template.soul],
        )
    checkpoint = checkpoint_create(name=CHECKPOINT, actor=root)
    at_checkpoint = digest()
    with connection.cursor() as cursor:
        for round_ in range(1, ROUNDS + 1):
            # A changed key, an array growing at its tail and losing its head, an event appended.
            cursor.execute(
                "UPDATE base_beings SET attributes = attributes || jsonb_build_object('n', %s::int, "
                "'seen', (attributes -> 'seen') - 0 || to_jsonb(%s::int) || to_jsonb(%s::int)), "
                "memories = memories || jsonb_build_array(jsonb_build_object('event', 'storm', 'round', %s::int)), "
                "tags = array_append(tags, 'round-' || %s) WHERE tags @> '{storm}'",
                [round_, round_, -round_, round_, round_],
            )
            assert cursor.rowcount == BEINGS
    assert Change.objects.filter(id__gt=checkpoint.position).count() >= BEINGS * ROUNDS
    return checkpoint, at_checkpoint


def restore_start(checkpoint: Checkpoint, env: dict[str, str]) -> tuple[subprocess.Popen[str], int, float]:
    """Start a restore in a process of its own; the process, its backend's pid, and when the restore began."""
    process = subprocess.Popen(
        [sys.executable, "-m", "chronos.tests.restore_process", str(checkpoint.id)],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    began = time.monotonic()
    if not line.startswith("restoring "):
        process.wait(timeout=RESTORE_TIMEOUT)
        pytest.fail(f"the restore process did not start: {line}{process.stderr.read() if process.stderr else ''}")
    return process, int(line.split()[1]), began


def backend_query(backend: int) -> str | None:
    """What the backend ``backend`` is running now (its state and query), None once it has gone."""
    with connect() as other:
        row = other.execute("SELECT state, left(query, 60) FROM pg_stat_activity WHERE pid = %s", [backend]).fetchone()
    return None if row is None else f"{row[0]}: {row[1]}"


def restores_committed() -> int:
    """The safety checkpoints taken by restores that committed."""
    return Checkpoint.objects.filter(name__startswith=f"before-restore-{CHECKPOINT}").count()


def restore_seconds(root: User, checkpoint: Checkpoint) -> float:
    """How long the whole restore takes here and now: run once in this process, then undone.

    Undoing it (a restore to its own safety checkpoint) brings the tables back, byte for byte.
    """
    before = digest()
    began = time.monotonic()
    report = checkpoint_restore(checkpoint=checkpoint, actor=root)
    elapsed = time.monotonic() - began
    assert report.safety is not None
    checkpoint_restore(checkpoint=report.safety, actor=root)
    assert digest() == before
    return elapsed


def cut_at_random(how: str, checkpoint: Checkpoint, env: dict[str, str], expected_seconds: float) -> str:
    """Start the restore in its own process, cut it (``kill -9`` or ``pg_terminate_backend``) at a random instant.

    The instant falls anywhere in the first half of the restore's expected length, so well before its
    commit; returns what the backend was doing then. Returns once the backend has gone.
    """
    instant = random.uniform(0.0, 0.5 * expected_seconds)
    process, backend, began = restore_start(checkpoint, env)
    time.sleep(max(0.0, began + instant - time.monotonic()))
    assert process.poll() is None, "the restore ended before it was cut"
    doing = backend_query(backend)
    if how == "kill -9":
        os.kill(process.pid, signal.SIGKILL)
    else:
        with connect() as other:
            assert other.execute("SELECT pg_terminate_backend(%s)", [backend]).fetchone() == (True,)
    assert process.wait(timeout=RESTORE_TIMEOUT) != 0
    # A backend whose client died goes on until it next speaks to it, then rolls back: wait for that.
    wait_for(lambda: backend_query(backend) is None, timeout=RESTORE_TIMEOUT)
    return f"{how} after {instant:.2f} s of about {expected_seconds:.1f} s, while {doing}"


def test_a_restore_cut_at_a_random_instant_changes_nothing(
    root: User, make_being: Callable[..., BaseBeing], subprocess_env: dict[str, str]
) -> None:
    """A restore of 50,000 changes cut at a random instant leaves the tables equal to their dump from before it.

    Cut twice: its process killed (kill -9), then its connection terminated from another one. Nothing of
    it commits, not even its safety checkpoint; a later restore still brings the tables to the checkpoint.
    """
    checkpoint, at_checkpoint = storm(root, make_being)
    expected_seconds = restore_seconds(root, checkpoint)
    before = digest()
    assert before != at_checkpoint
    committed = restores_committed()

    for how in ("kill -9", "pg_terminate_backend"):
        print(cut_at_random(how, checkpoint, subprocess_env, expected_seconds))
        assert restores_committed() == committed, f"a restore cut by {how} committed its safety checkpoint"
        assert digest() == before, f"a restore cut by {how} changed the tables"

    checkpoint_restore(checkpoint=checkpoint, actor=root)
    assert digest() == at_checkpoint
