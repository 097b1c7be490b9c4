"""``manage.py flush``, the append-only tables included: Django's flush is the one door past their rules.

Emptying the whole database is an operator's deliberate reset, and what the tests do after every
transactional test; the change log and the promotions refuse TRUNCATE from anywhere else.
"""

from __future__ import annotations

from typing import Any

import pgtrigger
from django.core.management.commands.flush import Command as DjangoFlush

from luxsite.triggers import append_only_uris


class Command(DjangoFlush):
    help = f"{DjangoFlush.help} The append-only change log and promotions are emptied too."

    def handle(self, **options: Any) -> None:
        with pgtrigger.ignore(*append_only_uris("chronos.Change", "beings.Promotion")):
            super().handle(**options)
