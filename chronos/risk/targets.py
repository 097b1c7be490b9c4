"""What an operation acts on: a being, a relationship, a checkpoint, a timeline, or a count of rows.

Services pass model instances (``target_of`` wraps them); the API and the command name a target in
text (``target_parse``), read with the viewer's permissions: a being or a link the viewer may not
see is as unknown as one that does not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

from beings.models import BaseBeing
from beings.selectors import being_get
from chronos.models import Checkpoint, Timeline
from chronos.points import checkpoint_resolve, timeline_resolve
from chronos.risk.exceptions import RiskOperationUnknownError, RiskTargetInvalidError
from luxsite.permissions import User
from relations.models import Relationship
from relations.selectors import relationship_get

# Every operation that changes state, and ``read``. The weight of each is in ``chronos.risk.services``.
BEING_OPERATIONS: Final = ("create", "update", "evolve", "mutate", "delete", "link", "promote", "demote")
OPERATIONS: Final = (
    "read",
    *BEING_OPERATIONS,
    "unlink",
    "bulk_import",
    "restore",
    "switch",
    "merge",
    "import",
)
# What the text of a target names when it has no ``kind:`` prefix, by operation.
DEFAULT_KIND: Final = {
    **dict.fromkeys(BEING_OPERATIONS, "being"),
    "read": "being",
    "unlink": "relationship",
    "bulk_import": "rows",
    "import": "rows",
    "restore": "checkpoint",
    "switch": "timeline",
    "merge": "timeline",
}
KINDS: Final = ("being", "relationship", "checkpoint", "timeline", "rows")


@dataclass(frozen=True, kw_only=True)
class Target:
    """What an operation acts on; exactly one of the first five is set.

    ``source`` is the new source of an evolution (to count the lines it removes), ``environment``
    where a promotion or demotion happens.
    """

    being: BaseBeing | None = None
    relationship: Relationship | None = None
    checkpoint: Checkpoint | None = None
    timeline: Timeline | None = None
    rows: int | None = None
    source: str | None = None
    environment: str | None = None

    def __str__(self) -> str:
        if self.being is not None:
            return f"being {self.being.name or self.being.soul}"
        if self.relationship is not None:
            return f"relationship {self.relationship.id}"
        if self.checkpoint is not None:
            return f"checkpoint {self.checkpoint.name}"
        if self.timeline is not None:
            return f"timeline {self.timeline.name}"
        return f"{self.rows or 0} rows"

    @property
    def label(self) -> str:
        """A short name for a checkpoint named after the operation: the being's name, the checkpoint's…"""
        if self.being is not None:
            return self.being.name or str(self.being.soul)[:8]
        if self.relationship is not None:
            return str(self.relationship.id)[:8]
        if self.checkpoint is not None:
            return self.checkpoint.name
        if self.timeline is not None:
            return self.timeline.name
        return f"{self.rows or 0}-rows"


TargetLike = Target | BaseBeing | Relationship | Checkpoint | Timeline | int


def target_of(value: TargetLike) -> Target:
    """A Target from what a service holds: a model instance, a count of rows, or a Target already."""
    if isinstance(value, Target):
        return value
    if isinstance(value, BaseBeing):
        return Target(being=value)
    if isinstance(value, Relationship):
        return Target(relationship=value)
    if isinstance(value, Checkpoint):
        return Target(checkpoint=value)
    if isinstance(value, Timeline):
        return Target(timeline=value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return Target(rows=value)
    raise RiskTargetInvalidError(
        f"a risk target is a being, a relationship, a checkpoint, a timeline or rows: {value!r}"
    )


def operation_clean(operation: object) -> str:
    """An operation risk knows; a 422 listing them otherwise."""
    text = str(operation if operation is not None else "").strip().lower().replace("-", "_")
    if text not in OPERATIONS:
        raise RiskOperationUnknownError(
            f"{str(operation)[:80]!r} is not an operation: use one of {', '.join(OPERATIONS)}"
        )
    return text


def target_parse(*, operation: str, text: object, user: User) -> Target:
    """The target ``text`` names for ``operation``: ``[KIND:]REFERENCE``, KIND one of being, relationship,
    checkpoint, timeline, rows (default: what the operation acts on), read with ``user``'s permissions."""
    raw = str(text if text is not None else "").strip()
    if not raw:
        raise RiskTargetInvalidError(f"{operation} needs a target: {DEFAULT_KIND[operation]} (or KIND:REFERENCE)")
    kind, _, reference = raw.partition(":")
    if kind not in KINDS or not reference:
        kind, reference = DEFAULT_KIND[operation], raw
    reference = reference.strip()
    if kind == "rows":
        if not reference.isdigit():
            raise RiskTargetInvalidError(f"rows is a count of rows (0 or more), not {reference[:40]!r}")
        return Target(rows=int(reference))
    if kind == "checkpoint":
        return Target(checkpoint=checkpoint_resolve(reference, anywhere=True))
    if kind == "timeline":
        return Target(timeline=timeline_resolve(reference))
    try:
        identifier = uuid.UUID(reference)
    except ValueError:
        raise RiskTargetInvalidError(f"a {kind} is named by its id (a UUID), not {reference[:40]!r}") from None
    if kind == "relationship":
        return Target(relationship=relationship_get(relationship_id=identifier, user=user))
    return Target(being=being_get(soul=identifier, user=user))
