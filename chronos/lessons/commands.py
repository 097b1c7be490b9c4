"""``manage.py chronos lessons add|search|prune|stats [--json]``: lessons from the command line."""

from __future__ import annotations

import json
from argparse import ArgumentParser, ArgumentTypeError
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from beings.selectors import being_get
from chronos.commandline import moment, table
from chronos.lessons import selectors, services
from chronos.lessons.schemas import lesson_document

Handler = Callable[[Any, Any, dict[str, Any]], None]
SITUATION_WIDTH = 60


def moment_parse(text: str) -> datetime:
    """A date (its midnight) or a date and time, in ISO 8601; the current time zone when none is named."""
    value = parse_datetime(text)
    if value is None:
        day = parse_date(text)
        if day is None:
            raise ArgumentTypeError(f"not a date or time: {text!r} (use 2026-01-31 or 2026-01-31T12:00)")
        value = datetime.combine(day, time.min)
    return value if timezone.is_aware(value) else timezone.make_aware(value)


def days_parse(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise ArgumentTypeError(f"not a number of days: {text!r}") from None
    if days < 0:
        raise ArgumentTypeError("a number of days cannot be negative")
    return days


def add_parsers(sub: Any, common: ArgumentParser) -> dict[str, Handler]:
    lessons = sub.add_parser("lessons", help="What LuxOS learned: add, search, prune, statistics.")
    actions = lessons.add_subparsers(dest="lessons_action", required=True, metavar="ACTION")

    adder = actions.add_parser("add", parents=[common], help="Add a lesson (the seed's add_lesson).")
    adder.add_argument("--situation", required=True)
    adder.add_argument("--action", dest="lesson_action", default="", help="What was done.")
    adder.add_argument("--result", default="")
    adder.add_argument("--feedback", default="", help="What to do next time.")
    adder.add_argument("--tag", action="append", default=[], help="A tag; repeat for more.")
    adder.add_argument("--being", default=None, metavar="SOUL", help="The being it concerns.")
    adder.add_argument("--hash", default="", help="The version it concerns (the being's current one by default).")
    adder.add_argument("--metadata", default=None, metavar="JSON", help="A JSON object.")

    searcher = actions.add_parser("search", parents=[common], help="Search lessons, best first (newest first).")
    searcher.add_argument("query", nargs="?", default="", metavar="QUERY", help="Words, English or Polish.")
    _filters(searcher)
    searcher.add_argument("--open", action="store_true", help="Only lessons not resolved yet.")
    searcher.add_argument("--limit", type=int, default=50)

    pruner = actions.add_parser("prune", parents=[common], help="Delete the lessons matching every filter given.")
    pruner.add_argument("--older-than", type=days_parse, default=None, metavar="DAYS", help="Last seen before.")
    pruner.add_argument("--tag", default="")
    pruner.add_argument("--since", type=moment_parse, default=None, metavar="TIME", help="Last seen at or after.")
    pruner.add_argument("--until", type=moment_parse, default=None, metavar="TIME", help="Last seen before.")
    pruner.add_argument("--yes", action="store_true", help="Do not ask.")

    actions.add_parser("stats", parents=[common], help="Counts by operation, error class and tag.")
    return {"lessons": handle_lessons}


def _filters(parser: ArgumentParser) -> None:
    parser.add_argument("--being", default=None, metavar="SOUL")
    parser.add_argument("--hash", default="")
    parser.add_argument("--tag", default="")
    parser.add_argument("--since", type=moment_parse, default=None, metavar="TIME", help="Last seen at or after.")
    parser.add_argument("--until", type=moment_parse, default=None, metavar="TIME", help="Last seen before.")


def handle_lessons(command: Any, user: Any, options: dict[str, Any]) -> None:
    HANDLERS[options["lessons_action"]](command, user, options)


def handle_add(command: Any, user: Any, options: dict[str, Any]) -> None:
    metadata = None
    if options["metadata"] is not None:
        try:
            metadata = json.loads(options["metadata"])
        except json.JSONDecodeError as error:
            raise CommandError(f"--metadata is not JSON: {error}", returncode=2) from None
    being = being_get(soul=options["being"], user=user) if options["being"] else None
    lesson = services.lesson_add(
        situation=options["situation"],
        action=options["lesson_action"],
        result=options["result"],
        feedback=options["feedback"],
        tags=options["tag"],
        metadata=metadata,
        being=being,
        hash=options["hash"],
        actor=user,
    )
    if options["json"]:
        command.emit(lesson_document(lesson))
    else:
        command.stdout.write(f"lesson {lesson.pk}: {lesson.situation[:SITUATION_WIDTH]}")


def handle_search(command: Any, user: Any, options: dict[str, Any]) -> None:
    lessons = selectors.lessons_search(
        user=user,
        query=options["query"],
        being=options["being"],
        hash=options["hash"],
        tag=options["tag"],
        since=options["since"],
        until=options["until"],
        open_only=options["open"],
        limit=options["limit"],
    )
    if options["json"]:
        command.emit([lesson_document(lesson) for lesson in lessons])
    elif lessons:
        rows = [
            [
                lesson.pk,
                lesson.operation,
                lesson.error_class or "-",
                lesson.count,
                moment(lesson.last_seen_at),
                "" if lesson.resolved_at is None else "resolved",
                lesson.situation[:SITUATION_WIDTH],
            ]
            for lesson in lessons
        ]
        command.lines(table(["ID", "OPERATION", "ERROR CLASS", "COUNT", "LAST SEEN", "", "SITUATION"], rows))
    else:
        command.stdout.write("no lessons")


def handle_prune(command: Any, user: Any, options: dict[str, Any]) -> None:
    older_than = timedelta(days=options["older_than"]) if options["older_than"] is not None else None
    if not options["yes"]:
        command.confirm("delete the lessons matching these filters?", "nothing pruned")
    deleted = services.lessons_prune(
        actor=user, older_than=older_than, tag=options["tag"], since=options["since"], until=options["until"]
    )
    if options["json"]:
        command.emit({"deleted": deleted})
    else:
        command.stdout.write(f"{deleted} lesson{'' if deleted == 1 else 's'} deleted")


def handle_stats(command: Any, user: Any, options: dict[str, Any]) -> None:
    stats = selectors.lessons_stats(user=user)
    if options["json"]:
        command.emit(stats.as_dict())
        return
    command.stdout.write(
        f"{stats.lessons} lessons, {stats.open} open, {stats.occurrences} occurrences; "
        f"last seen {moment(stats.last_seen)}"
    )
    for operation, count in stats.by_operation.items():
        command.stdout.write(f"  {operation}: {count}")
    if stats.by_error_class:
        command.lines(
            table(
                ["ERROR CLASS", "LESSONS", "OCCURRENCES"],
                [[row["error_class"], row["lessons"], row["occurrences"]] for row in stats.by_error_class],
            )
        )


HANDLERS: dict[str, Handler] = {
    "add": handle_add,
    "search": handle_search,
    "prune": handle_prune,
    "stats": handle_stats,
}
