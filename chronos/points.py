"""Points in history and the way between two of them.

A point is a timeline and a cut on it: a checkpoint's snapshot, a time, or none (the timeline's
head). The state at a point is the state of the timeline's parent at the fork, plus the
timeline's own changes visible at the cut. Going from one point to another undoes changes up
to the timelines' common ancestor and redoes changes down to the target: ``path`` lists those
segments, each a timeline, two cuts and a direction; ``chronos.replay`` turns them into log ids.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from chronos.exceptions import (
    CheckpointAmbiguousError,
    CheckpointNotFoundError,
    PointInvalidError,
    TimelineNotFoundError,
)
from chronos.models import Change, Checkpoint, Timeline, Transaction
from luxsite.moments import moment_utc

UUID_PREFIX = re.compile(r"^[0-9a-f-]{4,36}$")


@dataclass(frozen=True)
class Cut:
    """Where a timeline is cut: a database snapshot (a checkpoint) or a commit time."""

    snapshot: str = ""
    position: int = 0
    at: datetime | None = None

    @classmethod
    def of(cls, checkpoint: Checkpoint) -> Cut:
        return cls(snapshot=checkpoint.snapshot, position=checkpoint.position)

    def visible(self, alias: str) -> tuple[str, list[Any]]:
        """SQL true when the change or transaction ``alias`` (it has an ``xid``) is before the cut."""
        if self.at is None:
            return f"{alias}.xid <= %s AND pg_visible_in_snapshot({alias}.xid::text::xid8, %s::pg_snapshot)", [
                self._highest_xid(),
                self.snapshot,
            ]
        return (
            f"NOT EXISTS (SELECT 1 FROM chronos_transaction late WHERE late.xid = {alias}.xid "
            "AND (late.committed_at IS NULL OR late.committed_at > %s))",
            [self.at],
        )

    def after(self, alias: str, timeline_id: int) -> tuple[str, list[Any]]:
        """SQL true when ``alias`` is after the cut, in a form an index on xid finds: O(changes after it).

        A snapshot does not see an xid at or above its xmax, nor one still running when it was taken
        (its xip list): exactly those, and never a scan from the server-wide xmin, which any long
        transaction anywhere holds back.
        """
        if self.at is None:
            return f"({alias}.xid >= %s OR {alias}.xid = ANY(%s::bigint[]))", [self._highest_xid(), self._running()]
        lowest = Transaction.objects.filter(timeline_id=timeline_id, committed_at__gt=self.at).order_by("xid")
        first = lowest.values_list("xid", flat=True).first()
        if first is None:
            return "false", []
        visible, params = self.visible(alias)
        return f"{alias}.xid >= %s AND NOT ({visible})", [first, *params]

    def _running(self) -> list[int]:
        running = self.snapshot.split(":")[2]
        return [int(xid) for xid in running.split(",") if xid]

    def _highest_xid(self) -> int:
        # Every xid visible in the snapshot is below its xmax.
        return int(self.snapshot.split(":")[1])


@dataclass(frozen=True)
class Point:
    timeline: Timeline
    cut: Cut | None = None  # None: the timeline's head
    label: str = ""

    def __str__(self) -> str:
        return self.label or (self.timeline.name if self.cut is None else f"{self.timeline.name} (cut)")


@dataclass(frozen=True)
class Segment:
    """The changes of ``timeline`` visible at ``hi`` and not at ``lo`` (None: its beginning, its head)."""

    timeline: Timeline
    lo: Cut | None
    hi: Cut | None
    undo: bool


def live_timeline() -> Timeline:
    return Timeline.objects.get(live=True)


def checkpoint_resolve(reference: str, *, timeline: Timeline | None = None, anywhere: bool = False) -> Checkpoint:
    """A checkpoint by id, unique id prefix, or name on ``timeline`` (the live one by default).

    ``anywhere``: a name not found there may be a name on another timeline, when only one has it.
    """
    reference = str(reference).strip()
    if not reference:
        raise CheckpointNotFoundError("name a checkpoint by its id, an id prefix or its name")
    timeline = timeline or live_timeline()
    named = Checkpoint.objects.filter(timeline=timeline, name=reference).first()
    if named is not None:
        return named
    if anywhere:
        elsewhere = list(Checkpoint.objects.filter(name=reference, timeline__deleted_at__isnull=True)[:2])
        if len(elsewhere) == 1:
            return elsewhere[0]
        if len(elsewhere) > 1:
            raise CheckpointAmbiguousError(f"several timelines have a checkpoint named {reference!r}: give its id")
    lowered = reference.lower()
    if UUID_PREFIX.match(lowered):
        try:
            return Checkpoint.objects.get(id=uuid.UUID(lowered))
        except (ValueError, Checkpoint.DoesNotExist):
            pass
        # A prefix of the text form: compare on the text (an index is not needed at these counts).
        found = list(Checkpoint.objects.extra(where=["id::text LIKE %s"], params=[lowered + "%"])[:2])
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise CheckpointAmbiguousError(f"{reference!r} is the prefix of several checkpoints; give more of the id")
    raise CheckpointNotFoundError(
        f"no checkpoint {reference[:100]!r} (an id, an id prefix or a name on {timeline.name})"
    )


def timeline_resolve(name: str) -> Timeline:
    found = Timeline.objects.filter(name=str(name).strip(), deleted_at__isnull=True).first()
    if found is None:
        raise TimelineNotFoundError(f"no timeline named {str(name)[:100]!r}")
    return found


def point_resolve(reference: str) -> Point:
    """A point from its text: ``now``; a checkpoint (id, prefix or name); ``timeline:NAME`` or a timeline name
    (its head); ``@N`` (just after the transaction of log entry N); ``TIMESTAMP`` or ``NAME@TIMESTAMP``
    (ISO 8601, on the live timeline or on NAME)."""
    text = str(reference).strip()
    if not text:
        raise PointInvalidError("name a point: now, a checkpoint, a timeline, @LOG_ID or a timestamp")
    if text == "now":
        return Point(live_timeline(), None, "now")
    if text.startswith("timeline:"):
        return Point(timeline_resolve(text.removeprefix("timeline:")), None, text)
    if text.startswith("checkpoint:"):
        checkpoint = checkpoint_resolve(text.removeprefix("checkpoint:"), anywhere=True)
        return Point(checkpoint.timeline, Cut.of(checkpoint), text)
    if text.startswith("@") and text[1:].isdigit():
        return _position_point(int(text[1:]), text)
    moment = _timestamp(text)
    if moment is not None:
        return _time_point(live_timeline(), moment, text)
    if "@" in text:
        name, _, when = text.rpartition("@")
        moment = _timestamp(when)
        if moment is None:
            raise PointInvalidError(f"{when[:60]!r} is not an ISO 8601 timestamp")
        return _time_point(timeline_resolve(name), moment, text)
    try:
        checkpoint = checkpoint_resolve(text, anywhere=True)
    except CheckpointNotFoundError:
        if Timeline.objects.filter(name=text, deleted_at__isnull=True).exists():
            return Point(timeline_resolve(text), None, text)
        raise PointInvalidError(
            f"{text[:100]!r} is not a point: now, a checkpoint, a timeline, @LOG_ID or an ISO 8601 timestamp"
        ) from None
    return Point(checkpoint.timeline, Cut.of(checkpoint), text)


def _position_point(position: int, label: str) -> Point:
    change = Change.objects.select_related("timeline", "transaction").filter(id=position).first()
    if change is None:
        raise PointInvalidError(f"the log has no entry {position}")
    committed = (
        Transaction.objects.filter(xid=change.xid).values_list("committed_at", flat=True).order_by("committed_at")
    ).first()
    return _time_point(change.timeline, committed or timezone.now(), label)


def _time_point(timeline: Timeline, moment: datetime, label: str) -> Point:
    """A time on a timeline, refused before the log retention kept: that past cannot be rebuilt."""
    if timeline.history_from is not None and moment < timeline.history_from:
        raise PointInvalidError(
            f"{timeline.name}'s history before {timeline.history_from:%Y-%m-%d %H:%M:%S} was collected by "
            "retention: read from a kept checkpoint or a later time"
        )
    return Point(timeline, Cut(at=moment), label)


def _timestamp(text: str) -> datetime | None:
    try:
        moment = parse_datetime(text)
    except ValueError:
        return None
    if moment is None:
        return None
    try:
        return moment_utc(moment)
    except ValueError:
        return None


def _chain(point: Point, timelines: dict[int, Timeline]) -> list[tuple[Timeline, Cut | None]]:
    """The point's timeline and cut, then each ancestor with the cut its child forked from."""
    chain: list[tuple[Timeline, Cut | None]] = [(point.timeline, point.cut)]
    current = point.timeline
    while current.parent_id is not None:
        fork = Checkpoint.objects.get(id=current.fork_id) if current.fork_id else None
        if fork is None:
            raise PointInvalidError(f"timeline {current.name} has a parent but no fork point")
        current = timelines[current.parent_id]
        chain.append((current, Cut.of(fork)))
    return chain


def path(origin: Point, target: Point) -> list[Segment]:
    """The segments that take the state at ``origin`` to the state at ``target``, in the order to apply them."""
    timelines = {timeline.id: timeline for timeline in Timeline.objects.all()}
    down = _chain(origin, timelines)
    up = _chain(target, timelines)
    common = next(timeline for timeline, _ in down if any(timeline.id == other.id for other, _ in up))
    segments: list[Segment] = []
    for timeline, cut in down:
        if timeline.id == common.id:
            break
        segments.append(Segment(timeline, None, cut, undo=True))
    origin_cut = next(cut for timeline, cut in down if timeline.id == common.id)
    target_cut = next(cut for timeline, cut in up if timeline.id == common.id)
    if origin_cut != target_cut:
        if origin_cut is None or target_cut is not None:
            segments.append(Segment(common, target_cut, origin_cut, undo=True))
        if target_cut is None or origin_cut is not None:
            segments.append(Segment(common, origin_cut, target_cut, undo=False))
    redo: list[Segment] = []
    for timeline, cut in up:
        if timeline.id == common.id:
            break
        redo.append(Segment(timeline, None, cut, undo=False))
    return segments + redo[::-1]
