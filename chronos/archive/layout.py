"""The layout of a checkpoint archive: its format version, its members in order, and the limits on reading it."""

from __future__ import annotations

import tarfile
from typing import Any

FORMAT_VERSION = 1
CHECKPOINT = "checkpoint.json"
BEINGS = "beings.jsonl"
RELATIONSHIPS = "relationships.jsonl"
ENV_CONFIG = "env_config.json"
MANIFEST = "manifest.json"
MEMBERS = (CHECKPOINT, BEINGS, RELATIONSHIPS, ENV_CONFIG, MANIFEST)

DEFAULT_MAX_MEMBER_BYTES = 4 * 1024**3
DEFAULT_MAX_TOTAL_BYTES = 8 * 1024**3
# The JSON documents are read whole into memory, so they have a tighter bound than the row members.
MAX_DOCUMENT_BYTES = 16 * 1024**2
# Our own reads are CHUNK bytes; only a tar header (pax, GNU long name) asks for more at once.
MAX_HEADER_BYTES = 1024**2

CHUNK = 64 * 1024


def tar_open(fileobj: Any, *, mode: str) -> tarfile.TarFile:
    """Open a tar over our own stream wrappers, which have only the methods tarfile calls in ``mode``."""
    return tarfile.open(fileobj=fileobj, mode=mode)  # type: ignore[call-overload]
