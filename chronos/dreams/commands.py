"""``manage.py chronos dream start|list|show|compare``: dreams from the command line, each with ``--json``.

``start NAME [FILE] [--plan JSON]`` takes the plan from a JSON file (``-`` for stdin) or inline, queues it
(or schedules it with ``--not-before``) and with ``--wait`` waits for its outcome.
"""

from __future__ import annotations

import json
import sys
import time
from argparse import ArgumentParser, ArgumentTypeError
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from chronos import commandline as out
from chronos.dreams import selectors, services
from chronos.dreams.schemas import dream_document
from chronos.models import Dream

Handler = Callable[[Any, Any, dict[str, Any]], None]
# How long --wait waits beyond the dream's own bound (its task may wait in the queue first).
WAIT_MARGIN_SECONDS = 60
POLL_SECONDS = 0.25


def moment_argument(text: str) -> datetime:
    moment = parse_datetime(text)
    if moment is None:
        raise ArgumentTypeError(f"{text!r} is not an ISO 8601 time")
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def add_parsers(sub: Any, common: ArgumentParser) -> dict[str, Handler]:
    dream = sub.add_parser("dream", help="Dreams: a plan run in isolation on a timeline of its own.")
    actions = dream.add_subparsers(dest="dream_action", required=True)

    starter = actions.add_parser("start", parents=[common], help="Dream a plan (queued on a worker).")
    starter.add_argument("name")
    starter.add_argument("file", nargs="?", type=Path, default=None, metavar="FILE", help="The plan, a JSON file.")
    starter.add_argument("--plan", default=None, metavar="JSON", help="The plan inline, instead of a file.")
    starter.add_argument("--seconds", type=int, default=None, help="Its bound (default CHRONOS_DREAM_SECONDS).")
    starter.add_argument("--not-before", type=moment_argument, default=None, metavar="TIME", help="Start it then.")
    starter.add_argument("--wait", action="store_true", help="Wait for its outcome.")

    lister = actions.add_parser("list", parents=[common], help="Dreams, newest first.")
    lister.add_argument("--status", default=None)
    lister.add_argument("--limit", type=int, default=50)

    shower = actions.add_parser("show", parents=[common], help="A dream and each step's outcome.")
    shower.add_argument("dream", metavar="DREAM", help="Its id or a unique id prefix.")

    comparer = actions.add_parser("compare", parents=[common], help="Two dreams side by side.")
    comparer.add_argument("a", metavar="DREAM_A")
    comparer.add_argument("b", metavar="DREAM_B")
    return {"dream": handle_dream}


def handle_dream(command: Any, user: Any, options: dict[str, Any]) -> None:
    {"start": _start, "list": _list, "show": _show, "compare": _compare}[options["dream_action"]](
        command, user, options
    )


def _plan(options: dict[str, Any]) -> Any:
    if (options["file"] is None) == (options["plan"] is None):
        raise CommandError("give the plan as a JSON file or with --plan JSON (one of them)", returncode=2)
    try:
        if options["plan"] is not None:
            return json.loads(options["plan"])
        source: Path = options["file"]
        return json.loads(sys.stdin.read() if str(source) == "-" else source.read_text(encoding="utf-8"))
    except OSError as error:
        raise CommandError(f"cannot read {options['file']}: {error.strerror or error}", returncode=1) from None
    except ValueError as error:
        raise CommandError(f"the plan is not JSON: {error}", returncode=1) from None


def _start(command: Any, user: Any, options: dict[str, Any]) -> None:
    dream = services.dream_start(
        name=options["name"],
        plan=_plan(options),
        actor=user,
        seconds=options["seconds"],
        not_before=options["not_before"],
    )
    if options["wait"] and dream.not_before is None:
        dream = _waited(dream)
    dream = selectors.dream_get(dream.id)
    if options["json"]:
        command.emit(dream_document(dream, full=True))
        return
    command.lines(dream_lines(dream))


def _waited(dream: Dream) -> Dream:
    deadline = time.monotonic() + dream.seconds + WAIT_MARGIN_SECONDS
    while time.monotonic() < deadline:
        current = Dream.objects.get(id=dream.id)
        if current.status in services.FINISHED:
            return current
        time.sleep(POLL_SECONDS)
    raise CommandError(
        f"dream {dream.id} has not finished yet: see manage.py chronos dream show {dream.id}", returncode=1
    )


def _list(command: Any, user: Any, options: dict[str, Any]) -> None:
    dreams = list(selectors.dream_list(status=options["status"])[: max(1, options["limit"])])
    if options["json"]:
        command.emit([dream_document(dream) for dream in dreams])
    elif dreams:
        command.lines(
            out.table(
                ["ID", "NAME", "STATUS", "RATE", "TIMELINE", "CREATED"],
                [
                    [
                        str(dream.id)[: out.ID_PREFIX],
                        dream.name,
                        dream.status,
                        _rate(dream),
                        _timeline(dream),
                        out.moment(dream.created_at),
                    ]
                    for dream in dreams
                ],
            )
        )
    else:
        command.stdout.write("no dreams")


def _show(command: Any, user: Any, options: dict[str, Any]) -> None:
    dream = selectors.dream_get(options["dream"])
    if options["json"]:
        command.emit(dream_document(dream, full=True))
        return
    command.lines(dream_lines(dream))


def _compare(command: Any, user: Any, options: dict[str, Any]) -> None:
    comparison = services.dream_compare(selectors.dream_get(options["a"]), selectors.dream_get(options["b"]))
    if options["json"]:
        command.emit(comparison)
        return
    a, b = comparison["a"], comparison["b"]
    rows = [
        [label, str(a[key]), str(b[key])]
        for label, key in (
            ("name", "name"),
            ("status", "status"),
            ("rate", "success_rate"),
            ("failures", "failures"),
            ("duration ms", "duration_ms"),
            ("changes", "changes"),
        )
    ]
    for step in comparison["steps"]:
        rows.append([f"step {step['step']} {step['kind']}", _step_text(step["a"]), _step_text(step["b"])])
    command.lines(out.table(["", "A", "B"], rows))
    better = comparison["better"]
    command.stdout.write(f"better: {better.upper()} ({comparison[better]['name']})" if better else "better: even")


def _step_text(result: dict[str, Any] | None) -> str:
    if result is None:
        return "-"
    mark = "ok" if result.get("ok") else "FAILED"
    return f"{mark} {out.value_text(result.get('result'))} ({result.get('duration_ms')} ms)"


def _rate(dream: Dream) -> str:
    return "-" if dream.success_rate is None else f"{dream.success_rate:.0%}"


def _timeline(dream: Dream) -> str:
    return dream.timeline.name if dream.timeline_id and dream.timeline else "-"


def dream_lines(dream: Dream) -> list[str]:
    lines = [
        f"dream {dream.name} ({dream.id}): {dream.status}"
        + (f", {_rate(dream)} of its steps as planned" if dream.success_rate is not None else ""),
    ]
    if dream.timeline_id:
        lines.append(
            f"timeline {_timeline(dream)}; its changes: "
            f"manage.py chronos diff {dream.fork_id} timeline:{_timeline(dream)}"
        )
    if dream.merge_id:
        lines.append(f"merge {dream.merge_id}")
    if dream.not_before and dream.status == Dream.Status.QUEUED:
        lines.append(f"scheduled for {out.moment(dream.not_before)}")
    if dream.error:
        lines.append(f"error: {dream.error}")
    for result in dream.results:
        lines.append(f"  step {result['step']} {result['kind']} {result['target']}: {_step_text(result)}")
    return lines
