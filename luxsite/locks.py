"""Transaction-level advisory locks on a name: concurrent writers of the same thing take turns."""

from __future__ import annotations

from django.db import connection


def advisory_lock(name: str) -> None:
    """Hold PostgreSQL's advisory lock on ``name`` until the current transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [name])
