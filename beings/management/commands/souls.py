"""``manage.py souls``: versions by hash, promotion and demotion, what an environment runs, manifests, validation.

Every subcommand acts as the user ``--as`` names (default ``LUXOS_ADMIN_USER``) through the
command door. An unknown hash, a refused operation or a failed validation exits 1 with its
message; ``--json`` prints documents for scripts instead of lines for people.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from beings.models import Promotion
from beings.souls import files as soul_files
from beings.souls import selectors as soul_selectors
from beings.souls import services as soul_services
from beings.souls.files import file_write_atomic, json_text
from chronos.context import change_context
from luxsite.errors import DomainError


class Command(BaseCommand):
    help = "Souls (hashes): list, show, promote, demote, production, manifest, validate, export-logs."

    def add_arguments(self, parser: ArgumentParser) -> None:
        common = ArgumentParser(add_help=False)
        common.add_argument(
            "--as",
            dest="as_user",
            default=None,
            metavar="USER",
            help="Act as this user (default: LUXOS_ADMIN_USER, the superuser `make run` ensures).",
        )
        sub = parser.add_subparsers(dest="action", required=True)

        lister = sub.add_parser("list", parents=[common], help="Versions, newest first (bounded by --limit).")
        lister.add_argument("--alias", help="Only beings with this alias.")
        lister.add_argument("--limit", type=int, default=50, help="At most this many versions (1-LUXOS_MAX_PAGE_SIZE).")
        lister.add_argument("--json", action="store_true")

        shower = sub.add_parser("show", parents=[common], help="One version by hash or prefix (≥ 12).")
        shower.add_argument("hash")
        shower.add_argument("--json", action="store_true")

        promoter = sub.add_parser("promote", parents=[common], help="Promote a hash to an environment.")
        promoter.add_argument("hash")
        promoter.add_argument("--env", default=soul_selectors.PRODUCTION)
        promoter.add_argument("--note", default="")
        promoter.add_argument("--alias", default=None, help="Promote under this alias instead of the version's own.")
        promoter.add_argument("--soul", default=None, help="The being whose version it is, when several hold the hash.")
        promoter.add_argument(
            "--replace-owner",
            action="store_true",
            help="Confirm replacing the being the alias runs with a being of other owners.",
        )
        promoter.add_argument(
            "--override-reason",
            default=None,
            help="Promote without the evidence the environment asks for, saying why (needs "
            "beings.promote_soul_override); kept on the promotion.",
        )

        demoter = sub.add_parser("demote", parents=[common], help="End the active promotion of a hash.")
        demoter.add_argument("hash")
        demoter.add_argument("--env", default=soul_selectors.PRODUCTION)
        demoter.add_argument("--note", default="")

        production = sub.add_parser("production", parents=[common], help="What an environment runs, by alias.")
        production.add_argument("--env", default=soul_selectors.PRODUCTION)
        production.add_argument("--json", action="store_true")

        manifest = sub.add_parser("manifest", parents=[common], help="The deployment manifest of an environment.")
        manifest.add_argument("--env", default=soul_selectors.PRODUCTION)
        manifest.add_argument("--out", type=Path, help="Write it to this file instead of printing it.")

        validator = sub.add_parser(
            "validate", parents=[common], help="Recompute every promoted hash; exit 1 on any problem."
        )
        validator.add_argument("--env", default=soul_selectors.PRODUCTION)
        validator.add_argument("--json", action="store_true")

        sub.add_parser(
            "export-logs", parents=[common], help="Rewrite every file under LUXOS_SOUL_LOG_DIR from the database."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["as_user"] or settings.LUXOS_ADMIN_USER
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}; pass --as USER or create it (manage.py createadmin)")
        handler = getattr(self, f"handle_{options['action'].replace('-', '_')}")
        try:
            with change_context(door="command"):
                handler(user, options)
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None

    def emit(self, document: Any) -> None:
        self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=_json_value))

    def handle_list(self, user: Any, options: dict[str, Any]) -> None:
        limit = options["limit"]
        if not 1 <= limit <= settings.LUXOS_MAX_PAGE_SIZE:
            raise CommandError(f"--limit must be between 1 and {settings.LUXOS_MAX_PAGE_SIZE}")
        versions = soul_selectors.versions_newest(user=user, alias=options["alias"], limit=limit)
        rows = [
            {
                "hash": version.hash,
                "alias": version.alias,
                "version": version.version,
                "soul": str(version.soul),
                "kind": version.kind,
                "created_at": version.created_at,
                "current": version.is_current,
            }
            for version in versions
        ]
        if options["json"]:
            self.emit(rows)
            return
        for row in rows:
            fields = [str(row[key]) for key in ("hash", "alias", "version", "soul", "created_at")]
            fields[2] = f"v{fields[2]}"
            self.stdout.write("  ".join(fields + (["current"] if row["current"] else [])))
        if not rows:
            self.stdout.write("no versions")

    def handle_show(self, user: Any, options: dict[str, Any]) -> None:
        document = soul_selectors.soul_detail(hash=options["hash"], user=user)
        if options["json"]:
            self.emit(document)
            return
        for key in ("hash", "alias", "soul", "version", "kind", "created_at", "is_current", "holder"):
            self.stdout.write(f"{key + ':':<12}{document[key]}")
        runs = ", ".join(f"{p['environment']} ({p['alias']})" for p in document["promotions"]) or "nowhere"
        self.stdout.write(f"{'promoted:':<12}{runs}")
        code = document["genotype"]
        self.stdout.write(
            f"{'genotype:':<12}{code['type']} {code['language']} entrypoint={code['entrypoint']} "
            f"workload={code['workload']}"
        )
        self.stdout.write("")
        self.stdout.write(code["source"])

    def handle_promote(self, user: Any, options: dict[str, Any]) -> None:
        promotion = soul_services.soul_promote(
            hash=options["hash"],
            environment=options["env"],
            actor=user,
            note=options["note"],
            alias=options["alias"],
            soul=options["soul"],
            replace_owner=options["replace_owner"],
            override_reason=options["override_reason"],
        )
        superseded = f"; supersedes {promotion.ends.hash}" if promotion.ends is not None else ""
        overridden = f"; without the evidence: {promotion.override_reason}" if promotion.override_reason else ""
        self.stdout.write(
            f"promoted {promotion.hash} ({promotion.alias} v{promotion.version}) to {promotion.environment}"
            f"{superseded}{overridden}"
        )

    def handle_demote(self, user: Any, options: dict[str, Any]) -> None:
        demotion = soul_services.soul_demote(
            hash=options["hash"], environment=options["env"], actor=user, note=options["note"]
        )
        self.stdout.write(f"demoted {demotion.hash} ({demotion.alias} v{demotion.version}) from {demotion.environment}")

    def handle_production(self, user: Any, options: dict[str, Any]) -> None:
        promotions: list[Promotion] = list(
            soul_selectors.promotions_active(environment=options["env"], user=user).defer("genotype")
        )
        if options["json"]:
            self.emit(
                [
                    {
                        "alias": p.alias,
                        "hash": p.hash,
                        "version": p.version,
                        "soul": str(p.soul),
                        "promoted_at": p.created_at.isoformat(),
                        "promoted_by": p.actor_name,
                        "note": p.note,
                    }
                    for p in promotions
                ]
            )
            return
        for p in promotions:
            self.stdout.write(
                f"{p.alias}  {p.hash}  v{p.version}  {p.soul}  {p.created_at:%Y-%m-%d %H:%M:%S}  {p.actor_name}"
            )
        if not promotions:
            self.stdout.write(f"nothing is promoted to {options['env']}")

    def handle_manifest(self, user: Any, options: dict[str, Any]) -> None:
        text = json_text(soul_selectors.manifest_build(environment=options["env"], user=user))
        out: Path | None = options["out"]
        if out is None:
            self.stdout.write(text, ending="")
            return
        try:
            file_write_atomic(out, text)
        except OSError as error:
            raise CommandError(f"cannot write {out}: {error.strerror or error}") from None
        self.stdout.write(f"wrote {out}")

    def handle_validate(self, user: Any, options: dict[str, Any]) -> None:
        validation = soul_services.environment_validate(environment=options["env"], actor=user, door="command")
        if options["json"]:
            self.emit(
                {
                    "environment": validation.environment,
                    "ok": validation.ok,
                    "checked": validation.checked,
                    "problems": validation.problems,
                    "checked_at": validation.checked_at.isoformat(),
                }
            )
        elif validation.ok:
            self.stdout.write(f"{validation.environment}: OK, {validation.checked} promoted hash(es) recomputed")
        if not validation.ok:
            lines = [
                f"  {p['hash']} {p['alias']} v{p['version']} ({p['soul']}): {p['reason']}" for p in validation.problems
            ]
            raise CommandError(
                f"validation of {validation.environment} failed: {len(validation.problems)} problem(s) in "
                f"{validation.checked} promoted hash(es)\n" + "\n".join(lines)
            )

    def handle_export_logs(self, user: Any, options: dict[str, Any]) -> None:
        try:
            counts = soul_files.reports_export()
        except OSError as error:
            raise CommandError(f"cannot write into {soul_files.soul_log_dir()}: {error}") from None
        self.stdout.write(
            f"reports: {counts['reports']} for {counts['souls']} souls and {counts['aliases']} aliases, "
            f"in {soul_files.soul_log_dir()}"
        )
        written = counts["environment_files"]
        self.stdout.write(f"environment files: {written}")
        expected = len(settings.LUXOS_ENVIRONMENTS) + (soul_selectors.PRODUCTION in settings.LUXOS_ENVIRONMENTS)
        failures = counts["failures"]
        if failures or written < expected:
            raise CommandError(
                f"{failures} report(s) and {expected - written} environment file(s) could not be written: "
                "see the soul report failures in the admin"
            )


def _json_value(value: Any) -> str:
    """What JSON does not hold, as the API writes it: a time in ISO 8601, anything else (a UUID) as text."""
    return value.isoformat() if isinstance(value, datetime) else str(value)
