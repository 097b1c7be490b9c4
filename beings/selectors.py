"""Reads of beings, with visibility policy applied in SQL."""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count
from django.db.models.fields.json import KeyTextTransform

from beings import genotype, kinds, lineage
from beings.exceptions import (
    AliasNotFoundError,
    BeingNotFoundError,
    HashAmbiguousError,
    HashInvalidError,
    LineageBrokenError,
    SoulNotFoundError,
)
from beings.models import BaseBeing, BeingQuerySet
from luxsite.errors import BadRequest
from luxsite.pagination import Page, keyset_page, page_limit
from luxsite.permissions import User, require, visible

ORDERINGS = {"created_at", "-created_at", "energy_level", "-energy_level"}


@dataclass(frozen=True)
class BeingFilters:
    tags_all: list[str] = field(default_factory=list)
    tags_any: list[str] = field(default_factory=list)
    kind: str | None = None
    name: str | None = None
    energy_min: int | None = None
    energy_max: int | None = None
    attributes: dict[str, Any] | None = None
    genesis: dict[str, Any] | None = None


def being_get(*, soul: uuid.UUID | str, user: User) -> BaseBeing:
    """One being the user may view: 404 when there is none or it is not theirs to see (the same answer)."""
    try:
        being = BaseBeing.objects.get(soul=soul)
    except (BaseBeing.DoesNotExist, ValueError):
        raise being_missing(soul) from None
    require(user=user, action="view", obj=being, missing=being_missing(soul))
    return being


def being_missing(soul: uuid.UUID | str) -> BeingNotFoundError:
    """What a being that does not exist, or that the user may not view, answers."""
    return BeingNotFoundError(f"no being has soul {soul}")


def being_filter(queryset: BeingQuerySet, filters: BeingFilters) -> BeingQuerySet:
    """Apply filters; JSON ones are containment (@>) so the GIN indexes answer them."""
    if filters.tags_all:
        queryset = queryset.tagged(*filters.tags_all)
    if filters.tags_any:
        queryset = queryset.tagged_any(*filters.tags_any)
    if filters.energy_min is not None:
        queryset = queryset.filter(energy_level__gte=filters.energy_min)
    if filters.energy_max is not None:
        queryset = queryset.filter(energy_level__lte=filters.energy_max)
    if filters.attributes is not None:
        queryset = queryset.filter(attributes__contains=filters.attributes)
    # One containment document for every genesis condition: one probe of the GIN index, and one
    # selectivity estimate that the planner cannot mistake for several unselective ones.
    genesis = dict(filters.genesis or {})
    for key, value in (("type", filters.kind), ("name", filters.name)):
        if value and genesis.setdefault(key, value) != value:
            return queryset.none()
    if genesis:
        queryset = queryset.filter(genesis__contains=genesis)
    return queryset


def being_list(
    *,
    user: User,
    filters: BeingFilters | None = None,
    ordering: str = "-created_at",
    after: str | None = None,
    limit: int | None = None,
) -> Page[BaseBeing]:
    """A page of the beings the user may view, filtered and ordered, continuing after a cursor."""
    if ordering not in ORDERINGS:
        raise BadRequest(f"ordering must be one of {', '.join(sorted(ORDERINGS))}", code="bad_ordering")
    limit = page_limit(limit)
    queryset = being_filter(visible(user=user, queryset=BaseBeing.objects.all()), filters or BeingFilters())
    return keyset_page(
        queryset, field=ordering.lstrip("-"), descending=ordering.startswith("-"), after=after, limit=limit
    )


def being_counts(*, user: User) -> dict[str, int]:
    """How many beings of each kind the user may view, counted in SQL."""
    queryset = visible(user=user, queryset=BaseBeing.objects.all())
    rows = (
        queryset.annotate(being_kind=KeyTextTransform("type", "genesis"))
        .values("being_kind")
        .annotate(count=Count("soul"))
        .order_by("being_kind")
    )
    return {str(row["being_kind"]): row["count"] for row in rows}


@dataclass(frozen=True)
class SoulVersion:
    """One version of a being, named by its hash: the current one or an entry of a lineage.

    ``holder`` is the being whose genesis holds it; ``soul`` the being it belongs to, which
    differs for the parent's versions a mutant carries in its ancestors.
    """

    hash: str
    soul: uuid.UUID
    alias: str
    version: int
    kind: str
    created_at: str | None
    holder: BaseBeing
    index: int | None  # position in holder.genesis["ancestors"]; None for the current version

    @property
    def is_current(self) -> bool:
        return self.index is None

    @property
    def owned(self) -> bool:
        return self.soul == self.holder.soul

    def genotype(self) -> dict[str, str]:
        """The genotype of this version, rebuilt from the lineage when it is not the current one."""
        if self.index is None:
            return genotype.genotype_of(self.holder.genesis)
        return lineage.genotype_rebuild(self.holder.genesis, self.index)

    def source(self) -> str:
        return self.genotype()["source"]


def being_versions(being: BaseBeing) -> list[SoulVersion]:
    """Every version a being's genesis holds, oldest first, the current one last.

    A lineage written behind LuxOS's back (entries that are not entries) is LineageBrokenError, not a crash.
    """
    genesis = being.genesis
    try:
        origin = genesis.get("origin") or {}
        versions = [
            SoulVersion(
                hash=entry["hash"],
                soul=uuid.UUID(entry.get("soul", str(being.soul))),
                alias=being.name,
                version=entry["version"],
                kind=entry.get("kind", "genesis"),
                created_at=entry.get("created_at"),
                holder=being,
                index=index,
            )
            for index, entry in enumerate(genesis.get("ancestors", []))
        ]
        kind = origin.get("kind", "genesis")
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise LineageBrokenError(f"the lineage of being {being.soul} is malformed ({error!r})") from None
    current = SoulVersion(
        hash=being.hash,
        soul=being.soul,
        alias=being.name,
        version=being.version,
        kind=kind,
        created_at=origin.get("at") or (being.created_at.isoformat() if being.created_at else None),
        holder=being,
        index=None,
    )
    return [*versions, current]


def hash_prefix_clean(value: str) -> str:
    """A full hash or a prefix of at least 12 hex characters, lower-cased; 422 otherwise."""
    prefix = str(value).strip().lower()
    if not genotype.PREFIX_PATTERN.fullmatch(prefix):
        raise HashInvalidError(
            f"{str(value)[:80]!r} is not a soul hash: give the 64 hex characters or a prefix of at least "
            f"{genotype.MIN_PREFIX}"
        )
    return prefix


def soul_get(*, hash: str, user: User) -> SoulVersion:
    """The exact version named by a hash or a unique prefix of it, among the beings the user may view.

    An ancestor is found as well as a current version. When one genotype is held by several
    beings, the being's own entry wins over a mutant's inherited copy, then the newest version.
    A prefix naming two different hashes is a conflict that lists them.
    """
    prefix = hash_prefix_clean(hash)
    holders = visible(user=user, queryset=BaseBeing.objects.holding_hash(prefix))
    matches = [version for holder in holders for version in being_versions(holder) if version.hash.startswith(prefix)]
    if not matches:
        raise SoulNotFoundError(f"no version you may view has hash {prefix}")
    hashes = sorted({version.hash for version in matches})
    if len(hashes) > 1:
        raise HashAmbiguousError(f"hash prefix {prefix} names {len(hashes)} versions: {', '.join(hashes[:10])}")
    return max(matches, key=lambda version: (version.owned, version.created_at or ""))


def soul_holders(*, hash: str, user: User) -> list[SoulVersion]:
    """The version ``hash`` (full, or a unique prefix) as each being the user may view holds it, one per being.

    A being holds a version in its own lineage when it is its current version or an ancestor entry
    of its own; a mutant's inherited copy of its parent's version counts only when no being the user
    may view holds the version as its own (the parent was deleted, or is not the user's to see).
    """
    version = soul_get(hash=hash, user=user)
    holders = visible(user=user, queryset=BaseBeing.objects.holding_hash(version.hash)).order_by("created_at", "soul")
    copies = [found for holder in holders for found in being_versions(holder) if found.hash == version.hash]
    owned = [found for found in copies if found.owned] or copies
    return list({found.holder.soul: found for found in owned}.values())


def being_owners(*, souls: Collection[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """The usernames that may change each being by a grant of their own (its owners), in one query."""
    from guardian.utils import get_user_obj_perms_model

    grants = get_user_obj_perms_model(BaseBeing)._default_manager  # type: ignore[arg-type]  # a class is fine
    owners: dict[uuid.UUID, list[str]] = {soul: [] for soul in souls}
    rows = (
        grants.filter(content_object__in=list(souls), permission__codename="change_basebeing")
        .order_by("user__username")
        .values_list("content_object_id", "user__username")
    )
    for soul, username in rows:
        owners[soul].append(username)
    return owners


def alias_get(*, alias: str, user: User) -> BaseBeing:
    """The newest being the user may view with this alias (``genesis.name``)."""
    being = visible(user=user, queryset=BaseBeing.objects.named(alias.strip())).order_by("-created_at", "soul").first()
    if being is None:
        raise AliasNotFoundError(f"no being you may view is named {alias!r}")
    return being


def version_get(*, being: BaseBeing, hash: str) -> SoulVersion:
    """A version held in one being's lineage, by hash or unique prefix."""
    prefix = hash_prefix_clean(hash)
    matches = {version.hash: version for version in being_versions(being) if version.hash.startswith(prefix)}
    if not matches:
        raise SoulNotFoundError(f"being {being.soul} has no version with hash {prefix}")
    if len(matches) > 1:
        raise HashAmbiguousError(f"hash prefix {prefix} names {len(matches)} versions: {', '.join(sorted(matches))}")
    return next(iter(matches.values()))


@dataclass(frozen=True)
class VersionDiff:
    """Two versions of one being's lineage and their sources, rebuilt from the lineage."""

    older: SoulVersion
    newer: SoulVersion
    older_source: str
    newer_source: str

    @property
    def changed(self) -> bool:
        return self.older_source != self.newer_source

    def unified(self) -> str:
        """The unified diff, every line ending in a newline (a last line without one would run into the next)."""
        lines = difflib.unified_diff(
            self.older_source.splitlines(keepends=True),
            self.newer_source.splitlines(keepends=True),
            fromfile=f"{self.older.hash[:12]} v{self.older.version}",
            tofile=f"{self.newer.hash[:12]} v{self.newer.version}",
        )
        return "".join(line if line.endswith("\n") else f"{line}\n" for line in lines)

    def lines_counted(self) -> tuple[int, int]:
        """How many lines the newer source adds and removes."""
        opcodes = difflib.SequenceMatcher(
            None,
            self.older_source.splitlines(keepends=True),
            self.newer_source.splitlines(keepends=True),
            autojunk=False,
        ).get_opcodes()
        added = sum(j2 - j1 for tag, _i1, _i2, j1, j2 in opcodes if tag in ("insert", "replace"))
        removed = sum(i2 - i1 for tag, i1, i2, _j1, _j2 in opcodes if tag in ("delete", "replace"))
        return added, removed


def version_diff(*, being: BaseBeing, older: str, newer: str) -> VersionDiff:
    """Two versions of ``being``, each named by hash or a prefix of at least 12 characters, and their sources."""
    older_version = version_get(being=being, hash=older)
    newer_version = version_get(being=being, hash=newer)
    return VersionDiff(
        older=older_version,
        newer=newer_version,
        older_source=older_version.source(),
        newer_source=newer_version.source(),
    )


def aliases_newest(*, user: User, limit: int, include: Collection[str] = ()) -> dict[str, BaseBeing]:
    """The newest being of each alias the user may view, as ``alias_get`` picks it; core beings left out.

    The ``limit`` aliases whose newest being was created last, plus every alias in ``include``
    that the user may view: two queries, whatever the number of aliases.
    """
    newest = (
        visible(user=user, queryset=BaseBeing.objects.exclude(soul__in=kinds.CORE_SOULS))
        .order_by("genesis__name", "-created_at", "soul")
        .distinct("genesis__name")
    )
    chosen = list(BaseBeing.objects.filter(soul__in=newest.values("soul")).order_by("-created_at", "soul")[:limit])
    named = {being.name for being in chosen}
    wanted = [alias for alias in include if alias not in named]
    if wanted:
        chosen.extend(newest.filter(genesis__name__in=wanted))
    return {being.name: being for being in chosen}
