"""``manage.py flush``, the append-only tables included: Django's flush is the one door past their rules.

Emptying the whole database is an operator's deliberate reset, and what the tests do after every
transactional test; the change log, the promotions and the two tables the log watches refuse
TRUNCATE from anywhere else. The ``main`` timeline comes back with ``post_migrate`` (``chronos.apps``).
"""

from __future__ import annotations

from typing import Any

import pgtrigger
from django.core.management.commands.flush import Command as DjangoFlush

from chronos.capture import truncate_uris
from luxsite.triggers import append_only_uris


class Command(DjangoFlush):
    help = f"{DjangoFlush.help} The append-only change log, promotions and watched tables are emptied too."

    def handle(self, **options: Any) -> None:
        with pgtrigger.ignore(*append_only_uris("chronos.Change", "beings.Promotion"), *truncate_uris()):
            super().handle(**options)
