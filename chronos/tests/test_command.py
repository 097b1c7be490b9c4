"""``manage.py chronos``: every subcommand as an operator runs it, its tables and its --json, and its exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError

from beings.models import BaseBeing
from beings.services import being_update
from beings.souls.services import soul_promote
from chronos.archive import archive_read
from chronos.models import Checkpoint, Timeline
from chronos.tests.helpers import tables_dump
from chronos.transfer import export_path
from luxsite.tests.helpers import command, command_refused

pytestmark = pytest.mark.django_db(transaction=True)


class Terminal(io.StringIO):
    """A keyboard at a terminal that types ``answer``."""

    def isatty(self) -> bool:
        return True


def chronos(*args: str) -> str:
    return command("chronos", *args, "--as", "root")


def chronos_json(*args: str) -> Any:
    return json.loads(chronos(*args, "--json"))


@dataclass(frozen=True)
class Changed:
    being: BaseBeing
    at_start: dict[str, str]
    now: dict[str, str]


@pytest.fixture
def changed(root: User, make_being: Callable[..., BaseBeing]) -> Changed:
    """A being with x=1 at checkpoint ``start`` (its dump kept), then changed to x=2 and joined by another."""
    being = make_being("keeper", attributes={"x": 1, "keep": "same"})
    at_start = tables_dump()
    chronos("checkpoint", "start", "--description", "before the change")
    being_update(being=being, data={"attributes": {"x": 2, "keep": "same"}}, actor=root)
    make_being("newcomer")
    return Changed(being=being, at_start=at_start, now=tables_dump())


def test_checkpoint_then_list_as_a_table_and_as_json(admin_user: User) -> None:
    """A checkpoint taken as the default admin is listed with its id prefix, name, timeline, kind and actor."""
    printed = command("chronos", "checkpoint", "start", "--description", "first")
    checkpoint = Checkpoint.objects.get()
    assert printed.strip() == f"checkpoint start on main: {checkpoint.id}"
    command("chronos", "checkpoint", "kept")
    command("chronos", "pin", "kept")

    lines = command("chronos", "checkpoints").splitlines()
    assert lines[0].split() == ["ID", "NAME", "TIMELINE", "KIND", "PINNED", "CREATED", "ACTOR"]
    assert lines[2].split()[:3] == [str(checkpoint.id)[:8], "start", "main"]
    assert lines[2].split()[3] == "manual" and lines[2].split()[-1] == "admin"
    assert "pinned" in lines[1]

    listed = json.loads(command("chronos", "checkpoints", "--json", "--timeline", "main"))
    assert [document["name"] for document in listed] == ["kept", "start"]
    first = listed[1]
    assert set(first) == {"id", "name", "description", "timeline", "kind", "pinned", "created_at", "actor"}
    assert uuid.UUID(first["id"]) == checkpoint.id
    assert datetime.fromisoformat(first["created_at"]) == checkpoint.created_at
    assert (first["description"], first["pinned"], first["actor"]) == ("first", False, "admin")


def test_restore_preview_shows_the_paths_and_changes_nothing(changed: Changed) -> None:
    """--preview prints the rows a restore would change, field by field, and writes nothing."""
    checkpoints = Checkpoint.objects.count()
    printed = chronos("restore", "start", "--preview")
    being = changed.being
    assert printed.startswith("restore to start (")
    assert f"changed base_beings {being.soul}\n  attributes.x: 2 → 1" in printed
    assert "removed base_beings" in printed
    assert tables_dump() == changed.now
    assert Checkpoint.objects.count() == checkpoints

    preview = chronos_json("restore", "start", "--preview")
    assert preview["needs_force"] is False
    assert {"table": "base_beings", "kind": "changed", "count": 1} in preview["diff"]["stat"]
    assert tables_dump() == changed.now


def test_restore_with_yes_restores_exactly(changed: Changed) -> None:
    """--yes restores at once: both tables equal their dump at the checkpoint; the report names the safety."""
    report = chronos_json("restore", "start", "--yes")
    assert tables_dump() == changed.at_start
    assert report["checkpoint"]["name"] == "start"
    assert report["safety"]["name"] == "before-restore-start"
    assert report["undone"] == 2 and report["rows"] == {"base_beings": 2}


def test_restore_without_yes_refuses_when_no_terminal_can_confirm(
    changed: Changed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read from a pipe, restore prints the preview, then exits 1 and restores nothing."""
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    out = io.StringIO()
    with pytest.raises(CommandError) as error:
        call_command("chronos", "restore", "start", "--as", "root", stdout=out, stderr=io.StringIO())
    assert error.value.returncode == 1
    assert "not restored: no terminal to confirm on; pass --yes" in str(error.value)
    assert "attributes.x: 2 → 1" in out.getvalue()
    assert tables_dump() == changed.now


@pytest.mark.parametrize(("answer", "restored"), [("y\n", True), ("n\n", False), ("\n", False)])
def test_restore_asks_at_a_terminal(
    changed: Changed, monkeypatch: pytest.MonkeyPatch, answer: str, restored: bool
) -> None:
    """At a terminal, restore asks; only a yes restores, anything else exits 1 with nothing changed."""
    monkeypatch.setattr("sys.stdin", Terminal(answer))
    if restored:
        printed = chronos("restore", "start")
        assert "restore to start (" in printed and "[y/N]" in printed
        assert tables_dump() == changed.at_start
    else:
        error = command_refused("chronos", "restore", "start", "--as", "root")
        assert error.returncode == 1 and "not restored: not confirmed" in str(error)
        assert tables_dump() == changed.now


def test_a_restore_deleting_a_promoted_being_needs_force(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """The preview names the promotion and asks for --force; --yes alone exits 1 unchanged, --force restores."""
    chronos("checkpoint", "before-release")
    released = make_being("released")
    soul_promote(hash=released.hash, actor=root, override_reason="no runs yet")
    printed = chronos("restore", "before-release", "--preview")
    assert f"deletes the being of active promotions: released ({released.hash[:12]}) in production" in printed
    assert printed.endswith("it needs --force\n")
    before = tables_dump()

    error = command_refused("chronos", "restore", "before-release", "--yes", "--as", "root")
    assert error.returncode == 1 and str(error).startswith("promoted_being_affected: ")
    assert tables_dump() == before
    chronos("restore", "before-release", "--yes", "--force")
    assert not BaseBeing.objects.filter(soul=released.soul).exists()


def test_branch_switch_and_timelines(changed: Changed) -> None:
    """A branch from a checkpoint is listed with its parent and fork; switching to it makes its head the tables."""
    printed = chronos("branch", "experiment", "--from", "start")
    assert printed.startswith("timeline experiment forked from start (")

    lines = chronos("timelines").splitlines()
    assert lines[0].split() == ["LIVE", "NAME", "PARENT", "FORK", "CHANGES"]
    assert lines[1].split()[:3] == ["*", "main", "-"]
    assert lines[2].split()[:3] == ["experiment", "main", "start"]

    refusal = command_refused("chronos", "switch", "experiment", "--as", "root")
    assert refusal.returncode == 1 and "not switched" in str(refusal)
    assert Timeline.objects.get(live=True).name == "main"

    assert chronos("switch", "experiment", "--yes").startswith("experiment is live: 2 log entries undone")
    assert tables_dump() == changed.at_start
    timelines = chronos_json("timelines")
    assert [(t["name"], t["live"], t["parent"]) for t in timelines] == [
        ("main", False, None),
        ("experiment", True, "main"),
    ]
    assert timelines[1]["fork"]["name"] == "start" and uuid.UUID(timelines[1]["fork"]["id"])
    assert set(timelines[0]) == {"name", "live", "parent", "fork", "changes", "created_at", "actor", "description"}

    chronos("switch", "main", "--yes")
    assert tables_dump() == changed.now


def test_diff_stat_and_paths(changed: Changed) -> None:
    """diff --stat counts rows per table and kind; without it each changed row lists its JSON paths."""
    being = changed.being
    stat = chronos("diff", "start", "now", "--stat").splitlines()
    assert stat[0].split() == ["TABLE", "KIND", "ROWS"]
    assert [line.split() for line in stat[1:3]] == [["base_beings", "added", "1"], ["base_beings", "changed", "1"]]
    assert stat[3] == "2 row(s) differ between start and now (2 log entries)"
    assert len(stat) == 4

    full = chronos("diff", "start", "now")
    assert f"changed base_beings {being.soul}\n  attributes.x: 1 → 2\n" in full
    assert "keep" not in full

    document = chronos_json("diff", "start", "now", "--limit", "1", "--offset", "1")
    assert (document["total"], document["offset"], len(document["entries"])) == (2, 1, 1)
    page = chronos_json("diff", "start", "now")
    changed_row = next(entry for entry in page["entries"] if entry["kind"] == "changed")
    assert changed_row == {
        "table": "base_beings",
        "row_id": str(being.soul),
        "kind": "changed",
        "fields": [{"path": "attributes.x", "kind": "changed", "old": 1, "new": 2}],
    }
    added = next(entry for entry in page["entries"] if entry["kind"] == "added")
    assert added["row"]["genesis"]["name"] == "newcomer"
    assert set(chronos_json("diff", "start", "now", "--stat")) == {"from", "to", "total", "changes", "stat"}
    assert chronos("diff", "now", "timeline:main") == "no difference between now and timeline:main\n"


def test_a_being_at_a_point_and_its_history(root: User, changed: Changed) -> None:
    """at SOUL POINT shows the being as it was; history lists its changes, newest first, with who and how."""
    being = changed.being
    then = chronos_json("at", str(being.soul), "start")
    assert then["attributes"] == {"x": 1, "keep": "same"}
    assert chronos("at", str(being.soul), "now").startswith(f"being {being.soul} at now:\n")
    assert chronos_json("at", str(being.soul), "now")["attributes"]["x"] == 2

    history = chronos_json("history", str(being.soul))
    assert [entry["operation"] for entry in history] == ["UPDATE", "INSERT"]
    assert history[0]["context"]["actor"] == "root" and history[0]["timeline"] == "main"
    assert datetime.fromisoformat(history[0]["committed_at"])
    lines = chronos("history", str(being.soul), "--limit", "1").splitlines()
    assert lines[0].split()[:5] == ["ID", "COMMITTED", "TIMELINE", "KIND", "CHANGE"]
    assert len(lines) == 2 and "UPDATE" in lines[1].split() and "root" in lines[1].split()


def test_pin_unpin_and_delete(root: User) -> None:
    """pin and --unpin set the checkpoint's exemption; delete forgets it, and a second delete finds nothing."""
    chronos("checkpoint", "release")
    checkpoint = Checkpoint.objects.get()
    assert chronos("pin", str(checkpoint.id)[:8]) == f"release ({str(checkpoint.id)[:8]}) pinned (kept by retention)\n"
    assert Checkpoint.objects.get().pinned is True
    assert chronos_json("pin", "release", "--unpin")["pinned"] is False
    assert Checkpoint.objects.get().pinned is False

    assert chronos("delete", "release").startswith("deleted checkpoint release (")
    assert not Checkpoint.objects.exists()
    error = command_refused("chronos", "delete", "release", "--as", "root")
    assert error.returncode == 1


def test_an_unknown_checkpoint_exits_1_with_what_was_looked_for(root: User) -> None:
    """A name, id or prefix that names no checkpoint: exit 1, saying what a CHECKPOINT may be."""
    error = command_refused("chronos", "restore", "nope", "--yes", "--as", "root")
    assert error.returncode == 1
    assert str(error) == "checkpoint_not_found: no checkpoint 'nope' (an id, an id prefix or a name on main)"


def test_a_user_without_permission_is_refused(root: User, alice: User, make_being: Callable[..., BaseBeing]) -> None:
    """alice, not staff, sees no chronos but her being's past; with the view permission she still may not
    take checkpoints, restore or switch: exit 1 naming the permission, nothing done."""
    own = make_being("hers")
    chronos("checkpoint", "start")
    chronos("branch", "other")
    before = tables_dump()
    error = command_refused("chronos", "checkpoints", "--as", "alice")
    assert error.returncode == 1
    assert str(error) == "permission_denied: chronos is for staff, or for who holds chronos.view_checkpoint"
    assert "INSERT" in command("chronos", "history", str(own.soul), "--as", "alice")

    alice.user_permissions.add(Permission.objects.get(codename="view_checkpoint"))
    alice = User.objects.get(pk=alice.pk)
    assert "start" in command("chronos", "checkpoints", "--as", "alice")
    for args, permission in (
        (("checkpoint", "mine"), "chronos.add_checkpoint"),
        (("restore", "start", "--yes"), "chronos.restore_checkpoint"),
        (("switch", "other", "--yes"), "chronos.switch_timeline"),
    ):
        error = command_refused("chronos", *args, "--as", "alice")
        assert error.returncode == 1
        assert str(error).startswith("permission_denied: ") and permission in str(error)
    assert not Checkpoint.objects.filter(name__in=["mine", "before-restore-start"]).exists()
    assert Timeline.objects.get(live=True).name == "main"
    assert tables_dump() == before


def test_export_to_a_file_and_to_the_timelines_dir(changed: Changed, tmp_path: Path, settings: Any) -> None:
    """export writes the state at the checkpoint (not now) to -o FILE, or under CHRONOS_TIMELINES_DIR by id."""
    settings.CHRONOS_TIMELINES_DIR = tmp_path / "chronos"
    target = tmp_path / "start.tar.gz"
    printed = chronos("export", "start", "-o", str(target))
    assert printed.startswith("exported start (") and f"to {target}" in printed
    with archive_read(target) as archive:
        assert archive.metadata["name"] == "start"
        assert {row["soul"]: row["attributes"] for row in archive.beings()}[str(changed.being.soul)]["x"] == 1

    document = chronos_json("export", "start")
    checkpoint = Checkpoint.objects.get(name="start")
    assert Path(document["path"]) == export_path(checkpoint, settings.CHRONOS_COMPRESS_SNAPSHOTS)
    assert Path(document["path"]).is_file() and document["bytes"] == Path(document["path"]).stat().st_size
    assert set(document) == {"checkpoint", "path", "beings", "relationships", "bytes", "manifest"}
    assert document["checkpoint"]["name"] == "start"


def test_an_export_that_cannot_be_written_exits_1_and_leaves_nothing(changed: Changed, tmp_path: Path) -> None:
    """A target under a file (not a directory): exit 1 with the reason; no half archive anywhere."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    error = command_refused("chronos", "export", "start", "-o", str(blocker / "out.tar"), "--as", "root")
    assert error.returncode == 1 and str(error).startswith(f"cannot write {blocker / 'out.tar'}")
    assert [path.name for path in tmp_path.iterdir()] == ["file"]


def test_import_then_switch_brings_the_archive_back(changed: Changed, tmp_path: Path) -> None:
    """An exported checkpoint imported as a timeline is, once switched to, exactly the state at the checkpoint."""
    target = tmp_path / "start.tar"
    chronos("export", "start", "-o", str(target))
    printed = chronos("import", str(target), "--timeline", "restored")
    assert printed == f"imported {target} as timeline restored; make it live with: chronos switch restored\n"
    assert tables_dump() == changed.now
    chronos("switch", "restored", "--yes")
    assert tables_dump() == changed.at_start

    document = chronos_json("import", str(target), "--timeline", "again")
    assert (document["name"], document["live"], document["parent"]) == ("again", False, "restored")


def test_import_refuses_a_missing_or_broken_file(changed: Changed, tmp_path: Path) -> None:
    """A file that is not there, or not an archive: exit 1 with the reason, no timeline made."""
    missing = command_refused("chronos", "import", str(tmp_path / "nope.tar"), "--timeline", "x", "--as", "root")
    assert missing.returncode == 1 and str(missing).startswith(f"cannot read {tmp_path / 'nope.tar'}")
    broken = tmp_path / "broken.tar"
    broken.write_bytes(b"not an archive at all")
    error = command_refused("chronos", "import", str(broken), "--timeline", "x", "--as", "root")
    assert error.returncode == 1 and str(error).startswith("archive_")
    assert list(Timeline.objects.values_list("name", flat=True)) == ["main"]


def test_gc_dry_run_then_gc(root: User, settings: Any) -> None:
    """gc --dry-run names the checkpoints beyond the limit and keeps them; gc removes them, never a pinned one."""
    settings.CHRONOS_MAX_CHECKPOINTS_PER_TIMELINE = 1
    for name in ("old", "older-kept", "new"):
        chronos("checkpoint", name)
    chronos("pin", "older-kept")

    dry = chronos("gc", "--dry-run")
    assert dry.startswith("would remove 1 checkpoint(s):\n  main/old\n")
    assert Checkpoint.objects.count() == 3
    report = chronos_json("gc")
    assert report["dry_run"] is False and report["checkpoints"] == ["main/old"]
    assert sorted(Checkpoint.objects.values_list("name", flat=True)) == ["new", "older-kept"]
    assert chronos("gc").startswith("removed 0 checkpoint(s)\n")


def test_stats(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """stats reports the log's size, checkpoints and pinned ones, and changes per timeline."""
    before = chronos_json("stats")
    make_being("counted")
    chronos("checkpoint", "one")
    chronos("pin", "one")
    stats = chronos_json("stats")
    assert (stats["checkpoints"], stats["pinned"]) == (1, 1)
    assert stats["timelines"] == [{"name": "main", "live": True, "changes": before["timelines"][0]["changes"] + 1}]
    assert stats["log_bytes"] > 0
    printed = chronos("stats")
    assert "checkpoints:  1 (1 pinned)" in printed and "main" in printed


def test_exit_codes_of_manage_py(root: User, subprocess_env: dict[str, str], changed: Changed) -> None:
    """As a script sees it: 0 done, 1 refused (reason on stderr, nothing changed), 2 bad usage."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "chronos", *args],
            env=subprocess_env,
            cwd=settings.BASE_DIR,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=120,
        )

    listed = run("checkpoints", "--as", "root", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [document["name"] for document in json.loads(listed.stdout)] == ["start"]

    unconfirmed = run("restore", "start", "--as", "root")
    assert unconfirmed.returncode == 1
    assert "attributes.x: 2 → 1" in unconfirmed.stdout
    assert "not restored: no terminal to confirm on; pass --yes" in unconfirmed.stderr
    assert tables_dump() == changed.now

    unknown = run("restore", "nope", "--yes", "--as", "root")
    assert unknown.returncode == 1 and "checkpoint_not_found" in unknown.stderr

    for usage in (["restore"], ["travel"], ["diff", "start", "now", "--limit", "zero"], ["at", "not-a-soul", "now"]):
        bad = run(*usage)
        assert bad.returncode == 2, (usage, bad.stderr)
        assert "usage: manage.py chronos" in bad.stderr

    restored = run("restore", "start", "--yes", "--as", "root")
    assert restored.returncode == 0, restored.stderr
    assert tables_dump() == changed.at_start
