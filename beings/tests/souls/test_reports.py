"""Creation reports under LUXOS_SOUL_LOG_DIR: written after every creation, evolution and mutation, and rebuilt."""

from __future__ import annotations

import hashlib
import json
import platform
import re
import socket
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import django
import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from beings import genotype, services
from beings.evolution import being_evolve
from beings.exceptions import NothingChangedError
from beings.kinds import CORE_SOULS
from beings.models import BaseBeing, SoulReportFailure
from beings.selectors import being_versions
from beings.souls import files as soul_files
from beings.souls import reports as soul_reports
from chronos.context import change_context

SOURCE = 'def run(x: int = 2) -> int:\n    """Double x, then ask the adder."""\n    return execution("adder", x * 2)\n'
EVOLVED = SOURCE + "LIMIT = 10\n"
COSMETIC = EVOLVED + "# the limit is advisory\n"
MUTATED = COSMETIC.replace("x * 2", "x * 4")
REPORT_NAME = re.compile(r"[0-9a-f]{16}_\d{8}T\d{6}\.\d{6}Z(-\d+)?\.json")


@pytest.fixture(autouse=True)
def souls(settings: Any, tmp_path: Path) -> Path:
    """Every test writes its soul files into a directory of its own."""
    settings.LUXOS_SOUL_LOG_DIR = tmp_path / "souls"
    return settings.LUXOS_SOUL_LOG_DIR


def report_files(directory: Path) -> dict[str, dict[str, Any]]:
    """The reports in a directory by file name (not the index nor the environment files)."""
    if not directory.exists():
        return {}
    return {
        path.name: json.loads(path.read_text())
        for path in sorted(directory.iterdir())
        if REPORT_NAME.fullmatch(path.name)
    }


def index_of(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "hash_index.json").read_text())


def stamp(created_at: str) -> str:
    """A report's timestamp computed independently of the code under test."""
    return datetime.fromisoformat(created_at).astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def independent_hash(genotype_copy: dict[str, Any]) -> str:
    """The soul hash by the formula of the issue, written out again here."""
    text = json.dumps(genotype_copy, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def own_versions(being: BaseBeing) -> list[tuple[str, str]]:
    """(hash, created_at) of every version of a being, oldest first, read from its genesis."""
    genesis = being.genesis
    return [(entry["hash"], entry["created_at"]) for entry in genesis["ancestors"]] + [
        (being.hash, genesis["origin"]["at"])
    ]


def create(actor: User, source: str = SOURCE, name: str = "doubler") -> BaseBeing:
    return services.being_create(data={"genesis": {"name": name, "type": "function", "source": source}}, actor=actor)


@pytest.fixture
def lineage(alice: User, django_capture_on_commit_callbacks: Any) -> dict[str, BaseBeing]:
    """A being created, evolved, changed cosmetically and mutated by alice, every report written on commit."""
    with django_capture_on_commit_callbacks(execute=True):
        being = create(alice)
        first = BaseBeing.objects.get(soul=being.soul)
        being_evolve(being=being, source=EVOLVED, reason="a limit", actor=alice)
        being_evolve(being=being, source=COSMETIC, reason="a comment", actor=alice)
        mutant = being_evolve(being=being, source=MUTATED, reason="quadruple", actor=alice).being
    being.refresh_from_db()
    return {"first": first, "being": being, "mutant": mutant}


# Production asks for evidence before a promotion; these tests promote to set the scene, the gate is tested on its own.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("promotion_evidence_waived")]


# Live reports


def test_creation_writes_a_report_of_the_version_its_genotype_analysis_and_context(
    alice: User, souls: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """A creation writes {hash16}_{its UTC creation time}.json with every section the issue names."""
    with django_capture_on_commit_callbacks(execute=True), change_context(door="command", reason="seeding"):
        being = create(alice)

    created_at = being.genesis["origin"]["at"]
    files = report_files(souls)
    name = f"{being.hash[:16]}_{stamp(created_at)}.json"
    assert list(files) == [name]
    report = files[name]
    assert report["soul_info"] == {
        "hash": being.hash,
        "alias": "doubler",
        "soul": str(being.soul),
        "version": 1,
        "parent_hash": None,
        "created_at": created_at,
    }
    assert report["genotype"] == {
        "type": "function",
        "language": "python",
        "entrypoint": "run",
        "source": SOURCE,
        "workload": "cpu",
    }
    assert independent_hash(report["genotype"]) == genotype.soul_hash(report["genotype"]) == being.hash
    analysis = report["analysis"]
    assert [(f["signature"], f["docstring"]) for f in analysis["functions"]] == [
        ("run(x: int=2) -> int", "Double x, then ask the adder.")
    ]
    assert analysis["calls"] == [{"function": "execution", "target": "adder", "line": 3}]
    assert (analysis["imports"], analysis["lines"], analysis["complexity"]) == ([], 3, 1)
    assert report["context"] == {"actor": "alice", "door": "command", "reason": "seeding", "event": "creation"}
    assert report["system_info"] == {
        "luxos_version": "0.1.0",
        "python": platform.python_version(),
        "django": django.get_version(),
        "host": socket.gethostname(),
    }


def test_creation_writes_a_markdown_summary_beside_the_report(
    alice: User, souls: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """The .md beside the report has alias, version, hash, soul, context, function table and source; both readable."""
    with django_capture_on_commit_callbacks(execute=True):
        being = create(alice)

    (name,) = report_files(souls)
    summary = (souls / name).with_suffix(".md").read_text()
    assert summary.startswith("# doubler v1\n")
    assert f"- hash: `{being.hash}`" in summary
    assert f"- soul: `{being.soul}`" in summary
    assert "- parent: (none)" in summary
    assert "- event: creation through shell by alice" in summary
    assert "| function | `run` | `run(x: int=2) -> int` | 1 | Double x, then ask the adder. |" in summary
    assert "- line 3: `execution('adder')`" in summary
    assert "3 lines, cyclomatic complexity 1." in summary
    assert f"```python\n{SOURCE}```\n" in summary
    assert {(souls / name).stat().st_mode & 0o777, (souls / name).with_suffix(".md").stat().st_mode & 0o777} == {0o644}


def test_markdown_fences_a_source_that_holds_backticks(
    alice: User, souls: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """A source with ``` inside gets a longer fence, so the summary shows it whole."""
    source = 'def run():\n    return "```"\n'
    with django_capture_on_commit_callbacks(execute=True):
        create(alice, source=source)

    (name,) = report_files(souls)
    summary = (souls / name).with_suffix(".md").read_text()
    assert f"````python\n{source}````\n" in summary


def test_evolutions_write_reports_naming_the_version_they_replace(lineage: dict[str, BaseBeing], souls: Path) -> None:
    """An evolution and a cosmetic change each report their own version, event, reason and the previous hash."""
    being = lineage["being"]
    versions = own_versions(being)
    (v1, _), (v2, _), (v3, _) = versions
    by_hash = {report["soul_info"]["hash"]: report for report in report_files(souls).values()}

    for hash, version, parent, event, reason in (
        (v2, 2, v1, "evolution", "a limit"),
        (v3, 3, v2, "cosmetic", "a comment"),
    ):
        report = by_hash[hash]
        assert (report["soul_info"]["version"], report["soul_info"]["parent_hash"]) == (version, parent)
        assert report["soul_info"]["soul"] == str(being.soul)
        assert report["context"] == {"actor": "alice", "door": "shell", "reason": reason, "event": event}
        assert independent_hash(report["genotype"]) == hash
        assert report["soul_info"]["created_at"] == versions[version - 1][1]
    assert by_hash[v2]["genotype"]["source"] == EVOLVED
    assert by_hash[v3]["genotype"]["source"] == COSMETIC


def test_a_mutation_writes_the_mutants_report_naming_its_parent(lineage: dict[str, BaseBeing], souls: Path) -> None:
    """The mutant's report is its v1, under its own soul, with the parent's hash and the mutation event."""
    being, mutant = lineage["being"], lineage["mutant"]
    files = report_files(souls)
    name = f"{mutant.hash[:16]}_{stamp(mutant.genesis['origin']['at'])}.json"

    report = files[name]
    assert report["soul_info"] == {
        "hash": mutant.hash,
        "alias": "doubler",
        "soul": str(mutant.soul),
        "version": 1,
        "parent_hash": being.hash,
        "created_at": mutant.genesis["origin"]["at"],
    }
    assert report["context"] == {"actor": "alice", "door": "shell", "reason": "quadruple", "event": "mutation"}
    assert report["genotype"]["source"] == MUTATED
    assert independent_hash(report["genotype"]) == mutant.hash
    assert len(files) == 4  # v1, v2, v3 of the being and the mutant: nothing for the lineage the mutant inherits


def test_hash_index_lists_every_hash_once_and_each_alias_oldest_first(
    alice: User, lineage: dict[str, BaseBeing], souls: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """hash_index.json maps every hash to its version and report, and each alias to its hashes without repeats.

    Creating v1's genotype again makes a second being holding that hash (the first evolved past it):
    it gets its report, but the hash stays listed once, with its oldest version.
    """
    being, mutant = lineage["being"], lineage["mutant"]
    versions = own_versions(being)
    hashes = [hash for hash, _ in versions] + [mutant.hash]
    with django_capture_on_commit_callbacks(execute=True):
        twin, created = services.being_create_or_get(
            data={"genesis": {"name": "doubler", "type": "function", "source": SOURCE}}, actor=alice
        )
        again, created_again = services.being_create_or_get(
            data={"genesis": {"name": "doubler", "type": "function", "source": SOURCE}}, actor=alice
        )
        other = create(alice, source="def run():\n    return 0\n", name="zero")
    soul_files.report_write(being=mutant, event="mutation", parent_hash=being.hash, context={"door": "shell"})

    assert (twin.hash, created, again.soul, created_again) == (hashes[0], True, twin.soul, False)
    index = index_of(souls)
    assert index["aliases"] == {"doubler": hashes, "zero": [other.hash]}
    assert set(index["souls"]) == {*hashes, other.hash}
    for version, (hash, created_at) in enumerate(versions, start=1):
        assert index["souls"][hash] == {
            "alias": "doubler",
            "soul": str(being.soul),
            "version": version,
            "created_at": created_at,
            "report": f"{hash[:16]}_{stamp(created_at)}.json",
        }
    assert index["souls"][mutant.hash]["soul"] == str(mutant.soul)
    assert all((souls / entry["report"]).exists() for entry in index["souls"].values())
    souls_reported = sorted(report["soul_info"]["soul"] for report in report_files(souls).values())
    assert souls_reported == sorted([str(being.soul)] * 3 + [str(mutant.soul), str(twin.soul), str(other.soul)])


def test_a_creation_through_the_api_reports_the_api_door(
    api: Client, souls: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """POST /api/beings/ writes the report with the api door and the requesting user."""
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/beings/",
            json.dumps({"genesis": {"name": "doubler", "type": "function", "source": SOURCE}}),
            content_type="application/json",
        )

    assert response.status_code == 201
    (report,) = report_files(souls).values()
    assert report["soul_info"]["hash"] == response.json()["genesis"]["hash"]
    assert report["context"] == {"actor": "alice", "door": "api", "reason": "", "event": "creation"}


def test_refused_writes_write_no_report(
    alice: User, souls: Path, unchanged: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """A refused creation or evolution leaves the database as it was and writes no file."""
    with django_capture_on_commit_callbacks(execute=True):
        being = create(alice)
    before = sorted(path.name for path in souls.iterdir())

    with django_capture_on_commit_callbacks(execute=True) as callbacks, unchanged():
        with pytest.raises(NothingChangedError):
            being_evolve(being=being, source=SOURCE, actor=alice)
        with pytest.raises(services.GenesisInvalidError):
            services.being_create(data={"genesis": {"name": "x", "type": "spaceship"}}, actor=alice)

    # Only the refused evolution's lesson waits for a commit (lessons are operational records); no report does.
    assert [getattr(callback, "func", callback).__name__ for callback in callbacks] == ["failure_record"]
    assert sorted(path.name for path in souls.iterdir()) == before


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_creation_writes_nothing_and_a_committed_one_does(alice: User, souls: Path) -> None:
    """Reports follow real commits: a transaction rolled back after the creation leaves no file behind."""
    with pytest.raises(RuntimeError), transaction.atomic():
        rolled_back = create(alice)
        raise RuntimeError("the caller changed its mind")

    assert not BaseBeing.objects.filter(soul=rolled_back.soul).exists()
    assert report_files(souls) == {}

    being = create(alice)

    (report,) = report_files(souls).values()
    assert report["soul_info"]["soul"] == str(being.soul)
    assert index_of(souls)["aliases"] == {"doubler": [being.hash]}


def test_an_unwritable_directory_fails_no_write_and_records_each_failure(
    alice: User, settings: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """When the directory cannot be made, creation and evolution still happen, and each failure is kept."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings.LUXOS_SOUL_LOG_DIR = blocker / "souls"

    with django_capture_on_commit_callbacks(execute=True):
        being = create(alice)
        being_evolve(being=being, source=EVOLVED, actor=alice)

    stored = BaseBeing.objects.get(soul=being.soul)
    assert stored.version == 2
    failures = list(SoulReportFailure.objects.order_by("id").values_list("operation", "hash", "path"))
    assert failures == [
        ("creation", stored.genesis["ancestors"][0]["hash"], str(blocker / "souls")),
        ("evolution", stored.hash, str(blocker / "souls")),
    ]
    errors = SoulReportFailure.objects.values_list("error", flat=True)
    assert all(error.startswith("NotADirectoryError") for error in errors)
    assert blocker.read_text() == "not a directory"


# Names, collisions, concurrency


@pytest.mark.parametrize(
    ("created_at", "expected"),
    [
        ("2026-11-22T05:12:34.123456+00:00", "20261122T051234.123456Z"),
        ("2026-11-22T07:12:34.123456+02:00", "20261122T051234.123456Z"),
        ("2026-11-22T05:12:34+00:00", "20261122T051234.000000Z"),
        ("2026-11-22T05:12:34.5", "20261122T051234.500000Z"),
        ("2026-11-22T05:12:34.000001Z", "20261122T051234.000001Z"),
    ],
)
def test_report_stamp_is_the_utc_time_with_microseconds(created_at: str, expected: str) -> None:
    """A report's name carries its version's creation time in UTC; a time without a zone is read as UTC."""
    assert soul_reports.report_stamp(created_at) == expected


@pytest.mark.parametrize("created_at", [None, "", "yesterday"])
def test_report_stamp_refuses_a_missing_or_unreadable_time(created_at: str | None) -> None:
    """A version without a readable creation time has no report name."""
    with pytest.raises(ValueError):
        soul_reports.report_stamp(created_at)


def unsaved_being(*, name: str, source: str, at: str, soul: uuid.UUID | None = None) -> BaseBeing:
    """A being as a creation leaves it, never stored: report_write reads nothing else."""
    genesis: dict[str, Any] = {
        "name": name,
        "type": "function",
        "source": source,
        "version": 1,
        "origin": {"kind": "genesis", "at": at, "actor": "alice"},
    }
    genesis["hash"] = genotype.genesis_hash(genesis)
    return BaseBeing(soul=soul or uuid.uuid4(), genesis=genesis)


def test_two_versions_named_alike_never_overwrite_each_other(souls: Path) -> None:
    """Two beings of one genotype created in the same microsecond get -2; rewriting one keeps its own name."""
    at = "2026-11-22T05:12:34.123456+00:00"
    first = unsaved_being(name="twin", source=SOURCE, at=at)
    second = unsaved_being(name="twin", source=SOURCE, at=at)
    context = {"door": "shell"}
    stem = f"{first.hash[:16]}_20261122T051234.123456Z"

    paths = [
        soul_files.report_write(being=being, event="creation", parent_hash=None, context=context)
        for being in (first, second, first, second)
    ]

    assert [path.name for path in paths] == [f"{stem}.json", f"{stem}-2.json", f"{stem}.json", f"{stem}-2.json"]
    files = report_files(souls)
    assert {name: report["soul_info"]["soul"] for name, report in files.items()} == {
        f"{stem}.json": str(first.soul),
        f"{stem}-2.json": str(second.soul),
    }
    assert (souls / f"{stem}-2.md").exists()
    index = index_of(souls)
    assert index["aliases"] == {"twin": [first.hash]}
    assert index["souls"][first.hash]["report"] == f"{stem}.json"


def test_concurrent_writers_leave_a_valid_index_holding_every_hash(souls: Path) -> None:
    """Eight threads writing 25 reports each at once: every report and every hash is there, no temporary file."""
    threads_count, per_thread = 8, 25
    barrier = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def write(number: int) -> None:
        try:
            barrier.wait()
            for item in range(per_thread):
                being = unsaved_being(
                    name=f"alias-{number}",
                    source=f"def run():\n    return {number * 1000 + item}\n",
                    at=timezone.now().isoformat(),
                )
                soul_files.report_write(being=being, event="creation", parent_hash=None, context={"door": "task"})
        except BaseException as error:  # a thread's failure must reach the test
            errors.append(error)

    threads = [threading.Thread(target=write, args=(number,)) for number in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    files = report_files(souls)
    assert len(files) == threads_count * per_thread
    index = index_of(souls)
    assert set(index["souls"]) == {report["soul_info"]["hash"] for report in files.values()}
    assert {alias: len(hashes) for alias, hashes in index["aliases"].items()} == {
        f"alias-{number}": per_thread for number in range(threads_count)
    }
    assert len(list(souls.glob("*.md"))) == threads_count * per_thread
    assert [path.name for path in souls.iterdir() if path.name.endswith(".tmp")] == []


# Export


def core_report_names(directory: Path) -> set[str]:
    return {
        name for name, report in report_files(directory).items() if uuid.UUID(report["soul_info"]["soul"]) in CORE_SOULS
    }


def test_export_into_an_empty_directory_recreates_the_names_written_live(
    lineage: dict[str, BaseBeing], souls: Path, tmp_path: Path
) -> None:
    """Every version a being owns is reported again under the name it got live, from the lineage alone.

    The context keeps what the database still knows: each lineage entry keeps who made its version.
    """
    live = report_files(souls)
    target = tmp_path / "export"
    done: list[int] = []

    counts = soul_files.reports_export(directory=target, progress=done.append)

    exported = report_files(target)
    ours = set(exported) - core_report_names(target)
    assert ours == set(live)
    beings = BaseBeing.objects.count()
    assert done == list(range(1, beings + 1))
    assert counts == {
        "reports": len(exported),
        "souls": len(index_of(target)["souls"]),
        "aliases": len(index_of(target)["aliases"]),
        "failures": 0,
        "environment_files": 0,
    }
    for name in ours:
        assert exported[name]["soul_info"] == live[name]["soul_info"]
        assert exported[name]["genotype"] == live[name]["genotype"]
        assert exported[name]["analysis"] == live[name]["analysis"]
        assert independent_hash(exported[name]["genotype"]) == exported[name]["soul_info"]["hash"]
        live_context = live[name]["context"]
        assert exported[name]["context"] == {
            "actor": "alice",
            "door": "export",
            "reason": live_context["reason"],
            "event": live_context["event"],
            "rebuilt": True,
        }
        assert (target / name).with_suffix(".md").exists()
    live_index, exported_index = index_of(souls), index_of(target)
    assert {hash: exported_index["souls"][hash] for hash in live_index["souls"]} == live_index["souls"]
    assert exported_index["aliases"]["doubler"] == live_index["aliases"]["doubler"]


def test_export_over_live_reports_rewrites_them_in_place(lineage: dict[str, BaseBeing], souls: Path) -> None:
    """Exporting into the directory the reports were written in leaves one file per version, now marked rebuilt."""
    live = set(report_files(souls))

    soul_files.reports_export()

    files = report_files(souls)
    assert set(files) - core_report_names(souls) == live
    assert all(report["context"]["rebuilt"] for report in files.values())


def test_export_into_the_log_directory_writes_the_environment_files(lineage: dict[str, BaseBeing], souls: Path) -> None:
    """souls export-logs rebuilds production_config.json and a deployment manifest per environment too."""
    counts = soul_files.reports_export()

    assert counts["environment_files"] == 3
    assert json.loads((souls / "production_config.json").read_text()) == {}
    for environment in ("production", "staging"):
        manifest = json.loads((souls / f"deployment_manifest_{environment}.json").read_text())
        assert (manifest["environment"], manifest["souls"]) == (environment, [])


def test_export_drops_deleted_beings_from_the_index_and_keeps_concurrent_ones(
    alice: User, lineage: dict[str, BaseBeing], souls: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """The rebuilt index holds what the database holds: a deleted being's hash goes, nothing live is lost."""
    with django_capture_on_commit_callbacks(execute=True):
        gone = create(alice, source="def run():\n    return 'bye'\n", name="gone")
    services.being_delete(being=gone, actor=alice)
    assert gone.hash in index_of(souls)["souls"]

    soul_files.reports_export()

    index = index_of(souls)
    assert gone.hash not in index["souls"]
    assert "gone" not in index["aliases"]
    assert lineage["mutant"].hash in index["souls"]


def test_export_records_a_version_whose_lineage_does_not_rebuild_and_goes_on(
    alice: User, souls: Path, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """A tampered reverse diff: that version gets no report but a failure; every other version is exported."""
    being = create(alice)
    being_evolve(being=being, source=EVOLVED, actor=alice)
    being.refresh_from_db()
    first = being.genesis["ancestors"][0]["hash"]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE base_beings SET genesis = jsonb_set(genesis, '{ancestors,0,diff}', %s::jsonb) WHERE soul = %s",
            [json.dumps([[0, 0, ["# tampered\n"]]]), being.soul],
        )
    target = tmp_path / "export"

    counts = soul_files.reports_export(directory=target)

    hashes = {report["soul_info"]["hash"] for report in report_files(target).values()}
    assert being.hash in hashes and first not in hashes
    assert counts["failures"] == 1
    failure = SoulReportFailure.objects.get()
    assert (failure.operation, failure.hash, failure.path) == ("export", first, str(target))
    assert "rebuilds to" in failure.error


def test_export_reports_inherited_versions_only_under_the_being_that_owns_them(
    lineage: dict[str, BaseBeing], tmp_path: Path
) -> None:
    """A mutant carries its parent's lineage, but only its own v1 is reported under its soul."""
    target = tmp_path / "export"

    soul_files.reports_export(directory=target)

    mutant = lineage["mutant"]
    by_soul = [
        report["soul_info"]["hash"]
        for report in report_files(target).values()
        if report["soul_info"]["soul"] == str(mutant.soul)
    ]
    assert by_soul == [mutant.hash]
    assert len(being_versions(mutant)) == 4
