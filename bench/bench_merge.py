"""Merging timelines at scale: a merge of 1,000 changed rows in O(changes), whatever the size of the tables.

Each scale starts from empty tables and log (``bench_chronos.populate``). Each round forks a timeline from
now, changes CHANGES beings there (one key of attributes each), changes CHANGES beings on main, half of them
the same beings (another key: merged field by field, no conflict), then times ``timeline_merge`` of the
branch into main: the preview (the fork point, both sides' log entries, three images per row in a few
statements) and the apply (a safety checkpoint, the rows written set-based). Ratios against the smallest
scale say whether a merge grows with the size of the tables.
"""

from __future__ import annotations

import gc
import os
import uuid
from functools import partial

from django.contrib.auth.models import User
from django.db import connection

from bench.bench_chronos import chronos_reset, log_size, populate, scaled, souls_sample
from bench.runner import Result, median, timed
from chronos.merges.services import merge_apply, merge_preview
from chronos.services import timeline_create, timeline_switch

CHANGES = 1000  # rows the branch changes: the rows a merge writes
ROUNDS = int(os.environ.get("BENCH_MERGE_ROUNDS", "3"))  # merges timed per scale


def side_changes(souls: list[uuid.UUID], key: str) -> None:
    """One committed single-row UPDATE of ``attributes[key]`` per soul, each its own transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        for soul in souls:
            cursor.execute(
                "UPDATE base_beings SET attributes = jsonb_set(attributes, %s, to_jsonb(%s::text)) WHERE soul = %s",
                [[key], key, soul],
            )
        cursor.execute("RESET synchronous_commit")


def merge_round(round_number: int, actor: User) -> tuple[float, float, int]:
    """One diverged branch merged into main: (preview ms, apply ms, rows written)."""
    name = f"merge-{round_number}"
    souls = souls_sample(CHANGES + CHANGES // 2)
    timeline_create(name=name, actor=actor)
    timeline_switch(name=name, actor=actor)
    side_changes(souls[:CHANGES], f"branch_{round_number}")
    timeline_switch(name="main", actor=actor)
    side_changes(souls[CHANGES // 2 :], f"main_{round_number}")
    gc.collect()
    merges = []
    preview = timed(lambda: merges.append(merge_preview(source=name, into="main", actor=actor)))
    if merges[0].conflicts.exists():
        raise RuntimeError("the bench's merge has conflicts: the two sides change different keys")
    applied = []
    apply = timed(partial(lambda: applied.append(merge_apply(merge=merges[0], actor=actor))))
    written = sum(applied[0].stats["written"].values())
    if written != CHANGES:
        raise RuntimeError(f"the merge wrote {written} rows, not {CHANGES}")
    return preview * 1000, apply * 1000, written


def run(scales: list[int]) -> list[Result]:
    """A merge of CHANGES changed rows at each scale; ratios are against the first (smallest) scale."""
    actor, _ = User.objects.get_or_create(username="bench-superuser", defaults={"is_superuser": True, "is_staff": True})
    first: dict[str, tuple[int, float]] = {}
    results: list[Result] = []
    for scale in scales:
        print(f"== merge, {scale:,} beings", flush=True)
        chronos_reset()
        populate(scale)
        rounds = [merge_round(n, actor) for n in range(ROUNDS)]
        totals = [preview + apply for preview, apply, _ in rounds]
        detail = "/".join(f"{preview:.0f}+{apply:.0f}" for preview, apply, _ in rounds)
        notes = (
            f"{len(rounds)} merges (preview+apply ms: {detail}); {CHANGES:,} rows changed on the branch, "
            f"{CHANGES:,} on main, {CHANGES // 2:,} of them on both (merged key by key); {log_size()}"
        )
        figures = [
            scaled(
                f"chronos: merge {CHANGES:,} changed rows (median)",
                scale,
                median(totals),
                first,
                limit=2000,
                notes=notes,
            ),
            scaled(
                f"chronos: merge preview, {CHANGES:,} rows (median)",
                scale,
                median([preview for preview, _, _ in rounds]),
                first,
                limit=None,
                notes="the part of the merge above that reads: fork point, both sides' changes, three images per row",
            ),
        ]
        for result in figures:
            print(f"   {result.name}: {result.figure:,.2f} {result.unit}", flush=True)
        results += figures
    chronos_reset()
    return results
