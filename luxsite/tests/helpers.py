"""Helpers the tests of every app share: JSON posts, commands, refusals, and polling with a deadline."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from luxsite.errors import DomainError

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


def command(*args: str) -> str:
    """Run a manage.py command as an operator would and return what it printed."""
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def command_refused(*args: str) -> CommandError:
    """Run a command that must refuse, and return its error (a non-zero exit with a message)."""
    with pytest.raises(CommandError) as error:
        command(*args)
    return error.value


def refused(code: str, call: Callable[[], Any]) -> DomainError:
    """Call a service that must refuse with ``code``, and return the error."""
    with pytest.raises(DomainError) as failure:
        call()
    assert failure.value.code == code, failure.value.detail
    return failure.value
