"""Reading a checkpoint archive: everything verified, within limits, before a single row is handed out."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import tarfile
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from types import TracebackType
from typing import IO, Any, BinaryIO

from chronos.archive.layout import (
    BEINGS,
    CHECKPOINT,
    CHUNK,
    DEFAULT_MAX_MEMBER_BYTES,
    DEFAULT_MAX_TOTAL_BYTES,
    ENV_CONFIG,
    FORMAT_VERSION,
    MANIFEST,
    MAX_DOCUMENT_BYTES,
    MAX_HEADER_BYTES,
    MEMBERS,
    RELATIONSHIPS,
    tar_open,
)
from chronos.exceptions import (
    ArchiveContentError,
    ArchiveCorruptError,
    ArchiveDigestError,
    ArchiveMemberError,
    ArchiveTooLargeError,
    ArchiveVersionError,
)

_BLOCK = 512
_GZIP_MAGIC = b"\x1f\x8b"


class Archive:
    """A verified archive: its documents in memory, its rows in temporary spools until it is closed."""

    def __init__(
        self,
        *,
        metadata: dict[str, Any],
        env_config: dict[str, Any],
        manifest: dict[str, Any],
        counts: dict[str, int],
        spools: dict[str, IO[bytes]],
        cleanup: contextlib.ExitStack,
    ) -> None:
        self.metadata = metadata
        self.env_config = env_config
        self.manifest = manifest
        self.beings_count = counts[BEINGS]
        self.relationships_count = counts[RELATIONSHIPS]
        self._spools = spools
        self._cleanup = cleanup

    def beings(self) -> Iterator[dict[str, Any]]:
        return (row for _, row in _rows(self._spools[BEINGS]))

    def relationships(self) -> Iterator[dict[str, Any]]:
        return (row for _, row in _rows(self._spools[RELATIONSHIPS]))

    def lines(self, member: str) -> Iterator[tuple[bytes, dict[str, Any]]]:
        """Each row of ``member`` (beings.jsonl, relationships.jsonl) as its line of JSON and decoded.

        The line is the row exactly as written (``1.50`` stays ``1.50``); the dict is for checking it.
        """
        return _rows(self._spools[member])

    def close(self) -> None:
        self._cleanup.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def archive_read(
    source: BinaryIO | str | os.PathLike[str],
    *,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
) -> Archive:
    """Verify a checkpoint archive from a file, a path or a stream, and open it for reading its rows."""
    with contextlib.ExitStack() as opened, contextlib.ExitStack() as spooled:
        stream: BinaryIO = opened.enter_context(open(source, "rb")) if isinstance(source, str | os.PathLike) else source
        try:
            reader = _BoundedReader(_decompressed(stream), max_total_bytes=max_total_bytes)
            tar = opened.enter_context(tar_open(reader, mode="r:"))
            spools, digests = _spool_members(tar, reader, spooled, max_member_bytes=max_member_bytes)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise ArchiveCorruptError(f"Not a complete archive (truncated, or not a tar file): {error}.") from error
        manifest = _document(MANIFEST, spools[MANIFEST])
        _check_format(MANIFEST, manifest)
        _check_manifest(manifest, digests)
        checkpoint = _document(CHECKPOINT, spools[CHECKPOINT])
        _check_format(CHECKPOINT, checkpoint)
        counts = {name: _count_rows(name, spools[name]) for name in (BEINGS, RELATIONSHIPS)}
        metadata = {key: value for key, value in checkpoint.items() if key != "format"}
        environment = _document(ENV_CONFIG, spools[ENV_CONFIG])
        return Archive(
            metadata=metadata,
            env_config=environment,
            manifest=manifest,
            counts=counts,
            spools=spools,
            cleanup=spooled.pop_all(),
        )


class _Prefixed:
    """A stream whose first bytes were already read to sniff the compression."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self.head = head
        self.rest = rest

    def read(self, size: int = -1) -> bytes:
        if not self.head:
            return self.rest.read(size)
        data, self.head = (self.head, b"") if size < 0 else (self.head[:size], self.head[size:])
        return data


def _read_full(stream: Any, size: int) -> bytes:
    """Read ``size`` bytes, or fewer only at the end: a network stream may return short reads."""
    parts = []
    while size > 0 and (data := stream.read(size)):
        parts.append(data)
        size -= len(data)
    return b"".join(parts)


def _decompressed(stream: BinaryIO) -> Any:
    head = _read_full(stream, len(_GZIP_MAGIC))
    source: Any = _Prefixed(head, stream)  # GzipFile reads it forward only, never seeks
    return gzip.GzipFile(fileobj=source, mode="rb") if head == _GZIP_MAGIC else source


class _BoundedReader:
    """The decompressed tar, read forward only, every byte counted against the total limit as it is read."""

    def __init__(self, source: Any, *, max_total_bytes: int) -> None:
        self.source = source
        self.max_total_bytes = max_total_bytes
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        if not 0 <= size <= MAX_HEADER_BYTES:
            raise ArchiveTooLargeError(f"A tar header of {size} bytes is over the limit of {MAX_HEADER_BYTES}.")
        data = _read_full(self.source, min(size, self.max_total_bytes - self.position + 1))
        self.position += len(data)
        if self.position > self.max_total_bytes:
            raise ArchiveTooLargeError(f"The archive is over the limit of {self.max_total_bytes} bytes uncompressed.")
        return data

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET or offset < self.position:
            raise io.UnsupportedOperation("An archive is read forward only.")
        while self.position < offset and self.read(min(offset - self.position, CHUNK)):
            pass
        return self.position


def _spool_members(
    tar: tarfile.TarFile, reader: _BoundedReader, spooled: contextlib.ExitStack, *, max_member_bytes: int
) -> tuple[dict[str, IO[bytes]], dict[str, dict[str, Any]]]:
    """Copy each expected member, in order, to a temporary file, with its sha256 and size."""
    spools: dict[str, IO[bytes]] = {}
    digests: dict[str, dict[str, Any]] = {}
    for expected in MEMBERS:
        member = tar.next()
        if member is None:
            raise ArchiveMemberError(f"Missing member {expected!r}: the archive ends before it.")
        name = _checked_name(member, seen=spools)
        if name != expected:
            raise ArchiveMemberError(f"Missing member {expected!r} (found {name!r} in its place).")
        limit = max_member_bytes if name.endswith(".jsonl") else min(max_member_bytes, MAX_DOCUMENT_BYTES)
        # tarfile reads exactly the size the header declares, so refusing it here refuses before any read.
        if member.size > limit:
            raise ArchiveTooLargeError(f"Member {name!r} is {member.size} bytes, over the limit of {limit}.")
        data = tar.extractfile(member)
        assert data is not None  # a regular file, checked above
        spool = spools[name] = spooled.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (closed with the Archive)
        digest = hashlib.sha256()
        while chunk := data.read(CHUNK):
            digest.update(chunk)
            spool.write(chunk)
        spool.seek(0)
        digests[name] = {"sha256": digest.hexdigest(), "size": member.size}
    _check_end(tar, reader)
    return spools, digests


def _checked_name(member: tarfile.TarInfo, *, seen: Mapping[str, Any]) -> str:
    name = member.name
    if not member.isfile() or member.issparse():
        raise ArchiveMemberError(f"Member {name!r} is {_kind(member)}, not a plain file.")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        raise ArchiveMemberError(f"Unsafe member name {name!r}.")
    if name not in MEMBERS:
        raise ArchiveMemberError(f"Unexpected member {name!r}.")
    if name in seen:
        raise ArchiveMemberError(f"Duplicate member {name!r}.")
    return name


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "a symbolic link"
    if member.islnk():
        return "a hard link"
    if member.isdir():
        return "a directory"
    if member.isdev():
        return "a device"
    return "a sparse file" if member.issparse() else "not a regular file"


def _check_end(tar: tarfile.TarFile, reader: _BoundedReader) -> None:
    """Read to the end: after the manifest come only the zero blocks that end a tar (and the gzip trailer)."""
    reader.seek(tar.offset)
    tail = reader.read(2 * _BLOCK)
    if tail.strip(b"\0"):
        try:
            name = tarfile.TarInfo.frombuf(tail[:_BLOCK], tar.encoding, tar.errors).name
        except tarfile.HeaderError:
            raise ArchiveCorruptError(f"Unexpected data after {MANIFEST!r}.") from None
        raise ArchiveMemberError(f"Unexpected member {name!r} after {MANIFEST!r}.")
    if len(tail) < 2 * _BLOCK:
        raise ArchiveCorruptError("The archive is truncated: it stops before the end-of-archive blocks.")
    while chunk := reader.read(CHUNK):
        if chunk.strip(b"\0"):
            raise ArchiveCorruptError(f"Unexpected data after {MANIFEST!r}.")


def _document(name: str, spool: IO[bytes]) -> dict[str, Any]:
    try:
        document = json.loads(spool.read())
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise ArchiveContentError(f"{name} is not a JSON object.")
    return document


def _check_format(name: str, document: Mapping[str, Any]) -> None:
    if "format" not in document:
        raise ArchiveVersionError(f"{name} has no format version.")
    if document["format"] != FORMAT_VERSION:
        raise ArchiveVersionError(
            f"{name} is in format {document['format']!r}, unknown here (this LuxOS reads format {FORMAT_VERSION})."
        )


def _check_manifest(manifest: Mapping[str, Any], digests: Mapping[str, Mapping[str, Any]]) -> None:
    listed = manifest.get("members")
    if not isinstance(listed, dict) or set(listed) != set(digests) - {MANIFEST}:
        raise ArchiveDigestError(f"{MANIFEST} does not list exactly the members {sorted(set(digests) - {MANIFEST})}.")
    for name, entry in listed.items():
        if entry != digests[name]:
            raise ArchiveDigestError(f"Member {name!r} does not match its sha256 and size in {MANIFEST}.")


def _count_rows(name: str, spool: IO[bytes]) -> int:
    """Check that every line is a JSON object, and count them."""
    count = 0
    for count, line in enumerate(spool, start=1):
        try:
            row = json.loads(line)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
            row = None
        if not isinstance(row, dict):
            raise ArchiveContentError(f"{name} line {count} is not a JSON object.")
    spool.seek(0)
    return count


def _rows(spool: IO[bytes]) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Rows from a spool with their lines, each iterator at its own position so that two may run side by side."""
    position = 0
    while True:
        spool.seek(position)
        lines = spool.readlines(CHUNK)
        if not lines:
            return
        position = spool.tell()
        for line in lines:
            yield line.rstrip(b"\n"), json.loads(line)
