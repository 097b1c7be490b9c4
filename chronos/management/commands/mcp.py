"""``manage.py mcp``: the agent door over stdio, for an MCP client that starts LuxOS as its subprocess.

The tools act as one user for the whole session: ``--as USER`` (default ``LUXOS_ADMIN_USER``), or the
owner of the API token ``--token`` names (or the ``LUXOS_MCP_TOKEN`` environment variable, which keeps
the secret off the command line). stdout carries the protocol only; logs go to stderr.
"""

from __future__ import annotations

import os
from argparse import ArgumentParser
from typing import Any

import anyio
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from chronos.agent.acting import acting_as
from chronos.agent.server import agent_server
from luxsite.tokens import token_authenticate

TOKEN_VARIABLE = "LUXOS_MCP_TOKEN"


class Command(BaseCommand):
    help = "Serve LuxOS's tools to an MCP client over stdin and stdout, acting as one user."

    def add_arguments(self, parser: ArgumentParser) -> None:
        who = parser.add_mutually_exclusive_group()
        who.add_argument(
            "--as", dest="as_user", default=None, metavar="USER", help="Act as this user (default: LUXOS_ADMIN_USER)."
        )
        who.add_argument(
            "--token",
            default=None,
            metavar="TOKEN",
            help=f"Act as the owner of this API token (lux_…); also read from {TOKEN_VARIABLE}.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = self.user_named(as_user=options["as_user"], token=options["token"] or os.environ.get(TOKEN_VARIABLE))
        server = agent_server()
        # Each tool call opens its own connection on the SDK's worker thread: this one would only sit idle.
        connection.close()
        with acting_as(user):
            anyio.run(server.run_stdio_async)

    def user_named(self, *, as_user: str | None, token: str | None) -> Any:
        """The user of the session: the token's owner, else the named user, who must be active."""
        if token and as_user is None:
            owner = token_authenticate(token)
            if owner is None:
                raise CommandError("the token is unknown, revoked, or its user is inactive", returncode=1)
            return owner
        username = as_user or settings.LUXOS_ADMIN_USER
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(
                f"no active user named {username!r}; pass --as USER or create it (manage.py createadmin)", returncode=1
            )
        return user
