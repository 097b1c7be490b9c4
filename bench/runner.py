"""A tiny benchmark runner: timing helpers and the table of results, as text and as Markdown."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

COLUMNS = ("benchmark", "scale", "figure", "unit", "baseline", "ratio", "target", "pass/fail", "notes")
BUDGET = 60.0  # seconds per latency series: fewer runs (at least 20) when a call is slow


@dataclass(frozen=True)
class Result:
    """One figure, its baseline measured in the same run, and the target it must meet (if any)."""

    name: str
    scale: int
    figure: float
    unit: str
    baseline: float | None = None
    target: str = ""
    passed: bool | None = None
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        """figure / baseline."""
        return self.figure / self.baseline if self.baseline else None

    def cells(self) -> tuple[str, ...]:
        verdict = "" if self.passed is None else ("PASS" if self.passed else "FAIL")
        ratio = "" if self.ratio is None else f"{self.ratio:.1%}"
        baseline = "" if self.baseline is None else number(self.baseline)
        return (
            self.name,
            f"{self.scale:,}",
            number(self.figure),
            self.unit,
            baseline,
            ratio,
            self.target,
            verdict,
            self.notes,
        )


def number(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:.2f}"


def timed(work: Callable[[], object]) -> float:
    """Seconds that one call of ``work`` takes."""
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def latencies(
    work: Callable[[], object], *, runs: int, warmup: int = 5, budget: float = float("inf"), least: int = 20
) -> list[float]:
    """Milliseconds of ``runs`` calls of ``work`` after ``warmup`` uncounted ones; after ``budget`` seconds,
    stop as soon as there are ``least`` of them."""
    for _ in range(warmup):
        work()
    deadline = time.perf_counter() + budget
    measured: list[float] = []
    while len(measured) < runs and (len(measured) < least or time.perf_counter() < deadline):
        measured.append(timed(work) * 1000)
    return measured


def median(values: list[float]) -> float:
    return statistics.median(values)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def table_text(results: list[Result]) -> str:
    rows = [COLUMNS, *(result.cells() for result in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def table_markdown(results: list[Result]) -> str:
    rows = [COLUMNS, tuple("---" for _ in COLUMNS), *(result.cells() for result in results)]
    return "\n".join("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows)
