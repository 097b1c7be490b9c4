"""The facts a risk assessment weighs, each read in one bounded query from LuxOS' own tables.

Every read has a cap: an assessment answers in milliseconds however large the graph, the run
history or the log (the bench row "risk_assess median with a 10,000-edge graph around the target").
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Final

from django.db import connection

from beings.models import BaseBeing, Execution, Promotion
from chronos.models import Checkpoint, Timeline
from chronos.points import Cut, Point, Segment, live_timeline, path

# The blast radius walks links backwards (who reaches the target) this many steps deep ...
REACH_DEPTH: Final = 4
# ... and looks at no more than this many (being, depth) pairs: enough to tell "many" from "few".
REACH_SCAN: Final = 1000
# Counts that only need to tell "none", "a few" and "many".
RECENT_RUNS_CAP: Final = 1000
FAILURES_CAP: Final = 100
LESSONS_CAP: Final = 50
FAILED: Final = (Execution.Status.FAILED, Execution.Status.TIMEOUT, Execution.Status.KILLED)


@dataclass(frozen=True)
class Reach:
    """The beings that reach a set of beings through links (``invokes`` and any other), recursively."""

    beings: int
    depth: int
    capped: bool


REACH_SQL = f"""
WITH RECURSIVE reach(soul, depth) AS (
    SELECT r.source_soul, 1 FROM relationships r WHERE r.target_soul = ANY(%(start)s::uuid[])
  UNION
    SELECT r.source_soul, reach.depth + 1
    FROM reach JOIN relationships r ON r.target_soul = reach.soul
    WHERE reach.depth < {REACH_DEPTH}
), scanned AS (
    SELECT soul, depth FROM reach LIMIT {REACH_SCAN}
)
SELECT count(DISTINCT soul) FILTER (WHERE soul <> ALL(%(start)s::uuid[])), coalesce(max(depth), 0), count(*)
FROM scanned
"""


def reach_count(souls: list[uuid.UUID]) -> Reach:
    """How many beings reach ``souls`` through links, up to ``REACH_DEPTH`` steps: one recursive query.

    The recursion is read lazily up to ``REACH_SCAN`` rows, so a hub with thousands of callers costs
    the same bounded index scan as one with a few (``capped`` then says the count is a lower bound).
    """
    if not souls:
        return Reach(0, 0, False)
    with connection.cursor() as cursor:
        cursor.execute(REACH_SQL, {"start": souls})
        beings, depth, scanned = cursor.fetchone()
    return Reach(beings=int(beings), depth=int(depth), capped=int(scanned) >= REACH_SCAN)


def lineage_of(being: BaseBeing) -> tuple[list[uuid.UUID], list[str]]:
    """The souls and hashes of a being and its ancestors (a mutant's inherited entries carry their being's soul)."""
    genesis = being.genesis if isinstance(being.genesis, dict) else {}
    souls, hashes = [being.soul], [being.hash] if being.hash else []
    for entry in genesis.get("ancestors") or []:
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("hash"), str):
            hashes.append(entry["hash"])
        try:
            soul = uuid.UUID(str(entry["soul"])) if entry.get("soul") else None
        except ValueError:
            soul = None
        if soul is not None and soul not in souls:
            souls.append(soul)
    return souls, list(dict.fromkeys(hashes))


def promotions_of(souls: list[uuid.UUID]) -> list[tuple[str, str, str]]:
    """(environment, alias, hash) of the promotions in force whose being is one of ``souls``."""
    rows = Promotion.objects.active().filter(soul__in=souls).values_list("environment", "alias", "hash")
    return [(environment, alias, hash) for environment, alias, hash in rows]


@dataclass(frozen=True)
class Facts:
    """What a being's history says: runs of the last day, past failures, open lessons, promotions in force."""

    runs: int
    failures: int
    lessons: int
    promotions: list[tuple[str, str, str]]


FACTS_SQL = f"""
SELECT
    (SELECT count(*) FROM (SELECT 1 FROM executions
        WHERE soul = %(soul)s AND queued_at >= now() - interval '1 day' LIMIT {RECENT_RUNS_CAP}) runs),
    (SELECT count(*) FROM (SELECT 1 FROM executions
        WHERE soul = ANY(%(souls)s::uuid[]) AND status = ANY(%(failed)s) LIMIT {FAILURES_CAP}) failures),
    (SELECT count(*) FROM (SELECT 1 FROM chronos_lesson
        WHERE resolved_at IS NULL AND (being_id = ANY(%(souls)s::uuid[]) OR hash = ANY(%(hashes)s))
        LIMIT {LESSONS_CAP}) lessons),
    (SELECT coalesce(json_agg(json_build_array(p.environment, p.alias, p.hash) ORDER BY p.environment, p.alias), '[]')
        FROM soul_promotions p
        WHERE p.soul = %(soul)s AND p.action = 'promote'
          AND NOT EXISTS (SELECT 1 FROM soul_promotions later WHERE later.ends_id = p.id))
"""


def being_facts(being: BaseBeing, souls: list[uuid.UUID], hashes: list[str]) -> Facts:
    """Runs of ``being`` in the last day (up to ``RECENT_RUNS_CAP``); failed, timed-out or killed runs of it and
    its ancestors' beings (up to ``FAILURES_CAP``); open lessons on those beings or hashes (up to
    ``LESSONS_CAP``); its promotions in force: one round trip, each count bounded and answered by an index."""
    with connection.cursor() as cursor:
        cursor.execute(
            FACTS_SQL, {"soul": being.soul, "souls": souls, "hashes": hashes, "failed": [str(s) for s in FAILED]}
        )
        runs, failures, lessons, promotions = cursor.fetchone()
    if isinstance(promotions, str):
        promotions = json.loads(promotions)
    return Facts(
        runs=int(runs),
        failures=int(failures),
        lessons=int(lessons),
        promotions=[(environment, alias, hash) for environment, alias, hash in promotions],
    )


@dataclass(frozen=True)
class Travel:
    """What a restore, switch or merge would rewrite: the rows, and the promoted beings among them."""

    rows: int
    promoted: list[tuple[str, str, str]]


def _segment_where(segment: Segment) -> tuple[str, list[Any]]:
    where = ["NOT c.replay", "c.timeline_id = %s"]
    params: list[Any] = [segment.timeline.id]
    if segment.lo is not None:
        sql, more = segment.lo.after("c", segment.timeline.id)
        where.append(sql)
        params += more
    if segment.hi is not None:
        sql, more = segment.hi.visible("c")
        where.append(sql)
        params += more
    return " AND ".join(where), params


def travel_size(segments: list[Segment]) -> Travel:
    """Rows the path's log entries touch (summed over its segments) and the promotions in force among them.

    Counts only, through the log's index: O(changes on the path), never a rebuild of the rows.
    """
    active = [
        (soul, (environment, alias, hash))
        for soul, environment, alias, hash in Promotion.objects.active().values_list(
            "soul", "environment", "alias", "hash"
        )
    ]
    promoted_souls = list({soul for soul, _ in active})
    rows, touched = 0, set()
    with connection.cursor() as cursor:
        for segment in segments:
            where, params = _segment_where(segment)
            cursor.execute(
                "SELECT count(*), coalesce(array_agg(row_id) FILTER (WHERE t = 'base_beings' "
                "AND row_id = ANY(%s::uuid[])), '{}') "
                f'FROM (SELECT DISTINCT c."table" AS t, c.row_id FROM chronos_change c WHERE {where}) s',
                [promoted_souls, *params],
            )
            count, souls = cursor.fetchone()
            rows += int(count)
            touched.update(souls)
    return Travel(rows=rows, promoted=[entry for soul, entry in active if soul in touched])


def restore_travel(checkpoint: Checkpoint) -> Travel:
    """What restoring ``checkpoint`` would undo on the live timeline."""
    live = live_timeline()
    return travel_size(path(Point(live), Point(live, Cut.of(checkpoint))))


def switch_travel(timeline: Timeline) -> Travel:
    """What switching to ``timeline`` would undo and redo."""
    return travel_size(path(Point(live_timeline()), Point(timeline)))


def merge_travel(timeline: Timeline) -> Travel:
    """What merging ``timeline`` into the live one would bring: the source's own changes since they parted."""
    redo = [segment for segment in path(Point(live_timeline()), Point(timeline)) if not segment.undo]
    return travel_size(redo)
