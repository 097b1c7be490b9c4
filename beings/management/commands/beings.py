"""``manage.py beings import FILE | list | show SOUL``: beings from the command line."""

from __future__ import annotations

import json
import sys
import time
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from beings import selectors, services
from beings.schemas import BeingOut
from chronos.context import change_context
from luxsite.errors import DomainError


class Command(BaseCommand):
    help = "Import, list and show beings."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--user", default=settings.LUXOS_ADMIN_USER,
            help="Act as this user: owner of imported beings, whose view list/show respect. "
            "Default: LUXOS_ADMIN_USER or admin.",
        )
        sub = parser.add_subparsers(dest="action", required=True)
        importer = sub.add_parser("import", help="Import beings from a JSON Lines file (- for stdin), all or nothing.")
        importer.add_argument("file")
        lister = sub.add_parser("list", help="List beings as JSON Lines.")
        lister.add_argument("--tag", action="append", default=[], help="Only beings with this tag (repeatable).")
        lister.add_argument("--type", dest="kind")
        lister.add_argument("--name")
        lister.add_argument("--limit", type=int, default=50)
        shower = sub.add_parser("show", help="Show one being as JSON.")
        shower.add_argument("soul")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"no user named {options['user']!r}; pass --user or create it (manage.py createadmin)")
        try:
            with change_context(door="command"):
                getattr(self, f"handle_{options['action']}")(user, options)
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None

    def handle_import(self, user: Any, options: dict[str, Any]) -> None:
        path = options["file"]
        try:
            stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror}") from None
        started = time.perf_counter()
        with stream:
            report = services.beings_import(lines=stream, actor=user)
        elapsed = time.perf_counter() - started
        rate = report.created / elapsed if elapsed else 0
        self.stdout.write(f"imported {report.created} beings in {elapsed:.2f} s ({rate:,.0f}/s)")

    def handle_list(self, user: Any, options: dict[str, Any]) -> None:
        filters = selectors.BeingFilters(tags_all=options["tag"], kind=options["kind"], name=options["name"])
        page = selectors.being_list(user=user, filters=filters, limit=options["limit"])
        for being in page.items:
            self.stdout.write(BeingOut.from_orm(being).model_dump_json())

    def handle_show(self, user: Any, options: dict[str, Any]) -> None:
        being = selectors.being_get(soul=options["soul"], user=user)
        self.stdout.write(json.dumps(json.loads(BeingOut.from_orm(being).model_dump_json()), indent=2))
