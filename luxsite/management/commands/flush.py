"""``manage.py flush``, the append-only tables included: Django's flush is the one door past their rules.

Emptying the whole database is an operator's deliberate reset, and what the tests do after every
transactional test; the change log, the promotions and the two tables the log watches refuse
TRUNCATE from anywhere else. The ``main`` timeline comes back with ``post_migrate`` (``chronos.apps``).

Workers may still be writing (a run's fold lands a second after the run): the TRUNCATE then waits for
their locks, and when PostgreSQL breaks a deadlock by aborting it, the flush is tried again.
"""

from __future__ import annotations

from typing import Any

import pgtrigger
from django.core.management.base import CommandError
from django.core.management.commands.flush import Command as DjangoFlush

from chronos.capture import truncate_uris
from luxsite.triggers import append_only_uris

DEADLOCK_DETECTED = "40P01"
ATTEMPTS = 5


class Command(DjangoFlush):
    help = f"{DjangoFlush.help} The append-only change log, promotions and watched tables are emptied too."

    def handle(self, **options: Any) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with pgtrigger.ignore(*append_only_uris("chronos.Change", "beings.Promotion"), *truncate_uris()):
                    super().handle(**options)
                return
            except CommandError as error:
                if attempt == ATTEMPTS or not _deadlock(error):
                    raise


def _deadlock(error: BaseException) -> bool:
    """Whether PostgreSQL aborted the flush to break a deadlock (Django wraps the driver's error twice)."""
    cause: BaseException | None = error
    while cause is not None:
        if getattr(cause, "sqlstate", None) == DEADLOCK_DETECTED:
            return True
        cause = cause.__cause__
    return False
