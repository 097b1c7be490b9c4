"""What the souls board shows, per environment and alias, and what a promotion would replace: reads for the pages."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Case, F, When, Window
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import RowNumber

from beings import kinds
from beings.exceptions import SoulNotFoundError
from beings.models import BaseBeing, Promotion, SoulValidation
from beings.selectors import (
    SoulVersion,
    aliases_newest,
    being_owners,
    being_versions,
    soul_holders,
)
from beings.souls import selectors as soul_selectors
from beings.souls.evidence import Evidence, hash_lineage, promotion_evidence_many
from luxsite.permissions import User, visible

# The board lists the aliases created most recently (and every promoted one); the history its newest events.
BOARD_ALIASES = 200


# Beings listed per alias: the ones promoted now, then the newest.
BOARD_CANDIDATES = 10


HISTORY_LIMIT = 50


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
    evidence: Evidence | None = None  # its newest hash's evidence for the environment; None where none is asked

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
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[name],
                order_by=[
                    Case(When(soul__in=list(first), then=0), default=1).asc(),
                    F("created_at").desc(),
                    F("soul").asc(),
                ],
            )
        )
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
        visible(user=user, queryset=BaseBeing.objects.filter(soul__in=set(parents.values()))).values_list(
            "soul", KeyTextTransform("name", "genesis")
        )
    )
    return {child: names.get(parent) or f"{str(parent)[:8]}…" for child, parent in parents.items()}


def _own_versions(being: BaseBeing) -> list[SoulVersion]:
    """A being's own versions, newest first; an inherited one is offered under the being it belongs to."""
    return [version for version in reversed(being_versions(being)) if version.owned]


def _board_build(
    *,
    environment: str,
    active: dict[str, Promotion],
    beings: dict[str, list[BaseBeing]],
    owners: dict[uuid.UUID, list[str]],
    mutant_of: dict[uuid.UUID, str],
    twins: dict[str, list[BaseBeing]],
    history: list[Promotion],
    evidence: dict[tuple[str, str], Evidence],
) -> EnvironmentBoard:
    rows = []
    for alias in sorted({*beings, *active}, key=lambda name: (name not in active, name.casefold(), name)):
        promotion = active.get(alias)
        promoted_owners = owners.get(promotion.soul, []) if promotion else []
        rows.append(
            BoardRow(
                alias=alias,
                active=promotion,
                active_owners=promoted_owners,
                candidates=[
                    Candidate(
                        being=being,
                        owners=owners.get(being.soul, []),
                        versions=_own_versions(being),
                        mutant_of=mutant_of.get(being.soul),
                        twins=[twin for twin in twins.get(being.hash, []) if twin.soul != being.soul],
                        active=promotion,
                        active_owners=promoted_owners,
                        behind=versions_behind(hash=promotion.hash, newest=being) if promotion else None,
                        evidence=evidence.get((environment, being.hash)),
                    )
                    for being in beings.get(alias, [])
                ],
            )
        )
    return EnvironmentBoard(
        environment=environment,
        rows=rows,
        # promotion_history joins the event that ended each one; the reverse accessor raises when there is none.
        history=[
            HistoryRow(event=event, owners=owners.get(event.soul, []), ended_by=getattr(event, "ended_by", None))
            for event in history
        ],
        validation=soul_selectors.validation_latest(environment=environment),
    )


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


def promotion_plan(*, user: User, environment: str, hash: str, alias: str | None, soul: str | None) -> PromotionPlan:
    """Read what promoting ``hash`` (held by being ``soul``) to ``environment`` under ``alias`` would replace."""
    holders = soul_holders(hash=hash, user=user)
    if soul:
        version = next((found for found in holders if str(found.holder.soul) == soul.strip().lower()), None)
        if version is None:
            raise SoulNotFoundError(f"no being you may view with soul {soul[:80]} holds version {holders[0].hash}")
    else:
        version = holders[0] if len(holders) == 1 else None
    alias = alias or (version or holders[0]).alias
    current = soul_selectors.promotions_active(environment=environment, user=user).filter(alias=alias).first()
    souls = {found.holder.soul for found in holders} | ({current.soul} if current else set())
    return PromotionPlan(
        environment=environment,
        alias=alias,
        holders=holders,
        version=version,
        current=current,
        owners=being_owners(souls=souls),
    )


def environment_boards(*, user: User) -> list[EnvironmentBoard]:
    """Each environment's board: per alias what runs, whose being it is, and each being that may replace it.

    Everything goes through the registry's visibility: someone who does not manage environments
    sees the promotions of the beings they may view and nothing of the others, whatever the alias.
    """
    active = {
        environment: {
            promotion.alias: promotion
            for promotion in soul_selectors.promotions_active(environment=environment, user=user).defer(
                "genotype", "ends__genotype"
            )
        }
        for environment in settings.LUXOS_ENVIRONMENTS
    }
    # The genotype copies (whole sources) are for validation and running, not for the board.
    history = {
        environment: list(
            soul_selectors.promotion_history(environment=environment, user=user).defer(
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
    # Each listed hash's evidence in two queries for all (runs, open lessons); the risk is weighed when promoting.
    lineages: dict[str, set[str]] = {}
    for being in listed:
        lineages.setdefault(being.hash, set()).update(hash_lineage(hash=being.hash, beings=[being]))
    evidence = promotion_evidence_many(lineages=lineages, environments=settings.LUXOS_ENVIRONMENTS)
    return [
        _board_build(
            environment=environment,
            active=active[environment],
            beings=beings,
            owners=owners,
            mutant_of=mutant_of,
            twins=twins,
            history=history[environment],
            evidence=evidence,
        )
        for environment in settings.LUXOS_ENVIRONMENTS
    ]
