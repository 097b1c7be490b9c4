"""Chronos at scale: checkpoints in O(1); restore, switch and diff in O(changes); the log's bytes per run;
what capture costs a bulk import.

Each scale starts from empty tables and an empty log, populated with one COPY (itself captured: the log
then holds one INSERT image per being, which checkpoints must not feel). Ratios against the smallest
scale say whether a figure grows with the size of the tables.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import BinaryIO

import pgtrigger
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction

from beings import kinds
from beings.executions.selectors import SUCCEEDED
from beings.executions.services import run_record
from beings.models import BaseBeing, BeingUserObjectPermission, Execution
from beings.services import IMPORT_COLUMNS, beings_import
from bench.bench_beings import being_document, copy_row
from bench.runner import Result, latencies, median, timed
from chronos.apps import main_timeline_ensure
from chronos.capture import truncate_uris
from chronos.models import Change, Checkpoint, Dream, Merge, MergeConflict, Timeline, Transaction
from chronos.points import Cut, Point, live_timeline
from chronos.services import (
    checkpoint_create,
    checkpoint_export,
    checkpoint_import,
    checkpoint_restore,
    chronos_diff,
    timeline_create,
    timeline_switch,
)
from luxsite.triggers import append_only_uris
from relations.models import Relationship

CHECKPOINTS = 50  # checkpoint_create calls timed per scale
CHANGES = 1000  # single-row updates on each side of a restore, a switch, a diff
TRAVELS = int(os.environ.get("BENCH_CHRONOS_TRAVELS", "5"))  # restores and switches timed per scale
DIFFS = 3  # chronos_diff calls per restore's checkpoint
RUNS = 40  # run_record calls whose log bytes are measured
IMPORT_LIMIT = 100_000  # above this many beings, the capture-on/off import runs once each way
REPEAT = int(os.environ.get("BENCH_REPEAT", "2"))
COPY_OUT = "COPY (SELECT to_jsonb(t) FROM base_beings t) TO STDOUT"


def chronos_reset() -> None:
    """Empty the beings (but the core ones), relationships, rights and every chronos table; ``main`` alone, live."""
    # The merges and dreams reference checkpoints and timelines: emptied with them.
    chronos_models = (Change, Transaction, MergeConflict, Merge, Dream, Checkpoint, Timeline)
    models = (BaseBeing, Relationship, BeingUserObjectPermission, *chronos_models)
    tables = ", ".join(model._meta.db_table for model in models)
    # The log is append-only and the watched tables refuse TRUNCATE: the bench's own database is the one
    # place where they are emptied this way.
    with pgtrigger.ignore(*append_only_uris("chronos.Change"), *truncate_uris()), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables}")
        cursor.execute("CHECKPOINT")
    main_timeline_ensure()
    kinds.core_beings_ensure(BaseBeing)  # every state holds them: an archive without them is refused


def populate(scale: int) -> None:
    """``scale`` beings with one COPY, rows made as they are written (never a list of them), then ANALYZE."""
    copy_sql = f"COPY base_beings ({', '.join(IMPORT_COLUMNS)}) FROM STDIN"
    with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
        copy.set_types(["uuid", "text[]", "int4", "jsonb", "jsonb", "jsonb", "jsonb"])
        for i in range(scale):
            copy.write_row(copy_row(being_document(i)))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def log_size() -> str:
    """The change log now: its rows and its bytes on disk."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), pg_total_relation_size('chronos_change') FROM chronos_change")
        rows, size = cursor.fetchone()
    return f"log {rows:,} rows, {size / 2**20:,.0f} MB"


def souls_sample(count: int) -> list[uuid.UUID]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT soul FROM base_beings ORDER BY random() LIMIT %s", [count])
        return [row[0] for row in cursor.fetchall()]


def changes_make(souls: list[uuid.UUID], mark: str) -> None:
    """One committed single-row UPDATE per soul, each its own transaction (as users would make them).

    Commits do not wait for the disk: what is measured is the work after them, not these fsyncs.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        for soul in souls:
            cursor.execute(
                "UPDATE base_beings SET energy_level = energy_level + 1, "
                "attributes = jsonb_set(attributes, '{bench}', to_jsonb(%s::text)) WHERE soul = %s",
                [mark, soul],
            )
        cursor.execute("RESET synchronous_commit")


def scaled(
    name: str, scale: int, figure: float, first: dict[str, tuple[int, float]], *, limit: float | None, notes: str
) -> Result:
    """A time in ms whose baseline is the same figure at the smallest scale, recorded there; it passes when it
    is at most ``limit`` ms (if any) and at most twice that baseline."""
    smallest, baseline = first.setdefault(name, (scale, figure))
    return Result(
        name,
        scale,
        figure,
        "ms",
        baseline,
        target=("" if limit is None else f"≤ {limit:,.0f} ms; ") + "≤ 200%",
        passed=figure / baseline <= 2 and (limit is None or figure <= limit),
        notes=f"{notes}; baseline: at {smallest:,}",
    )


def checkpoint_bench(scale: int, actor: User, first: dict[str, tuple[int, float]]) -> Result:
    """Median of CHECKPOINTS checkpoint_create calls on tables of ``scale`` beings and a log as large."""
    names = (f"bench-{n}" for n in itertools.count())
    size = log_size()
    times = latencies(lambda: checkpoint_create(name=next(names), actor=actor), runs=CHECKPOINTS)
    name = "chronos: checkpoint_create (median)"
    return scaled(name, scale, median(times), first, limit=20, notes=f"{len(times)} runs; {size}")


def restore_bench(scale: int, actor: User, first: dict[str, tuple[int, float]]) -> list[Result]:
    """TRAVELS times: a checkpoint, CHANGES single-row updates, chronos_diff from it to now, then the restore."""
    restores: list[float] = []
    diffs: list[float] = []
    for travel in range(TRAVELS):
        checkpoint = checkpoint_create(name=f"restore-{travel}", actor=actor)
        changes_make(souls_sample(CHANGES), f"restore-{travel}")
        live = live_timeline()
        origin, now = Point(live, Cut.of(checkpoint), checkpoint.name), Point(live, None, "now")
        for _ in range(DIFFS):
            diffs.append(timed(partial(chronos_diff, origin, now)) * 1000)
        total = chronos_diff(origin, now, limit=1).total
        if total != CHANGES:
            raise RuntimeError(f"chronos_diff found {total} rows changed, not {CHANGES}")
        gc.collect()
        report = None

        def restore(checkpoint: Checkpoint = checkpoint) -> None:
            nonlocal report
            report = checkpoint_restore(checkpoint=checkpoint, actor=actor)

        restores.append(timed(restore) * 1000)
        if report is None or report.undone != CHANGES:
            raise RuntimeError(f"the restore undid {report and report.undone} log entries, not {CHANGES}")
    size = log_size()
    name = f"chronos: restore {CHANGES:,} changed rows (median)"
    notes = f"{len(restores)} restores: {_ms(restores)}; {size}"
    restored = scaled(name, scale, median(restores), first, limit=1000, notes=notes)
    name, notes = f"chronos: diff of {CHANGES:,} changes (median)", f"{len(diffs)} diffs, pages of 50; {size}"
    return [restored, scaled(name, scale, median(diffs), first, limit=None, notes=notes)]


def switch_bench(scale: int, actor: User, first: dict[str, tuple[int, float]]) -> Result:
    """A timeline forked from a checkpoint, CHANGES updates on main after it and CHANGES others on the branch;
    then TRAVELS switches back and forth, each undoing one side's changes and redoing the other's."""
    checkpoint = checkpoint_create(name="fork-point", actor=actor)
    timeline_create(name="bench-branch", from_checkpoint=checkpoint, actor=actor)
    souls = souls_sample(2 * CHANGES)  # the two sides change other rows, but for scales under 2 * CHANGES
    changes_make(souls[:CHANGES], "main")
    timeline_switch(name="bench-branch", actor=actor)
    changes_make(souls[-CHANGES:], "branch")
    switches: list[float] = []
    for travel in range(TRAVELS):
        target = "main" if travel % 2 == 0 else "bench-branch"
        gc.collect()
        report = None

        def switch(target: str = target) -> None:
            nonlocal report
            report = timeline_switch(name=target, actor=actor)

        switches.append(timed(switch) * 1000)
        if report is None or (report.undone, report.redone) != (CHANGES, CHANGES):
            raise RuntimeError(f"the switch undid/redid {report and (report.undone, report.redone)}, not {CHANGES}")
    if live_timeline().name != "main":
        timeline_switch(name="main", actor=actor)
    name = f"chronos: switch, {CHANGES:,} changes each side (median)"
    notes = f"{len(switches)} switches: {_ms(switches)}; {log_size()}"
    return scaled(name, scale, median(switches), first, limit=2000, notes=notes)


def memories_full(soul: uuid.UUID) -> None:
    """The being holds LUXOS_MEMORY_LIMIT run events, as after that many runs."""
    at = datetime(2026, 1, 1, tzinfo=UTC).isoformat()
    event = {"event": "run", "at": at, "status": SUCCEEDED, "version": 1}
    events = [
        {**event, "execution": str(uuid.uuid4()), "duration_ms": 12.5 + n % 50}
        for n in range(settings.LUXOS_MEMORY_LIMIT)
    ]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE base_beings SET memories = %s::jsonb WHERE soul = %s", [json.dumps(events), soul])


def log_bytes_bench(scale: int, actor: User) -> Result:
    """Bytes that one finished run adds to the log (its chronos_change rows and its chronos_transaction row),
    for a being at its memory bound: run_record, the write the worker makes when a run ends, RUNS times."""
    soul = souls_sample(1)[0]
    memories_full(soul)
    per_run: list[float] = []
    for _ in range(RUNS):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (SELECT coalesce(max(id), 0) FROM chronos_change), "
                "(SELECT coalesce(max(id), 0) FROM chronos_transaction)"
            )
            last_change, last_transaction = cursor.fetchone()
        finished = {"status": SUCCEEDED, "finished_at": datetime.now(UTC), "duration_ms": 14.25}
        run_record(Execution(being_id=soul, actor_id=actor.pk, actor_name=actor.username, **finished))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (SELECT coalesce(sum(pg_column_size(c.*)), 0) FROM chronos_change c WHERE c.id > %s) "
                "+ (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM chronos_transaction t WHERE t.id > %s)",
                [last_change, last_transaction],
            )
            per_run.append(float(cursor.fetchone()[0]))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT jsonb_array_length(memories), pg_column_size(b.*) FROM base_beings b WHERE soul = %s", [soul]
            )
            memories, row_bytes = cursor.fetchone()
    if memories != settings.LUXOS_MEMORY_LIMIT:
        raise RuntimeError(f"the being holds {memories} memories, not {settings.LUXOS_MEMORY_LIMIT}")
    figure = median(per_run)
    return Result(
        f"chronos: log bytes per run, {memories:,} memories (median)",
        scale,
        figure,
        "bytes",
        float(row_bytes),
        target="≤ 2,048 bytes",
        passed=figure <= 2048,
        notes=f"{RUNS} runs of run_record; baseline: the being's row ({row_bytes:,} bytes on disk)",
    )


def import_bench(scale: int, actor: User) -> Result:
    """beings_import of ``scale`` beings with capture on, against capture off (the trigger then records one gap
    row per transaction). The lines are read from a file, as the command does: the bench's memory stays flat.
    Best of REPEAT each (one each above IMPORT_LIMIT); runs alternate which goes first."""
    repeat = REPEAT if scale <= IMPORT_LIMIT else 1
    seconds: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryFile() as lines:
        lines.writelines(json.dumps(being_document(i)).encode() + b"\n" for i in range(scale))
        for repetition in range(repeat):
            for capture in ("on", "off") if repetition % 2 == 0 else ("off", "on"):
                chronos_reset()
                lines.seek(0)
                gc.collect()
                before = Change.objects.count()
                with connection.cursor() as cursor:
                    cursor.execute("SET luxos.chronos_capture = %s", [capture])
                try:
                    seconds[capture].append(timed(partial(beings_import, lines=lines, actor=actor)))
                finally:
                    with connection.cursor() as cursor:
                        cursor.execute("RESET luxos.chronos_capture")
                logged = Change.objects.count() - before
                if logged != (scale if capture == "on" else 0):
                    raise RuntimeError(f"an import of {scale} beings with capture {capture} logged {logged} changes")
    on, off = min(seconds["on"]), min(seconds["off"])
    return Result(
        "chronos: beings_import, capture on vs off",
        scale,
        on,
        "s",
        off,
        target="≤ 150%",
        passed=on / off <= 1.5,
        notes=f"best of {repeat}; seconds on {_s(seconds['on'])}, off {_s(seconds['off'])}",
    )


def copy_out(sink: BinaryIO) -> None:
    """The export's baseline: every being as JSON through COPY … TO, into the null device."""
    with connection.cursor() as cursor, cursor.cursor.copy(COPY_OUT) as copy:
        sink.writelines(copy)


def copy_in(rows: BinaryIO) -> None:
    """The import's baseline: the same beings through COPY … FROM into a table of their shape (no index)."""
    rows.seek(0)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bench_copy_in (LIKE base_beings) ON COMMIT DROP")
        with cursor.cursor.copy("COPY bench_copy_in FROM STDIN") as copy:
            while block := rows.read(2**20):
                copy.write(block)


def transfer_bench(scale: int, actor: User) -> list[Result]:
    """checkpoint_export of a checkpoint CHANGES changes ago (those rows rebuilt from the log), compressed and
    not, against COPY … TO of the same beings; checkpoint_import of its archive against COPY … FROM.

    Best of REPEAT each, alternating which goes first; rows/s is beings per second."""
    checkpoint = checkpoint_create(name="export", actor=actor)
    changes_make(souls_sample(CHANGES), "export")
    beings = BaseBeing.objects.count()
    seconds: dict[str, list[float]] = {"copy out": [], "export": [], "export gzip": [], "copy in": [], "import": []}
    with tempfile.TemporaryFile() as archive, tempfile.TemporaryFile() as rows, open(os.devnull, "wb") as sink:
        checkpoint_export(checkpoint=checkpoint, target=archive, actor=actor, compress=False)
        with connection.cursor() as cursor, cursor.cursor.copy("COPY base_beings TO STDOUT") as copy:
            rows.writelines(copy)
        export = partial(checkpoint_export, checkpoint=checkpoint, target=sink, actor=actor)
        works: dict[str, Callable[[], object]] = {
            "copy out": partial(copy_out, sink),
            "export": partial(export, compress=False),
            "export gzip": partial(export, compress=True),
            "copy in": partial(copy_in, rows),
        }
        names = (f"imported-{n}" for n in itertools.count())
        for repetition in range(REPEAT):
            for way in works if repetition % 2 == 0 else reversed(works):
                gc.collect()
                seconds[way].append(timed(works[way]))
            archive.seek(0)
            seconds["import"].append(
                timed(partial(checkpoint_import, source=archive, timeline=next(names), actor=actor))
            )
    best = {way: beings / min(values) for way, values in seconds.items()}
    notes = f"best of {REPEAT}; {CHANGES:,} rows rebuilt from the log; seconds %s, COPY %s"
    results = [
        Result(
            f"chronos: checkpoint_export{' (gzip)' if way == 'export gzip' else ''} vs COPY … TO",
            scale,
            best[way],
            "rows/s",
            best["copy out"],
            target="≥ 50%",
            passed=best[way] / best["copy out"] >= 0.5,
            notes=notes % (_s(seconds[way]), _s(seconds["copy out"])),
        )
        for way in ("export", "export gzip")
    ]
    return [
        *results,
        Result(
            "chronos: checkpoint_import vs COPY … FROM",
            scale,
            best["import"],
            "rows/s",
            best["copy in"],
            notes=notes % (_s(seconds["import"]), _s(seconds["copy in"])) + "; archive not compressed",
        ),
    ]


def _ms(values: list[float]) -> str:
    return "/".join(f"{value:.0f}" for value in values) + " ms"


def _s(values: list[float]) -> str:
    return "/".join(f"{value:.2f}" for value in values)


def run(scales: list[int]) -> list[Result]:
    """Every chronos benchmark at each scale; ratios are against the first (smallest) scale."""
    actor, _ = User.objects.get_or_create(username="bench-superuser", defaults={"is_superuser": True, "is_staff": True})
    first: dict[str, tuple[int, float]] = {}
    results: list[Result] = []
    for scale in scales:
        print(f"== chronos, {scale:,} beings", flush=True)
        results.append(import_bench(scale, actor))
        chronos_reset()
        populated = timed(partial(populate, scale))
        print(f"   populated with COPY in {populated:.1f} s; {log_size()}", flush=True)
        figures = [
            checkpoint_bench(scale, actor, first),
            *restore_bench(scale, actor, first),
            switch_bench(scale, actor, first),
            log_bytes_bench(scale, actor),
            *transfer_bench(scale, actor),
        ]
        for result in figures:
            print(f"   {result.name}: {result.figure:,.2f} {result.unit}", flush=True)
        results += figures
    chronos_reset()
    return results
