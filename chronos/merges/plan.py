"""What a merge would do, read from the log: the fork point, each touched row at base, ours and theirs, combined.

O(changes since the fork on either side): the rows touched are those of the log entries from the fork
point to each head (an index on timeline and xid finds them); their three images are rebuilt in a few
statements (the live images, then each side's steps folded onto them in one statement each), never
a query per row. The combination itself is ``chronos.merges.combine``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from chronos import replay
from chronos.exceptions import PointInvalidError
from chronos.merges.combine import RowMerge, digest_text, row_combine
from chronos.merges.exceptions import MergeSameTimelineError
from chronos.models import Checkpoint, Timeline
from chronos.points import Cut, Point, live_timeline, path


@dataclass
class Plan:
    """The rows a merge touches (only those it writes or conflicts on are kept) and a digest of them all."""

    base: Checkpoint
    rows: list[RowMerge]
    touched: int
    ours_only: int
    theirs_only: int
    both: int
    digest: str

    def stats(self) -> dict[str, Any]:
        tables: dict[str, int] = {}
        for row in self.rows:
            tables[row.table] = tables.get(row.table, 0) + 1
        return {
            "touched": self.touched,
            "ours_only": self.ours_only,
            "theirs_only": self.theirs_only,
            "both": self.both,
            "writes": len(self.rows),
            "tables": tables,
            "conflicts": sum(len(row.clashes) for row in self.rows),
            "digest": self.digest,
        }


def _ancestry(timeline: Timeline) -> list[tuple[Timeline, Checkpoint | None]]:
    """The timeline, then each ancestor with the checkpoint its child forked from."""
    chain: list[tuple[Timeline, Checkpoint | None]] = [(timeline, None)]
    current = timeline
    while current.parent_id is not None:
        fork = Checkpoint.objects.filter(id=current.fork_id).first() if current.fork_id else None
        if fork is None:
            raise PointInvalidError(f"timeline {current.name} has a parent but no fork point")
        current = Timeline.objects.get(id=current.parent_id)
        chain.append((current, fork))
    return chain


def merge_base(*, source: Timeline, into: Timeline) -> Checkpoint:
    """The fork point of two timelines: on their nearest common timeline, the earlier of the points where
    each left it (or the one point where one left the other)."""
    if source.id == into.id:
        raise MergeSameTimelineError(f"{source.name} cannot be merged into itself")
    theirs = _ancestry(source)
    ours = {timeline.id: fork for timeline, fork in _ancestry(into)}
    for timeline, fork in theirs:
        if timeline.id in ours:
            other = ours[timeline.id]
            if fork is None or other is None:
                found = fork or other
                assert found is not None  # two different timelines never both end on the common one
                return found
            return min(fork, other, key=lambda checkpoint: (checkpoint.created_at, checkpoint.position))
    raise PointInvalidError(f"{source.name} and {into.name} share no history")


def _inverse(steps: list[replay.Step]) -> list[replay.Step]:
    """The steps that take the state back where ``steps`` started."""
    return [replay.Step(s.id, s.table, s.row_id, s.operation, not s.undo) for s in reversed(steps)]


def merge_plan(*, source: Timeline, into: Timeline, base: Checkpoint, strategy: str) -> Plan:
    """Every row changed since ``base`` on either side, at base, ours (into's head) and theirs (source's head),
    combined under ``strategy``."""
    origin = Point(base.timeline, Cut.of(base), base.name)
    theirs_steps = replay.path_steps(path(origin, Point(source)))
    ours_steps = replay.path_steps(path(origin, Point(into)))
    theirs_keys = {(step.table, step.row_id) for step in theirs_steps}
    ours_keys = {(step.table, step.row_id) for step in ours_steps}
    keys = sorted(theirs_keys | ours_keys, key=lambda key: (key[0], str(key[1])))
    now = Point(live_timeline())
    ours = replay.rows_fold(replay.live_images(keys), replay.path_steps(path(now, Point(into)), rows=keys))
    at_base = replay.rows_fold(ours, _inverse(ours_steps))
    theirs = replay.rows_fold(at_base, theirs_steps)
    rows = [
        row_combine(
            table=key[0], row_id=key[1], base=at_base[key], ours=ours[key], theirs=theirs[key], strategy=strategy
        )
        for key in keys
    ]
    kept = [row for row in rows if row.changed]
    digest = hashlib.sha256(
        digest_text(
            [
                [row.table, str(row.row_id), row.result, [[c.path, c.ours, c.theirs] for c in row.clashes]]
                for row in kept
            ]
        ).encode()
    ).hexdigest()
    both = len(theirs_keys & ours_keys)
    return Plan(
        base=base,
        rows=kept,
        touched=len(keys),
        ours_only=len(ours_keys) - both,
        theirs_only=len(theirs_keys) - both,
        both=both,
        digest=digest,
    )
