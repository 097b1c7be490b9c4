"""Chronos in the admin: restore and switch confirmed after their preview, pin, delete, and a being's history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from beings.models import BaseBeing
from beings.services import being_update
from chronos.models import Checkpoint, Timeline
from chronos.services import checkpoint_create, timeline_create
from chronos.tests.helpers import tables_dump
from luxsite.tests.fixtures import logged_in

pytestmark = pytest.mark.django_db(transaction=True)

CHECKPOINTS = reverse("admin:chronos_checkpoint_changelist")
TIMELINES = reverse("admin:chronos_timeline_changelist")


@pytest.fixture
def root_client(root: User) -> Client:
    return logged_in(root)


def act(client: Client, url: str, action: str, *ids: object, **extra: str) -> Any:
    return client.post(url, {"action": action, ACTION_CHECKBOX_NAME: [str(id) for id in ids], **extra})


def test_restore_shows_its_preview_then_restores_on_confirmation(
    root: User, root_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """The action's page shows counts and the changed JSON path and changes nothing; confirmed, the tables come back."""
    being = make_being("shifting", attributes={"mood": "calm"})
    before = tables_dump()
    checkpoint = checkpoint_create(name="calm", actor=root)
    being_update(being=being, data={"attributes": {"mood": "angry"}}, actor=root)
    make_being("newcomer")
    changed = tables_dump()

    preview = act(root_client, CHECKPOINTS, "restore", checkpoint.id)
    assert preview.status_code == 200
    page = preview.content.decode()
    assert "Restore calm?" in page
    assert "attributes.mood" in page and "&quot;angry&quot;" in page and "&quot;calm&quot;" in page
    assert "newcomer" in page
    assert tables_dump() == changed

    done = act(root_client, CHECKPOINTS, "restore", checkpoint.id, confirm="yes")
    assert done.status_code == 302
    assert tables_dump() == before
    assert Checkpoint.objects.filter(name="before-restore-calm").exists()


def test_restore_needs_exactly_one_checkpoint(root: User, root_client: Client) -> None:
    """Two checkpoints selected: nothing is restored, a message asks for one."""
    first = checkpoint_create(name="a", actor=root)
    second = checkpoint_create(name="b", actor=root)
    response = act(root_client, CHECKPOINTS, "restore", first.id, second.id, confirm="yes")
    assert response.status_code == 302
    assert not Checkpoint.objects.filter(name__startswith="before-restore").exists()


def test_staff_without_restore_permission_is_not_offered_the_action(root: User, django_user_model: type[User]) -> None:
    """The restore action needs chronos.restore_checkpoint: without it, the list does not offer it and a post fails."""
    clerk = django_user_model.objects.create_user("clerk", password="clerk-password-1", is_staff=True)
    clerk.user_permissions.add(*Permission.objects.filter(codename__in=["view_checkpoint", "view_timeline"]))
    checkpoint = checkpoint_create(name="kept", actor=root)
    client = logged_in(clerk)
    listing = client.get(CHECKPOINTS)
    assert listing.status_code == 200 and b'value="restore"' not in listing.content
    act(client, CHECKPOINTS, "restore", checkpoint.id, confirm="yes")
    assert not Checkpoint.objects.filter(name__startswith="before-restore").exists()


def test_switch_shows_what_differs_then_switches_on_confirmation(
    root: User, root_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """The switch page shows the rows only main has; confirmed, the other timeline is live with the fork's state."""
    fork_state = tables_dump()
    base = checkpoint_create(name="base", actor=root)
    other = timeline_create(name="other", from_checkpoint=base, actor=root)
    make_being("main-only")

    preview = act(root_client, TIMELINES, "switch", other.id)
    assert preview.status_code == 200
    assert b"main-only" in preview.content and b"Switch to other?" in preview.content
    assert Timeline.objects.get(live=True).name == "main"

    act(root_client, TIMELINES, "switch", other.id, confirm="yes")
    assert Timeline.objects.get(live=True).name == "other"
    assert tables_dump() == fork_state


def test_pin_unpin_and_delete_go_through_the_services(root: User, root_client: Client) -> None:
    """Pin and unpin flip the flag; the delete view deletes a checkpoint, and refuses one a timeline forks from."""
    loose = checkpoint_create(name="loose", actor=root)
    forked = checkpoint_create(name="forked", actor=root)
    timeline_create(name="branch", from_checkpoint=forked, actor=root)
    act(root_client, CHECKPOINTS, "pin", loose.id)
    assert Checkpoint.objects.get(id=loose.id).pinned
    act(root_client, CHECKPOINTS, "unpin", loose.id)
    assert not Checkpoint.objects.get(id=loose.id).pinned

    delete = reverse("admin:chronos_checkpoint_delete", args=[loose.id])
    assert root_client.post(delete, {"post": "yes"}).status_code == 302
    assert not Checkpoint.objects.filter(id=loose.id).exists()
    refused = root_client.post(
        reverse("admin:chronos_checkpoint_delete", args=[forked.id]), {"post": "yes"}, follow=True
    )
    assert b"branch" in refused.content
    assert Checkpoint.objects.filter(id=forked.id).exists()


def test_a_checkpoint_added_in_the_admin_is_taken_by_the_service(root: User, root_client: Client) -> None:
    """The add form makes a checkpoint with its snapshot (the service's), and its page shows it read-only."""
    main = Timeline.objects.get(name="main")
    response = root_client.post(
        reverse("admin:chronos_checkpoint_add"), {"name": "by-hand", "description": "", "timeline": main.id}
    )
    assert response.status_code == 302
    checkpoint = Checkpoint.objects.get(name="by-hand")
    assert checkpoint.snapshot and checkpoint.actor_name == "root"
    page = root_client.get(reverse("admin:chronos_checkpoint_change", args=[checkpoint.id]))
    assert page.status_code == 200 and b"Changes since" in page.content


def test_a_beings_admin_page_shows_its_history(
    root: User, root_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """Who changed the being, through which door, why and on which timeline, newest first, linked to the log."""
    being = make_being("chronicled")
    being_update(being=being, data={"tags": ["seen"]}, actor=root)
    page = root_client.get(reverse("admin:beings_basebeing_change", args=[being.soul])).content.decode()
    history = page[page.index('id="being-history"') :]
    assert history.index("root") < history.index("alice")  # the update by root is newer than alice's creation
    assert "being_update" in history and "being_create" in history and "main" in history
    assert f"{reverse('admin:chronos_change_changelist')}?q={being.soul}" in history
