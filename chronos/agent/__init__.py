"""The agent door: LuxOS's operations as MCP tools, over stdio (``manage.py mcp``) and HTTP (``/mcp``)."""
