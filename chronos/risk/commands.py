"""``manage.py chronos risk (OPERATION TARGET | --text TEXT) [--json]``: assess without acting."""

from __future__ import annotations

from argparse import ArgumentParser
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from django.core.management.base import CommandError

from chronos.risk import services
from chronos.risk.levels import Risk
from chronos.risk.targets import OPERATIONS, operation_clean, target_parse

Handler = Callable[[Any, Any, dict[str, Any]], None]


def add_parsers(sub: Any, common: ArgumentParser) -> dict[str, Handler]:
    assessor = sub.add_parser(
        "risk",
        parents=[common],
        help="How risky an operation is (level, score, reasons), or a free text; changes nothing.",
    )
    assessor.add_argument("operation", nargs="?", metavar="OPERATION", help=f"One of {', '.join(OPERATIONS)}.")
    assessor.add_argument(
        "target",
        nargs="?",
        metavar="TARGET",
        help="[KIND:]REFERENCE: a soul, relationship:ID, checkpoint:REF, timeline:NAME, rows:N (by default what "
        "the operation acts on).",
    )
    assessor.add_argument("--text", default=None, help="Assess a free text (English or Polish) instead.")
    assessor.add_argument("--source-file", default=None, metavar="FILE", help="evolve: the new source.")
    assessor.add_argument("--environment", default=None, help="promote, demote: the environment.")
    return {"risk": handle_risk}


def handle_risk(command: Any, user: Any, options: dict[str, Any]) -> None:
    text, operation = options["text"], options["operation"]
    if (text is None) == (operation is None):
        raise CommandError("give either OPERATION TARGET or --text TEXT", returncode=2)
    if text is not None:
        if options["target"] is not None:
            raise CommandError("--text is assessed alone, without a TARGET", returncode=2)
        risk = services.risk_assess_text(text)
    else:
        operation = operation_clean(operation)
        target = target_parse(operation=operation, text=options["target"], user=user)
        source = None
        if options["source_file"]:
            try:
                with open(options["source_file"], encoding="utf-8") as handle:
                    source = handle.read()
            except (OSError, UnicodeDecodeError) as error:
                raise CommandError(f"cannot read the source file: {error}", returncode=1) from None
        target = replace(target, source=source, environment=options["environment"])
        risk = services.risk_assess(operation=operation, target=target, actor=user)
    if options["json"]:
        command.emit(risk.as_dict())
    else:
        command.lines(risk_lines(risk))


def risk_lines(risk: Risk) -> list[str]:
    """The level and score, then one line per reason, heaviest first."""
    lines = [f"{risk.level} ({risk.score}/100): {risk.operation} {risk.target}"]
    width = max((len(reason.name) for reason in risk.reasons), default=0)
    lines += [f"  {reason.weight:>3}  {reason.name.ljust(width)}  {reason.detail}" for reason in risk.reasons]
    return lines
