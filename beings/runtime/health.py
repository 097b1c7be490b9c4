"""The health of this host's sandbox: which isolation layers are in force."""

from __future__ import annotations

import threading
from typing import Any

from beings.runtime.sandbox import Sandbox

_layers: dict[str, dict[str, Any]] | None = None


_layers_lock = threading.Lock()


def sandbox_layers() -> dict[str, dict[str, Any]]:
    """Layer -> {in_force, detail} on this host, proven once per process by a self-test child.

    A sandbox of its own, closed afterwards: a web process that reports health keeps no zygote.
    """
    global _layers
    with _layers_lock:
        if _layers is None:
            sandbox = Sandbox()
            try:
                _layers = sandbox.layers_report()
            finally:
                sandbox.close()
        return _layers
