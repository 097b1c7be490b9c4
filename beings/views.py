"""HTML pages of the soul registry: the being page (versions, diffs, lineage graph) and the promotion board.

The board promotes and demotes through ``beings.registry`` only, after a confirmation page that
works without JavaScript (a CSRF-protected POST form).
"""

from __future__ import annotations

import difflib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET

from beings import lineage_graph as graph
from beings.display import source_html
from beings.executions.forms import run_form_context
from beings.executions.selectors import RUNNABLE
from beings.models import BaseBeing
from beings.selectors import (
    SoulVersion,
    VersionDiff,
    being_get,
    being_versions,
    version_diff,
)
from beings.souls import selectors as soul_selectors
from chronos.lessons.selectors import lessons_about_being
from luxsite.errors import BadRequest, DomainError
from luxsite.permissions import User, visible
from relations.selectors import NEIGHBOURS_LIMIT, being_neighbours

# Lines of unchanged context around each change in a side-by-side diff, and where its long lines wrap.
DIFF_CONTEXT = 3
DIFF_WRAP = 56
# Lessons about the being shown on its page (open ones first); the lessons page has the rest.
LESSONS_SHOWN = 5


@dataclass(frozen=True)
class VersionRow:
    """A line of the versions table: a version, who made it and why, the one before it, where it runs.

    ``promote_soul`` is the being a promotion of this version names: this being for its own
    versions, the being it inherited the version from for an inherited one (while that one exists
    and the viewer may see it), as ``soul_holders`` finds the holder.
    """

    version: SoulVersion
    created_at: datetime | None
    previous: SoulVersion | None
    environments: list[str]
    actor: str
    reason: str
    promote_soul: uuid.UUID


def version_rows(versions: list[SoulVersion], *, user: User) -> list[VersionRow]:
    """The versions of a lineage, newest first, each with its predecessor, provenance and the environments it runs in.

    An environment counts only when the promotion names the version's own being: another being with
    the same genotype holds the same hash, and its promotion is not this version's.
    """
    inherited = {version.soul for version in versions if not version.owned}
    own_beings = (
        set(visible(user=user, queryset=BaseBeing.objects.filter(soul__in=inherited)).values_list("soul", flat=True))
        if inherited
        else set()
    )
    souls = [
        version.soul if version.owned or version.soul in own_beings else version.holder.soul for version in versions
    ]
    promoted = soul_selectors.version_environments(
        user=user, hashes=[version.hash for version in versions], souls=souls
    )
    rows = []
    for index, (version, soul) in enumerate(zip(versions, souls, strict=True)):
        provenance = _provenance(version)
        rows.append(
            VersionRow(
                version=version,
                created_at=_moment(version.created_at),
                previous=versions[index - 1] if index else None,
                environments=promoted.get((version.hash, soul), []),
                actor=provenance.get("actor", ""),
                reason=provenance.get("reason", ""),
                promote_soul=soul,
            )
        )
    return rows[::-1]


def _provenance(version: SoulVersion) -> dict[str, str]:
    """Who made a version and why: its lineage entry keeps them, ``genesis.origin`` the current version's."""
    genesis = version.holder.genesis
    record = genesis.get("origin") if version.index is None else genesis["ancestors"][version.index]
    if not isinstance(record, dict):
        return {}
    return {key: str(record[key]) for key in ("actor", "reason") if isinstance(record.get(key), str) and record[key]}


def _moment(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class DiffShown:
    """A version diff as the being page shows it: the two versions side by side in a table."""

    older: SoulVersion
    newer: SoulVersion
    changed: bool
    table: SafeString


def diff_shown(diff: VersionDiff) -> DiffShown:
    """The side-by-side table of two versions' sources."""
    # HtmlDiff escapes the lines it shows but not the column headings: those are escaped here.
    table = difflib.HtmlDiff(tabsize=4, wrapcolumn=DIFF_WRAP).make_table(
        diff.older_source.splitlines(),
        diff.newer_source.splitlines(),
        escape(f"v{diff.older.version} · {diff.older.hash[:12]}"),
        escape(f"v{diff.newer.version} · {diff.newer.hash[:12]}"),
        context=True,
        numlines=DIFF_CONTEXT,
    )
    return DiffShown(older=diff.older, newer=diff.newer, changed=diff.changed, table=mark_safe(table))


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
    """A being: its current code, every version of its lineage, a diff of any two, and its family as a graph.

    ``?again=<run>`` fills the run form with that run's inputs and version ("Run again").
    """
    being = being_get(soul=soul, user=request.user)
    run_form = run_form_context(being=being, user=request.user, again=request.GET.get("again"))
    return being_page(request, being=being, run_form=run_form)


def being_page(request: HttpRequest, *, being: BaseBeing, run_form: dict[str, Any], status: int = 200) -> HttpResponse:
    """The being page around its run form: the form as it starts, or a refused run as typed with its error."""
    versions = being_versions(being)
    context: dict[str, Any] = {
        "being": being,
        "versions": versions,
        "rows": version_rows(versions, user=request.user),
        "promoter": soul_selectors.promoter_may(user=request.user),
        "environments": settings.LUXOS_ENVIRONMENTS,
        "parent": being.genesis.get("parent"),
        "source": source_html(being.genesis["source"]) if being.genesis.get("source") else None,
        **run_form,
        "neighbours": being_neighbours(being=being, user=request.user),
        "neighbours_limit": NEIGHBOURS_LIMIT,
        "lessons": lessons_about_being(being=being, limit=LESSONS_SHOWN),
        # Data and the core kinds hold no code: the page says so instead of offering a form that must fail.
        "run_refusal": None
        if being.kind in RUNNABLE
        else (f"A {being.kind or 'typeless'} being holds no code to run: only {' and '.join(RUNNABLE)} beings run."),
    }
    try:
        requested = _diff_requested(request, versions)
        if requested is not None:
            context["diff_from"], context["diff_to"] = requested
            context["diff"] = diff_shown(version_diff(being=being, older=requested[0], newer=requested[1]))
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


# The promotion board
