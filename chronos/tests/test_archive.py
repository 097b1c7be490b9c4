"""The checkpoint archive: rows survive a round trip, memory stays flat, and hostile archives are refused."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from chronos.archive import MEMBERS, archive_read, archive_write, env_config
from chronos.exceptions import (
    ArchiveContentError,
    ArchiveCorruptError,
    ArchiveDigestError,
    ArchiveInvalidError,
    ArchiveMemberError,
    ArchiveTooLargeError,
    ArchiveVersionError,
)

MB = 1024 * 1024
METADATA = {"name": "before the storm", "created_at": "2025-03-01T12:00:00+00:00", "timeline": "main"}
ENV = {"LUXOS_PAGE_SIZE": 50, "ENABLE_CHRONOS": True}


def beings_rows(count: int) -> Iterator[dict[str, Any]]:
    for index in range(count):
        yield {"id": index, "alias": f"being-{index}", "tags": ["a", "ü"], "genotype": {"energy": index / 2}}


def small_rows(count: int) -> Iterator[dict[str, Any]]:
    for index in range(count):
        yield {"id": index, "alias": f"being-{index}"}


def relationship_rows(count: int) -> Iterator[dict[str, Any]]:
    for index in range(count):
        yield {"id": index, "source": index, "target": index + 1, "tags": [], "note": None}


def written(*, compress: bool = False, beings: int = 30, relationships: int = 20) -> bytes:
    target = io.BytesIO()
    archive_write(
        target,
        metadata=METADATA,
        beings=beings_rows(beings),
        relationships=relationship_rows(relationships),
        env_config=ENV,
        compress=compress,
    )
    return target.getvalue()


def members_of(data: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        return [(member.name, tar.extractfile(member).read()) for member in tar]  # type: ignore[union-attr]


def tar_of(entries: Sequence[tuple[str, bytes] | tarfile.TarInfo], *, compress: bool = False) -> io.BytesIO:
    """A tar of the given (name, data) members and bare headers (links, directories), built by hand."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if compress else "w") as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
                continue
            name, data = entry
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def signed(entries: list[tuple[str, bytes]], *, version: int = 1) -> list[tuple[str, bytes] | tarfile.TarInfo]:
    """The entries followed by a manifest that vouches for them, so that only what a test changed is wrong."""
    digests = {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in entries}
    return [*entries, ("manifest.json", json.dumps({"format": version, "members": digests}).encode())]


def valid_entries() -> list[tuple[str, bytes]]:
    """The members of a good archive, manifest excluded."""
    return [entry for entry in members_of(written()) if entry[0] != "manifest.json"]


def replaced(name: str, data: bytes) -> list[tuple[str, bytes]]:
    return [(member, data if member == name else content) for member, content in valid_entries()]


def header(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def cut_after_manifest() -> io.BytesIO:
    """A plain archive whose members are all whole but whose end-of-archive blocks are cut off."""
    data = written()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        manifest = tar.getmember("manifest.json")
    return io.BytesIO(data[: manifest.offset_data + -(-manifest.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE])


class OneWay(io.RawIOBase):
    """A stream that can only be read or written forward, like an HTTP body."""

    def __init__(self, data: bytes = b"") -> None:
        self.inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(min(len(buffer), 1000))  # short reads, as a socket gives
        buffer[: len(data)] = data
        return len(data)

    def write(self, data: Any) -> int:
        return self.inner.write(data)


class Zeros(io.RawIOBase):
    """``size`` zero bytes, produced on demand so that a test never holds them all."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


@pytest.mark.parametrize("compress", [True, False])
def test_rows_metadata_and_settings_survive_a_round_trip(compress: bool) -> None:
    """What goes in comes out: rows, counts, metadata and settings, with a manifest matching every member."""
    target = io.BytesIO()
    report = archive_write(
        target,
        metadata=METADATA,
        beings=beings_rows(30),
        relationships=relationship_rows(20),
        env_config=ENV,
        compress=compress,
    )
    data = target.getvalue()
    assert data.startswith(b"\x1f\x8b") is compress
    assert (report.beings, report.relationships, report.bytes_written) == (30, 20, len(data))

    members = members_of(data)
    assert [name for name, _ in members] == list(MEMBERS)
    digests = {name: {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content)} for name, content in members}
    assert report.manifest == {"format": 1, "members": {name: digests[name] for name in MEMBERS[:-1]}}
    assert json.loads(dict(members)["manifest.json"]) == report.manifest

    with archive_read(io.BytesIO(data)) as archive:
        assert archive.metadata == METADATA
        assert archive.env_config == ENV
        assert archive.manifest == report.manifest
        assert (archive.beings_count, archive.relationships_count) == (30, 20)
        assert list(archive.beings()) == list(beings_rows(30))
        assert list(archive.relationships()) == list(relationship_rows(20))


def test_tar_members_are_plain_files_stamped_with_the_checkpoint_time() -> None:
    """Every member is a 0644 file owned by nobody in particular, dated at the checkpoint's creation.

    So two archives of one checkpoint are the same bytes, compressed or not.
    """
    assert written(compress=True) == written(compress=True)
    assert written() == written()
    with tarfile.open(fileobj=io.BytesIO(written()), mode="r:") as tar:
        stamps = {(m.mode, m.mtime, m.uid, m.gid, m.uname, m.gname, m.isfile()) for m in tar.getmembers()}
    assert stamps == {(0o644, 1740830400, 0, 0, "", "", True)}


def test_one_way_streams_and_paths_are_accepted(tmp_path: Path) -> None:
    """The writer streams to a non-seekable target; the reader takes a non-seekable stream or a path."""
    target = OneWay()
    archive_write(
        target,  # type: ignore[arg-type]
        metadata=METADATA,
        beings=beings_rows(2000),
        relationships=[],
        env_config=ENV,
        compress=True,
    )
    data = target.inner.getvalue()
    with archive_read(io.BufferedReader(OneWay(data))) as archive:
        assert archive.beings_count == 2000
        assert archive.relationships_count == 0
    path = tmp_path / "checkpoint.tar.gz"
    path.write_bytes(data)
    with archive_read(path) as archive:
        assert sum(1 for _ in archive.beings()) == 2000


def test_two_iterations_of_the_rows_do_not_disturb_each_other() -> None:
    """Each call to beings() reads from the start at its own pace, even interleaved with another."""
    with archive_read(io.BytesIO(written(beings=5000))) as archive:
        first, second = archive.beings(), archive.beings()
        assert next(first)["id"] == 0
        assert [row["id"] for row in second] == list(range(5000))
        assert next(first)["id"] == 1


def test_memory_stays_flat_for_200_000_rows(tmp_path: Path) -> None:
    """Writing 200,000 rows from a generator, then reading them back, never holds more than a few MB."""
    with (tmp_path / "big.tar.gz").open("w+b") as file:
        tracemalloc.start()
        try:
            report = archive_write(
                file,
                metadata=METADATA,
                beings=small_rows(200_000),
                relationships=relationship_rows(1000),
                env_config=ENV,
                compress=True,
            )
            _, write_peak = tracemalloc.get_traced_memory()
            file.seek(0)
            tracemalloc.reset_peak()
            with archive_read(file) as archive:
                last = None
                for last in archive.beings():  # noqa: B007
                    pass
            _, read_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert report.manifest["members"]["beings.jsonl"]["size"] > 5 * MB  # the rows would not fit under the peaks
    assert write_peak < 4 * MB
    assert read_peak < 4 * MB
    assert last == {"id": 199_999, "alias": "being-199999"}


HOSTILE: list[Any] = [
    pytest.param(lambda: io.BytesIO(b"just some text, " * 100), ArchiveCorruptError, "not a tar", id="not-a-tar"),
    pytest.param(lambda: io.BytesIO(b""), ArchiveCorruptError, "not a tar", id="empty"),
    pytest.param(
        lambda: io.BytesIO(written(beings=3000)[: len(written(beings=3000)) // 2]),
        ArchiveCorruptError,
        "truncated",
        id="truncated",
    ),
    pytest.param(
        lambda: (lambda data: io.BytesIO(data[: len(data) // 2]))(written(compress=True, beings=3000)),
        ArchiveCorruptError,
        "truncated",
        id="truncated-gzip",
    ),
    pytest.param(cut_after_manifest, ArchiveCorruptError, "truncated: it stops before the end", id="no-end-blocks"),
    pytest.param(
        lambda: tar_of([*replaced("beings.jsonl", b'{"id":666}\n'), members_of(written())[-1]]),
        ArchiveDigestError,
        "'beings.jsonl' does not match its sha256 and size",
        id="wrong-digest",
    ),
    pytest.param(
        lambda: tar_of(signed([*valid_entries()[:1], ("../evil", b"x"), *valid_entries()[1:]])),
        ArchiveMemberError,
        "Unsafe member name '../evil'",
        id="dot-dot",
    ),
    pytest.param(
        lambda: tar_of(signed([("/abs", b"x"), *valid_entries()])),
        ArchiveMemberError,
        "Unsafe member name '/abs'",
        id="absolute",
    ),
    pytest.param(
        lambda: tar_of([header("checkpoint.json", tarfile.SYMTYPE, "/etc/passwd")]),
        ArchiveMemberError,
        "'checkpoint.json' is a symbolic link",
        id="symlink",
    ),
    pytest.param(
        lambda: tar_of([valid_entries()[0], header("beings.jsonl", tarfile.LNKTYPE, "checkpoint.json")]),
        ArchiveMemberError,
        "'beings.jsonl' is a hard link",
        id="hardlink",
    ),
    pytest.param(
        lambda: tar_of([header("checkpoint.json", tarfile.DIRTYPE)]),
        ArchiveMemberError,
        "is a directory",
        id="directory",
    ),
    pytest.param(
        lambda: tar_of([header("checkpoint.json", tarfile.CHRTYPE)]),
        ArchiveMemberError,
        "is a device",
        id="device",
    ),
    pytest.param(
        lambda: tar_of(signed(replaced("checkpoint.json", b'{"format": 2}'), version=2)),
        ArchiveVersionError,
        "format 2, unknown here",
        id="unknown-version",
    ),
    pytest.param(
        lambda: tar_of(signed(valid_entries(), version=None)),  # type: ignore[arg-type]
        ArchiveVersionError,
        "format None, unknown",
        id="null-version",
    ),
    pytest.param(
        lambda: tar_of(signed(replaced("checkpoint.json", b'{"name": "x"}'))),
        ArchiveVersionError,
        "checkpoint.json has no format version",
        id="missing-version",
    ),
    pytest.param(
        lambda: tar_of(signed([entry for entry in valid_entries() if entry[0] != "relationships.jsonl"])),
        ArchiveMemberError,
        "Missing member 'relationships.jsonl' \\(found 'env_config.json'",
        id="missing-member",
    ),
    pytest.param(
        lambda: tar_of(valid_entries()),
        ArchiveMemberError,
        "Missing member 'manifest.json': the archive ends",
        id="missing-manifest",
    ),
    pytest.param(
        lambda: tar_of(signed([*valid_entries()[:2], ("notes.txt", b"hi"), *valid_entries()[2:]])),
        ArchiveMemberError,
        "Unexpected member 'notes.txt'",
        id="extra-member",
    ),
    pytest.param(
        lambda: tar_of([*signed(valid_entries()), ("notes.txt", b"hi")]),
        ArchiveMemberError,
        "Unexpected member 'notes.txt' after 'manifest.json'",
        id="extra-member-at-the-end",
    ),
    pytest.param(
        lambda: tar_of(signed([*valid_entries()[:2], *valid_entries()[1:]])),
        ArchiveMemberError,
        "Duplicate member 'beings.jsonl'",
        id="duplicate-member",
    ),
    pytest.param(
        lambda: tar_of(signed(replaced("beings.jsonl", b'{"id": 1}\n[1, 2]\n'))),
        ArchiveContentError,
        "beings.jsonl line 2 is not a JSON object",
        id="line-not-an-object",
    ),
    pytest.param(
        lambda: tar_of(signed(replaced("relationships.jsonl", b'{"id": 1}\n{"id": \n'))),
        ArchiveContentError,
        "relationships.jsonl line 2 is not a JSON object",
        id="line-not-json",
    ),
    pytest.param(
        lambda: tar_of(signed(replaced("env_config.json", b'["LUXOS_PAGE_SIZE"]'))),
        ArchiveContentError,
        "env_config.json is not a JSON object",
        id="document-not-an-object",
    ),
]


@pytest.mark.parametrize(("build", "error", "message"), HOSTILE)
def test_hostile_archives_are_refused_with_their_reason(
    build: Callable[[], io.BytesIO], error: type[ArchiveInvalidError], message: str
) -> None:
    """Each way an archive can be broken or malicious is refused with its own error and a clear message."""
    with pytest.raises(error, match=message) as refused:
        archive_read(build())
    assert (refused.value.status, refused.value.code.startswith("archive_")) == (422, True)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A gzipped archive whose beings member is 50 MB of zeros, a few dozen KB compressed."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        checkpoint = valid_entries()[0][1]
        info = tarfile.TarInfo("checkpoint.json")
        info.size = len(checkpoint)
        tar.addfile(info, io.BytesIO(checkpoint))
        info = tarfile.TarInfo("beings.jsonl")
        info.size = 50 * MB
        tar.addfile(info, Zeros(50 * MB))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_member_bytes": MB}, "'beings.jsonl' is 52428800 bytes, over the limit of 1048576"),
        ({"max_total_bytes": MB}, "over the limit of 1048576 bytes uncompressed"),
    ],
    ids=["member-limit", "total-limit"],
)
def test_a_decompression_bomb_stops_early(bomb: bytes, limits: dict[str, int], message: str) -> None:
    """50 MB of zeros in a small gzip is refused at the limit, without ever holding the 50 MB."""
    assert len(bomb) < 200 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveTooLargeError, match=message):
            archive_read(io.BytesIO(bomb), **limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MB


def test_a_huge_tar_header_is_refused_before_it_is_read() -> None:
    """A pax header of 5 MB (where names and times take a few bytes) is refused without being read into memory."""
    info = tarfile.TarInfo("checkpoint.json")
    info.pax_headers = {"comment": "z" * (5 * MB)}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b""))
    buffer.seek(0)
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveTooLargeError, match=r"A tar header of 52\d{5} bytes is over the limit of 1048576"):
            archive_read(buffer)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * MB


@override_settings(
    LUXOS_SOMETHING_URL="postgresql://u:secretpw@h/db",
    LUXOS_CACHE_URLS=["redis://:redispw@cache:6379/0", "redis://cache:6379/1"],
    LUXOS_API_TOKEN="tokenvalue",
    LUXOS_SIGNING_KEY="keyvalue",
    LUXOS_EXPORT_DIR=Path("/srv/luxos/exports"),
    CHRONOS_REMOTE={"url": "https://bob:p@ss@backup.example/x", "password": "nestedpw", "retries": 3},
    ENABLE_CHRONOS=True,
    OTHER_SETTING="not ours",
)
def test_env_config_ships_our_settings_without_their_secrets() -> None:
    """LUXOS_*, CHRONOS_* and ENABLE_CHRONOS go into the archive as JSON; secrets and URL passwords do not."""
    config = env_config()
    dump = json.dumps(config)
    for secret in ("secretpw", "redispw", "tokenvalue", "keyvalue", "nestedpw", "p@ss", "development-key"):
        assert secret not in dump
    assert config["LUXOS_SOMETHING_URL"] == "postgresql://u:***@h/db"
    assert config["LUXOS_CACHE_URLS"] == ["redis://:***@cache:6379/0", "redis://cache:6379/1"]
    assert config["CHRONOS_REMOTE"] == {"url": "https://bob:***@backup.example/x", "retries": 3}
    assert config["LUXOS_EXPORT_DIR"] == "/srv/luxos/exports"
    assert config["ENABLE_CHRONOS"] is True
    assert config["LUXOS_PAGE_SIZE"] == 50
    assert not {"SECRET_KEY", "LUXOS_API_TOKEN", "LUXOS_SIGNING_KEY", "LUXOS_ADMIN_PASSWORD", "OTHER_SETTING"} & set(
        config
    )
