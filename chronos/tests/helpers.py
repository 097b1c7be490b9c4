"""What the chronos tests compare: the two tables, dumped in order, byte for byte."""

from __future__ import annotations

import psycopg
from django.db import connection


def tables_dump() -> dict[str, str]:
    """Every row of base_beings and relationships as PostgreSQL prints it, in primary-key order."""
    dump = {}
    with connection.cursor() as cursor:
        for table, key in (("base_beings", "soul"), ("relationships", "id")):
            cursor.execute(f"SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t.{key}), '') FROM {table} t")
            dump[table] = cursor.fetchone()[0]
    return dump


def connect() -> psycopg.Connection:
    """A connection of its own to the test database, as another process would open it."""
    params = connection.get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    return psycopg.connect(**params)
