"""Writing a checkpoint archive: streamed, one member spooled at a time, so a million rows take one batch of memory."""

from __future__ import annotations

import contextlib
import hashlib
import json
import tarfile
import tempfile
import zlib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from chronos.archive.layout import BEINGS, CHECKPOINT, ENV_CONFIG, FORMAT_VERSION, MANIFEST, RELATIONSHIPS

_BATCH_ROWS = 1000
# A row, a dict to encode; or rows already encoded: bytes of whole JSON lines, each ending in a newline.
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

    A row is a dict, or bytes of one or more rows already encoded as JSON lines, each ending in a newline
    (JSON text holds none of its own): rows read straight from PostgreSQL pass through as they are, numbers
    like ``1.50`` included, a block at a time.
    """
    tar = _TarWriter(target, compress=compress, mtime=_mtime(metadata))
    digests: dict[str, dict[str, Any]] = {}
    digests[CHECKPOINT] = tar.add_document(CHECKPOINT, {**metadata, "format": FORMAT_VERSION})
    beings_count, digests[BEINGS] = tar.add_rows(BEINGS, beings)
    relationships_count, digests[RELATIONSHIPS] = tar.add_rows(RELATIONSHIPS, relationships)
    digests[ENV_CONFIG] = tar.add_document(ENV_CONFIG, env_config)
    manifest = {"format": FORMAT_VERSION, "members": digests}
    tar.add_document(MANIFEST, manifest)
    tar.close()
    return ArchiveReport(
        beings=beings_count, relationships=relationships_count, bytes_written=tar.written, manifest=manifest
    )


class _TarWriter:
    """A ustar/pax stream written by hand, compressed as it is spooled.

    A row member's size goes in its header, before its data, so its rows are spooled first. Compressed, each
    row member is spooled as its own gzip member, compressed while the rows arrive (while PostgreSQL prints
    the next ones), and the small pieces between (headers, documents, the end) are gzip members of their own:
    concatenated gzip members are one gzip stream to every reader (RFC 1952), ``tar -xzf`` included.
    """

    def __init__(self, target: BinaryIO, *, compress: bool, mtime: int) -> None:
        self.target, self.compress, self.mtime = target, compress, mtime
        self.pending = bytearray()  # plain tar bytes not yet written
        self.length = 0  # plain tar bytes so far, for the final padding
        self.written = 0

    def add_document(self, name: str, document: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(document, indent=2, sort_keys=True, default=str).encode()
        self._plain(self._header(name, len(data)) + data + _padding(len(data)))
        return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

    def add_rows(self, name: str, rows: Iterable[Row]) -> tuple[int, dict[str, Any]]:
        """Spool the rows as JSON lines while hashing (and compressing) them, then write header and spool.

        Hashing and compressing run on a thread of their own, a block behind the rows being read: both let go
        of the GIL, so they run beside the reading of the next block rather than after it.
        """
        digest = hashlib.sha256()
        count = size = 0
        compressor = _gzip_member() if self.compress else None
        with tempfile.TemporaryFile() as spool, ThreadPoolExecutor(max_workers=1) as pool:

            def spooled(data: bytes) -> None:
                digest.update(data)
                spool.write(compressor.compress(data) if compressor else data)

            behind: deque[Future[None]] = deque()
            for data in _blocks(rows):
                count += data.count(b"\n")
                size += len(data)
                behind.append(pool.submit(spooled, data))
                if len(behind) > _BLOCKS_BEHIND:
                    behind.popleft().result()
            for future in behind:
                future.result()
            tail = _padding(size)
            spool.write(compressor.compress(tail) + compressor.flush() if compressor else tail)
            self._plain(self._header(name, size))
            self._flush()
            spool.seek(0)
            while block := spool.read(_COPY_BYTES):
                self._write(block)
        self.length += size + len(tail)
        return count, {"sha256": digest.hexdigest(), "size": size}

    def close(self) -> None:
        """Two zero blocks end the archive, padded to a whole record as tar writes it."""
        end = tarfile.BLOCKSIZE * 2
        end += -(self.length + len(self.pending) + end) % tarfile.RECORDSIZE
        self._plain(bytes(end))
        self._flush()
        self.target.flush()

    def _header(self, name: str, size: int) -> bytes:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o644, self.mtime
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")

    def _plain(self, data: bytes) -> None:
        self.pending += data

    def _flush(self) -> None:
        if not self.pending:
            return
        self.length += len(self.pending)
        if self.compress:
            compressor = _gzip_member()
            self._write(compressor.compress(self.pending) + compressor.flush())
        else:
            self._write(bytes(self.pending))
        self.pending.clear()

    def _write(self, data: bytes) -> None:
        self.target.write(data)
        self.written += len(data)


_COPY_BYTES = 2**20
_BLOCKS_BEHIND = 2  # blocks read but not yet spooled: the memory the rows take
# Level 1: half the CPU of zlib's default 6 for archives a third larger (13% of the JSON rather than 10%),
# so that a compressed export keeps up with PostgreSQL printing the rows.
_LEVEL = 1


def _gzip_member() -> Any:
    """A compressor whose output is one whole gzip member (header, deflate data, CRC and size)."""
    return zlib.compressobj(_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)


def _padding(size: int) -> bytes:
    return bytes(-size % tarfile.BLOCKSIZE)


def _mtime(metadata: Mapping[str, Any]) -> int:
    """Members carry the checkpoint's time, so two archives of one checkpoint have the same tar members."""
    created = metadata.get("created_at")
    if isinstance(created, str):
        with contextlib.suppress(ValueError):
            created = datetime.fromisoformat(created)
    return int(created.timestamp()) if isinstance(created, datetime) else 0


def _blocks(rows: Iterable[Row]) -> Iterator[bytes]:
    """The rows as blocks of JSON lines: blocks already encoded as they come, dicts encoded _BATCH_ROWS at a time."""
    pending: list[bytes] = []
    for row in rows:
        if isinstance(row, bytes):
            if pending:
                yield b"".join(pending)
                pending = []
            yield row
            continue
        pending.append(_ROW_ENCODER.encode(row).encode() + b"\n")
        if len(pending) == _BATCH_ROWS:
            yield b"".join(pending)
            pending = []
    if pending:
        yield b"".join(pending)
