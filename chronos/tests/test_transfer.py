"""Export and import: an archive holds the state at its checkpoint, and comes back as a timeline, exactly."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import override_settings

from beings.kinds import core_soul
from beings.models import BaseBeing
from beings.services import being_delete, being_update
from chronos.archive import archive_read, archive_write
from chronos.models import Checkpoint, Timeline
from chronos.services import checkpoint_create, timeline_create, timeline_switch
from chronos.tests.helpers import tables_dump
from chronos.transfer import checkpoint_export, checkpoint_import, export_path
from luxsite.tests.fixtures import database_state
from luxsite.tests.helpers import refused
from relations.models import Relationship
from relations.services import relationship_delete

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024 * 1024


def rows_now() -> dict[str, list[dict[str, Any]]]:
    """Both tables as JSON rows (``to_jsonb``), in primary-key order: what an archive must hold."""
    rows = {}
    with connection.cursor() as cursor:
        for table, key in (("base_beings", "soul"), ("relationships", "id")):
            cursor.execute(f"SELECT to_jsonb(t)::text FROM {table} t ORDER BY t.{key}")
            rows[table] = [json.loads(text) for (text,) in cursor.fetchall()]
    return rows


def rows_of(data: bytes) -> dict[str, list[dict[str, Any]]]:
    """The rows of an archive, verified by the reader, in primary-key order."""
    with archive_read(io.BytesIO(data)) as archive:
        return {
            "base_beings": sorted(archive.beings(), key=lambda row: row["soul"]),
            "relationships": sorted(archive.relationships(), key=lambda row: row["id"]),
        }


def exported(checkpoint: Checkpoint, actor: User, **options: Any) -> bytes:
    target = io.BytesIO()
    checkpoint_export(checkpoint=checkpoint, target=target, actor=actor, **options)
    return target.getvalue()


def rewritten(data: bytes, edit: Callable[[str, list[dict[str, Any]]], list[dict[str, Any]]]) -> bytes:
    """The archive written again, its rows passed through ``edit``: a well-formed archive of other rows."""
    with archive_read(io.BytesIO(data)) as archive:
        target = io.BytesIO()
        archive_write(
            target,
            metadata=archive.metadata,
            beings=edit("beings", list(archive.beings())),
            relationships=edit("relationships", list(archive.relationships())),
            env_config=archive.env_config,
            compress=False,
        )
    return target.getvalue()


def chronos_state() -> dict[str, Any]:
    """The tables a write may touch, and every chronos table: timelines, checkpoints, transactions."""
    state: dict[str, Any] = database_state()
    with connection.cursor() as cursor:
        for table in ("chronos_timeline", "chronos_checkpoint", "chronos_transaction"):
            cursor.execute(f"SELECT coalesce(string_agg(t::text, '|' ORDER BY t.id), '') FROM {table} t")
            state[table] = hashlib.sha256(cursor.fetchone()[0].encode()).hexdigest()
    return state


@pytest.fixture
def history(
    root: User, make_being: Callable[..., BaseBeing], make_link: Callable[..., Relationship]
) -> Iterator[tuple[Checkpoint, dict[str, list[dict[str, Any]]], dict[str, str]]]:
    """A checkpoint over beings and a link, then updates, deletes and creates of both tables after it.

    Yields the checkpoint, its rows and its byte-for-byte dump.
    """
    kept = make_being("kept", tags=["a"], attributes={"x": 1, "path": "C:\\temp\\n", "text": 'é\n\t"q"'})
    doomed = make_being("doomed")
    link = make_link(kept, doomed, tags=["invokes"])
    make_link(doomed, kept)
    at_checkpoint, dump = rows_now(), tables_dump()
    checkpoint = checkpoint_create(name="before the storm", actor=root)

    being_update(being=kept, data={"tags": ["b"], "attributes": {"x": 2}}, actor=root)
    relationship_delete(relationship=link, actor=root)
    relationship_delete(relationship=Relationship.objects.get(source=doomed), actor=root)
    being_delete(being=doomed, actor=root)
    newcomer = make_being("newcomer")
    make_link(newcomer, kept)
    assert rows_now() != at_checkpoint
    yield checkpoint, at_checkpoint, dump


@pytest.mark.parametrize("compress", [True, False])
def test_export_holds_the_state_at_the_checkpoint(root: User, history: Any, compress: bool) -> None:
    """Changes made after the checkpoint are not in its archive: its rows are the checkpoint's, compressed or not."""
    checkpoint, at_checkpoint, _ = history
    data = exported(checkpoint, root, compress=compress)
    assert data.startswith(b"\x1f\x8b") is compress
    assert rows_of(data) == at_checkpoint
    with archive_read(io.BytesIO(data)) as archive:
        assert archive.metadata["checkpoint"] == str(checkpoint.id)
        assert archive.metadata["name"] == "before the storm"
        assert archive.metadata["timeline"] == "main"
        assert archive.metadata["exported_by"] == "root"
        assert archive.env_config["ENABLE_CHRONOS"] is True


def test_export_compresses_as_the_setting_says(root: User, history: Any) -> None:
    """Without ``compress``, CHRONOS_COMPRESS_SNAPSHOTS decides; the export path is named by the id, not the name."""
    checkpoint, _, _ = history
    with override_settings(CHRONOS_COMPRESS_SNAPSHOTS=False):
        assert not exported(checkpoint, root).startswith(b"\x1f\x8b")
    with override_settings(CHRONOS_COMPRESS_SNAPSHOTS=True):
        assert gzip.decompress(exported(checkpoint, root))
    path = export_path(checkpoint, compress=True)
    assert path.name == f"{checkpoint.id}.tar.gz" and "storm" not in str(path)


def test_export_of_a_checkpoint_on_another_timeline(root: User, history: Any) -> None:
    """A checkpoint of main exported while a branch is live still holds main's rows at that checkpoint."""
    checkpoint, at_checkpoint, _ = history
    timeline_create(name="side", actor=root)
    timeline_switch(name="side", actor=root)
    Relationship.objects.all().delete()
    BaseBeing.objects.exclude(genesis__name="kept").delete()
    assert rows_of(exported(checkpoint, root)) == at_checkpoint


def test_round_trip_as_a_timeline(root: User, history: Any) -> None:
    """Import leaves the tables alone; switching to the imported timeline makes them the checkpoint's, byte for byte."""
    checkpoint, _, dump = history
    data = exported(checkpoint, root)
    live = tables_dump()
    imported = checkpoint_import(source=io.BytesIO(data), timeline="imported", actor=root, description="from a file")
    assert tables_dump() == live
    assert imported.parent == Timeline.objects.get(name="main") and imported.fork is not None
    assert imported.fork.kind == "fork" and imported.description == "from a file"

    timeline_switch(name="imported", actor=root)
    assert tables_dump() == dump
    timeline_switch(name="main", actor=root)
    assert tables_dump() == live
    timeline_switch(name="imported", actor=root)
    assert tables_dump() == dump


def test_import_from_a_path_records_its_context(root: User, history: Any, tmp_path: Path) -> None:
    """An archive file on disk imports too; the log says who imported it, how and from which checkpoint."""
    checkpoint, _, dump = history
    path = tmp_path / "archive.tar.gz"
    path.write_bytes(exported(checkpoint, root, compress=True))
    imported = checkpoint_import(source=path, timeline="from-disk", actor=root)
    with connection.cursor() as cursor:
        cursor.execute("SELECT kind, context FROM chronos_transaction WHERE timeline_id = %s", [imported.id])
        [(kind, context)] = cursor.fetchall()
    context = json.loads(context) if isinstance(context, str) else context
    assert kind == "import"
    assert context["actor"] == "root" and context["operation"] == "checkpoint_import"
    assert "before the storm" in context["reason"]
    timeline_switch(name=imported, actor=root)
    assert tables_dump() == dump


def truncated(data: bytes) -> bytes:
    """The archive cut in the middle of its rows, as an interrupted download leaves it."""
    return data[: len(data) // 2]


def wrong_digest(data: bytes) -> bytes:
    """One letter of a row changed inside the tar, the manifest left as it was."""
    at = data.index(b'"name": "kept"')
    return data[:at] + b'"name": "kapt"' + data[at + len(b'"name": "kept"') :]


def outside_member(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("../x")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    return buffer.getvalue()


def bad_hash(data: bytes) -> bytes:
    def edit(member: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if member == "beings":
            rows[0] = {**rows[0], "genesis": {**rows[0]["genesis"], "source": "def run():\n    return 'forged'\n"}}
        return rows

    return rewritten(data, edit)


def missing_being(data: bytes) -> bytes:
    def edit(member: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if member == "relationships":
            rows[0] = {**rows[0], "target_soul": "00000000-0000-4000-8000-000000000001"}
        return rows

    return rewritten(data, edit)


def duplicate_soul(data: bytes) -> bytes:
    return rewritten(data, lambda member, rows: [*rows, rows[0]] if member == "beings" else rows)


def without_core(data: bytes) -> bytes:
    """The archive without the Kernel, which every state holds."""
    kernel = str(core_soul("Kernel"))
    return rewritten(data, lambda member, rows: [row for row in rows if row.get("soul") != kernel])


def missing_column(data: bytes) -> bytes:
    def edit(member: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if member == "beings":
            rows[-1] = {key: value for key, value in rows[-1].items() if key != "memories"}
        return rows

    return rewritten(data, edit)


def wrong_type(data: bytes) -> bytes:
    def edit(member: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if member == "beings":
            rows[0] = {**rows[0], "energy_level": "lots"}
        return rows

    return rewritten(data, edit)


def bad_timestamp(data: bytes) -> bytes:
    def edit(member: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if member == "relationships":
            rows[0] = {**rows[0], "created_at": "yesterday-ish"}
        return rows

    return rewritten(data, edit)


@pytest.mark.parametrize(
    ("spoil", "code", "says"),
    [
        (truncated, "archive_corrupt", "truncated"),
        (wrong_digest, "archive_digest_mismatch", "beings.jsonl"),
        (outside_member, "archive_member_invalid", "../x"),
        (bad_hash, "archive_content_invalid", "beings.jsonl line 1: being"),
        (missing_being, "archive_content_invalid", "relationships.jsonl line 1"),
        (duplicate_soul, "archive_content_invalid", "more than once"),
        (without_core, "archive_content_invalid", "the core being"),
        (missing_column, "archive_content_invalid", "missing columns ['memories']"),
        (wrong_type, "archive_content_invalid", "energy_level is not a integer"),
        (bad_timestamp, "archive_content_invalid", "relationships: a value is not of its column's type"),
    ],
)
def test_a_bad_archive_is_refused_and_nothing_changes(
    root: User, history: Any, spoil: Callable[[bytes], bytes], code: str, says: str
) -> None:
    """A truncated or forged archive, or rows the tables would refuse: a clear 422 naming the fault, nothing kept."""
    checkpoint, _, _ = history
    data = spoil(exported(checkpoint, root, compress=False))
    before = chronos_state()
    error = refused(code, lambda: checkpoint_import(source=io.BytesIO(data), timeline="imported", actor=root))
    assert error.status == 422 and says in error.detail
    assert chronos_state() == before


def test_import_refuses_a_taken_name_and_who_may_not_restore(root: User, alice: User, history: Any) -> None:
    """A timeline name in use is a 409; a user without chronos.restore_checkpoint gets a 403; nothing changes."""
    checkpoint, _, _ = history
    data = exported(checkpoint, root)
    timeline_create(name="taken", actor=root)
    before = chronos_state()
    refused("timeline_name_taken", lambda: checkpoint_import(source=io.BytesIO(data), timeline="taken", actor=root))
    refused("name_invalid", lambda: checkpoint_import(source=io.BytesIO(data), timeline=" ", actor=root))
    alice.user_permissions.add(Permission.objects.get(codename="view_checkpoint"))
    alice = User.objects.get(pk=alice.pk)
    error = refused("permission_denied", lambda: checkpoint_import(source=io.BytesIO(data), timeline="x", actor=alice))
    assert error.status == 403
    assert chronos_state() == before


def test_export_needs_view_checkpoint(root: User, bob: User, history: Any) -> None:
    """Exporting shows everyone's rows: a user without chronos.view_checkpoint gets a 403."""
    checkpoint, _, _ = history
    error = refused("permission_denied", lambda: exported(checkpoint, bob))
    assert error.status == 403 and "chronos.view_checkpoint" in error.detail


@override_settings(
    LUXOS_BACKUP_URL="postgres://luxos:hunter2-secret@db.example:5432/luxos",
    LUXOS_SIGNING_KEY="do-not-ship",
    LUXOS_PAGE_SIZE=50,
)
def test_secrets_never_travel_in_env_config(root: User, history: Any) -> None:
    """env_config.json carries the LUXOS_* settings without a URL's password nor a secret-named setting."""
    checkpoint, _, _ = history
    data = exported(checkpoint, root, compress=False)
    assert b"hunter2-secret" not in data and b"do-not-ship" not in data
    with archive_read(io.BytesIO(data)) as archive:
        assert archive.env_config["LUXOS_BACKUP_URL"] == "postgres://luxos:***@db.example:5432/luxos"
        assert archive.env_config["LUXOS_PAGE_SIZE"] == 50
        assert "LUXOS_SIGNING_KEY" not in archive.env_config


BEINGS_SQL = """
INSERT INTO base_beings (soul, tags, energy_level, genesis, attributes, memories, self_awareness)
SELECT gen_random_uuid(), ARRAY['bulk'], i %% 100, g || jsonb_build_object('hash', luxos_soul_hash(g)),
       jsonb_build_object('team', 'team-' || i %% 50, 'note', repeat('x', 400)), '[{"event": "created"}]', '{}'
FROM (SELECT i, jsonb_build_object('name', 'bulk_' || i, 'type', 'function', 'language', 'python',
             'entrypoint', 'run', 'source', 'def run():\n    return ' || i || '\n', 'version', 1,
             'ancestors', '[]'::jsonb) AS g
      FROM generate_series(1, %s) AS i) AS generated
"""


def export_peak(checkpoint: Checkpoint, actor: User, path: Path) -> int:
    """The most Python memory an export of ``checkpoint`` to ``path`` held at once, in bytes."""
    tracemalloc.start()
    try:
        with path.open("wb") as target:
            checkpoint_export(checkpoint=checkpoint, target=target, actor=actor, compress=False)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_export_memory_stays_flat(root: User, tmp_path: Path) -> None:
    """Ten times the beings (20,000, over 10 MB of rows) take no more memory to export: rows stream, none is held."""
    with connection.cursor() as cursor:
        cursor.execute(BEINGS_SQL, [2_000])
    small = export_peak(checkpoint_create(name="small", actor=root), root, tmp_path / "small.tar")
    with connection.cursor() as cursor:
        cursor.execute(BEINGS_SQL, [18_000])
    checkpoint = checkpoint_create(name="bulk", actor=root)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE base_beings SET energy_level = -1 WHERE soul IN (SELECT soul FROM base_beings LIMIT 50)")
    path = tmp_path / "bulk.tar"
    peak = export_peak(checkpoint, root, path)

    assert path.stat().st_size > 10 * MB
    assert peak < small * 1.25 + MB, f"export peaked at {peak / MB:.1f} MB, {small / MB:.1f} MB for a tenth of it"
    with archive_read(path) as archive:
        assert archive.beings_count == BaseBeing.objects.count() > 20_000
        assert not any(row["energy_level"] == -1 for row in archive.beings())


def test_an_export_keeps_numbers_exactly_as_the_database_prints_them(
    root: User, make_being: Callable[..., BaseBeing], tmp_path: Path
) -> None:
    """1.50 stays 1.50 and a backslash stays one: rows pass from COPY to the archive undecoded, and back."""
    being = make_being("exact")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE base_beings SET attributes = %s::jsonb WHERE soul = %s",
            ['{"price": 1.50, "path": "C:\\\\temp"}', being.soul],
        )
    before = tables_dump()
    checkpoint = checkpoint_create(name="exact", actor=root)
    target = tmp_path / "exact.tar"
    with target.open("wb") as handle:
        checkpoint_export(checkpoint=checkpoint, target=handle, actor=root, compress=False)
    with tarfile.open(target) as tar:
        member = tar.extractfile("beings.jsonl")
        assert member is not None
        text = member.read()
    assert b'"price": 1.50' in text and b'"path": "C:\\\\temp"' in text
    being_update(being=being, data={"attributes": {}}, actor=root)
    with target.open("rb") as handle:
        checkpoint_import(source=handle, timeline="exact-copy", actor=root)
    timeline_switch(name="exact-copy", actor=root)
    assert tables_dump() == before
