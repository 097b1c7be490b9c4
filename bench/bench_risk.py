"""Risk at scale: ``risk_assess`` of an evolution with a 10,000-edge graph around the target.

The target is reached by 100 beings directly and by 9,900 more links one step further out
(``invokes``), it has a run history of its own (1,000 runs in the last day, some failed) and an
open lesson: every reason ``risk_assess`` weighs has data to read. The blast radius is one
recursive query, bounded in depth and rows, so the figure must not grow with the number of beings.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from functools import partial

from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from beings.models import BaseBeing, Execution
from bench.bench_chronos import chronos_reset, populate, souls_sample
from bench.runner import Result, latencies, median, p95, timed
from chronos.models import Lesson
from chronos.risk.services import Target, risk_assess, risk_assess_text

EDGES = 10_000
DIRECT = 100  # beings linking to the target; each is reached by EDGES / DIRECT - 1 more
RUNS = 1_000  # runs of the target in the last day
MEASURED = 200  # risk_assess calls timed per scale
LIMIT_MS = 20.0


def graph_make(target: uuid.UUID, pool: list[uuid.UUID]) -> int:
    """``EDGES`` links around ``target``: ``DIRECT`` callers, each called by the rest in equal shares."""
    rng = random.Random(14)
    direct = rng.sample(pool, DIRECT)
    pairs = [(caller, target) for caller in direct]
    per = EDGES // DIRECT - 1
    for callee in direct:
        pairs += [(caller, callee) for caller in rng.sample(pool, per) if caller != callee]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO relationships (id, tags, energy_level, source_soul, target_soul, genesis, attributes) "
            "SELECT gen_random_uuid(), '{invokes}', 0, s, t, '{\"type\": \"invokes\"}', '{}' "
            "FROM unnest(%s::uuid[], %s::uuid[]) AS p(s, t)",
            [[source for source, _ in pairs], [target for _, target in pairs]],
        )
        cursor.execute("ANALYZE relationships")
    return len(pairs)


def history_make(being: BaseBeing) -> None:
    """A day of runs of the target (one in ten failed) and an open lesson on it."""
    now = timezone.now()
    Execution.objects.bulk_create(
        Execution(
            being=being,
            hash=being.hash,
            alias=being.name,
            status="failed" if number % 10 == 0 else "succeeded",
            queued_at=now - timedelta(minutes=number),
            finished_at=now - timedelta(minutes=number),
        )
        for number in range(RUNS)
    )
    Lesson.objects.create(situation="it failed on empty input", being_id=being.soul, hash=being.hash)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE executions")


def run(scales: list[int]) -> list[Result]:
    """The risk_assess row at each scale, and the free-text assessment once."""
    actor, _ = User.objects.get_or_create(username="bench-superuser", defaults={"is_superuser": True, "is_staff": True})
    results: list[Result] = []
    first: float | None = None
    for scale in scales:
        print(f"== risk, {scale:,} beings", flush=True)
        chronos_reset()
        populated = timed(partial(populate, scale))
        pool = souls_sample(min(scale, EDGES + DIRECT + 1))
        target = BaseBeing.objects.get(soul=pool.pop())
        edges = graph_make(target.soul, pool)
        history_make(target)
        source = target.genesis["source"] + "\nEXTRA = 1\n"
        aim = Target(being=target, source=source)
        risk = risk_assess(operation="evolve", target=aim, actor=actor)
        values = latencies(partial(risk_assess, operation="evolve", target=aim, actor=actor), runs=MEASURED)
        figure = median(values)
        first = figure if first is None else first
        radius = next(reason.detail for reason in risk.reasons if reason.name == "blast_radius")
        result = Result(
            "risk: risk_assess median with a 10,000-edge graph around the target",
            scale,
            figure,
            "ms",
            first,
            target=f"≤ {LIMIT_MS:.0f} ms",
            passed=figure <= LIMIT_MS,
            notes=f"{edges:,} edges; p95 {p95(values):.1f} ms; {risk.level} {risk.score}; {radius}; "
            f"populated in {populated:.0f} s",
        )
        print(f"   {result.name}: {figure:.2f} ms ({result.notes})", flush=True)
        results.append(result)
    text = "Przeprowadź migrację schematu bazy danych na produkcji, potem refaktoryzacja"
    values = latencies(lambda: risk_assess_text(text), runs=1000)
    results.append(
        Result("risk: risk_assess_text median", 0, median(values), "ms", notes=f"{len(text)} characters, Polish")
    )
    chronos_reset()
    return results
