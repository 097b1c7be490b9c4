"""Differences between two points: rows added, removed and changed, and inside a changed row the JSON paths.

O(changes between the points): the rows touched on the way from one point to the other are the
only candidates; each is rebuilt at both points from its live image and its own log entries.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from chronos import replay
from chronos.points import Point, live_timeline, path

ABSENT = object()


@dataclass(frozen=True)
class FieldDiff:
    path: str
    old: Any
    new: Any
    # "added" / "removed" when the key exists on one side only.
    kind: Literal["changed", "added", "removed"] = "changed"


@dataclass
class RowDiff:
    table: str
    row_id: uuid.UUID
    kind: Literal["added", "removed", "changed"]
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    fields: list[FieldDiff] = field(default_factory=list)


@dataclass
class Diff:
    origin: Point
    target: Point
    # Counts per (table, kind) over every row, whatever the page shows.
    stat: dict[tuple[str, str], int]
    entries: list[RowDiff]
    total: int
    offset: int = 0
    changes: int = 0

    def count(self, table: str, kind: str) -> int:
        return self.stat.get((table, kind), 0)


def json_paths(old: Any, new: Any, prefix: str = "") -> Iterator[FieldDiff]:
    """The paths where two JSON values differ (``genesis.source``, ``memories[3]``), with both values."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                yield FieldDiff(where, None, new[key], "added")
            elif key not in new:
                yield FieldDiff(where, old[key], None, "removed")
            elif old[key] != new[key]:
                yield from json_paths(old[key], new[key], where)
        return
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            if a != b:
                yield from json_paths(a, b, f"{prefix}[{index}]")
        return
    if old != new or type(old) is not type(new):
        yield FieldDiff(prefix or "(row)", old, new)


def chronos_diff(origin: Point, target: Point, *, limit: int = 50, offset: int = 0) -> Diff:
    """The rows that differ between ``origin`` and ``target`` (a page of them) and counts of all of them."""
    steps = replay.path_steps(path(origin, target))
    keys = sorted({(step.table, step.row_id) for step in steps}, key=lambda key: (key[0], str(key[1])))
    now = Point(live_timeline())
    at_origin = replay.rows_fold(replay.live_images(keys), replay.path_steps(path(now, origin), rows=keys))
    at_target = replay.rows_fold(at_origin, steps)
    rows: list[RowDiff] = []
    for key in keys:
        old, new = at_origin.get(key), at_target.get(key)
        if old == new:
            continue
        kind: Literal["added", "removed", "changed"] = (
            "added" if old is None else "removed" if new is None else "changed"
        )
        rows.append(RowDiff(key[0], key[1], kind, old, new))
    stat: Counter[tuple[str, str]] = Counter((row.table, row.kind) for row in rows)
    page = rows[offset : offset + limit]
    for row in page:
        if row.kind == "changed":
            row.fields = list(json_paths(row.old, row.new))
    return Diff(origin, target, dict(stat), page, total=len(rows), offset=offset, changes=len(steps))
