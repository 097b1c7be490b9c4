"""Beings at scale: bulk import through the service against raw COPY, and the selective containment filter."""

from __future__ import annotations

import gc
import json
import os
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import pgtrigger
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from psycopg.types.json import Jsonb

from beings import kinds
from beings.genotype import genesis_hash
from beings.models import BaseBeing, BeingUserObjectPermission
from beings.selectors import BeingFilters, being_list
from beings.services import IMPORT_COLUMNS, beings_import
from bench.runner import Result, latencies, median, p95, timed
from chronos.capture import truncate_uris
from chronos.models import Change, Transaction
from luxsite.triggers import append_only_uris
from relations.models import Relationship

REPEAT = int(os.environ.get("BENCH_REPEAT", "2"))
RUNS = 200
BUDGET = 60.0  # seconds per latency series: fewer than RUNS runs (at least 20) when a call is slow
GIN_INDEX = "idx_base_beings_attributes"
TEAMS = 1000  # attributes.team is team-<i % TEAMS>: one team is 0.1% of the rows.
FILTERS = BeingFilters(attributes={"team": "team-7"})
TAGS = [f"tag-{n}" for n in range(80)]
TIERS = ("bronze", "silver", "gold", "platinum")
REGIONS = ("eu-west", "eu-north", "us-east", "us-west", "ap-south")
SOURCE = '''def run(value: int) -> int:
    """Scale value by {k} for being {i}."""
    scaled = value * {k} + {i}
    return scaled
'''

Row = tuple[uuid.UUID, list[str], int, Jsonb, Jsonb, Jsonb, Jsonb]


def being_document(i: int) -> dict[str, Any]:
    """The i-th generated being, shaped like a line of a bulk import, already valid and clean."""
    return {
        "soul": str(uuid.uuid4()),
        "genesis": {
            "name": f"scale_{i}",
            "type": kinds.KINDS[i % len(kinds.KINDS)],
            "language": "python",
            "entrypoint": "run",
            "description": f"Scales its input by {i % 97} for team {i % TEAMS}.",
            "source": SOURCE.format(i=i, k=i % 97),
        },
        "tags": [TAGS[i % 40], TAGS[40 + i % 23], TAGS[63 + i % 17]],
        "energy_level": i % 1000,
        "attributes": {
            "team": f"team-{i % TEAMS}",
            "tier": TIERS[i % 4],
            "region": REGIONS[i % 5],
            "replicas": 1 + i % 8,
        },
        "memories": [{"event": "created", "by": "bench"}],
        "self_awareness": {"version": 1, "healthy": True},
    }


def copy_row(document: dict[str, Any]) -> Row:
    """The row the service stores for ``document``: its genesis stamped with hash, version and ancestors."""
    genesis = {**document["genesis"], "version": 1, "ancestors": []}
    genesis["hash"] = genesis_hash(genesis)
    return (
        uuid.UUID(document["soul"]),
        document["tags"],
        document["energy_level"],
        Jsonb(genesis),
        Jsonb(document["attributes"]),
        Jsonb(document["memories"]),
        Jsonb(document["self_awareness"]),
    )


def copy_raw(rows: list[Row]) -> None:
    """The baseline: the same rows with one COPY, as the service writes them, and nothing else."""
    copy_sql = f"COPY base_beings ({', '.join(IMPORT_COLUMNS)}) FROM STDIN"
    with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
        copy.set_types(["uuid", "text[]", "int4", "jsonb", "jsonb", "jsonb", "jsonb"])
        for row in rows:
            copy.write_row(row)


def beings_truncate() -> None:
    """Empty the beings (and relationships), the change log and permissions; checkpoint so runs start alike."""
    models = (BaseBeing, Relationship, Change, Transaction, BeingUserObjectPermission)
    tables = [model._meta.db_table for model in models]
    # The change log is append-only and the watched tables refuse TRUNCATE; the benchmark's own database
    # is the one place they are emptied this way.
    with pgtrigger.ignore(*append_only_uris("chronos.Change"), *truncate_uris()), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)}")
        cursor.execute("CHECKPOINT")


def import_bench(scale: int, owner: User) -> Result:
    """Best of REPEAT runs each; runs alternate service-first and COPY-first, the last one is the service.

    Only the JSON Lines stay in memory between runs: the COPY rows are built just before each COPY run and
    dropped after it, so that neither side pays the other's heap in garbage collection.
    """
    lines = [json.dumps(being_document(i)).encode() for i in range(scale)]
    seconds: dict[str, list[float]] = {"service": [], "copy": []}
    for repetition in range(REPEAT):
        for way in ("service", "copy") if (REPEAT - repetition) % 2 == 0 else ("copy", "service"):
            beings_truncate()
            work: Callable[[], object]
            if way == "service":
                work = partial(beings_import, lines=lines, actor=owner)
            else:
                work = partial(copy_raw, [copy_row(json.loads(line)) for line in lines])
            gc.collect()
            seconds[way].append(timed(work))
            del work
    service, raw = scale / min(seconds["service"]), scale / min(seconds["copy"])
    return Result(
        "import: beings_import vs raw COPY",
        scale,
        service,
        "rows/s",
        raw,
        target="≥ 25%",
        passed=service / raw >= 0.25,
        notes=f"best of {REPEAT}; seconds service {_seconds(seconds['service'])}, COPY {_seconds(seconds['copy'])}",
    )


def _seconds(values: list[float]) -> str:
    return "/".join(f"{value:.2f}" for value in values)


def bitmap_scans(work: Callable[[], object], *, enabled: bool) -> Callable[[], None]:
    """``work`` in a transaction where the planner may (or may not) use bitmap scans, hence the GIN index."""

    def run() -> None:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL enable_bitmapscan = {'on' if enabled else 'off'}")
            work()

    return run


def plan(work: Callable[[], object]) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the last query that ``work`` runs."""
    with CaptureQueriesContext(connection) as queries:
        work()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {queries.captured_queries[-1]['sql']}")
        return "\n".join(row[0] for row in cursor.fetchall())


def filter_bench(scale: int, superuser: User, owner: User) -> list[Result]:
    """Median and p95 of the filter on ~0.1% of the rows, against the same work without the GIN index.

    VACUUM ANALYZE first: besides the statistics, it merges the GIN pending lists the import leaves (up to
    gin_pending_list_limit per index, which every containment query scans until autovacuum merges them).
    """
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    matches = BaseBeing.objects.filter(attributes__contains=FILTERS.attributes).count()
    client = Client(HTTP_HOST="localhost")
    client.force_login(superuser)
    query: dict[str, str | int] = {"attributes": json.dumps(FILTERS.attributes), "limit": 50}
    response = client.get("/api/beings/", query)
    if response.status_code != 200 or len(response.json()["items"]) != min(50, matches):
        raise RuntimeError(f"GET /api/beings/ answered {response.status_code}: {response.content[:200]!r}")
    as_superuser = partial(being_list, user=superuser, filters=FILTERS, limit=50)
    as_owner = partial(being_list, user=owner, filters=FILTERS, limit=50)
    plans = {"superuser": plan(as_superuser), "owner of all rows": plan(as_owner)}
    for who, explained in plans.items():
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) of being_list as {who}, {scale:,} beings:\n{explained}\n", flush=True)
    works: list[tuple[str, Callable[[], object], str]] = [
        ("filter: being_list, superuser", as_superuser, plans["superuser"]),
        ("filter: being_list, owner of all rows", as_owner, plans["owner of all rows"]),
        ("filter: GET /api/beings/, superuser", partial(client.get, "/api/beings/", query), plans["superuser"]),
    ]
    results = []
    for name, work, explained in works:
        uses_gin = "yes" if GIN_INDEX in explained else "no"
        with_gin = latencies(bitmap_scans(work, enabled=True), runs=RUNS, budget=BUDGET)
        without = latencies(bitmap_scans(work, enabled=False), runs=RUNS, budget=BUDGET)
        notes = f"uses GIN: {uses_gin}; {matches} matches; {len(with_gin)} runs, baseline {len(without)} runs"
        is_selector = name == "filter: being_list, superuser"
        results += [
            Result(
                f"{name} (median)",
                scale,
                median(with_gin),
                "ms",
                median(without),
                target="≤ 10 ms" if is_selector else "",
                passed=median(with_gin) <= 10 if is_selector else None,
                notes=notes,
            ),
            Result(f"{name} (p95)", scale, p95(with_gin), "ms", p95(without), notes=notes),
        ]
    return results


def run(scale: int) -> list[Result]:
    """Every beings benchmark at ``scale`` beings, starting from empty tables."""
    superuser, _ = User.objects.get_or_create(username="bench-superuser", defaults={"is_superuser": True})
    owner, _ = User.objects.get_or_create(username="bench-owner")
    results = [import_bench(scale, owner)]
    return results + filter_bench(scale, superuser, owner)
