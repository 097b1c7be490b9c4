"""Chronos over HTTP: checkpoints, restore and its preview, timelines, diffs, a being's history and past."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from beings.models import BaseBeing
from beings.services import being_update
from beings.souls.services import soul_promote
from chronos.models import Change, Checkpoint, Timeline
from chronos.services import checkpoint_create, timeline_create
from chronos.tests.helpers import tables_dump
from luxsite.tests.helpers import post
from luxsite.tokens import token_create

pytestmark = pytest.mark.django_db(transaction=True)

BeingMaker = Callable[..., BaseBeing]


@pytest.fixture
def root_bearer(root: User) -> dict[str, str]:
    """Headers carrying a fresh API token of the superuser's."""
    _token, secret = token_create(user=root, name="tests")
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def viewer(alice: User) -> User:
    """Alice, allowed to look at chronos (chronos.view_checkpoint) and nothing more."""
    alice.user_permissions.add(Permission.objects.get(codename="view_checkpoint"))
    return User.objects.get(pk=alice.pk)


def get(path: str, headers: dict[str, str], **query: Any) -> Any:
    return Client().get(path, query, headers=headers)


def test_a_checkpoint_is_created_listed_and_shown_with_its_stats(
    root: User, root_bearer: dict[str, str], make_being: BeingMaker
) -> None:
    """A created checkpoint is listed, and shown by name or id prefix with the changes made since."""
    being = make_being("counted")
    created = post(Client(), "/api/chronos/checkpoints", {"name": "v1", "description": "first"}, **root_bearer)
    assert created.status_code == 201, created.content
    body = created.json()
    assert {k: body[k] for k in ("name", "description", "timeline", "kind", "pinned", "actor")} == {
        "name": "v1",
        "description": "first",
        "timeline": "main",
        "kind": "manual",
        "pinned": False,
        "actor": "root",
    }

    listed = get("/api/chronos/checkpoints", root_bearer, timeline="main")
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [body["id"]]

    being_update(being=being, data={"tags": ["later"]}, actor=root)
    for ref in ("v1", body["id"][:8], body["id"]):
        shown = get(f"/api/chronos/checkpoints/{ref}", root_bearer)
        assert shown.status_code == 200, shown.content
        assert shown.json()["id"] == body["id"]
        assert shown.json()["stats"]["changes_since"] == 1
        assert shown.json()["stats"]["bytes_since"] > 0


def test_checkpoints_are_listed_a_page_at_a_time(root: User, root_bearer: dict[str, str]) -> None:
    """With limit=1 the newest comes first with a cursor, the next page holds the older one and no cursor."""
    older = checkpoint_create(name="older", actor=root)
    newer = checkpoint_create(name="newer", actor=root)
    first = get("/api/chronos/checkpoints", root_bearer, limit=1).json()
    assert [item["name"] for item in first["items"]] == [newer.name]
    second = get("/api/chronos/checkpoints", root_bearer, limit=1, after=first["next"]).json()
    assert [item["name"] for item in second["items"]] == [older.name]
    assert second["next"] is None


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("", 422, "name_invalid"),
        ("   ", 422, "name_invalid"),
        ("x" * 101, 422, "name_invalid"),
        ("tab\there", 422, "name_invalid"),
        ("nul\x00", 422, "invalid"),
        ("taken", 409, "checkpoint_name_taken"),
    ],
)
def test_a_bad_checkpoint_name_is_refused_and_nothing_is_taken(
    root: User, root_bearer: dict[str, str], name: str, status: int, code: str
) -> None:
    """An empty, too long or control-character name is a 422; a name taken on the timeline is a 409."""
    checkpoint_create(name="taken", actor=root)
    response = post(Client(), "/api/chronos/checkpoints", {"name": name}, **root_bearer)
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert Checkpoint.objects.count() == 1


def test_a_restore_through_the_api_brings_both_tables_back_exactly(
    root: User, root_bearer: dict[str, str], make_being: BeingMaker, make_link: Callable[..., Any]
) -> None:
    """After writes of both tables, POST restore makes them equal their dump at the checkpoint, byte for byte."""
    kept = make_being("kept", attributes={"x": 1})
    before = tables_dump()
    checkpoint = checkpoint_create(name="start", actor=root)
    being_update(being=kept, data={"attributes": {"x": 2}}, actor=root)
    make_link(kept, make_being("newcomer"))
    assert tables_dump() != before

    response = post(Client(), "/api/chronos/checkpoints/start/restore", {}, **root_bearer)
    assert response.status_code == 200, response.content
    assert tables_dump() == before
    report = response.json()
    assert report["safety"]["name"] == "before-restore-start"
    assert report["undone"] == 3 and report["redone"] == 0
    assert report["rows"] == {"base_beings": 2, "relationships": 1}
    assert Checkpoint.objects.filter(id=report["safety"]["id"], timeline__name="main").exists()
    assert str(checkpoint.id) != report["safety"]["id"]


def test_the_preview_shows_what_a_restore_would_do_and_changes_nothing(
    root: User, root_bearer: dict[str, str], make_being: BeingMaker
) -> None:
    """The preview counts rows per table and kind and shows the changed paths; the tables and log stay as they are."""
    being = make_being("previewed", attributes={"x": 1})
    checkpoint_create(name="start", actor=root)
    being_update(being=being, data={"attributes": {"x": 2}}, actor=root)
    make_being("added")
    dump, logged = tables_dump(), Change.objects.count()

    response = get("/api/chronos/checkpoints/start/preview", root_bearer)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["checkpoint"]["name"] == "start"
    assert body["stat"] == [
        {"table": "base_beings", "kind": "changed", "count": 1},
        {"table": "base_beings", "kind": "removed", "count": 1},
    ]
    changed = next(entry for entry in body["entries"] if entry["kind"] == "changed")
    assert changed["row_id"] == str(being.soul)
    assert {"path": "attributes.x", "kind": "changed", "old": 2, "new": 1} in changed["fields"]
    assert body["needs_force"] is False and body["promotions_removed"] == []
    assert tables_dump() == dump and Change.objects.count() == logged


@pytest.mark.parametrize(
    ("path", "permission"),
    [
        ("/api/chronos/checkpoints/start/restore", "chronos.restore_checkpoint"),
        ("/api/chronos/timelines/side/switch", "chronos.switch_timeline"),
    ],
)
def test_restore_and_switch_are_refused_to_who_lacks_their_permission(
    root: User, viewer: User, make_being: BeingMaker, path: str, permission: str
) -> None:
    """Alice may look at chronos but not rewrite everyone's state: a 403 naming the permission, nothing changed."""
    being = make_being("mine")
    checkpoint = checkpoint_create(name="start", actor=root)
    Timeline.objects.create(name="side", parent_id=checkpoint.timeline_id, fork_id=checkpoint.id)
    being_update(being=being, data={"tags": ["later"]}, actor=viewer)
    dump, logged = tables_dump(), Change.objects.count()
    _token, secret = token_create(user=viewer, name="tests")

    response = post(Client(), path, {}, Authorization=f"Bearer {secret}")
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "permission_denied"
    assert permission in response.json()["detail"]
    assert tables_dump() == dump and Change.objects.count() == logged
    assert Timeline.objects.get(live=True).name == "main"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/chronos/checkpoints"),
        ("get", "/api/chronos/timelines"),
        ("get", "/api/chronos/stats"),
        ("get", "/api/chronos/diff?from=now"),
        ("post", "/api/chronos/checkpoints"),
    ],
)
def test_chronos_is_closed_to_who_is_neither_staff_nor_a_viewer(bearer: dict[str, str], method: str, path: str) -> None:
    """A diff shows everyone's rows: a plain user gets a 403 on reads and writes alike."""
    client = Client()
    response = client.get(path, headers=bearer) if method == "get" else post(client, path, {"name": "x"}, **bearer)
    assert response.status_code == 403, response.content
    assert "chronos.view_checkpoint" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/chronos/checkpoints/nothing-like-it"),
        ("get", "/api/chronos/checkpoints/nothing-like-it/preview"),
        ("post", "/api/chronos/checkpoints/nothing-like-it/restore"),
        ("post", "/api/chronos/checkpoints/nothing-like-it/pin"),
        ("delete", "/api/chronos/checkpoints/nothing-like-it"),
    ],
)
def test_an_unknown_checkpoint_is_a_404(root_bearer: dict[str, str], method: str, path: str) -> None:
    """A reference that names no checkpoint is a 404 checkpoint_not_found, whatever the route."""
    response = getattr(Client(), method)(
        path, {} if method == "get" else "{}", content_type="application/json", headers=root_bearer
    )
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "checkpoint_not_found"


def test_a_checkpoint_is_pinned_and_deleted(root: User, root_bearer: dict[str, str]) -> None:
    """Pinning shows in the checkpoint; deleting it is a 204 and it is gone."""
    checkpoint_create(name="keep", actor=root)
    pinned = post(Client(), "/api/chronos/checkpoints/keep/pin", {"pinned": True}, **root_bearer)
    assert pinned.status_code == 200 and pinned.json()["pinned"] is True
    assert Checkpoint.objects.get(name="keep").pinned
    deleted = Client().delete("/api/chronos/checkpoints/keep", headers=root_bearer)
    assert deleted.status_code == 204
    assert not Checkpoint.objects.filter(name="keep").exists()


def test_timelines_are_created_switched_to_and_deleted(
    root: User, root_bearer: dict[str, str], make_being: BeingMaker
) -> None:
    """A timeline forked from a checkpoint becomes live and holds its own writes; back on main, it is deleted."""
    being = make_being("branching", tags=["main"])
    checkpoint_create(name="fork-here", actor=root)
    on_main = tables_dump()
    created = post(
        Client(), "/api/chronos/timelines", {"name": "experiment", "from_checkpoint": "fork-here"}, **root_bearer
    )
    assert created.status_code == 201, created.content
    assert created.json()["parent"] == "main" and created.json()["live"] is False

    switched = post(Client(), "/api/chronos/timelines/experiment/switch", {}, **root_bearer)
    assert switched.status_code == 200, switched.content
    assert switched.json()["safety"]["name"] == "before-switch-to-experiment"
    being_update(being=being, data={"tags": ["experiment"]}, actor=root)
    listed = get("/api/chronos/timelines", root_bearer).json()
    assert [(t["name"], t["live"]) for t in listed] == [("main", False), ("experiment", True)]

    back = post(Client(), "/api/chronos/timelines/main/switch", {}, **root_bearer)
    assert back.status_code == 200, back.content
    assert tables_dump() == on_main
    taken = post(Client(), "/api/chronos/timelines", {"name": "experiment"}, **root_bearer)
    assert taken.status_code == 409 and taken.json()["code"] == "timeline_name_taken"
    assert Client().delete("/api/chronos/timelines/main", headers=root_bearer).status_code == 409
    assert Client().delete("/api/chronos/timelines/experiment", headers=root_bearer).status_code == 204
    assert [t["name"] for t in get("/api/chronos/timelines", root_bearer).json()] == ["main"]


def test_a_diff_lists_the_rows_and_the_json_paths_that_differ(
    root: User, root_bearer: dict[str, str], make_being: BeingMaker
) -> None:
    """Between a checkpoint and now: the stat per table and kind, and a changed row's paths with both values."""
    being = make_being("diffed", attributes={"team": "a", "keep": 1}, memories=["one"])
    checkpoint_create(name="before", actor=root)
    being_update(being=being, data={"attributes": {"team": "b", "keep": 1}, "memories": ["two"]}, actor=root)
    added = make_being("added")

    response = get("/api/chronos/diff", root_bearer, **{"from": "before", "to": "now", "limit": 1})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["from"], body["to"], body["total"], body["offset"]) == ("before", "now", 2, 0)
    assert sorted((c["kind"], c["count"]) for c in body["stat"]) == [("added", 1), ("changed", 1)]
    assert len(body["entries"]) == 1
    rest = get("/api/chronos/diff", root_bearer, **{"from": "before", "limit": 1, "offset": 1}).json()
    entries = {entry["row_id"]: entry for entry in [*body["entries"], *rest["entries"]]}
    assert entries[str(added.soul)]["kind"] == "added" and entries[str(added.soul)]["old"] is None
    changed = entries[str(being.soul)]
    assert changed["kind"] == "changed"
    assert [(f["path"], f["old"], f["new"]) for f in changed["fields"]] == [
        ("attributes.team", "a", "b"),
        ("memories[0]", "one", "two"),
    ]


def test_the_switch_preview_names_the_promotions_it_would_delete_and_changes_nothing(
    root: User, root_bearer: dict[str, str], make_being: BeingMaker
) -> None:
    """A being promoted on main but absent from the other timeline: its promotion is listed and force is needed."""
    checkpoint = checkpoint_create(name="before-release", actor=root)
    timeline_create(name="older", from_checkpoint=checkpoint, actor=root)
    released = make_being("released")
    soul_promote(hash=released.hash, actor=root, override_reason="no runs yet")
    before = tables_dump()
    response = get("/api/chronos/timelines/older/preview", root_bearer)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["timeline"]["name"], body["live"]["name"]) == ("older", "main")
    assert [p["alias"] for p in body["promotions_removed"]] == ["released"] and body["needs_force"] is True
    assert {"table": "base_beings", "kind": "removed", "count": 1} in body["stat"]
    refused = post(Client(), "/api/chronos/timelines/older/switch", {}, **root_bearer)
    assert refused.status_code == 409 and refused.json()["code"] == "promoted_being_affected"
    assert tables_dump() == before
    assert get("/api/chronos/timelines/main/preview", root_bearer).json()["code"] == "timeline_protected"


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"from": "no-such-point"}, 400, "point_invalid"),
        ({"from": "now", "limit": 0}, 422, "invalid"),
        ({"from": "now", "limit": 501}, 422, "invalid"),
        ({"to": "now"}, 422, "invalid"),
    ],
)
def test_a_bad_diff_query_is_refused(
    root_bearer: dict[str, str], query: dict[str, Any], status: int, code: str
) -> None:
    """An unknown point is a 400; a limit outside 1..500 or a missing `from` is a 422."""
    response = get("/api/chronos/diff", root_bearer, **query)
    assert response.status_code == status, response.content
    assert response.json()["code"] == code


def test_stats_count_checkpoints_and_changes_per_timeline(
    root: User, root_bearer: dict[str, str], make_being: BeingMaker
) -> None:
    """The stats count the checkpoints, the pinned ones, and each timeline's changes."""
    make_being("counted")
    checkpoint_create(name="one", actor=root)
    body = get("/api/chronos/stats", root_bearer).json()
    assert (body["checkpoints"], body["pinned"]) == (1, 0)
    assert body["timelines"][0]["name"] == "main" and body["timelines"][0]["changes"] >= 1
    assert body["log_bytes"] > 0


def test_chronos_turned_off_closes_its_routes(root_bearer: dict[str, str], settings: Any) -> None:
    """With ENABLE_CHRONOS false, the chronos routes answer 409 chronos_disabled."""
    settings.ENABLE_CHRONOS = False
    response = get("/api/chronos/stats", root_bearer)
    assert response.status_code == 409 and response.json()["code"] == "chronos_disabled"


def test_a_session_write_needs_the_csrf_token(root: User, root_bearer: dict[str, str]) -> None:
    """Signed in through a session, a checkpoint needs the CSRF token (403 without, 201 with); a token needs none."""
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(root)
    refused = post(strict, "/api/chronos/checkpoints", {"name": "browser"})
    assert refused.status_code == 403
    assert refused.json() == {"code": "permission_denied", "detail": "CSRF check Failed"}
    assert not Checkpoint.objects.exists()

    strict.get("/admin/")  # sets the csrftoken cookie, as any page with a form does
    accepted = post(
        strict, "/api/chronos/checkpoints", {"name": "browser"}, **{"X-CSRFToken": strict.cookies["csrftoken"].value}
    )
    assert accepted.status_code == 201, accepted.content
    read = strict.get("/api/chronos/checkpoints/browser")
    assert read.status_code == 200 and read.json()["name"] == "browser"
    script = post(Client(enforce_csrf_checks=True), "/api/chronos/checkpoints", {"name": "script"}, **root_bearer)
    assert script.status_code == 201, script.content


def test_a_beings_history_and_its_past_are_read_by_who_may_view_it(
    alice: User, bob: User, root: User, bearer: dict[str, str], make_being: BeingMaker
) -> None:
    """Alice reads her being's changes newest first with their door, and the being at a checkpoint; bob gets 404s."""
    being = make_being("remembered", attributes={"mood": "calm"})
    checkpoint_create(name="calm", actor=root)
    patched = Client().patch(
        f"/api/beings/{being.soul}", {"attributes": {"mood": "busy"}}, content_type="application/json", headers=bearer
    )
    assert patched.status_code == 200, patched.content

    history = get(f"/api/beings/{being.soul}/history", bearer, limit=1)
    assert history.status_code == 200, history.content
    newest = history.json()["items"]
    assert [(e["operation"], e["context"]["door"], e["context"]["actor"]) for e in newest] == [
        ("UPDATE", "api", "alice")
    ]
    assert newest[0]["timeline"] == "main" and newest[0]["kind"] == "write"
    older = get(f"/api/beings/{being.soul}/history", bearer, limit=1, before=history.json()["next"]).json()
    assert [e["operation"] for e in older["items"]] == ["INSERT"] and older["next"] is None

    past = get(f"/api/beings/{being.soul}", bearer, at="calm")
    assert past.status_code == 200, past.content
    assert past.json()["attributes"] == {"mood": "calm"} and past.json()["name"] == "remembered"
    assert get(f"/api/beings/{being.soul}", bearer).json()["attributes"] == {"mood": "busy"}

    _token, secret = token_create(user=bob, name="tests")
    for path, query in ((f"/api/beings/{being.soul}/history", {}), (f"/api/beings/{being.soul}", {"at": "calm"})):
        refused = get(path, {"Authorization": f"Bearer {secret}"}, **query)
        assert refused.status_code == 404, refused.content
        assert refused.json()["code"] == "being_not_found"


def test_a_being_read_before_it_existed_is_a_404(root: User, bearer: dict[str, str], make_being: BeingMaker) -> None:
    """At a checkpoint taken before its creation, the being did not exist: a 404 saying so."""
    checkpoint_create(name="empty", actor=root)
    being = make_being("late")
    response = get(f"/api/beings/{being.soul}", bearer, at="empty")
    assert response.status_code == 404, response.content
    assert "did not exist" in response.json()["detail"]


def test_an_export_downloads_the_state_at_the_checkpoint_and_imports_as_a_timeline(
    root: User, root_bearer: dict[str, str], make_being: BeingMaker, settings: Any
) -> None:
    """The archive holds the checkpoint's rows, not the live ones; uploaded back, switching to it restores them."""
    settings.CHRONOS_COMPRESS_SNAPSHOTS = True
    being = make_being("exported", attributes={"v": 1})
    at_checkpoint = tables_dump()
    checkpoint = checkpoint_create(name="shipped", actor=root)
    being_update(being=being, data={"attributes": {"v": 2}}, actor=root)
    make_being("after")

    response = Client().get("/api/chronos/checkpoints/shipped/export", headers=root_bearer)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/gzip"
    assert response["Content-Disposition"] == f'attachment; filename="{checkpoint.id}.tar.gz"'
    archive = response.getvalue()
    assert archive[:2] == b"\x1f\x8b"

    upload = SimpleUploadedFile("shipped.tar.gz", archive, content_type="application/gzip")
    imported = Client().post(
        "/api/chronos/timelines/import", {"timeline": "shipped", "file": upload}, headers=root_bearer
    )
    assert imported.status_code == 201, imported.content
    assert imported.json()["name"] == "shipped" and imported.json()["live"] is False
    switched = post(Client(), "/api/chronos/timelines/shipped/switch", {}, **root_bearer)
    assert switched.status_code == 200, switched.content
    assert tables_dump() == at_checkpoint


def test_an_uncompressed_export_is_a_tar(root: User, root_bearer: dict[str, str], settings: Any) -> None:
    """With CHRONOS_COMPRESS_SNAPSHOTS false the download is a plain tar named <id>.tar."""
    settings.CHRONOS_COMPRESS_SNAPSHOTS = False
    checkpoint = checkpoint_create(name="plain", actor=root)
    response = Client().get(f"/api/chronos/checkpoints/{checkpoint.id}/export", headers=root_bearer)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-tar"
    assert response["Content-Disposition"] == f'attachment; filename="{checkpoint.id}.tar"'
    assert response.getvalue()[257:262] == b"ustar"


def test_a_truncated_archive_is_refused_and_creates_no_timeline(
    root: User, root_bearer: dict[str, str], make_being: BeingMaker
) -> None:
    """Half an archive is a 422 archive_corrupt; no timeline is created and the log is unchanged."""
    make_being("whole")
    checkpoint_create(name="cut", actor=root)
    archive = Client().get("/api/chronos/checkpoints/cut/export", headers=root_bearer).getvalue()
    logged = Change.objects.count()
    upload = SimpleUploadedFile("cut.tar.gz", archive[: len(archive) // 2])
    response = Client().post("/api/chronos/timelines/import", {"timeline": "half", "file": upload}, headers=root_bearer)
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "archive_corrupt"
    assert not Timeline.objects.filter(name="half").exists() and Change.objects.count() == logged


def test_import_and_gc_need_their_permissions(root: User, viewer: User) -> None:
    """A viewer may not import an archive nor collect the history: 403s naming the permission."""
    checkpoint_create(name="kept", actor=root)
    _token, secret = token_create(user=viewer, name="tests")
    headers = {"Authorization": f"Bearer {secret}"}
    upload = SimpleUploadedFile("any.tar.gz", b"not read")
    imported = Client().post("/api/chronos/timelines/import", {"timeline": "mine", "file": upload}, headers=headers)
    assert imported.status_code == 403 and "chronos.restore_checkpoint" in imported.json()["detail"]
    collected = post(Client(), "/api/chronos/gc", {"dry_run": True}, **headers)
    assert collected.status_code == 403 and "chronos.delete_checkpoint" in collected.json()["detail"]
    assert not Timeline.objects.filter(name="mine").exists() and Checkpoint.objects.filter(name="kept").exists()


def test_gc_reports_what_it_would_remove_and_a_dry_run_removes_nothing(
    root: User, root_bearer: dict[str, str], settings: Any
) -> None:
    """Beyond CHRONOS_MAX_CHECKPOINTS_PER_TIMELINE, a dry run names the oldest unpinned checkpoint; gc removes it."""
    settings.CHRONOS_MAX_CHECKPOINTS_PER_TIMELINE = 1
    checkpoint_create(name="old", actor=root)
    checkpoint_create(name="new", actor=root)
    dry = post(Client(), "/api/chronos/gc", {"dry_run": True}, **root_bearer)
    assert dry.status_code == 200, dry.content
    assert dry.json()["dry_run"] is True and dry.json()["checkpoints"] == ["main/old"]
    assert Checkpoint.objects.filter(name="old").exists()
    done = post(Client(), "/api/chronos/gc", {}, **root_bearer)
    assert done.status_code == 200 and done.json()["checkpoints"] == ["main/old"]
    assert list(Checkpoint.objects.values_list("name", flat=True)) == ["new"]
