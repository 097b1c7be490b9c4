"""``manage.py token create USER | list | revoke PREFIX``: API tokens for people and agents."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from luxsite.errors import DomainError
from luxsite.models import ApiToken
from luxsite.tokens import token_create, token_revoke


class Command(BaseCommand):
    help = "Create, list and revoke API tokens."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        creator = sub.add_parser("create", help="Create a token for USER and print it once.")
        creator.add_argument("username")
        creator.add_argument("--name", default="", help="What the token is for.")
        lister = sub.add_parser("list", help="List tokens (never their secrets).")
        lister.add_argument("username", nargs="?")
        revoker = sub.add_parser("revoke", help="Revoke the token whose prefix is PREFIX.")
        revoker.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"handle_{options['action']}")(options)
        except DomainError as error:
            raise CommandError(error.detail) from None

    def handle_create(self, options: dict[str, Any]) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user named {options['username']!r}")
        _token, secret = token_create(user=user, name=options["name"])
        self.stdout.write(secret)
        self.stderr.write("Store this token now: it is not shown again. Use it as 'Authorization: Bearer <token>'.")

    def handle_list(self, options: dict[str, Any]) -> None:
        tokens = ApiToken.objects.select_related("user").order_by("-created_at")
        if options["username"]:
            tokens = tokens.filter(user__username=options["username"])
        for token in tokens:
            state = "active" if token.is_active else f"revoked {token.revoked_at:%Y-%m-%d}"
            self.stdout.write(f"{token.prefix}…\t{token.user.get_username()}\t{token.name or '-'}\t{state}")

    def handle_revoke(self, options: dict[str, Any]) -> None:
        matches = list(ApiToken.objects.filter(prefix__startswith=options["prefix"])[:2])
        if len(matches) != 1:
            raise CommandError(
                f"{'no token' if not matches else 'more than one token'} starts with {options['prefix']!r}"
            )
        token_revoke(token=matches[0])
        self.stdout.write(f"revoked {matches[0].prefix}…")
