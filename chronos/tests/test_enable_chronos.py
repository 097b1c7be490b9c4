"""ENABLE_CHRONOS off: writes are not captured, each writing transaction leaves a gap, and no restore crosses it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import override_settings

from beings.models import BaseBeing
from beings.services import being_update, beings_import
from chronos.models import Change, Checkpoint, Transaction
from chronos.services import checkpoint_create, checkpoint_restore, chronos_gc
from chronos.tests.helpers import tables_dump
from luxsite.tests.helpers import refused

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def chronos_off() -> Iterator[None]:
    """ENABLE_CHRONOS false for the block, on connections opened in it (the hook runs when one is opened)."""
    connection.close()
    try:
        with override_settings(ENABLE_CHRONOS=False):
            yield
    finally:
        connection.close()


def import_line(name: str) -> str:
    return json.dumps({"genesis": {"name": name, "type": "function", "source": "def run():\n    return 1\n"}})


def test_writes_while_off_leave_gaps_that_no_restore_crosses(
    root: User, make_being: Callable[..., BaseBeing], unchanged: Callable[..., contextlib.AbstractContextManager[None]]
) -> None:
    """Off: an import and an update log no change, only gap rows; on again, a restore across them is refused."""
    being = make_being("steady", attributes={"v": 0})
    before_gap = checkpoint_create(name="before-gap", actor=root)
    logged = Change.objects.count()

    with chronos_off():
        with connection.cursor() as cursor:
            cursor.execute("SHOW luxos.chronos_capture")
            assert cursor.fetchone()[0] == "off"
        beings_import(lines=[import_line("bulk-1"), import_line("bulk-2")], actor=root)
        being_update(being=being, data={"attributes": {"v": "uncaptured"}}, actor=root)

    assert Change.objects.count() == logged
    assert Transaction.objects.filter(kind="gap").count() == 2
    assert BaseBeing.objects.filter(genesis__name__startswith="bulk-").count() == 2

    with unchanged():
        refused("history_gap", lambda: checkpoint_restore(checkpoint=before_gap, actor=root))
    assert not Checkpoint.objects.filter(name__startswith="before-restore").exists()

    after_gap = checkpoint_create(name="after-gap", actor=root)
    dump = tables_dump()
    being_update(being=being, data={"attributes": {"v": "captured again"}}, actor=root)
    assert Change.objects.count() == logged + 1
    checkpoint_restore(checkpoint=after_gap, actor=root)
    assert tables_dump() == dump


def test_the_doors_refuse_while_off(root: User) -> None:
    """Off, taking a checkpoint or collecting history is refused with chronos_disabled and nothing is written."""
    with chronos_off():
        refused("chronos_disabled", lambda: checkpoint_create(name="refused", actor=root))
        refused("chronos_disabled", lambda: chronos_gc())
    assert not Checkpoint.objects.exists()
