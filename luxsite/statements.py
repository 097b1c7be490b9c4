"""The hot path's statements, prepared on the server once per connection instead of planned at every use.

Django sends each query as text with its values inlined, so PostgreSQL parses and plans it anew every
time. For the statements every run makes (its insert, its claim and its finish, with the permission
rule inside; over HTTP also the token's lookup and the being's), planning costs more than running
them: about 0.4 ms of the server's CPU each. ``prepared`` runs such a statement on Django's own
connection, in whatever transaction is open there, with its values bound on the server and the
statement prepared by psycopg on first use, unless ``LUXOS_DB_PREPARED`` is off. Its errors are
Django's, and it is logged like any other query when queries are (``DEBUG``, a test capturing them).
``instance_from_row`` makes a model instance of a row it read, as a queryset would.

A prepared statement's result columns are fixed: statements run here name their columns rather than
``*``, so a migration that adds a column does not break them in long-lived workers.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from django.db import connection
from django.db.models import Field, JSONField, Model

M = TypeVar("M", bound=Model)


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


def commits_flushed() -> None:
    """Wait until everything this session has committed is on disk, commits made without waiting included.

    A transaction with an id commits durably, and its commit flushes the whole log before it.
    Call it outside a transaction: inside one, nothing commits here.
    """
    with prepared("SELECT pg_current_xact_id()", {}) as cursor:
        cursor.fetchone()


def instance_from_row(
    model: type[M], fields: tuple[Field[Any, Any], ...], row: Sequence[Any], extra: Sequence[str] = ()
) -> M:
    """The ``model`` instance of a row read by a prepared statement: its first columns are ``fields`` (the model's
    others deferred), the columns after them become attributes named by ``extra``."""
    count = len(fields)
    values = list(row[:count])
    for position, decoder in _json_columns(fields):  # the connection hands JSON over as text, as Django asks it to
        if isinstance(values[position], str):
            values[position] = json.loads(values[position], cls=decoder)
    instance = model.from_db(connection.alias, _attnames(fields), values)
    instance.__dict__.update(zip(extra, row[count:], strict=True))
    return instance


@functools.cache
def _attnames(fields: tuple[Field[Any, Any], ...]) -> list[str]:
    return [field.attname for field in fields]


@functools.cache
def _json_columns(fields: tuple[Field[Any, Any], ...]) -> list[tuple[int, Any]]:
    return [(position, field.decoder) for position, field in enumerate(fields) if isinstance(field, JSONField)]
