"""The run path's statements, prepared on the server once per connection instead of planned at every run.

Django sends each query as text with its values inlined, so PostgreSQL parses and plans it anew every
time. For the statements every run makes (its insert, its claim and its finish, with the permission
rule inside), planning costs more than running them: about 0.4 ms of the server's CPU each. ``prepared``
runs such a statement on Django's own connection, in whatever transaction is open there, with its
values bound on the server and the statement prepared by psycopg on first use, unless
``LUXOS_DB_PREPARED`` is off. Its errors are Django's, and it is logged like any other query when
queries are (``DEBUG``, a test capturing them).

A prepared statement's result columns are fixed: statements run here name their columns rather than
``*``, so a migration that adds a column does not break them in long-lived workers.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg
from django.db import connection


@contextlib.contextmanager
def prepared(sql: str, params: Mapping[str, Any]) -> Iterator[psycopg.Cursor[Any]]:
    """A cursor that has run ``sql`` with ``params`` (``%(name)s`` placeholders), prepared; read it in the block."""
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    started = time.monotonic()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        yield cursor
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
