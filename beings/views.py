"""HTML pages of the soul registry: the being page with its versions, diffs and lineage graph."""

from __future__ import annotations

import difflib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET

from beings import graph
from beings.admin import source_html
from beings.selectors import SoulVersion, being_get, being_versions, version_get
from luxsite.errors import BadRequest, DomainError

# Lines of unchanged context around each change in a side-by-side diff.
DIFF_CONTEXT = 3


@dataclass(frozen=True)
class VersionRow:
    """A line of the versions table: a version, when it was made, and the one before it to compare with."""

    version: SoulVersion
    created_at: datetime | None
    previous: SoulVersion | None


def version_rows(versions: list[SoulVersion]) -> list[VersionRow]:
    """The versions of a lineage, newest first, each with its predecessor."""
    rows = [
        VersionRow(
            version=version, created_at=_moment(version.created_at), previous=versions[index - 1] if index else None
        )
        for index, version in enumerate(versions)
    ]
    return rows[::-1]


def _moment(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class VersionDiff:
    """Two versions of a lineage side by side."""

    older: SoulVersion
    newer: SoulVersion
    table: SafeString
    changed: bool


def diff_build(*, older: SoulVersion, newer: SoulVersion) -> VersionDiff:
    """The side-by-side diff of two versions' sources, rebuilt from the lineage."""
    older_source, newer_source = older.source(), newer.source()
    # HtmlDiff escapes the lines it shows but not the column headings: those are escaped here.
    table = difflib.HtmlDiff(tabsize=4).make_table(
        older_source.splitlines(),
        newer_source.splitlines(),
        escape(f"v{older.version} · {older.hash[:12]}"),
        escape(f"v{newer.version} · {newer.hash[:12]}"),
        context=True,
        numlines=DIFF_CONTEXT,
    )
    return VersionDiff(older=older, newer=newer, table=mark_safe(table), changed=older_source != newer_source)


def _diff_requested(request: HttpRequest, versions: list[SoulVersion]) -> tuple[str, str] | None:
    """The ``from`` and ``to`` hashes the diff form asks for; by default the previous version and the current one."""
    sent = {key: request.GET.get(key, "").strip() for key in ("from", "to")}
    if any(sent.values()):
        missing = [key for key, value in sent.items() if not value]
        if missing:
            raise BadRequest(f"choose both versions to compare: {missing[0]!r} is missing", code="diff_incomplete")
        return sent["from"], sent["to"]
    if len(versions) < 2:
        return None
    return versions[-2].hash, versions[-1].hash


@login_required
@require_GET
def being_detail(request: HttpRequest, soul: uuid.UUID) -> HttpResponse:
    """A being: its current code, every version of its lineage, a diff of any two, and its family as a graph."""
    being = being_get(soul=soul, user=request.user)
    versions = being_versions(being)
    context: dict[str, Any] = {
        "being": being,
        "versions": versions,
        "rows": version_rows(versions),
        "parent": being.genesis.get("parent"),
        "source": source_html(being.genesis["source"]) if being.genesis.get("source") else None,
    }
    status = 200
    try:
        requested = _diff_requested(request, versions)
        if requested is not None:
            context["diff_from"], context["diff_to"] = requested
            older, newer = (version_get(being=being, hash=value) for value in requested)
            context["diff"] = diff_build(older=older, newer=newer)
    except DomainError as error:
        # The page still shows; the diff form says what was wrong with its input.
        context["diff_error"] = error
        context["diff_from"], context["diff_to"] = request.GET.get("from", ""), request.GET.get("to", "")
        status = error.status
    try:
        lineage, svg = graph.lineage_svg(being=being, user=request.user)
        # dot drew it from DOT text whose every label graph.dot_quote escaped, and escapes text itself.
        context["lineage"], context["lineage_svg"] = lineage, mark_safe(svg)
    except graph.GraphUnavailableError as error:
        context["lineage_error"] = str(error)
    return render(request, "beings/being_detail.html", context, status=status)
