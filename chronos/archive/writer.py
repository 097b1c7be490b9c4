"""Writing a checkpoint archive: streamed, one member spooled at a time, so a million rows take one batch of memory."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, BinaryIO

from chronos.archive.layout import BEINGS, CHECKPOINT, ENV_CONFIG, FORMAT_VERSION, MANIFEST, RELATIONSHIPS, tar_open

_BATCH_ROWS = 1000
# A row: a dict to encode, or its JSON already encoded.
Row = dict[str, Any] | bytes

# json.dumps with options builds a new encoder at every call; one is enough for a million rows.
_ROW_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=str)


@dataclass(frozen=True)
class ArchiveReport:
    beings: int
    relationships: int
    bytes_written: int
    manifest: dict[str, Any]


def archive_write(
    target: BinaryIO,
    *,
    metadata: dict[str, Any],
    beings: Iterable[Row],
    relationships: Iterable[Row],
    env_config: dict[str, Any],
    compress: bool,
) -> ArchiveReport:
    """Stream a checkpoint archive to ``target``, which may be a non-seekable stream.

    A row is a dict, or its JSON text already encoded (bytes, one object, no newline): the rows read
    straight from PostgreSQL pass through as they are, numbers like ``1.50`` included.
    """
    sink = _CountingWriter(target)
    mtime = _mtime(metadata)
    digests: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        # gzip by hand rather than mode "w|gz": level 6 writes rows about a third faster than tarfile's fixed 9
        # for 2 or 3 % more bytes, and the gzip header carries the checkpoint's time, not the clock's.
        gzipped = gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=6, mtime=mtime) if compress else None
        stream = stack.enter_context(gzipped) if gzipped else sink
        tar = stack.enter_context(tar_open(stream, mode="w|"))
        digests[CHECKPOINT] = _add_document(tar, CHECKPOINT, {**metadata, "format": FORMAT_VERSION}, mtime)
        beings_count, digests[BEINGS] = _add_rows(tar, BEINGS, beings, mtime)
        relationships_count, digests[RELATIONSHIPS] = _add_rows(tar, RELATIONSHIPS, relationships, mtime)
        digests[ENV_CONFIG] = _add_document(tar, ENV_CONFIG, env_config, mtime)
        manifest = {"format": FORMAT_VERSION, "members": digests}
        _add_document(tar, MANIFEST, manifest, mtime)
    return ArchiveReport(
        beings=beings_count, relationships=relationships_count, bytes_written=sink.written, manifest=manifest
    )


class _CountingWriter:
    """Counts the bytes tarfile writes to the target, which may not know its own position."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target
        self.written = 0

    def write(self, data: bytes) -> int:
        self.target.write(data)
        self.written += len(data)
        return len(data)

    def flush(self) -> None:
        self.target.flush()


def _mtime(metadata: Mapping[str, Any]) -> int:
    """Members carry the checkpoint's time, so two archives of one checkpoint have the same tar members."""
    created = metadata.get("created_at")
    if isinstance(created, str):
        with contextlib.suppress(ValueError):
            created = datetime.fromisoformat(created)
    return int(created.timestamp()) if isinstance(created, datetime) else 0


def _member_info(name: str, *, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = mtime
    return info


def _add_document(tar: tarfile.TarFile, name: str, document: dict[str, Any], mtime: int) -> dict[str, Any]:
    data = json.dumps(document, indent=2, sort_keys=True, default=str).encode()
    tar.addfile(_member_info(name, size=len(data), mtime=mtime), io.BytesIO(data))
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _encoded(row: Row) -> bytes:
    return row if isinstance(row, bytes) else _ROW_ENCODER.encode(row).encode()


def _add_rows(tar: tarfile.TarFile, name: str, rows: Iterable[Row], mtime: int) -> tuple[int, dict[str, Any]]:
    """Spool the rows as JSON lines while hashing them, then add the spool to the tar."""
    digest = hashlib.sha256()
    count = size = 0
    rows = iter(rows)
    with tempfile.TemporaryFile() as spool:
        while batch := list(islice(rows, _BATCH_ROWS)):
            data = b"".join(
                (row if isinstance(row, bytes) else _ROW_ENCODER.encode(row).encode()) + b"\n" for row in batch
            )
            spool.write(data)
            digest.update(data)
            count += len(batch)
            size += len(data)
        spool.seek(0)
        tar.addfile(_member_info(name, size=size, mtime=mtime), spool)
    return count, {"sha256": digest.hexdigest(), "size": size}
