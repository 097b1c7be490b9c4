"""A merge's rows written: deleted, updated and inserted set-based, one statement per kind whatever the count.

The rows are written in SQL (never through the ORM: no cascades, no signals), as a restore writes them;
the capture triggers log each statement's rows once.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from chronos.replay import PRIMARY_KEYS

TARGET = "SELECT * FROM jsonb_to_recordset(%s::jsonb) AS x(row_id uuid, doc jsonb)"


@dataclass
class RowWrites:
    """One table's writes, by kind: the merged image of each row (the live one is ``ours``, under the lock)."""

    deleted: list[uuid.UUID] = field(default_factory=list)
    updated: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    inserted: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)

    def add(self, row_id: uuid.UUID, image: dict[str, Any] | None, *, existed: bool) -> None:
        if image is None:
            self.deleted.append(row_id)
        elif existed:
            self.updated[row_id] = image
        else:
            self.inserted[row_id] = image


def _document(rows: dict[uuid.UUID, dict[str, Any]]) -> str:
    return json.dumps([{"row_id": str(row_id), "doc": image} for row_id, image in rows.items()])


def rows_write(table: str, writes: RowWrites) -> int:
    """Make the rows of ``table`` what ``writes`` says; the rows written."""
    pk = PRIMARY_KEYS[table]
    written = 0
    with connection.cursor() as cursor:
        if writes.deleted:
            cursor.execute(f"DELETE FROM {table} WHERE {pk} = ANY(%s::uuid[])", [writes.deleted])
            written += cursor.rowcount
        if writes.updated:
            cursor.execute(
                "SELECT string_agg(format('%%I', attname), ', ' ORDER BY attnum) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                [table],
            )
            columns = cursor.fetchone()[0]
            cursor.execute(
                f"UPDATE {table} t SET ({columns}) = "
                f"(SELECT {columns} FROM jsonb_populate_record(NULL::{table}, x.doc)) "
                f"FROM ({TARGET}) x WHERE t.{pk} = x.row_id AND to_jsonb(t) IS DISTINCT FROM x.doc",
                [_document(writes.updated)],
            )
            written += cursor.rowcount
        if writes.inserted:
            cursor.execute(
                f"INSERT INTO {table} SELECT r.* FROM ({TARGET}) x, jsonb_populate_record(NULL::{table}, x.doc) r",
                [_document(writes.inserted)],
            )
            written += cursor.rowcount
    return written
