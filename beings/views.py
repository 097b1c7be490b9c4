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
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods

from beings import graph, registry
from beings.admin import source_html
from beings.exceptions import NotPromotedError
from beings.executions import RUNNABLE
from beings.models import BaseBeing, Promotion, SoulValidation
from beings.selectors import (
    SoulVersion,
    aliases_newest,
    being_get,
    being_versions,
    hash_prefix_clean,
    soul_get,
    version_get,
)
from beings.views_executions import run_form_context
from luxsite.errors import BadRequest, DomainError, PermissionDenied
from relations.selectors import NEIGHBOURS_LIMIT, being_neighbours

# Lines of unchanged context around each change in a side-by-side diff, and where its long lines wrap.
DIFF_CONTEXT = 3
DIFF_WRAP = 56
# The board lists the aliases created most recently (and every promoted one); the history its newest events.
BOARD_ALIASES = 200
HISTORY_LIMIT = 50


@dataclass(frozen=True)
class VersionRow:
    """A line of the versions table: a version, when it was made, the one before it, where it runs."""

    version: SoulVersion
    created_at: datetime | None
    previous: SoulVersion | None
    environments: list[str]


def version_rows(versions: list[SoulVersion]) -> list[VersionRow]:
    """The versions of a lineage, newest first, each with its predecessor and the environments it is promoted to."""
    promoted: dict[str, list[str]] = {}
    active = Promotion.objects.active().filter(hash__in={version.hash for version in versions})
    for hash, environment in active.order_by("environment").values_list("hash", "environment"):
        promoted.setdefault(hash, []).append(environment)
    rows = [
        VersionRow(
            version=version, created_at=_moment(version.created_at), previous=versions[index - 1] if index else None,
            environments=promoted.get(version.hash, []),
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
    table = difflib.HtmlDiff(tabsize=4, wrapcolumn=DIFF_WRAP).make_table(
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
        **run_form_context(being=being, user=request.user),
        "neighbours": being_neighbours(being=being, user=request.user), "neighbours_limit": NEIGHBOURS_LIMIT,
        # Data and the core kinds hold no code: the page says so instead of offering a form that must fail.
        "run_refusal": None if being.kind in RUNNABLE else (
            f"A {being.kind or 'typeless'} being holds no code to run: only {' and '.join(RUNNABLE)} beings run."
        ),
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


# The promotion board


@dataclass(frozen=True)
class BoardRow:
    """One alias in one environment: what runs there, the newest version, and how far apart they are."""

    alias: str
    active: Promotion | None
    newest: BaseBeing | None
    behind: int | None  # versions from the active hash to the newest along the lineage; None when not in it

    @property
    def up_to_date(self) -> bool:
        return self.active is not None and self.newest is not None and self.active.hash == self.newest.hash

    @property
    def diverged(self) -> bool:
        """The newest being's lineage does not hold the active hash: not a later version of it."""
        return self.active is not None and self.newest is not None and self.behind is None


@dataclass(frozen=True)
class HistoryRow:
    """An event of an environment's history, and what later ended it (a supersession or a demotion)."""

    event: Promotion
    ended_by: Promotion | None


@dataclass(frozen=True)
class EnvironmentBoard:
    environment: str
    rows: list[BoardRow]
    history: list[HistoryRow]
    validation: SoulValidation | None


def versions_behind(*, hash: str, newest: BaseBeing) -> int | None:
    """How many versions the newest being's lineage holds after ``hash``, across mutations; None when it holds none."""
    hashes = [version.hash for version in being_versions(newest)]
    if hash not in hashes:
        return None
    return len(hashes) - 1 - max(index for index, value in enumerate(hashes) if value == hash)


def _board_build(
    *, environment: str, active: dict[str, Promotion], newest: dict[str, BaseBeing], promoter: bool
) -> EnvironmentBoard:
    # The genotype copies (whole sources) are for validation and running, not for the board.
    history = registry.promotion_history(environment=environment).defer(
        "genotype", "ends__genotype", "ended_by__genotype"
    )
    if not promoter:
        # Someone who does not manage environments sees only the aliases they may view.
        active = {alias: promotion for alias, promotion in active.items() if alias in newest}
        history = history.filter(alias__in=list(newest))
    rows = [
        BoardRow(
            alias=alias,
            active=active.get(alias),
            newest=newest.get(alias),
            behind=versions_behind(hash=active[alias].hash, newest=newest[alias])
            if alias in active and alias in newest
            else None,
        )
        for alias in sorted({*newest, *active}, key=lambda name: (name not in active, name.casefold(), name))
    ]
    return EnvironmentBoard(
        environment=environment,
        rows=rows,
        # promotion_history joins the event that ended each one; the reverse accessor raises when there is none.
        history=[HistoryRow(event=e, ended_by=getattr(e, "ended_by", None)) for e in history[:HISTORY_LIMIT]],
        validation=SoulValidation.objects.filter(environment=environment).order_by("-checked_at", "-id").first(),
    )


@login_required
@require_GET
def souls_board(request: HttpRequest) -> HttpResponse:
    """Per environment: every alias with its active hash, its newest hash and the versions between; the history."""
    promoter = registry.promoter_may(user=request.user)
    active = {
        environment: {
            promotion.alias: promotion
            for promotion in registry.promotions_active(environment=environment).defer("genotype", "ends__genotype")
        }
        for environment in settings.LUXOS_ENVIRONMENTS
    }
    promoted = {alias for by_alias in active.values() for alias in by_alias}
    newest = aliases_newest(user=request.user, limit=BOARD_ALIASES, include=promoted)
    boards = [
        _board_build(environment=environment, active=active[environment], newest=newest, promoter=promoter)
        for environment in settings.LUXOS_ENVIRONMENTS
    ]
    return render(
        request,
        "beings/souls_board.html",
        {"boards": boards, "promoter": promoter, "alias_limit": BOARD_ALIASES, "history_limit": HISTORY_LIMIT},
    )


def _promoter_require(request: HttpRequest) -> None:
    if not registry.promoter_may(user=request.user):
        raise PermissionDenied(f"you may not promote or demote souls: that needs {registry.PROMOTE_PERMISSION}")


def _board_url(environment: str) -> str:
    return f"{reverse('souls_board')}#{environment}"


@login_required
@require_http_methods(["GET", "POST"])
def soul_promote_confirm(request: HttpRequest, environment: str, hash: str) -> HttpResponse:
    """Ask to confirm promoting a hash to an environment; a POST with ``confirm`` promotes it."""
    _promoter_require(request)
    environment = registry.environment_clean(environment)
    alias = str(request.POST.get("alias") or request.GET.get("alias") or "").strip() or None
    if request.method == "POST" and request.POST.get("confirm"):
        try:
            promotion = registry.soul_promote(
                hash=hash, environment=environment, actor=request.user, note=request.POST.get("note", ""), alias=alias
            )
        except DomainError as error:
            messages.error(request, f"Not promoted ({error.code}): {error.detail}")
        else:
            ends = promotion.ends
            superseded = f", superseding v{ends.version} {ends.hash[:12]}" if ends else ""
            messages.success(
                request,
                f"Promoted {promotion.alias} v{promotion.version} {promotion.hash[:12]} to {environment}{superseded}.",
            )
        return redirect(_board_url(environment))
    version = soul_get(hash=hash, user=request.user)
    alias = alias or version.alias
    current = registry.promotions_active(environment=environment).filter(alias=alias).first()
    context = {"action": "promote", "environment": environment, "version": version, "alias": alias, "current": current}
    return render(request, "beings/soul_confirm.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def soul_demote_confirm(request: HttpRequest, environment: str, hash: str) -> HttpResponse:
    """Ask to confirm demoting an active hash from an environment; a POST with ``confirm`` demotes it."""
    _promoter_require(request)
    environment = registry.environment_clean(environment)
    if request.method == "POST" and request.POST.get("confirm"):
        try:
            demotion = registry.soul_demote(
                hash=hash, environment=environment, actor=request.user, note=request.POST.get("note", "")
            )
        except DomainError as error:
            messages.error(request, f"Not demoted ({error.code}): {error.detail}")
        else:
            messages.success(
                request, f"Demoted {demotion.alias} v{demotion.version} {demotion.hash[:12]} from {environment}."
            )
        return redirect(_board_url(environment))
    prefix = hash_prefix_clean(hash)
    current = registry.promotions_active(environment=environment).filter(hash__startswith=prefix).first()
    if current is None:
        raise NotPromotedError(f"no hash starting with {prefix} is active in {environment}")
    context = {"action": "demote", "environment": environment, "current": current, "alias": current.alias}
    return render(request, "beings/soul_confirm.html", context)
