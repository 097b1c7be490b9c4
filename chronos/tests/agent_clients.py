"""The SDK's own MCP client, driven from synchronous tests: over stdio (``manage.py mcp``) and over HTTP (``/mcp``)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"
T = TypeVar("T")


def over_stdio(env: dict[str, str], *options: str) -> StdioServerParameters:
    """``manage.py mcp OPTIONS`` as the client's subprocess, on the test database."""
    return StdioServerParameters(
        command=sys.executable, args=[str(MANAGE), "mcp", *options], env=env, cwd=MANAGE.parent
    )


def session(server: Any, work: Callable[[Client], Awaitable[T]], *, token: str | None = None) -> T:
    """Open one client session on ``server`` (stdio parameters, or an HTTP URL with a bearer token) and run ``work``."""

    async def main() -> T:
        if isinstance(server, str):
            http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
            async with http, Client(streamable_http_client(server, http_client=http)) as client:
                return await work(client)
        async with Client(server) as client:
            return await work(client)

    return anyio.run(main)
