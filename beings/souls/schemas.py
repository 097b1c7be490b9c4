"""API shapes of the soul registry: versions by hash, aliases, promotions, manifests, validations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import ConfigDict, Field

from beings.models import Promotion


class PromoteIn(Schema):
    model_config = ConfigDict(extra="forbid")

    environment: str = Field("production", description="One of LUXOS_ENVIRONMENTS.")
    note: str = Field("", description="Why: kept with the promotion (at most 2,000 characters).")
    alias: str | None = Field(None, description="Promote under this alias; by default the version's own.")
    soul: str | None = Field(
        None,
        description="The being whose version to promote, when several beings hold this hash (a 409 "
        "hash_held_by_many lists them with their owners).",
    )
    replace_owner: bool = Field(
        False,
        description="Confirm replacing the being the alias runs with a being of other owners (409 "
        "owner_change_unconfirmed without it).",
    )
    override_reason: str | None = Field(
        None,
        description="Promote without the evidence the environment asks for (LUXOS_PROMOTION_EVIDENCE), saying why "
        "(at most 2,000 characters; needs beings.promote_soul_override, 403 without it). Kept on the promotion; "
        "not needed, and not kept, when the evidence is met.",
    )


class DemoteIn(Schema):
    model_config = ConfigDict(extra="forbid")

    environment: str = Field("production", description="One of LUXOS_ENVIRONMENTS.")
    note: str = Field("", description="Why: kept with the demotion (at most 2,000 characters).")


class PromotionOut(Schema):
    """One event of an environment's history."""

    id: int
    environment: str
    action: str = Field(description="promote or demote.")
    hash: str
    alias: str
    soul: uuid.UUID
    version: int
    actor: str = Field(description="Who: the user's name when the event was written.")
    note: str
    created_at: datetime
    ends: int | None = Field(None, description="The promotion this event ended (superseded or demoted).")
    ends_hash: str | None = Field(None, description="The hash of the promotion this event ended.")
    ended_by: int | None = Field(None, description="The later event that ended this promotion; none while active.")
    override_reason: str = Field(
        "", description="Why it was promoted without the evidence asked for; empty when the evidence was met."
    )
    evidence: dict[str, Any] | None = Field(
        None,
        description="The evidence weighed when it was promoted: {environment, met, missing, figures, rules}; null "
        "for a demotion or where the environment asks for none.",
    )

    @staticmethod
    def resolve_actor(obj: Promotion) -> str:
        return obj.actor_name

    @staticmethod
    def resolve_ends(obj: Promotion) -> int | None:
        return obj.ends_id

    @staticmethod
    def resolve_ends_hash(obj: Promotion) -> str | None:
        return obj.ends.hash if obj.ends_id is not None and obj.ends is not None else None

    @staticmethod
    def resolve_ended_by(obj: Promotion) -> int | None:
        # Without select_related("ended_by") this costs a query: the selectors that feed lists join it.
        ended_by = getattr(obj, "ended_by", None)
        return ended_by.pk if ended_by is not None else None


class EvidenceFiguresOut(Schema):
    successes: int = Field(description="Successful runs of the hash, ever.")
    last_runs: int = Field(description="Finished runs counted among its last ones (at most the rule's last_runs).")
    failures_in_last: int = Field(description="Of those, the runs that failed, timed out or were killed.")
    open_lessons: int = Field(description="Unresolved lessons on the hash or a version it came from.")
    open_lesson_ids: list[int] = Field(description="The first few of those lessons.")
    risk: str | None = Field(description="The promotion's assessed risk level; null when the rules ask for none.")


class EvidenceOut(Schema):
    """A hash's evidence for one environment, against the rules LUXOS_PROMOTION_EVIDENCE sets there."""

    hash: str
    environment: str
    gated: bool = Field(description="Whether the environment asks for any evidence.")
    met: bool
    missing: list[str] = Field(description="A sentence for each rule the hash does not meet.")
    figures: EvidenceFiguresOut | None = Field(description="Null where the environment asks for no evidence.")
    rules: dict[str, Any] | None


class PromotionDetailOut(PromotionOut):
    genotype: dict[str, Any] = Field(description="The immutable copy of the genotype this hash names.")


class PromotionPageOut(Schema):
    items: list[PromotionOut]
    next: str | None = Field(None, description="Cursor of the next page; absent on the last one.")


class SoulPromotionOut(Schema):
    environment: str
    alias: str
    promoted_at: datetime
    promoted_by: str


class SoulOut(Schema):
    """One version of a being, named by its hash."""

    hash: str
    alias: str
    soul: uuid.UUID = Field(description="The being this version belongs to.")
    version: int
    kind: str = Field(description="How the version came to be: genesis, evolution, cosmetic, mutation.")
    created_at: str | None
    is_current: bool = Field(description="Whether it is its being's current version (not an ancestor).")
    holder: uuid.UUID = Field(description="The being whose genesis holds it: a mutant holds its parent's versions.")
    genotype: dict[str, Any] = Field(description="type, language, entrypoint, source, workload: what the hash names.")
    promotions: list[SoulPromotionOut] = Field(description="Where the hash is active now.")


class AliasOut(Schema):
    """The newest being with an alias and what each environment runs for that alias."""

    alias: str
    soul: uuid.UUID
    hash: str
    version: int
    kind: str
    created_at: datetime | None
    production: dict[str, str | None] = Field(
        description="Environment → the hash promoted there for this alias (null when none)."
    )


class ManifestSoulOut(Schema):
    hash: str
    alias: str
    version: int
    soul: str
    promoted_at: str
    promoted_by: str


class ManifestOut(Schema):
    environment: str
    generated_at: str
    souls_count: int
    souls: list[ManifestSoulOut] = Field(description="Sorted by alias, then hash.")
    digest: str = Field(description="sha256 of the canonical JSON (sorted keys, compact, UTF-8) of `souls`.")


class ProblemOut(Schema):
    hash: str
    alias: str
    soul: str
    version: int
    reason: str


class ValidationOut(Schema):
    id: int
    environment: str
    ok: bool
    checked: int = Field(description="How many active promotions were recomputed.")
    problems: list[ProblemOut]
    checked_at: datetime
    door: str
    actor: str

    @staticmethod
    def resolve_actor(obj: Any) -> str:
        return str(obj.actor_name)
