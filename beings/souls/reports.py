"""What a version's report says: the document (JSON) and its Markdown summary, built from the lineage."""

from __future__ import annotations

import dataclasses
import functools
import platform
import re
import socket
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import django
from django.conf import settings

import luxsite
from beings import genotype
from beings.exceptions import LineageBrokenError
from beings.models import BaseBeing
from beings.selectors import SoulVersion
from beings.source_analysis import source_analyse

# A version first written as a creation is recorded as ``genesis`` in its lineage.
EVENTS: Final = {"genesis": "creation"}


def report_stamp(created_at: str | datetime | None) -> str:
    """The UTC timestamp of a report's name, with microseconds: ``20261122T051234.123456Z``."""
    moment = report_instant(created_at)
    return moment.strftime("%Y%m%dT%H%M%S.%fZ")


def report_instant(created_at: str | datetime | None) -> datetime:
    if isinstance(created_at, datetime):
        moment = created_at
    elif isinstance(created_at, str) and created_at:
        moment = datetime.fromisoformat(created_at)
    else:
        raise ValueError("the version records no creation time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@functools.cache
def system_info() -> dict[str, str]:
    """What wrote a report: LuxOS, Python and Django versions and the host."""
    return {
        "luxos_version": _luxos_version(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "host": socket.gethostname(),
    }


def _luxos_version() -> str:
    declared = getattr(luxsite, "__version__", None)
    if declared:
        return str(declared)
    # The project is run from its checkout, not installed: pyproject.toml declares the version.
    try:
        with open(Path(settings.BASE_DIR) / "pyproject.toml", "rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def report_build(
    *,
    version: SoulVersion,
    genotype_copy: dict[str, str],
    event: str,
    parent_hash: str | None,
    context: dict[str, Any],
) -> dict[str, Any]:
    """The report of one version: who it is, its complete genotype, what its source holds, how it came."""
    return {
        "soul_info": {
            "hash": version.hash,
            "alias": version.alias,
            "soul": str(version.soul),
            "version": version.version,
            "parent_hash": parent_hash,
            "created_at": version.created_at,
        },
        "genotype": genotype_copy,
        "analysis": source_analyse(genotype_copy.get("source", "")),
        "context": {"actor": None, "door": None, "reason": "", **context, "event": event},
        "system_info": system_info(),
    }


def report_markdown(document: dict[str, Any]) -> str:
    """A summary of a report for people: who, how, what the source holds, and the source itself."""
    info, context, analysis = document["soul_info"], document["context"], document["analysis"]
    source = document["genotype"].get("source", "")
    lines = [
        f"# {info['alias']} v{info['version']}",
        "",
        f"- hash: `{info['hash']}`",
        f"- soul: `{info['soul']}`",
        f"- parent: {'`' + info['parent_hash'] + '`' if info['parent_hash'] else '(none)'}",
        f"- created: {info['created_at']}",
        f"- event: {context.get('event')} through {context.get('door')} by {context.get('actor') or '(nobody)'}",
        f"- reason: {context.get('reason') or '(none given)'}",
    ]
    if context.get("rebuilt"):
        lines.append("- rebuilt from the database by an export, not written when the version was made")
    lines += ["", "## Analysis", "", f"{analysis['lines']} lines, cyclomatic complexity {analysis['complexity']}."]
    if analysis.get("error"):
        lines += ["", f"The source does not parse: {analysis['error']}"]
    if analysis["functions"] or analysis["classes"]:
        lines += ["", "| kind | name | signature | line | docstring |", "| --- | --- | --- | --- | --- |"]
        for function in analysis["functions"]:
            lines.append(_row("function", function["qualname"], function["signature"], function))
        for klass in analysis["classes"]:
            bases = f"({', '.join(klass['bases'])})" if klass["bases"] else ""
            lines.append(_row("class", klass["qualname"], f"class {klass['name']}{bases}", klass))
            for method in klass["methods"]:
                lines.append(_row("method", method["qualname"], method["signature"], method))
    if analysis["calls"]:
        lines += ["", "### Calls to other beings", ""]
        for call in analysis["calls"]:
            target = repr(call["target"]) if call["target"] is not None else "…"
            lines.append(f"- line {call['line']}: `{call['function']}({target})`")
    if analysis["imports"]:
        lines += ["", "### Imports attempted", ""]
        lines += [f"- line {item['line']}: `{item['module']}`" for item in analysis["imports"]]
    fence = "`" * max(3, _longest_backtick_run(source) + 1)
    lines += ["", "## Source", "", f"{fence}python", source.rstrip("\n"), fence, ""]
    return "\n".join(lines)


def _row(kind: str, name: str, signature: str, item: dict[str, Any]) -> str:
    docstring = (item.get("docstring") or "").strip().splitlines()
    cells = [kind, f"`{name}`", f"`{signature}`", str(item["line"]), docstring[0] if docstring else ""]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def export_document(being: BaseBeing, version: SoulVersion, parent_hash: str | None) -> dict[str, Any]:
    """The report of one version rebuilt from the lineage; LineageBrokenError when it does not rebuild."""
    genotype_copy = version.genotype()
    rebuilt = genotype.soul_hash(genotype_copy)
    if rebuilt != version.hash:
        raise LineageBrokenError(
            f"version {version.version} of {version.soul} rebuilds to {rebuilt}, not {version.hash}"
        )
    if version.created_at is None and being.created_at is not None:
        # An imported lineage entry without a time: the being's own row time keeps the name stable.
        version = dataclasses.replace(version, created_at=being.created_at.isoformat())
    report_stamp(version.created_at)  # ValueError now, before anything is written, when there is no time
    return report_build(
        version=version,
        genotype_copy=genotype_copy,
        event=EVENTS.get(version.kind, version.kind),
        parent_hash=parent_hash,
        context=_recorded_context(being, version),
    )


def _recorded_context(being: BaseBeing, version: SoulVersion) -> dict[str, Any]:
    """What the database still knows of how a version came: its lineage entry or origin, its memory event."""
    genesis = being.genesis
    recorded = (genesis.get("origin") or {}) if version.index is None else genesis["ancestors"][version.index]
    memories = being.memories.get("events", []) if isinstance(being.memories, dict) else being.memories
    event = next(
        (
            item
            for item in reversed(memories if isinstance(memories, list) else [])
            if isinstance(item, dict) and item.get("hash") == version.hash
        ),
        {},
    )
    return {
        "actor": recorded.get("actor") or event.get("actor") or None,
        "door": "export",
        "reason": recorded.get("reason") or event.get("reason") or "",
        "rebuilt": True,
    }
