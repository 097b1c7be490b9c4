"""The change log and the promotions are history: PostgreSQL refuses to rewrite, delete or empty them."""

from __future__ import annotations

from collections.abc import Callable

import pgtrigger
import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from beings.models import BaseBeing, Promotion
from chronos.models import Change
from luxsite.triggers import append_only_uris

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE chronos_change SET context = '{}'::jsonb",
        "DELETE FROM chronos_change",
        "TRUNCATE chronos_change",
        "TRUNCATE soul_promotions",
    ],
)
def test_the_database_refuses_to_rewrite_or_empty_history(make_being: Callable[..., BaseBeing], sql: str) -> None:
    """A raw UPDATE, DELETE or TRUNCATE of an append-only table raises, and every row stays as it was."""
    make_being()
    before = list(Change.objects.values_list("id", "context"))
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert list(Change.objects.values_list("id", "context")) == before


def test_the_one_way_past_the_rule_is_naming_it(make_being: Callable[..., BaseBeing]) -> None:
    """pgtrigger.ignore naming the models' triggers (as the flush command and the benchmark do) lets a TRUNCATE by."""
    make_being()
    with pgtrigger.ignore(*append_only_uris("chronos.Change", "beings.Promotion")), connection.cursor() as cursor:
        cursor.execute("TRUNCATE chronos_change, soul_promotions")
    assert (Change.objects.count(), Promotion.objects.count()) == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_flush_is_the_operators_door(make_being: Callable[..., BaseBeing]) -> None:
    """`manage.py flush` empties the database, the change log included: a deliberate reset goes past the rule."""
    make_being()
    assert Change.objects.exists()
    call_command("flush", "--no-input", verbosity=0)
    assert not Change.objects.exists()
