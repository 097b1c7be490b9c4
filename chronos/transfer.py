"""Export and import: the state at a checkpoint as a portable archive, and an archive as a new timeline.

Export streams: the rows no change has touched since the checkpoint come straight out of the tables
through ``COPY … TO``, in one consistent view of the tables and the log (a REPEATABLE READ
transaction: writers go on); the rows changed since (O(changes)) are rebuilt from the log by
``chronos.replay`` and written in place of their live image.

Import verifies the whole archive first, then writes, in one transaction that holds writers off,
the changes that turn the live state into the archive's straight into the log, on a new timeline
forked from now: the live tables are not touched until a switch to that timeline.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import psycopg
from django.conf import settings
from django.db import DataError, connection, transaction
from django.utils import timezone

from beings import kinds
from chronos import replay
from chronos.archive import BEINGS, RELATIONSHIPS, Archive, ArchiveReport, archive_read, archive_write, env_config
from chronos.checkpoints import timeline_fork, timeline_name_clean
from chronos.context import context_apply
from chronos.exceptions import ArchiveContentError, CheckpointNotFoundError
from chronos.guards import chronos_enabled, permission_require
from chronos.models import Checkpoint, Timeline
from chronos.points import Cut, Point, live_timeline, path
from luxsite.permissions import User

TABLES = ("base_beings", "relationships")
LINE = "chronos_line"  # the temporary tables' extra column: the row's line in its archive member
COPY_ROWS = 1000


def export_path(checkpoint: Checkpoint, compress: bool) -> Path:
    """Where the command and the task write a checkpoint's archive: named by its id, never by its name."""
    suffix = ".tar.gz" if compress else ".tar"
    return Path(settings.CHRONOS_TIMELINES_DIR) / "exports" / f"{uuid.UUID(str(checkpoint.id))}{suffix}"


def checkpoint_export(
    *, checkpoint: Checkpoint, target: BinaryIO, actor: User, compress: bool | None = None
) -> ArchiveReport:
    """Write the state at ``checkpoint`` (not the live state) to ``target`` as a checkpoint archive.

    Each table's rows come in the table's own order, then the rows rebuilt from the log, by primary key.
    """
    chronos_enabled()
    permission_require(actor, "chronos.view_checkpoint", "exporting a checkpoint")
    compress = settings.CHRONOS_COMPRESS_SNAPSHOTS if compress is None else compress
    with _one_view():
        found = Checkpoint.objects.select_related("timeline").filter(id=checkpoint.id).first()
        if found is None:
            raise CheckpointNotFoundError(f"checkpoint {checkpoint.name!r} no longer exists")
        checkpoint = found
        steps = replay.path_steps(path(Point(live_timeline()), Point(checkpoint.timeline, Cut.of(checkpoint))))
        metadata = {
            "checkpoint": str(checkpoint.id),
            "name": checkpoint.name,
            "description": checkpoint.description,
            "timeline": checkpoint.timeline.name,
            "created_at": checkpoint.created_at.isoformat(),
            "actor": checkpoint.actor_name,
            "exported_by": getattr(actor, "username", ""),
            "exported_at": timezone.now().isoformat(),
        }
        beings, relationships = (_rows_at(table, steps) for table in TABLES)
        return archive_write(
            target,
            metadata=metadata,
            beings=beings,
            relationships=relationships,
            env_config=env_config(),
            compress=compress,
        )


@contextlib.contextmanager
def _one_view() -> Iterator[None]:
    """A transaction in which the tables and the log hold still for the whole export.

    On its own connection state, REPEATABLE READ: one snapshot for every query, writers not held
    off. Inside a caller's transaction, whose isolation is already set, a SHARE lock does it.
    """
    if connection.in_atomic_block:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("LOCK TABLE base_beings, relationships IN SHARE MODE")
            yield
        return
    connection.ensure_connection()
    raw = connection.connection
    isolation, read_only = raw.isolation_level, raw.read_only
    raw.isolation_level, raw.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
    try:
        with transaction.atomic():
            yield
    finally:
        raw.isolation_level, raw.read_only = isolation, read_only


def _rows_at(table: str, steps: list[replay.Step]) -> Iterator[bytes]:
    """The rows of ``table`` at the checkpoint, in blocks of JSON lines: the live rows no step touched, then the
    touched ones rebuilt from the log, by primary key (absent if they did not exist then).

    Both come out of COPY as PostgreSQL prints them, never decoded, a block of rows at a time.
    """
    pk = replay.PRIMARY_KEYS[table]
    touched = replay.steps_by_row(steps, table)
    queries = [
        (f"SELECT to_jsonb(t) FROM {table} t WHERE NOT ({pk} = ANY(%s::uuid[]))", [list(touched)]),
        replay.fold_query(table, touched),
    ]
    for query, params in queries:
        with connection.cursor() as cursor, cursor.cursor.copy(f"COPY ({query}) TO STDOUT", params) as copy:
            block: list[memoryview] = []
            for data in copy:  # one CopyData message: one row and its newline
                block.append(data)
                if len(block) == COPY_ROWS:
                    yield _json_lines(block)
                    block = []
            if block:
                yield _json_lines(block)


def _json_lines(block: list[memoryview]) -> bytes:
    """COPY's text format doubles the backslashes of JSON (which escapes every other control character)."""
    return b"".join(block).replace(b"\\\\", b"\\")


def checkpoint_import(*, source: BinaryIO | Path, timeline: str, actor: User, description: str = "") -> Timeline:
    """Load an archive as a new timeline forked from now; switching to it makes the tables the archive's rows.

    Everything is verified before anything is kept: the archive (``archive_read``), then each row's
    columns, its soul hash, unique keys and every link's two beings. One transaction: refused, nothing changed.
    """
    chronos_enabled()
    permission_require(actor, "chronos.restore_checkpoint", "importing an archive")
    name = timeline_name_clean(timeline)
    with archive_read(source) as archive, transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE base_beings, relationships IN SHARE MODE")
        created = timeline_fork(name=name, actor=actor, description=description)
        _load(archive)
        _rows_check()
        _changes_write(created, actor=actor, origin=archive.metadata)
    return created


def _columns(table: str) -> list[tuple[str, str, bool]]:
    """Each column of ``table``: its name, its type and whether it is NOT NULL."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            [table],
        )
        return list(cursor.fetchall())


def _load(archive: Archive) -> None:
    """Each member into a temporary table like its own, the line of every row beside it."""
    with connection.cursor() as cursor:
        for table, member in zip(TABLES, (BEINGS, RELATIONSHIPS), strict=True):
            rows = archive.lines(member)
            columns = _columns(table)
            cursor.execute(f"CREATE TEMP TABLE import_{table}_json ({LINE} bigint, doc jsonb) ON COMMIT DROP")
            with cursor.cursor.copy(f"COPY import_{table}_json FROM STDIN") as copy:
                for batch in _batches(_checked(table, columns, rows)):
                    copy.write(batch)
            cursor.execute(f"CREATE TEMP TABLE import_{table} ({LINE} bigint, LIKE {table}) ON COMMIT DROP")
            try:
                cursor.execute(
                    f"INSERT INTO import_{table} SELECT j.{LINE}, r.* FROM import_{table}_json j, "
                    f"jsonb_populate_record(NULL::{table}, j.doc) r"
                )
            except DataError as error:
                raise ArchiveContentError(f"{table}: a value is not of its column's type: {error}".strip()) from None
            cursor.execute(f"ANALYZE import_{table}")


def _checked(
    table: str, columns: list[tuple[str, str, bool]], rows: Iterable[tuple[bytes, dict[str, Any]]]
) -> Iterator[str]:
    """Each row as a line of COPY text, once it has exactly the table's columns, each of its kind of value.

    The row goes in as the archive wrote it, not re-encoded: numbers keep their digits (``1.50``).
    """
    names = {name for name, _, _ in columns}
    for line, (text, row) in enumerate(rows, start=1):
        if row.keys() != names:
            missing, extra = sorted(names - row.keys()), sorted(row.keys() - names)
            raise ArchiveContentError(f"{table} line {line}: missing columns {missing}, unknown columns {extra}")
        for name, kind, not_null in columns:
            if not _value_fits(row[name], kind, not_null):
                raise ArchiveContentError(f"{table} line {line}: {name} is not a {kind}: {str(row[name])[:80]!r}")
        # JSON escapes every control character, so a backslash is the only byte COPY's text format needs doubled.
        yield f"{line}\t{text.decode()}\n".replace("\\", "\\\\")


def _value_fits(value: Any, kind: str, not_null: bool) -> bool:
    if value is None:
        return not not_null
    if kind == "uuid":
        try:
            uuid.UUID(value)
        except (TypeError, ValueError, AttributeError):
            return False
        return True
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31
    if kind == "text[]":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if kind == "timestamp with time zone":
        return isinstance(value, str)
    return kind == "jsonb"


def _batches(lines: Iterable[str]) -> Iterator[bytes]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == COPY_ROWS:
            yield "".join(batch).encode()
            batch = []
    if batch:
        yield "".join(batch).encode()


def _rows_check() -> None:
    """Refuse what the tables would refuse: a duplicate key, a hash not of its genotype, a link to no being."""
    checks = [
        (
            f"SELECT min({LINE}), soul FROM import_base_beings GROUP BY soul HAVING count(*) > 1 ORDER BY 1 LIMIT 1",
            "beings.jsonl line {}: soul {} is there more than once",
        ),
        (
            f"SELECT min({LINE}), id FROM import_relationships GROUP BY id HAVING count(*) > 1 ORDER BY 1 LIMIT 1",
            "relationships.jsonl line {}: id {} is there more than once",
        ),
        (
            f"SELECT {LINE}, soul FROM import_base_beings WHERE NOT luxos_hash_matches(genesis) "
            f"ORDER BY {LINE} LIMIT 1",
            "beings.jsonl line {}: being {} has a genesis hash that is not the hash of its genotype",
        ),
        (
            f"SELECT r.{LINE}, r.id FROM import_relationships r WHERE "
            "NOT EXISTS (SELECT FROM import_base_beings b WHERE b.soul = r.source_soul) OR "
            f"NOT EXISTS (SELECT FROM import_base_beings b WHERE b.soul = r.target_soul) ORDER BY r.{LINE} LIMIT 1",
            "relationships.jsonl line {}: relationship {} links a being the archive does not hold",
        ),
        (
            "SELECT 0, core FROM unnest(%s::uuid[]) AS core "
            "WHERE NOT EXISTS (SELECT FROM import_base_beings b WHERE b.soul = core) LIMIT 1",
            "beings.jsonl: the core being {1} is missing; every state of LuxOS holds the core beings",
        ),
    ]
    with connection.cursor() as cursor:
        for sql, message in checks:
            cursor.execute(sql, [sorted(kinds.CORE_SOULS)] if "%s" in sql else None)
            found = cursor.fetchone()
            if found is not None:
                raise ArchiveContentError(message.format(*found))


# Ordered so that every step keeps the relationships' foreign keys, redone in this order and undone in reverse:
# links only live go first, beings only live last, after the links that pointed at them have moved or gone.
CHANGE_ORDER = (
    ("relationships", "DELETE"),
    ("base_beings", "INSERT"),
    ("base_beings", "UPDATE"),
    ("relationships", "UPDATE"),
    ("relationships", "INSERT"),
    ("base_beings", "DELETE"),
)


def _changes_write(timeline: Timeline, *, actor: User, origin: dict[str, Any]) -> None:
    """The changes from the live state to the archive's, as this transaction's, on ``timeline``: the log only."""
    context_apply(
        actor=actor, operation="checkpoint_import", reason=f"import of {origin.get('name', '')!s} as {timeline.name}"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO chronos_transaction (xid, timeline_id, kind, context, started_at) "
            "VALUES (pg_current_xact_id()::text::bigint, %s, 'import', "
            "current_setting('luxos.context')::jsonb, clock_timestamp()) RETURNING id",
            [timeline.id],
        )
        recorded = cursor.fetchone()[0]
        for table in TABLES:
            # One pass over both sides: each row that differs, with what the log stores for it.
            pk = replay.PRIMARY_KEYS[table]
            cursor.execute(
                f"CREATE TEMP TABLE import_{table}_changes ON COMMIT DROP AS "
                "SELECT coalesce(a.pk, l.pk) AS row_id, "
                "CASE WHEN l.pk IS NULL THEN 'INSERT' WHEN a.pk IS NULL THEN 'DELETE' ELSE 'UPDATE' END AS operation, "
                "CASE WHEN l.pk IS NULL THEN a.image WHEN a.pk IS NULL THEN l.image "
                "ELSE chronos_delta(l.image, a.image) END AS data "
                f"FROM (SELECT t.{pk} AS pk, to_jsonb(t) - '{LINE}' AS image FROM import_{table} t) a "
                f"FULL JOIN (SELECT t.{pk} AS pk, to_jsonb(t) AS image FROM {table} t) l ON l.pk = a.pk "
                "WHERE a.image IS DISTINCT FROM l.image"
            )
        for table, operation in CHANGE_ORDER:
            cursor.execute(
                'INSERT INTO chronos_change (xid, transaction_id, timeline_id, replay, "table", row_id, operation, '
                "data) SELECT pg_current_xact_id()::text::bigint, %s, %s, false, %s, c.row_id, c.operation, c.data "
                f"FROM import_{table}_changes c WHERE c.operation = %s",
                [recorded, timeline.id, table, operation],
            )
