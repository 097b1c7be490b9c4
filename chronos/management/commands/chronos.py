"""``manage.py chronos``: checkpoints, restore, timelines, diffs, a being's past, archives, retention, stats.

Every subcommand acts as the user ``--as`` names (default ``LUXOS_ADMIN_USER``) through the
command door and takes ``--json``. CHECKPOINT is an id, a unique id prefix or a name on the live
timeline; a POINT is anything ``chronos.points.point_resolve`` reads (``now``, a checkpoint, a
timeline, ``@LOG_ID``, a timestamp). Exit 0 done, 1 refused or failed (the reason on stderr),
2 bad usage. A restore or a switch rewrites everyone's state: without ``--yes`` it shows what it
would do and asks on a terminal, and refuses when there is none to ask. Like the API and the pages,
chronos answers staff or who holds ``chronos.view_checkpoint`` (``at`` and ``history``: who may view
the being); each write needs its own permission on top, which the service checks.
"""

from __future__ import annotations

import dataclasses
import sys
import uuid
from argparse import ArgumentParser, ArgumentTypeError
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from chronos import commandline as out
from chronos import selectors, services, transfer
from chronos.context import change_context
from chronos.guards import viewer_require
from chronos.points import Point, checkpoint_resolve, live_timeline, point_resolve, timeline_resolve
from luxsite.errors import DomainError
from luxsite.files import file_replaced

# A being's own past answers who may view the being, as GET /api/beings/{soul}/history does.
BEING_READS = {"at", "history"}

# Subcommands of the historian's concepts, each in its own module: ``add_parsers(sub, common)``
# adds its parsers and returns {action: handler(command, user, options)}.
EXTENSIONS: list[str] = [
    "chronos.risk.commands",
    "chronos.dreams.commands",
    "chronos.merges.commands",
    "chronos.lessons.commands",
    # "chronos.<concept>.commands",
]

Handler = Callable[["Command", Any, dict[str, Any]], None]


def soul_argument(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a soul (a UUID)") from None


def page_size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1 <= size <= settings.LUXOS_MAX_PAGE_SIZE:
        raise ArgumentTypeError(f"between 1 and {settings.LUXOS_MAX_PAGE_SIZE}, not {size}")
    return size


def offset_argument(text: str) -> int:
    try:
        offset = int(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a number") from None
    if offset < 0:
        raise ArgumentTypeError(f"at least 0, not {offset}")
    return offset


class Command(BaseCommand):
    help = (
        "Time travel: checkpoint, checkpoints, restore, timelines, branch, switch, diff, at, history, "
        "export, import, delete, pin, gc, stats."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        common = ArgumentParser(add_help=False)
        common.add_argument(
            "--as",
            dest="as_user",
            default=None,
            metavar="USER",
            help="Act as this user (default: LUXOS_ADMIN_USER, the superuser `make run` ensures).",
        )
        common.add_argument("--json", action="store_true", help="Print a JSON document for scripts.")
        sub = parser.add_subparsers(dest="action", required=True)

        maker = sub.add_parser("checkpoint", parents=[common], help="Mark the present under a name.")
        maker.add_argument("name")
        maker.add_argument("--description", default="")
        maker.add_argument("--timeline", default=None, help="The timeline it belongs to (default: the live one).")

        lister = sub.add_parser("checkpoints", parents=[common], help="Checkpoints, newest first.")
        lister.add_argument("--timeline", default=None, help="Only the checkpoints of this timeline.")

        restorer = sub.add_parser(
            "restore", parents=[common], help="Make the tables what they were at a checkpoint of the live timeline."
        )
        restorer.add_argument("checkpoint", metavar="CHECKPOINT")
        restorer.add_argument("--preview", action="store_true", help="Only show what the restore would change.")
        restorer.add_argument("--yes", action="store_true", help="Restore without asking.")
        restorer.add_argument("--force", action="store_true", help="Restore even when it deletes a promoted being.")

        sub.add_parser("timelines", parents=[common], help="Timelines, the live one marked.")

        brancher = sub.add_parser("branch", parents=[common], help="A new timeline, forked from a checkpoint or now.")
        brancher.add_argument("name")
        brancher.add_argument("--from", dest="from_checkpoint", metavar="CHECKPOINT", default=None)

        switcher = sub.add_parser("switch", parents=[common], help="Make another timeline live.")
        switcher.add_argument("name")
        switcher.add_argument("--yes", action="store_true", help="Switch without asking.")
        switcher.add_argument("--force", action="store_true", help="Switch even when it deletes a promoted being.")

        differ = sub.add_parser("diff", parents=[common], help="Rows that differ between two points.")
        differ.add_argument("origin", metavar="FROM")
        differ.add_argument("target", metavar="TO")
        differ.add_argument("--stat", action="store_true", help="Only the counts per table and kind.")
        differ.add_argument("--limit", type=page_size, default=50, help="Rows per page (default 50).")
        differ.add_argument("--offset", type=offset_argument, default=0, help="Rows to skip.")

        reader = sub.add_parser("at", parents=[common], help="A being as it was at a point.")
        reader.add_argument("soul", type=soul_argument, metavar="SOUL")
        reader.add_argument("point", metavar="POINT")

        historian = sub.add_parser("history", parents=[common], help="Every change of a being, newest first.")
        historian.add_argument("soul", type=soul_argument, metavar="SOUL")
        historian.add_argument("--limit", type=page_size, default=100, help="At most this many changes (default 100).")

        deleter = sub.add_parser("delete", parents=[common], help="Forget a checkpoint.")
        deleter.add_argument("checkpoint", metavar="CHECKPOINT")

        pinner = sub.add_parser("pin", parents=[common], help="Exempt a checkpoint from retention.")
        pinner.add_argument("checkpoint", metavar="CHECKPOINT")
        pinner.add_argument("--unpin", action="store_true", help="Give it back to retention.")

        exporter = sub.add_parser(
            "export", parents=[common], help="Write the state at a checkpoint to a portable archive."
        )
        exporter.add_argument("checkpoint", metavar="CHECKPOINT")
        exporter.add_argument(
            "-o",
            "--output",
            type=Path,
            default=None,
            metavar="FILE",
            help="Write it here (default: CHRONOS_TIMELINES_DIR/exports/ID.tar[.gz]).",
        )

        importer = sub.add_parser("import", parents=[common], help="Load an archive as a new timeline.")
        importer.add_argument("file", type=Path, metavar="FILE")
        importer.add_argument("--timeline", required=True, metavar="NAME", help="The new timeline's name.")
        importer.add_argument("--description", default="")

        collector = sub.add_parser(
            "gc", parents=[common], help="Remove checkpoints beyond retention and the log nothing retained needs."
        )
        collector.add_argument("--dry-run", action="store_true", help="Only report what it would remove.")

        sub.add_parser("stats", parents=[common], help="The log's size, changes per timeline, checkpoints, archives.")

        self.extensions: dict[str, Handler] = {}
        for module in EXTENSIONS:
            self.extensions.update(import_module(module).add_parsers(sub, common))

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["as_user"] or settings.LUXOS_ADMIN_USER
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(
                f"no user named {username!r}; pass --as USER or create it (manage.py createadmin)", returncode=1
            )
        action = options["action"]
        extension = self.extensions.get(action)
        try:
            if action not in BEING_READS:
                viewer_require(user)
            with change_context(door="command"):
                if extension is not None:
                    extension(self, user, options)
                else:
                    getattr(self, f"handle_{action}")(user, options)
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}", returncode=1) from None

    def emit(self, document: Any) -> None:
        self.stdout.write(out.json_text(document))

    def lines(self, lines: list[str]) -> None:
        for line in lines:
            self.stdout.write(line)

    def confirm(self, question: str, refusal: str) -> None:
        """Ask on a terminal; without one (a script, a pipe) refuse: the caller confirms with --yes."""
        if not sys.stdin.isatty():
            raise CommandError(f"{refusal}: no terminal to confirm on; pass --yes", returncode=1)
        self.stdout.write(f"{question} [y/N] ", ending="")
        self.stdout.flush()
        if sys.stdin.readline().strip().lower() not in {"y", "yes"}:
            raise CommandError(f"{refusal}: not confirmed", returncode=1)

    def handle_checkpoint(self, user: Any, options: dict[str, Any]) -> None:
        checkpoint = services.checkpoint_create(
            name=options["name"], description=options["description"], timeline=options["timeline"], actor=user
        )
        if options["json"]:
            self.emit(out.checkpoint_document(checkpoint))
            return
        self.stdout.write(f"checkpoint {checkpoint.name} on {checkpoint.timeline.name}: {checkpoint.id}")

    def handle_checkpoints(self, user: Any, options: dict[str, Any]) -> None:
        timeline = timeline_resolve(options["timeline"]) if options["timeline"] else None
        checkpoints = list(selectors.checkpoint_list(timeline=timeline))
        if options["json"]:
            self.emit([out.checkpoint_document(checkpoint) for checkpoint in checkpoints])
        elif checkpoints:
            self.lines(out.checkpoints_table(checkpoints))
        else:
            self.stdout.write("no checkpoints")

    def handle_restore(self, user: Any, options: dict[str, Any]) -> None:
        checkpoint = checkpoint_resolve(options["checkpoint"])
        if options["preview"] or not options["yes"]:
            preview = services.checkpoint_restore_preview(checkpoint=checkpoint, actor=user)
            if options["json"]:
                self.emit(out.preview_document(preview))
            else:
                self.lines(out.preview_lines(preview))
            if options["preview"]:
                return
            self.confirm(f"restore to {out.checkpoint_label(checkpoint)}?", "not restored")
        report = services.checkpoint_restore(checkpoint=checkpoint, actor=user, force=options["force"])
        if options["json"]:
            self.emit({"checkpoint": out.checkpoint_document(checkpoint), **out.report_document(report)})
            return
        self.stdout.write(f"restored {out.checkpoint_label(checkpoint)}: {out.report_line(report)}")
        if report.safety:
            self.stdout.write(f"undo it with: manage.py chronos restore {str(report.safety.id)[: out.ID_PREFIX]}")

    def handle_timelines(self, user: Any, options: dict[str, Any]) -> None:
        changes = {timeline["name"]: timeline["changes"] for timeline in selectors.chronos_stats()["timelines"]}
        documents = [
            out.timeline_document(timeline, changes.get(timeline.name, 0)) for timeline in selectors.timeline_list()
        ]
        if options["json"]:
            self.emit(documents)
        else:
            self.lines(out.timelines_table(documents))

    def handle_branch(self, user: Any, options: dict[str, Any]) -> None:
        origin = checkpoint_resolve(options["from_checkpoint"]) if options["from_checkpoint"] else None
        timeline = services.timeline_create(name=options["name"], from_checkpoint=origin, actor=user)
        timeline = selectors.timeline_list().get(id=timeline.id)
        if options["json"]:
            self.emit(out.timeline_document(timeline, 0))
            return
        fork = timeline.fork
        origin_text = (
            f" from {out.checkpoint_label(fork)} on {timeline.parent.name}" if fork and timeline.parent else ""
        )
        self.stdout.write(
            f"timeline {timeline.name} forked{origin_text}; make it live with: chronos switch {timeline.name}"
        )

    def handle_switch(self, user: Any, options: dict[str, Any]) -> None:
        target = timeline_resolve(options["name"])
        if not options["yes"]:
            diff = services.chronos_diff(Point(live_timeline(), None, "now"), Point(target, None, target.name))
            if options["json"]:
                self.emit(out.diff_document(diff, stat_only=True))
            else:
                self.lines(out.diff_lines(diff, stat_only=True))
            self.confirm(f"switch to {target.name}?", "not switched")
        report = services.timeline_switch(name=target, actor=user, force=options["force"])
        if options["json"]:
            self.emit({"timeline": target.name, **out.report_document(report)})
            return
        self.stdout.write(f"{target.name} is live: {out.report_line(report)}")

    def handle_diff(self, user: Any, options: dict[str, Any]) -> None:
        diff = services.chronos_diff(
            point_resolve(options["origin"]),
            point_resolve(options["target"]),
            limit=options["limit"],
            offset=options["offset"],
        )
        if options["json"]:
            self.emit(out.diff_document(diff, stat_only=options["stat"]))
        else:
            self.lines(out.diff_lines(diff, stat_only=options["stat"]))

    def handle_at(self, user: Any, options: dict[str, Any]) -> None:
        point = point_resolve(options["point"])
        image = selectors.being_at(soul=options["soul"], point=point, user=user)
        if not options["json"]:
            self.stdout.write(f"being {options['soul']} at {point}:")
        self.emit(image)

    def handle_history(self, user: Any, options: dict[str, Any]) -> None:
        entries = selectors.being_history(soul=options["soul"], user=user, limit=options["limit"])
        if options["json"]:
            self.emit([out.history_document(entry) for entry in entries])
        elif entries:
            self.lines(out.history_table(entries))
        else:
            self.stdout.write(f"no recorded change of {options['soul']}")

    def handle_delete(self, user: Any, options: dict[str, Any]) -> None:
        checkpoint = checkpoint_resolve(options["checkpoint"])
        services.checkpoint_delete(checkpoint=checkpoint, actor=user)
        if options["json"]:
            self.emit({"deleted": out.checkpoint_document(checkpoint)})
            return
        self.stdout.write(f"deleted checkpoint {out.checkpoint_label(checkpoint)}")

    def handle_pin(self, user: Any, options: dict[str, Any]) -> None:
        checkpoint = checkpoint_resolve(options["checkpoint"])
        checkpoint = services.checkpoint_pin(checkpoint=checkpoint, pinned=not options["unpin"], actor=user)
        if options["json"]:
            self.emit(out.checkpoint_document(checkpoint))
            return
        state = "pinned (kept by retention)" if checkpoint.pinned else "unpinned (retention may remove it)"
        self.stdout.write(f"{out.checkpoint_label(checkpoint)} {state}")

    def handle_export(self, user: Any, options: dict[str, Any]) -> None:
        checkpoint = checkpoint_resolve(options["checkpoint"])
        compress = settings.CHRONOS_COMPRESS_SNAPSHOTS
        target: Path = options["output"] or transfer.export_path(checkpoint, compress)
        if not options["output"]:
            target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with file_replaced(target) as stream:
                report = services.checkpoint_export(checkpoint=checkpoint, target=stream, actor=user, compress=compress)
        except OSError as error:
            raise CommandError(f"cannot write {target}: {error.strerror or error}", returncode=1) from None
        if options["json"]:
            self.emit(out.export_document(checkpoint, target, report))
            return
        self.stdout.write(out.export_line(checkpoint, target, report))

    def handle_import(self, user: Any, options: dict[str, Any]) -> None:
        source: Path = options["file"]
        try:
            stream = source.open("rb")
        except OSError as error:
            raise CommandError(f"cannot read {source}: {error.strerror or error}", returncode=1) from None
        with stream:
            timeline = services.checkpoint_import(
                source=stream, timeline=options["timeline"], actor=user, description=options["description"]
            )
        timeline = selectors.timeline_list().get(id=timeline.id)
        if options["json"]:
            changes = {row["name"]: row["changes"] for row in selectors.chronos_stats()["timelines"]}
            self.emit(out.timeline_document(timeline, changes.get(timeline.name, 0)))
            return
        self.stdout.write(
            f"imported {source} as timeline {timeline.name}; make it live with: chronos switch {timeline.name}"
        )

    def handle_gc(self, user: Any, options: dict[str, Any]) -> None:
        report = services.chronos_gc(dry_run=options["dry_run"], actor=user)
        if options["json"]:
            self.emit(dataclasses.asdict(report))
        else:
            self.lines(out.gc_lines(report))

    def handle_stats(self, user: Any, options: dict[str, Any]) -> None:
        stats = selectors.chronos_stats()
        if options["json"]:
            self.emit(stats)
        else:
            self.lines(out.stats_lines(stats))
