"""From segments of history to log entries, and from log entries to rows: the tables or one row's image.

Each query is bounded by the changes it returns (an index on the timeline and xid), never by the
size of the tables or of the whole log. Undo runs newest first, redo oldest first; per row the log
order is the commit order, because writers of one row wait for each other's commit.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection

from chronos.exceptions import HistoryGapError
from chronos.points import Segment

RowKey = tuple[str, uuid.UUID]


@dataclass(frozen=True)
class Step:
    id: int
    table: str
    row_id: uuid.UUID
    operation: str
    undo: bool


def _bounds(segment: Segment, alias: str) -> tuple[str, list[Any]]:
    where = [f"{alias}.timeline_id = %s"]
    params: list[Any] = [segment.timeline.id]
    if segment.lo is not None:
        sql, more = segment.lo.after(alias, segment.timeline.id)
        where.append(sql)
        params += more
    if segment.hi is not None:
        sql, more = segment.hi.visible(alias)
        where.append(sql)
        params += more
    return " AND ".join(where), params


def segment_steps(segment: Segment, *, rows: Iterable[RowKey] | None = None) -> list[Step]:
    """The log entries of one segment in the order to apply them, optionally only those of ``rows``."""
    where, params = _bounds(segment, "c")
    if segment.hi is not None and segment.hi.at is None:
        # Nothing visible in a snapshot was written after it was taken.
        where += " AND c.id <= %s"
        params.append(segment.hi.position)
    if rows is not None:
        keys = list(rows)
        if not keys:
            return []
        where += ' AND (c."table", c.row_id) IN (SELECT * FROM unnest(%s::text[], %s::uuid[]))'
        params += [[table for table, _ in keys], [row for _, row in keys]]
    order = "DESC" if segment.undo else "ASC"
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT c.id, c."table", c.row_id, c.operation FROM chronos_change c '
            f"WHERE NOT c.replay AND {where} ORDER BY c.id {order}",
            params,
        )
        return [Step(id, table, row_id, operation, segment.undo) for id, table, row_id, operation in cursor.fetchall()]


def path_steps(segments: Sequence[Segment], *, rows: Iterable[RowKey] | None = None) -> list[Step]:
    """Every step of a path, refused when capture was off somewhere along it."""
    keys = None if rows is None else list(rows)
    for segment in segments:
        gap_check(segment)
    return [step for segment in segments for step in segment_steps(segment, rows=keys)]


def gap_check(segment: Segment) -> None:
    where, params = _bounds(segment, "t")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(t.started_at) FROM chronos_transaction t WHERE t.kind = 'gap' AND {where}", params)
        started = cursor.fetchone()[0]
    if started is not None:
        raise HistoryGapError(
            f"chronos capture was off on {segment.timeline.name} (from {started:%Y-%m-%d %H:%M:%S}): "
            "the log cannot say what changed there, so no restore, switch or read crosses it"
        )


def apply(steps: Sequence[Step]) -> int:
    """Make the tables what ``steps`` lead to: each touched row rebuilt and written once. Rows written."""
    written = 0
    with connection.cursor() as cursor:
        for table, rows in _by_table(steps).items():
            cursor.execute("SELECT chronos_write_rows(%s, %s::jsonb)", [table, json.dumps(rows)])
            written += cursor.fetchone()[0]
    return written


def _by_row(steps: Sequence[Step]) -> dict[RowKey, dict[str, list[Any]]]:
    """Each touched row's steps, in order, as ``chronos_steps`` takes them: ``{ids, undos}``."""
    rows: dict[RowKey, dict[str, list[Any]]] = {}
    for step in steps:
        row = rows.setdefault((step.table, step.row_id), {"ids": [], "undos": []})
        row["ids"].append(step.id)
        row["undos"].append(step.undo)
    return rows


def steps_by_row(steps: Sequence[Step], table: str) -> dict[uuid.UUID, dict[str, list[Any]]]:
    """The rows of ``table`` that ``steps`` touch, each with its steps in order: ``{row_id: {ids, undos}}``."""
    return {row_id: row for (kind, row_id), row in _by_row(steps).items() if kind == table}


_FOLD = "chronos_fold(%s, s.operations, s.datas, s.undos, s.ids)"  # of a row of chronos_steps


def fold_query(table: str, rows: dict[uuid.UUID, dict[str, list[Any]]]) -> tuple[str, list[Any]]:
    """A query of the images of ``rows`` after their steps, folded onto the rows as the table holds them,
    ordered by primary key; a row that would not exist is left out (``OFFSET 0``: each row folded once, not
    once more for that test)."""
    pk = PRIMARY_KEYS[table]
    steps = [{"row_id": str(row_id), **row} for row_id, row in rows.items()]
    query = (
        f"SELECT f.image FROM (SELECT s.row_id, {_FOLD % 'to_jsonb(t)'} AS image FROM chronos_steps(%s::jsonb) s "
        f"LEFT JOIN {table} t ON t.{pk} = s.row_id OFFSET 0) f WHERE f.image IS NOT NULL ORDER BY f.row_id"
    )
    return query, [json.dumps(steps)]


def _by_table(steps: Sequence[Step]) -> dict[str, list[dict[str, Any]]]:
    """Per table, each row's steps in order: ``[{row_id, ids, undos}]``."""
    tables: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (table, row_id), row in _by_row(steps).items():
        tables[table].append({"row_id": str(row_id), **row})
    return tables


def rows_fold(images: dict[RowKey, Any], steps: Sequence[Step], *, as_text: bool = False) -> dict[RowKey, Any]:
    """The images of rows after ``steps`` (an image is a dict, or None when the row does not exist).

    One SQL statement for every row: each row's own steps, in order, applied to its image.
    ``as_text``: the rebuilt rows as PostgreSQL prints their JSON (exact numbers), not decoded.
    """
    by_row = _by_row(steps)
    folded = dict(images)
    if not by_row:
        return folded
    keys = list(by_row)
    rows = [{"n": n, "image": folded.get(key), **by_row[key]} for n, key in enumerate(keys)]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT s.n, {_FOLD % 's.image'} FROM chronos_steps(%s::jsonb) s", [json.dumps(rows)])
        for n, image in cursor.fetchall():
            folded[keys[n]] = image if as_text else decoded(image)
    return folded


def live_images(keys: Iterable[RowKey]) -> dict[RowKey, Any]:
    """The rows as the tables hold them now, as JSON images (None for a row that does not exist)."""
    by_table: dict[str, list[uuid.UUID]] = defaultdict(list)
    for table, row in keys:
        by_table[table].append(row)
    images: dict[RowKey, Any] = {}
    with connection.cursor() as cursor:
        for table, rows in by_table.items():
            pk = PRIMARY_KEYS[table]
            cursor.execute(f"SELECT {pk}, to_jsonb(t) FROM {table} t WHERE {pk} = ANY(%s::uuid[])", [rows])
            found = {row: decoded(image) for row, image in cursor.fetchall()}
            images.update({(table, row): found.get(row) for row in rows})
    return images


PRIMARY_KEYS = {"base_beings": "soul", "relationships": "id"}


def decoded(value: Any) -> Any:
    """Django's cursor hands jsonb over as text (its JSONField decodes it); raw SQL decodes it here."""
    return json.loads(value) if isinstance(value, str) else value
