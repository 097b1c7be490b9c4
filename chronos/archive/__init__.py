"""The portable checkpoint archive: a tar of the rows and settings of one checkpoint, verified before use.

An archive holds, in this order, ``checkpoint.json`` (the caller's metadata and the format version),
``beings.jsonl`` and ``relationships.jsonl`` (one row a line), ``env_config.json`` (the settings it was
taken under) and ``manifest.json`` (the sha256 and size of every other member). It is pure file I/O:
the caller passes rows in and gets rows out; nothing here touches the database.

Writing streams: rows are spooled to a temporary file one member at a time (tar needs a member's size
before its data), so a million rows take the memory of one batch. Reading verifies everything before
it returns. The reader decompresses by itself rather than through ``tarfile.open(mode="r:*")``, which
needs a seekable source and reads pax and GNU long-name headers whole into memory: here every
decompressed byte, headers included, counts against the limits as it is read, so a decompression bomb
stops early. Members are spooled to temporary files, never extracted under their own names.
"""

from chronos.archive.environment import env_config
from chronos.archive.layout import (
    BEINGS,
    CHECKPOINT,
    DEFAULT_MAX_MEMBER_BYTES,
    DEFAULT_MAX_TOTAL_BYTES,
    ENV_CONFIG,
    FORMAT_VERSION,
    MANIFEST,
    MEMBERS,
    RELATIONSHIPS,
)
from chronos.archive.reader import Archive, archive_read
from chronos.archive.writer import ArchiveReport, archive_write

__all__ = [
    "BEINGS",
    "CHECKPOINT",
    "DEFAULT_MAX_MEMBER_BYTES",
    "DEFAULT_MAX_TOTAL_BYTES",
    "ENV_CONFIG",
    "FORMAT_VERSION",
    "MANIFEST",
    "MEMBERS",
    "RELATIONSHIPS",
    "Archive",
    "ArchiveReport",
    "archive_read",
    "archive_write",
    "env_config",
]
