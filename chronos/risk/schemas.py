"""API shapes of risk: what to assess, and the assessment."""

from __future__ import annotations

from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field, model_validator

from chronos.risk.targets import OPERATIONS
from chronos.schemas import Text


class RiskIn(Schema):
    """An operation and its target, or a free text: exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    operation: Text | None = Field(None, description=f"One of {', '.join(OPERATIONS)}.", examples=["delete"])
    target: Text | None = Field(
        None,
        description="[KIND:]REFERENCE, KIND one of being, relationship, checkpoint, timeline, rows; by default "
        "what the operation acts on (a being's soul, a relationship's id, a checkpoint for restore, a timeline "
        "for switch and merge, a count of rows for bulk_import and import).",
        examples=["5f0c6f9e-3c1b-4d59-9a3e-2f1d0c3b4a5e"],
    )
    source: Text | None = Field(None, description="evolve and mutate: the new source, to weigh the lines removed.")
    environment: Text | None = Field(None, description="promote and demote: the environment.")
    text: Text | None = Field(
        None,
        max_length=10_000,
        description="A free text (English or Polish) describing the operation, instead of operation and target.",
        examples=["Przeprowadź migrację schematu bazy danych"],
    )

    @model_validator(mode="after")
    def one_of_two(self) -> RiskIn:
        if (self.text is None) == (self.operation is None):
            raise ValueError("send either operation (with target) or text")
        if self.text is not None and (self.target or self.source or self.environment):
            raise ValueError("text is assessed alone: without target, source or environment")
        return self


class ReasonOut(Schema):
    name: str = Field(..., description="What was weighed: operation, blast_radius, promoted, rows, a keyword …")
    weight: int = Field(..., description="Its share of the score.")
    detail: str


class RiskOut(Schema):
    operation: str = Field(..., description="The operation assessed, or `text`.")
    target: str
    level: Literal["low", "medium", "high", "critical"] = Field(
        ..., description="low < 25 ≤ medium < 50 ≤ high < 80 ≤ critical; a safety checkpoint comes before high."
    )
    score: int = Field(..., ge=0, le=100, description="The sum of the reasons' weights, at most 100.")
    reasons: list[ReasonOut] = Field(..., description="Heaviest first.")
