"""Files written whole or not at all: what readers of a name see is the old file or the new, never half."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def file_replaced(path: Path) -> Iterator[BinaryIO]:
    """A file that becomes ``path`` in one rename when the block ends well, and is removed when it fails.

    The directory must exist: a path that names none is the caller's mistake, not one to paper over.
    """
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            # mkstemp makes the file private (0600); these files are exports, meant to be read by others.
            os.fchmod(handle.fileno(), 0o644)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
