"""The change log and the promotions are history: PostgreSQL refuses to rewrite, delete or empty them."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

import pgtrigger
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.color import no_style
from django.core.management.sql import sql_flush
from django.db import DatabaseError, connection, transaction

from beings.models import BaseBeing, Promotion
from chronos.models import Change, Timeline
from luxsite.triggers import append_only_uris

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE chronos_change SET data = '{}'::jsonb",
        "DELETE FROM chronos_change",
        "TRUNCATE chronos_change",
        "TRUNCATE soul_promotions",
    ],
)
def test_the_database_refuses_to_rewrite_or_empty_history(make_being: Callable[..., BaseBeing], sql: str) -> None:
    """A raw UPDATE, DELETE or TRUNCATE of an append-only table raises, and every row stays as it was."""
    make_being()
    before = list(Change.objects.values_list("id", "data"))
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert list(Change.objects.values_list("id", "data")) == before


def test_the_one_way_past_the_rule_is_naming_it(make_being: Callable[..., BaseBeing]) -> None:
    """pgtrigger.ignore naming the models' triggers (as the flush command and the benchmark do) lets a TRUNCATE by."""
    make_being()
    with pgtrigger.ignore(*append_only_uris("chronos.Change", "beings.Promotion")), connection.cursor() as cursor:
        cursor.execute("TRUNCATE chronos_change, soul_promotions")
    assert (Change.objects.count(), Promotion.objects.count()) == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_flush_is_the_operators_door(make_being: Callable[..., BaseBeing], django_user_model: type[User]) -> None:
    """`manage.py flush` empties the database, the change log included: a deliberate reset goes past the rule."""
    make_being()
    assert Change.objects.exists()
    call_command("flush", "--no-input", verbosity=0)
    assert not Change.objects.exists()
    # The live timeline comes back with the flush's post_migrate, so the next write is captured again.
    assert Timeline.objects.get(live=True).name == "main"
    make_being(actor=django_user_model.objects.create(username="after-flush"))
    assert Change.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_flush_aborted_to_break_a_deadlock_is_tried_again(make_being: Callable[..., BaseBeing]) -> None:
    """A writer that locks the flush's last table, then its first, deadlocks with it: the flush still empties all.

    The flush waits first, so PostgreSQL aborts it; the writer gets its lock and commits, and the flush
    tried again succeeds (as after a worker's fold landing during the tests' flush).
    """
    make_being()
    [statement] = [sql for sql in sql_flush(no_style(), connection) if sql.startswith("TRUNCATE")]
    tables = re.findall(r'"([^"]+)"', statement)
    first, last = tables[0], tables[-1]
    held, outcome = threading.Event(), {}

    def writer() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f'LOCK TABLE "{last}" IN ROW SHARE MODE')
                held.set()
                waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass"
                while not (cursor.execute(waiting, [last]) or cursor.fetchone()[0]):
                    time.sleep(0.02)  # until the flush holds the first table and waits for the last
                time.sleep(0.2)
                cursor.execute(f'LOCK TABLE "{first}" IN ROW SHARE MODE')
            outcome["writer"] = "committed"
        except DatabaseError as error:
            outcome["writer"] = str(error)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    assert held.wait(10), outcome
    call_command("flush", "--no-input", verbosity=0)
    thread.join(10)
    assert outcome == {"writer": "committed"}
    assert not Change.objects.exists() and not BaseBeing.objects.filter(genesis__name="hello").exists()
    assert Timeline.objects.get(live=True).name == "main"


@pytest.mark.parametrize("table", ["base_beings", "relationships"])
def test_truncate_of_the_watched_tables_is_refused(make_being: Callable[..., BaseBeing], table: str) -> None:
    """Nothing may change the two tables unseen: TRUNCATE raises and every being stays."""
    make_being()
    refused = pytest.raises(DatabaseError, match=f"TRUNCATE of {table} is refused")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table} CASCADE")
    assert BaseBeing.objects.filter(genesis__name="hello").exists()


def test_a_changed_primary_key_is_refused(make_being: Callable[..., BaseBeing]) -> None:
    """A soul never changes: the log keys every change by it, so an UPDATE of it raises."""
    being = make_being()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE base_beings SET soul = gen_random_uuid() WHERE soul = %s", [being.soul])
    assert BaseBeing.objects.filter(soul=being.soul).exists()
