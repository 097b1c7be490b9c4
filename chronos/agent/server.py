"""The MCP server of LuxOS: one set of tools, served by ``manage.py mcp`` (stdio) and the ``/mcp`` view (HTTP)."""

from __future__ import annotations

import functools
from importlib import import_module

from mcp.server import MCPServer

# Each module lists its tools as (function, annotations); the function's signature is the tool's JSON schema.
TOOL_MODULES = [
    "chronos.agent.timelines",
    "chronos.agent.registry",
    "chronos.agent.historian",
]
INSTRUCTIONS = (
    "LuxOS, a living code registry. Tools act as the user the door names, with that user's permissions. "
    "A refused call is a tool error whose structured content is {code, detail}, as in the HTTP API."
)


@functools.cache
def agent_server() -> MCPServer:
    """The server with every tool, built once per process on first use."""
    server = MCPServer("luxos", instructions=INSTRUCTIONS, log_level="WARNING")
    for module in TOOL_MODULES:
        for tool, hints in import_module(module).TOOLS:
            server.add_tool(tool, annotations=hints)
    return server
