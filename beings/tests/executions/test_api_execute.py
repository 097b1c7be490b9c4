"""What a run through HTTP costs before it is queued: its token, its being with the view check, the insert;
and that each way of holding the permissions still counts, each way of lacking them still refuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from guardian.shortcuts import assign_perm

from beings.exceptions import BeingNotFoundError
from beings.executions.selectors import target_resolve
from beings.models import BaseBeing, Execution
from luxsite.tokens import token_authenticate, token_create

pytestmark = pytest.mark.django_db

GRANTS = ("superuser", "on the being", "through a group", "global", "global through a group")


def grant(user: User, how: str, being: BaseBeing, codenames: tuple[str, ...]) -> None:
    """Give ``user`` the being permissions ``codenames`` on ``being`` in one of the ways ``may`` accepts."""
    if how == "superuser":
        user.is_superuser = True
        user.save(update_fields=["is_superuser"])
        return
    group, _ = Group.objects.get_or_create(name="runners")
    if "group" in how:
        user.groups.add(group)
    for codename in codenames:
        if how == "on the being":
            assign_perm(codename, user, being)
        elif how == "through a group":
            assign_perm(codename, group, being)
        else:
            holder = group.permissions if "group" in how else user.user_permissions
            holder.add(Permission.objects.get(content_type__app_label="beings", codename=codename))


def bearer_of(user: User) -> dict[str, str]:
    _token, secret = token_create(user=user)
    token_authenticate(secret)  # its first use written: within the minute a request writes nothing more
    return {"Authorization": f"Bearer {secret}"}


def execute(headers: dict[str, str], being: BaseBeing) -> Any:
    return Client().post(f"/api/beings/{being.soul}/execute", "{}", content_type="application/json", headers=headers)


@pytest.mark.parametrize("how", GRANTS)
def test_a_run_by_soul_costs_three_queries_however_the_permission_is_held(
    how: str, bob: User, make_being: Callable[..., BaseBeing], django_assert_num_queries: Any
) -> None:
    """The token with its user, the being with the view check, the insert with the execute check: one query each."""
    being = make_being("echo")
    grant(bob, how, being, ("view_basebeing", "execute_being"))
    headers = bearer_of(bob)
    with django_assert_num_queries(3):
        response = execute(headers, being)
    assert response.status_code == 202, response.content
    assert Execution.objects.get(pk=response.json()["id"]).actor_id == bob.pk


@pytest.mark.parametrize("how", GRANTS[1:])
def test_a_being_one_may_not_view_is_not_found_and_one_only_viewed_may_not_run(
    how: str, bob: User, make_being: Callable[..., BaseBeing]
) -> None:
    """Without view the being does not exist (404, as an unknown soul); with view alone its run is refused (403)."""
    being = make_being("echo")
    headers = bearer_of(bob)
    hidden = execute(headers, being)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "being_not_found")
    assert hidden.json()["detail"] == f"no being has soul {being.soul}"
    grant(bob, how, being, ("view_basebeing",))
    refused = execute(headers, being)
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert not Execution.objects.filter(being=being).exists()


def test_an_inactive_superuser_may_not_view_a_being(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """The view check asks for an active user, a superuser too, as Django's and guardian's checks do."""
    being = make_being("echo")
    root.is_active = False
    root.save(update_fields=["is_active"])
    with pytest.raises(BeingNotFoundError, match=f"no being has soul {being.soul}"):
        target_resolve(ref=str(being.soul), user=root)


def test_a_run_leaves_the_beings_memories_unread(alice: User, make_being: Callable[..., BaseBeing]) -> None:
    """The being a run names is loaded without its memories, which are still there for whoever reads them."""
    being = make_being("echo")
    memories = [{"event": "run", "status": "succeeded", "n": n} for n in range(50)]
    BaseBeing.objects.filter(pk=being.pk).update(memories=memories)
    target = target_resolve(ref=str(being.soul), user=alice)
    assert target.being.get_deferred_fields() == {"memories"}
    assert (target.being.name, target.being.genesis, target.hash) == ("echo", being.genesis, being.hash)
    assert target.being.memories == memories
