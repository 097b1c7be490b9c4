"""The shape of an assessment: its reasons, its score and the level the score falls in.

A score is the sum of the reasons' weights, capped at 100. The thresholds (lower bounds):

======== =====
low          0
medium      25
high        50
critical    80
======== =====

A safety checkpoint is taken before an operation at ``high`` or above (``safety_guard``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

LOW: Final = "low"
MEDIUM: Final = "medium"
HIGH: Final = "high"
CRITICAL: Final = "critical"
LEVELS: Final = (LOW, MEDIUM, HIGH, CRITICAL)

THRESHOLDS: Final = ((CRITICAL, 80), (HIGH, 50), (MEDIUM, 25))
MAX_SCORE: Final = 100


def level_of(score: int) -> str:
    """The level a score falls in."""
    return next((level for level, lowest in THRESHOLDS if score >= lowest), LOW)


@dataclass(frozen=True)
class Reason:
    """One named contribution to a score: what was found (``detail``) and how much it weighs."""

    name: str
    weight: int
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "weight": self.weight, "detail": self.detail}


@dataclass(frozen=True)
class Risk:
    """An operation's risk: the level, the score (0-100) and the reasons that make it up, heaviest first."""

    operation: str
    target: str
    reasons: list[Reason] = field(default_factory=list)

    @property
    def score(self) -> int:
        return min(MAX_SCORE, sum(reason.weight for reason in self.reasons))

    @property
    def level(self) -> str:
        return level_of(self.score)

    @property
    def needs_checkpoint(self) -> bool:
        return self.level in (HIGH, CRITICAL)

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "target": self.target,
            "level": self.level,
            "score": self.score,
            "reasons": [reason.as_dict() for reason in self.reasons],
        }


def risk_of(operation: str, target: str, reasons: list[Reason]) -> Risk:
    """A Risk whose reasons are ordered heaviest first; reasons that weigh nothing are kept as information."""
    return Risk(operation=operation, target=target, reasons=sorted(reasons, key=lambda reason: -reason.weight))
