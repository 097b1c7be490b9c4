"""HTML pages of the soul registry: the being page (versions, diffs, lineage graph) and the promotion board.

The board promotes and demotes through ``beings.registry`` only, after a confirmation page that
works without JavaScript (a CSRF-protected POST form).
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Case, F, When, Window
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import RowNumber
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods

from beings import graph, kinds, registry
from beings.admin import source_html
from beings.exceptions import NotPromotedError, OwnerChangeUnconfirmedError, SoulNotFoundError
from beings.executions import RUNNABLE
from beings.forms import run_form_context
from beings.models import BaseBeing, Promotion, SoulValidation
from beings.selectors import (
    SoulVersion,
    User,
    aliases_newest,
    being_get,
    being_owners,
    being_versions,
    hash_prefix_clean,
    soul_holders,
    version_get,
)
from luxsite.errors import BadRequest, Conflict, DomainError, PermissionDenied
from luxsite.permissions import visible
from relations.selectors import NEIGHBOURS_LIMIT, being_neighbours

# Lines of unchanged context around each change in a side-by-side diff, and where its long lines wrap.
DIFF_CONTEXT = 3
DIFF_WRAP = 56
# The board lists the aliases created most recently (and every promoted one); the history its newest events.
BOARD_ALIASES = 200
# Beings listed per alias: the ones promoted now, then the newest.
BOARD_CANDIDATES = 10
HISTORY_LIMIT = 50


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
    own_beings = set(
        visible(user=user, queryset=BaseBeing.objects.filter(soul__in=inherited)).values_list("soul", flat=True)
    ) if inherited else set()
    souls = [
        version.soul if version.owned or version.soul in own_beings else version.holder.soul for version in versions
    ]
    promoted: dict[tuple[str, uuid.UUID], list[str]] = {}
    active = registry.promotions_visible(
        user=user,
        queryset=Promotion.objects.active().filter(
            hash__in={version.hash for version in versions}, soul__in=set(souls)
        ),
    )
    for hash, soul, environment in active.order_by("environment").values_list("hash", "soul", "environment"):
        promoted.setdefault((hash, soul), []).append(environment)
    rows = []
    for index, (version, soul) in enumerate(zip(versions, souls, strict=True)):
        provenance = _provenance(version)
        rows.append(VersionRow(
            version=version, created_at=_moment(version.created_at), previous=versions[index - 1] if index else None,
            environments=promoted.get((version.hash, soul), []), actor=provenance.get("actor", ""),
            reason=provenance.get("reason", ""), promote_soul=soul,
        ))
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
        "promoter": registry.promoter_may(user=request.user), "environments": settings.LUXOS_ENVIRONMENTS,
        "parent": being.genesis.get("parent"),
        "source": source_html(being.genesis["source"]) if being.genesis.get("source") else None,
        **run_form,
        "neighbours": being_neighbours(being=being, user=request.user), "neighbours_limit": NEIGHBOURS_LIMIT,
        # Data and the core kinds hold no code: the page says so instead of offering a form that must fail.
        "run_refusal": None if being.kind in RUNNABLE else (
            f"A {being.kind or 'typeless'} being holds no code to run: only {' and '.join(RUNNABLE)} beings run."
        ),
    }
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
class Candidate:
    """A being the user may view that carries an alias, as it stands to what runs under that alias in one environment.

    The board offers any of its own versions; a being of other owners than the active one's needs
    the explicit confirmation of ``soul_promote_confirm``.
    """

    being: BaseBeing
    owners: list[str]
    versions: list[SoulVersion]  # its own versions, newest first: what the version picker offers
    mutant_of: str | None  # the name (or short soul) of the being it mutated from
    twins: list[BaseBeing]  # other listed beings whose current version has the same hash (the same genotype)
    active: Promotion | None
    active_owners: list[str]
    behind: int | None  # versions from the active hash to this being's newest, across mutations; None when not held

    @property
    def runs(self) -> bool:
        """What runs under the alias is a version of this being."""
        return self.active is not None and self.active.soul == self.being.soul

    @property
    def up_to_date(self) -> bool:
        return self.runs and self.active is not None and self.active.hash == self.being.hash

    @property
    def diverged(self) -> bool:
        """This being's lineage does not hold the active hash: not a later version of what runs."""
        return self.active is not None and self.behind is None

    @property
    def other_owner(self) -> bool:
        """Promoting this being would replace the being of other owners."""
        return self.active is not None and not self.runs and set(self.owners) != set(self.active_owners)


@dataclass(frozen=True)
class BoardRow:
    """One alias in one environment: what runs there, whose being that is, and every being that may replace it."""

    alias: str
    active: Promotion | None
    active_owners: list[str]
    candidates: list[Candidate]


@dataclass(frozen=True)
class HistoryRow:
    """An event of an environment's history, the owners of its being, and what later ended it (if anything has)."""

    event: Promotion
    owners: list[str]
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


def alias_beings(
    *, user: User, aliases: Collection[str], first: Collection[uuid.UUID] = ()
) -> dict[str, list[BaseBeing]]:
    """The beings the user may view that carry each alias, at most ``BOARD_CANDIDATES`` per alias, in one query.

    The beings in ``first`` (those promoted now) come first, then the newest; core beings are left out.
    """
    if not aliases:
        return {}
    name = KeyTextTransform("name", "genesis")
    ranked = (
        visible(user=user, queryset=BaseBeing.objects.exclude(soul__in=kinds.CORE_SOULS))
        .annotate(alias_name=name)
        .filter(alias_name__in=list(aliases))
        .annotate(rank=Window(
            RowNumber(),
            partition_by=[name],
            order_by=[
                Case(When(soul__in=list(first), then=0), default=1).asc(), F("created_at").desc(), F("soul").asc()
            ],
        ))
        .filter(rank__lte=BOARD_CANDIDATES)
        .order_by("rank")
    )
    beings: dict[str, list[BaseBeing]] = {}
    for being in ranked:
        beings.setdefault(being.name, []).append(being)
    return beings


def _mutant_names(*, user: User, beings: Iterable[BaseBeing]) -> dict[uuid.UUID, str]:
    """Each mutant's parent as the board names it: its alias when the user may view it, else its short soul."""
    parents: dict[uuid.UUID, uuid.UUID] = {}
    for being in beings:
        parent = being.genesis.get("parent")
        try:
            parents[being.soul] = uuid.UUID(str(parent["soul"]))
        except (KeyError, TypeError, ValueError):
            continue
    if not parents:
        return {}
    names = dict(
        visible(user=user, queryset=BaseBeing.objects.filter(soul__in=set(parents.values())))
        .values_list("soul", KeyTextTransform("name", "genesis"))
    )
    return {child: names.get(parent) or f"{str(parent)[:8]}…" for child, parent in parents.items()}


def _own_versions(being: BaseBeing) -> list[SoulVersion]:
    """A being's own versions, newest first; an inherited one is offered under the being it belongs to."""
    return [version for version in reversed(being_versions(being)) if version.owned]


def _board_build(
    *, environment: str, active: dict[str, Promotion], beings: dict[str, list[BaseBeing]],
    owners: dict[uuid.UUID, list[str]], mutant_of: dict[uuid.UUID, str], twins: dict[str, list[BaseBeing]],
    history: list[Promotion],
) -> EnvironmentBoard:
    rows = []
    for alias in sorted({*beings, *active}, key=lambda name: (name not in active, name.casefold(), name)):
        promotion = active.get(alias)
        promoted_owners = owners.get(promotion.soul, []) if promotion else []
        rows.append(BoardRow(
            alias=alias, active=promotion, active_owners=promoted_owners,
            candidates=[
                Candidate(
                    being=being, owners=owners.get(being.soul, []), versions=_own_versions(being),
                    mutant_of=mutant_of.get(being.soul),
                    twins=[twin for twin in twins.get(being.hash, []) if twin.soul != being.soul],
                    active=promotion, active_owners=promoted_owners,
                    behind=versions_behind(hash=promotion.hash, newest=being) if promotion else None,
                )
                for being in beings.get(alias, [])
            ],
        ))
    return EnvironmentBoard(
        environment=environment,
        rows=rows,
        # promotion_history joins the event that ended each one; the reverse accessor raises when there is none.
        history=[
            HistoryRow(event=event, owners=owners.get(event.soul, []), ended_by=getattr(event, "ended_by", None))
            for event in history
        ],
        validation=SoulValidation.objects.filter(environment=environment).order_by("-checked_at", "-id").first(),
    )


@login_required
@require_GET
def souls_board(request: HttpRequest) -> HttpResponse:
    """Per environment and alias: what runs, whose being it is, and each being that may replace it; the history.

    Everything goes through the registry's visibility: someone who does not manage environments
    sees the promotions of the beings they may view and nothing of the others, whatever the alias.
    """
    user = request.user
    promoter = registry.promoter_may(user=user)
    active = {
        environment: {
            promotion.alias: promotion
            for promotion in registry.promotions_active(environment=environment, user=user).defer(
                "genotype", "ends__genotype"
            )
        }
        for environment in settings.LUXOS_ENVIRONMENTS
    }
    # The genotype copies (whole sources) are for validation and running, not for the board.
    history = {
        environment: list(
            registry.promotion_history(environment=environment, user=user).defer(
                "genotype", "ends__genotype", "ended_by__genotype"
            )[:HISTORY_LIMIT]
        )
        for environment in settings.LUXOS_ENVIRONMENTS
    }
    promoted = {promotion.soul for by_alias in active.values() for promotion in by_alias.values()}
    aliases = {*aliases_newest(user=user, limit=BOARD_ALIASES), *(a for by_alias in active.values() for a in by_alias)}
    beings = alias_beings(user=user, aliases=aliases, first=promoted)
    listed = [being for candidates in beings.values() for being in candidates]
    owners = being_owners(
        souls={*promoted, *(being.soul for being in listed), *(e.soul for events in history.values() for e in events)}
    )
    twins: dict[str, list[BaseBeing]] = {}
    for being in listed:
        twins.setdefault(being.hash, []).append(being)
    mutant_of = _mutant_names(user=user, beings=listed)
    boards = [
        _board_build(
            environment=environment, active=active[environment], beings=beings, owners=owners, mutant_of=mutant_of,
            twins=twins, history=history[environment],
        )
        for environment in settings.LUXOS_ENVIRONMENTS
    ]
    return render(
        request,
        "beings/souls_board.html",
        {
            "boards": boards, "promoter": promoter, "alias_limit": BOARD_ALIASES, "history_limit": HISTORY_LIMIT,
            "candidate_limit": BOARD_CANDIDATES,
        },
    )


def _promoter_require(request: HttpRequest) -> None:
    if not registry.promoter_may(user=request.user):
        raise PermissionDenied(f"you may not promote or demote souls: that needs {registry.PROMOTE_PERMISSION}")


def _board_url(environment: str) -> str:
    return f"{reverse('souls_board')}#{environment}"


@dataclass(frozen=True)
class PromotionPlan:
    """What a promotion would do: the version and its being, what it replaces under the alias, whose each is.

    ``version`` is None when several beings hold the hash and none was named: the page lists them.
    """

    environment: str
    alias: str
    holders: list[SoulVersion]
    version: SoulVersion | None
    current: Promotion | None
    owners: dict[uuid.UUID, list[str]]

    @property
    def being_owners(self) -> list[str]:
        return self.owners.get(self.version.holder.soul, []) if self.version else []

    @property
    def current_owners(self) -> list[str]:
        return self.owners.get(self.current.soul, []) if self.current else []

    @property
    def holders_owned(self) -> list[tuple[SoulVersion, str]]:
        """Each being that holds the hash, with its owners as a sentence names them."""
        return [(holder, owners_text(self.owners.get(holder.holder.soul, []))) for holder in self.holders]

    @property
    def being_owners_text(self) -> str:
        return owners_text(self.being_owners)

    @property
    def current_owners_text(self) -> str:
        return owners_text(self.current_owners)

    @property
    def other_being(self) -> bool:
        """The alias runs another being now: this promotion replaces it, not one of its own versions."""
        return self.current is not None and self.version is not None and self.current.soul != self.version.holder.soul

    @property
    def other_owner(self) -> bool:
        """The being replaced has other owners than this one: the promoter must say they mean it."""
        return self.other_being and set(self.being_owners) != set(self.current_owners)

    @property
    def twins(self) -> list[SoulVersion]:
        """The other beings the promoter may view that hold the same hash: the same genotype."""
        chosen = self.version.holder.soul if self.version else None
        return [holder for holder in self.holders if holder.holder.soul != chosen]


def owners_text(owners: list[str]) -> str:
    """Owners as a sentence names them: "alice", "alice and bob", or "nobody" for a being no one owns any more."""
    if not owners:
        return "nobody"
    return owners[0] if len(owners) == 1 else f"{', '.join(owners[:-1])} and {owners[-1]}"


def promotion_plan(
    *, user: User, environment: str, hash: str, alias: str | None, soul: str | None
) -> PromotionPlan:
    """Read what promoting ``hash`` (held by being ``soul``) to ``environment`` under ``alias`` would replace."""
    holders = soul_holders(hash=hash, user=user)
    if soul:
        version = next((found for found in holders if str(found.holder.soul) == soul.strip().lower()), None)
        if version is None:
            raise SoulNotFoundError(f"no being you may view with soul {soul[:80]} holds version {holders[0].hash}")
    else:
        version = holders[0] if len(holders) == 1 else None
    alias = alias or (version or holders[0]).alias
    current = registry.promotions_active(environment=environment, user=user).filter(alias=alias).first()
    souls = {found.holder.soul for found in holders} | ({current.soul} if current else set())
    return PromotionPlan(
        environment=environment, alias=alias, holders=holders, version=version, current=current,
        owners=being_owners(souls=souls),
    )


@login_required
@require_GET
def soul_promote_choose(request: HttpRequest, environment: str) -> HttpResponse:
    """The board's version picker: the confirmation page of the hash chosen, for the being and alias it names."""
    _promoter_require(request)
    environment = registry.environment_clean(environment)
    hash = hash_prefix_clean(request.GET.get("hash", ""))
    query = urlencode({key: request.GET[key] for key in ("soul", "alias") if request.GET.get(key)})
    return redirect(f"{reverse('soul_promote', args=[environment, hash])}{'?' if query else ''}{query}")


@login_required
@require_http_methods(["GET", "POST"])
def soul_promote_confirm(request: HttpRequest, environment: str, hash: str) -> HttpResponse:
    """Ask to confirm promoting a hash to an environment; a POST with ``confirm`` promotes it.

    The page names the being (``soul``) and its owners. Replacing another being under the alias
    is said; replacing the being of other owners needs ``replace_owner`` as well, or nothing is written.
    """
    _promoter_require(request)
    environment = registry.environment_clean(environment)
    alias = str(request.POST.get("alias") or request.GET.get("alias") or "").strip() or None
    soul = str(request.POST.get("soul") or request.GET.get("soul") or "").strip() or None
    if request.method == "POST" and request.POST.get("confirm"):
        try:
            plan = promotion_plan(user=request.user, environment=environment, hash=hash, alias=alias, soul=soul)
            promotion = registry.soul_promote(
                hash=hash, environment=environment, actor=request.user, note=request.POST.get("note", ""),
                alias=alias, soul=plan.version.holder.soul if plan.version else None,
                replace_owner=bool(request.POST.get("replace_owner")),
            )
        except OwnerChangeUnconfirmedError:
            refusal = Conflict(
                f"Not promoted: {environment} runs {plan.current_owners_text}'s being under {plan.alias!r}; "
                f"tick \"I understand this replaces {plan.current_owners_text}'s being with "
                f"{plan.being_owners_text}'s\" to promote it.",
                code="owner_change_unconfirmed",
            )
            context = {"action": "promote", "plan": plan, "environment": environment, "alias": plan.alias,
                       "refusal": refusal, "note": request.POST.get("note", "")}
            return render(request, "beings/soul_confirm.html", context, status=refusal.status)
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
    plan = promotion_plan(user=request.user, environment=environment, hash=hash, alias=alias, soul=soul)
    context = {"action": "promote", "plan": plan, "environment": environment, "alias": plan.alias}
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
    context = {
        "action": "demote", "environment": environment, "current": current, "alias": current.alias,
        "current_owners": being_owners(souls=[current.soul])[current.soul],
    }
    return render(request, "beings/soul_confirm.html", context)
