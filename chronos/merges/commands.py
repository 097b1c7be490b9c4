"""``manage.py chronos merge|conflicts|resolve``: merge a timeline into the live one, conflicts resolved one by one.

``merge SOURCE --into TARGET`` previews (``--preview``: only that); with no conflict it applies after a
confirmation (``--yes`` on scripts); with conflicts it lists them and exits 1: resolve each with
``resolve ID ours|theirs`` or ``resolve ID --value JSON``, then ``merge SOURCE --into TARGET --continue``
applies that merge with its resolutions.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser, ArgumentTypeError
from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError

from chronos import commandline as out
from chronos.merges import selectors, services
from chronos.merges.exceptions import MergeNotFoundError
from chronos.merges.schemas import ConflictOut, merge_document
from chronos.models import Merge, MergeConflict
from chronos.points import timeline_resolve

Handler = Callable[[Any, Any, dict[str, Any]], None]


def json_argument(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ArgumentTypeError(f"not JSON: {error.msg} at character {error.pos}") from None


def add_parsers(sub: Any, common: ArgumentParser) -> dict[str, Handler]:
    merger = sub.add_parser(
        "merge", parents=[common], help="Merge a timeline into the live one, three-way against their fork point."
    )
    merger.add_argument("source", metavar="SOURCE", help="The timeline merged from (theirs).")
    merger.add_argument("--into", required=True, metavar="TARGET", help="The timeline merged into (ours, live).")
    merger.add_argument("--strategy", choices=Merge.Strategy.values, default=Merge.Strategy.FIELD)
    merger.add_argument("--preview", action="store_true", help="Only show what the merge would do.")
    merger.add_argument(
        "--continue", dest="resume", action="store_true", help="Apply the open merge whose conflicts you resolved."
    )
    merger.add_argument("--yes", action="store_true", help="Merge without asking.")

    lister = sub.add_parser("conflicts", parents=[common], help="A merge's conflicts, or every open one.")
    lister.add_argument("merge", nargs="?", metavar="MERGE", help="A merge id or prefix (default: every open merge).")

    resolver = sub.add_parser("resolve", parents=[common], help="Resolve one merge conflict.")
    resolver.add_argument("conflict", type=int, metavar="ID")
    resolver.add_argument("resolution", nargs="?", choices=["ours", "theirs"], help="Take one side's value.")
    resolver.add_argument("--value", type=json_argument, metavar="JSON", help="An edited value, as JSON.")
    return {"merge": handle_merge, "conflicts": handle_conflicts, "resolve": handle_resolve}


def conflict_lines(conflicts: list[MergeConflict]) -> list[str]:
    return out.table(
        ["ID", "TABLE", "ROW", "PATH", "BASE", "OURS", "THEIRS", "RESOLVED"],
        [
            [
                conflict.id,
                conflict.table,
                str(conflict.row_id)[: out.ID_PREFIX],
                ".".join(conflict.path) or "(row)",
                out.value_text(conflict.base),
                out.value_text(conflict.ours),
                out.value_text(conflict.theirs),
                conflict.resolution or "-",
            ]
            for conflict in conflicts
        ],
    )


def merge_lines(merge: Merge) -> list[str]:
    stats = merge.stats
    lines = [
        f"merge {merge.id}: {merge.source.name} into {merge.into.name} ({merge.strategy}), {merge.status}",
        f"fork point {merge.base.name if merge.base else '-'}: {stats.get('touched', 0)} rows changed since "
        f"({stats.get('theirs_only', 0)} on {merge.source.name} only, {stats.get('ours_only', 0)} on "
        f"{merge.into.name} only, {stats.get('both', 0)} on both); {stats.get('writes', 0)} to write, "
        f"{stats.get('conflicts', 0)} conflict(s)",
    ]
    conflicts = list(merge.conflicts.all())
    return lines + (conflict_lines(conflicts) if conflicts else [])


def handle_merge(command: Any, user: Any, options: dict[str, Any]) -> None:
    if options["resume"]:
        merge = _open_merge(options["source"], options["into"])
    else:
        merge = selectors.merge_get(
            services.merge_preview(
                source=options["source"], into=options["into"], strategy=options["strategy"], actor=user
            ).id
        )
    if options["preview"] or not options["yes"]:
        if options["json"]:
            command.emit(merge_document(merge))
        else:
            command.lines(merge_lines(merge))
        if options["preview"]:
            return
    waiting = [conflict for conflict in merge.conflicts.all() if not conflict.resolution]
    if waiting:
        raise CommandError(
            f"{len(waiting)} open conflict(s): resolve each with `chronos resolve ID ours|theirs` or "
            f"`--value JSON`, then `chronos merge {merge.source.name} --into {merge.into.name} --continue`",
            returncode=1,
        )
    if not options["yes"]:
        command.confirm(f"merge {merge.source.name} into {merge.into.name}?", "not merged")
    merge = services.merge_apply(merge=merge, actor=user)
    if options["json"]:
        command.emit(merge_document(merge))
        return
    written = sum(merge.stats.get("written", {}).values())
    command.stdout.write(f"merged {merge.source.name} into {merge.into.name}: {written} rows written")
    if merge.safety_id:
        command.stdout.write(f"undo it with: manage.py chronos restore {str(merge.safety_id)[: out.ID_PREFIX]}")


def _open_merge(source: str, into: str) -> Merge:
    found = (
        selectors.merge_list(status=Merge.Status.OPEN)
        .filter(source=timeline_resolve(source), into=timeline_resolve(into))
        .first()
    )
    if found is None:
        raise MergeNotFoundError(f"no open merge of {source} into {into}: preview one first")
    return selectors.merge_get(found.id)


def handle_conflicts(command: Any, user: Any, options: dict[str, Any]) -> None:
    if options["merge"]:
        conflicts = list(selectors.merge_get(options["merge"]).conflicts.all())
    else:
        conflicts = list(selectors.conflicts_open())
    if options["json"]:
        command.emit([ConflictOut.from_orm(conflict).model_dump(mode="json") for conflict in conflicts])
    elif conflicts:
        command.lines(conflict_lines(conflicts))
    else:
        command.stdout.write("no conflicts")


def handle_resolve(command: Any, user: Any, options: dict[str, Any]) -> None:
    resolution = options["resolution"]
    if (resolution is None) == (options["value"] is None):
        raise CommandError("give ours, theirs or --value JSON (one of them)", returncode=2)
    conflict = services.conflict_resolve(
        conflict=selectors.conflict_get(options["conflict"]),
        resolution=resolution or MergeConflict.Resolution.VALUE,
        value=options["value"],
        actor=user,
    )
    if options["json"]:
        command.emit(ConflictOut.from_orm(conflict).model_dump(mode="json"))
        return
    command.stdout.write(
        f"conflict #{conflict.id} ({'.'.join(conflict.path) or 'the whole row'}) resolved: {conflict.resolution}"
    )
