"""``manage.py sandbox check [--json]``: which sandbox layers are in force on this host."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from beings.runtime.jobs import SandboxLimits, SandboxUnavailable
from beings.runtime.sandbox import Sandbox


class Command(BaseCommand):
    help = "Check the being sandbox: a confined child tries what its layers must refuse."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        checker = sub.add_parser("check", help="Report which layers are in force; exit 1 if strict and one is not.")
        checker.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        limits = SandboxLimits.from_settings(settings)
        sandbox = Sandbox()
        try:
            check = sandbox.check(limits)
        except SandboxUnavailable as error:
            raise CommandError(str(error)) from None
        finally:
            sandbox.close()
        if options["json"]:
            report = {"strict": limits.strict, "layers": check.layers, "missing": check.missing}
            self.stdout.write(json.dumps(report, indent=2))
        else:
            for name, layer in check.layers.items():
                state = "in force" if layer["in_force"] else "MISSING"
                self.stdout.write(f"{name:<9} {state:<9} {layer['detail']}")
        if check.missing and limits.strict:
            raise CommandError(f"LUXOS_SANDBOX_STRICT is on and layers are missing: {', '.join(check.missing)}")
