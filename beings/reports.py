"""Files under ``LUXOS_SOUL_LOG_DIR``: exports for GitOps and people; the database stays the truth.

Every file is written atomically (a temporary file in the same directory, then a rename) while
holding an exclusive lock on ``.lock`` in that directory, so concurrent writers (web processes,
workers, commands) never interleave a read-modify-write or leave a half-written file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings


def soul_log_dir() -> Path:
    return Path(settings.LUXOS_SOUL_LOG_DIR)


@contextlib.contextmanager
def soul_log_lock(directory: Path | None = None) -> Iterator[Path]:
    """Hold the directory's writer lock; yields the directory, created if missing."""
    directory = directory or soul_log_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield directory
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def file_write_atomic(path: Path, content: str) -> None:
    """Replace ``path`` with ``content`` in one rename: readers see the old file or the new, never half."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def json_text(value: Any) -> str:
    """Indented, key-sorted JSON with a final newline: stable files that diff well in git."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
