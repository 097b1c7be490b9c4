"""Helpers the tests of every app share: JSON posts, and polling with a deadline instead of sleeping."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

WAIT_SECONDS = 30.0


def post(client: Client, path: str, body: Any = None, **headers: str) -> Any:
    """POST ``body`` as JSON (text or bytes as they are, nothing as ``{}``) with ``headers``."""
    data = body if isinstance(body, str | bytes) else json.dumps({} if body is None else body)
    return client.post(path, data, content_type="application/json", headers=headers)


def wait_for(condition: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
    """Poll ``condition`` until it returns something truthy, and return that; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"nothing happened within {timeout:g} s")
