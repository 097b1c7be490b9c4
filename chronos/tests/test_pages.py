"""Chronos' HTML pages through the test client: who may see and do what, the graph, diffs, forms, queued restores."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from beings.models import BaseBeing
from beings.services import being_update
from beings.souls.services import soul_promote
from chronos.models import Checkpoint, Timeline
from chronos.services import checkpoint_create, timeline_create
from chronos.tests.helpers import tables_dump
from luxsite.tests.fixtures import logged_in
from luxsite.tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

DASHBOARD = reverse("chronos_dashboard")


@pytest.fixture
def root_client(root: User) -> Client:
    return logged_in(root)


@pytest.fixture
def watcher(django_user_model: type[User]) -> User:
    """Staff who may look at chronos (view_checkpoint) and take checkpoints, but not restore nor switch."""
    user = django_user_model.objects.create_user("watcher", password="watcher-password-1", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="chronos", codename__in=["view_checkpoint", "add_checkpoint"]
        )
    )
    return user


def restore_url(checkpoint: Checkpoint) -> str:
    return reverse("chronos_checkpoint_restore", args=[checkpoint.id])


def test_anonymous_visitors_are_sent_to_the_login(root: User) -> None:
    """Every chronos page asks an anonymous visitor to sign in first."""
    checkpoint = checkpoint_create(name="any", actor=root)
    for url in (DASHBOARD, reverse("chronos_diff"), restore_url(checkpoint)):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_alice_without_permissions_is_refused_with_403_pages(alice: User, root: User) -> None:
    """A user who is not staff and holds no chronos permission gets 403 pages, and a restore posted changes nothing."""
    checkpoint = checkpoint_create(name="guarded", actor=root)
    client = logged_in(alice)
    assert client.get(DASHBOARD).status_code == 403
    before = tables_dump()
    response = client.post(restore_url(checkpoint), {"confirm": "on"})
    assert response.status_code == 403
    assert b"permission_denied" in response.content
    assert tables_dump() == before


def test_staff_without_restore_permission_sees_the_dashboard_but_not_the_restore(
    watcher: User, root: User, make_being: Callable[..., BaseBeing]
) -> None:
    """The dashboard is open to view_checkpoint; the restore's service refuses who lacks restore_checkpoint (403)."""
    make_being("seen")
    checkpoint = checkpoint_create(name="watched", actor=root)
    client = logged_in(watcher)
    assert client.get(DASHBOARD).status_code == 200
    preview = client.get(restore_url(checkpoint))
    assert preview.status_code == 403
    assert b"chronos.restore_checkpoint" in preview.content
    switch = client.get(reverse("chronos_timeline_switch", args=["main"]))
    assert switch.status_code == 403


def test_the_dashboard_draws_every_timeline_and_marks_the_live_head(root: User, root_client: Client) -> None:
    """The SVG names each timeline, draws its checkpoints linking to their pages, and marks the live head."""
    first = checkpoint_create(name="first-mark", actor=root)
    timeline_create(name="experiment", from_checkpoint=first, actor=root)
    timeline_create(name="sandbox-line", actor=root)
    response = root_client.get(DASHBOARD)
    assert response.status_code == 200
    svg = re.search(r"<svg.*</svg>", response.content.decode(), re.S)
    assert svg is not None
    drawing = html.unescape(svg.group(0))  # Graphviz writes a hyphen as &#45;
    for name in ("main", "experiment", "sandbox-line", "first-mark"):
        assert name in drawing
    assert 'id="live-head"' in drawing and "live" in drawing
    assert reverse("chronos_checkpoint", args=[first.id]) in drawing
    assert drawing.count('id="live-head"') == 1


def test_the_diff_page_shows_a_changed_json_path_with_both_values(
    root: User, root_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """Between a checkpoint and now, a changed attribute is shown by its JSON path, with the old and the new value."""
    being = make_being("painter", attributes={"colour": "red", "size": 3})
    checkpoint_create(name="red", actor=root)
    being_update(being=being, data={"attributes": {"colour": "blue", "size": 3}}, actor=root)
    response = root_client.get(reverse("chronos_diff"), {"from": "red", "to": "now"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "attributes.colour" in page
    assert "&quot;red&quot;" in page and "&quot;blue&quot;" in page
    assert "attributes.size" not in page


def test_the_diff_page_pages_through_many_rows(root: User, root_client: Client, make_being: Callable[..., Any]) -> None:
    """Thirty new beings make two pages of 25 rows; the second page holds the rest."""
    checkpoint_create(name="empty", actor=root)
    for number in range(30):
        make_being(f"many-{number}")
    first = root_client.get(reverse("chronos_diff"), {"from": "empty", "to": "now"})
    assert first.status_code == 200
    assert first.content.decode().count('class="chronos-box diff-row"') == 25
    assert "Page 1 of 2" in first.content.decode()
    second = root_client.get(reverse("chronos_diff"), {"from": "empty", "to": "now", "page": "2"})
    assert second.content.decode().count('class="chronos-box diff-row"') == 5


def test_the_diff_page_says_what_is_wrong_with_a_point(root_client: Client) -> None:
    """A point that names nothing is a 400 with the point's error, the form kept."""
    response = root_client.get(reverse("chronos_diff"), {"from": "no-such-point", "to": "now"})
    assert response.status_code == 400
    assert b"point_invalid" in response.content
    assert b'value="no-such-point"' in response.content


def test_taking_a_checkpoint_on_the_dashboard_opens_its_page(
    root_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """The form takes a checkpoint on the live timeline; a second one of the same name is refused, 409."""
    make_being("kept")
    response = root_client.post(reverse("chronos_checkpoint_create"), {"name": "nightly", "description": "before"})
    checkpoint = Checkpoint.objects.get(name="nightly")
    assert response.status_code == 302
    assert response["Location"] == reverse("chronos_checkpoint", args=[checkpoint.id])
    page = root_client.get(response["Location"])
    assert b"Checkpoint nightly" in page.content and b'id="changes-since">0' in page.content
    again = root_client.post(reverse("chronos_checkpoint_create"), {"name": "nightly"})
    assert again.status_code == 409
    assert b"checkpoint_name_taken" in again.content
    assert Checkpoint.objects.filter(name="nightly").count() == 1


def test_the_checkpoint_page_shows_what_changed_since(
    root: User, root_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """Its stats count the changes since, and its diff against now names the changed path."""
    being = make_being("counter", attributes={"n": 1})
    checkpoint = checkpoint_create(name="one", actor=root)
    being_update(being=being, data={"attributes": {"n": 2}}, actor=root)
    page = root_client.get(reverse("chronos_checkpoint", args=[checkpoint.id])).content.decode()
    assert 'id="changes-since">1' in page
    assert "attributes.n" in page


def test_creating_a_timeline_and_previewing_the_switch(
    root: User, root_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """A timeline made on the dashboard is not live; its switch page shows what differs from the live head."""
    checkpoint_create(name="base", actor=root)
    response = root_client.post(reverse("chronos_timeline_create"), {"name": "dream", "from_checkpoint": "base"})
    assert response.status_code == 302
    dream = Timeline.objects.get(name="dream", deleted_at__isnull=True)
    assert not dream.live and dream.fork is not None and dream.fork.name == "base"
    make_being("only-on-main")
    preview = root_client.get(reverse("chronos_timeline_switch", args=["dream"]))
    assert preview.status_code == 200
    assert b"Switch from main to dream?" in preview.content
    assert b"only-on-main" in preview.content


def test_a_switch_that_deletes_a_promoted_being_is_refused_on_its_page_without_force(
    root: User, root_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """The switch page names the promotion it would delete; confirmed without force: refused (409), nothing queued."""
    checkpoint = checkpoint_create(name="before-release", actor=root)
    timeline_create(name="older", from_checkpoint=checkpoint, actor=root)
    soul_promote(hash=make_being("released").hash, actor=root, override_reason="no runs yet")
    url = reverse("chronos_timeline_switch", args=["older"])
    page = root_client.get(url).content.decode()
    assert "The switch deletes the being behind active promotions" in page and "released" in page
    before = tables_dump()
    response = root_client.post(url, {"confirm": "on"})
    assert response.status_code == 409
    assert "tick the box to go on" in response.content.decode()
    assert tables_dump() == before and Timeline.objects.get(live=True).name == "main"


def test_a_restore_confirmed_on_its_page_runs_on_a_worker_and_shows_its_result(
    root: User, root_client: Client, make_being: Callable[..., BaseBeing], celery_worker: Any
) -> None:
    """The preview shows the change; confirmed, a task restores the tables exactly and the progress page says done."""
    being = make_being("travel", tags=["old"])
    before = tables_dump()
    checkpoint = checkpoint_create(name="old-tags", actor=root)
    being_update(being=being, data={"tags": ["new"]}, actor=root)
    preview = root_client.get(restore_url(checkpoint))
    assert preview.status_code == 200 and b"tags" in preview.content
    response = root_client.post(restore_url(checkpoint), {"confirm": "on"})
    assert response.status_code == 302
    done = task_finished(root_client, response["Location"])
    assert b"before-restore-old-tags" in done.content
    assert tables_dump() == before
    assert b"hx-get" not in done.content  # finished: the panel stops polling


def test_a_task_page_is_for_who_queued_the_task(root: User, root_client: Client, watcher: User) -> None:
    """Another user, even staff, gets a 404 for a task id their session did not queue."""
    checkpoint = checkpoint_create(name="mine", actor=root)
    response = root_client.post(restore_url(checkpoint), {"confirm": "on"})
    task_page = response["Location"]
    assert root_client.get(task_page).status_code == 200
    assert logged_in(watcher).get(task_page).status_code == 404


def task_finished(client: Client, task_page: str) -> Any:
    """Poll a task's panel as htmx does until the task is done, and return the panel."""

    def done() -> Any:
        panel = client.get(task_page + "panel/")
        return panel if b'data-state="done"' in panel.content else None

    return wait_for(done)


@pytest.fixture
def exports_removed() -> Iterator[None]:
    """The archives a test exports are removed after it: the worker writes them to CHRONOS_TIMELINES_DIR."""
    directory = settings.CHRONOS_TIMELINES_DIR / "exports"
    before = set(directory.iterdir()) if directory.is_dir() else set()
    yield
    for archive in (set(directory.iterdir()) if directory.is_dir() else set()) - before:
        archive.unlink(missing_ok=True)


def test_export_then_import_through_the_pages(
    root: User,
    root_client: Client,
    make_being: Callable[..., BaseBeing],
    celery_worker: Any,
    exports_removed: None,
) -> None:
    """The archive a worker exports holds the state at the checkpoint; uploaded, it becomes a timeline that,
    switched to, makes the tables that state."""
    being = make_being("exported", tags=["then"])
    at_checkpoint = tables_dump()
    checkpoint = checkpoint_create(name="to-ship", actor=root)
    being_update(being=being, data={"tags": ["now"]}, actor=root)

    queued = root_client.post(reverse("chronos_checkpoint_export", args=[checkpoint.id]))
    assert queued.status_code == 302
    panel = task_finished(root_client, queued["Location"]).content.decode()
    link = re.search(r'href="(/chronos/exports/[^"]+)"', panel)
    assert link is not None
    download = root_client.get(link.group(1))
    assert download.status_code == 200
    assert "attachment" in download["Content-Disposition"]
    archive = download.getvalue()

    upload = SimpleUploadedFile("shipped.tar.gz", archive)
    imported = root_client.post(reverse("chronos_import"), {"archive": upload, "timeline": "shipped"})
    assert imported.status_code == 302
    assert b"shipped" in task_finished(root_client, imported["Location"]).content
    switched = root_client.post(reverse("chronos_timeline_switch", args=["shipped"]), {"confirm": "on"})
    task_finished(root_client, switched["Location"])
    assert tables_dump() == at_checkpoint


def test_a_download_names_only_an_export(root_client: Client) -> None:
    """A name that is not a checkpoint id with a tar suffix, or no such file, is a 404: no path leaves the directory."""
    for name in ("..%2Fsettings.py", "00000000-0000-0000-0000-000000000000.tar", "x.tar"):
        assert root_client.get(f"/chronos/exports/{name}").status_code == 404


def test_alice_may_not_import(alice: User, root: User) -> None:
    """An upload by someone without chronos.restore_checkpoint is refused before it is kept: 403."""
    client = logged_in(alice)
    upload = SimpleUploadedFile("a.tar", b"not an archive")
    assert client.post(reverse("chronos_import"), {"archive": upload, "timeline": "nope"}).status_code == 403
    assert not Timeline.objects.filter(name="nope").exists()
