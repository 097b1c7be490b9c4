"""Every user signs in at /accounts/login/ and uses the site's pages within their permissions; staff are not special."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from guardian.shortcuts import assign_perm

from beings.executions.selectors import target_resolve
from beings.executions.services import execution_start
from beings.models import BaseBeing
from luxsite.tests.fixtures import logged_in
from relations.models import Relationship

pytestmark = pytest.mark.django_db

LOGIN_URL = "/accounts/login/"


def page_of(being: BaseBeing) -> str:
    return reverse("being_detail", args=[being.soul])


def test_a_page_sends_a_visitor_to_the_login_every_user_may_use(
    client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """The being page, the run monitor and the board send a visitor to /accounts/login/, not the admin's login."""
    being = make_being("adder")

    for url in (page_of(being), reverse("execution_monitor"), reverse("souls_board")):
        response = client.get(url)
        assert (response.status_code, response["Location"]) == (302, f"{LOGIN_URL}?next={url}")


def test_an_ordinary_user_logs_in_and_lands_on_the_page_they_asked_for(
    client: Client, alice: User, make_being: Callable[..., BaseBeing]
) -> None:
    """alice, not staff, logs in on the site's styled login page and is taken to her being's page."""
    being = make_being("adder")
    assert not alice.is_staff

    form = client.get(f"{LOGIN_URL}?next={page_of(being)}")
    assert form.status_code == 200
    assert 'class="site-header"' in form.content.decode()  # the site's own layout, not the admin's

    response = client.post(LOGIN_URL, {"username": "alice", "password": "alice-password-1", "next": page_of(being)})
    assert (response.status_code, response["Location"]) == (302, page_of(being))
    assert client.get(page_of(being)).status_code == 200


def test_a_wrong_password_is_said_on_the_login_page(client: Client, alice: User) -> None:
    """A wrong password shows the form again with the reason, and signs no one in."""
    response = client.post(LOGIN_URL, {"username": "alice", "password": "wrong"})

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_an_ordinary_user_sees_their_own_beings_runs_and_aliases_and_not_others(
    alice: User, bob: User, make_being: Callable[..., BaseBeing]
) -> None:
    """On the being page, the monitor and the board alice finds what is hers and nothing of bob's."""
    mine, theirs = make_being("alices-adder"), make_being("bobs-secret", actor=bob)
    for owner, being in ((alice, mine), (bob, theirs)):
        execution_start(target=target_resolve(ref=str(being.soul), user=owner), kwargs={}, actor=owner)
    client = logged_in(alice)

    assert client.get(page_of(mine)).status_code == 200
    other = client.get(page_of(theirs))
    assert other.status_code != 200
    assert "bobs-secret" not in other.content.decode()
    for url in (reverse("execution_monitor"), reverse("souls_board")):
        response = client.get(url)
        content = response.content.decode()
        assert response.status_code == 200
        assert "alices-adder" in content
        assert "bobs-secret" not in content


def test_the_nav_names_the_user_and_offers_log_out_and_the_admin_only_to_staff(
    client: Client, alice: User, root: User
) -> None:
    """A visitor is offered the login; alice sees her name, the password change and Log out; only staff the admin."""
    visitor = client.get("/").content.decode()
    assert f'href="{LOGIN_URL}?next=/"' in visitor
    assert 'href="/admin/"' not in visitor

    ordinary = logged_in(alice).get("/").content.decode()
    assert ">alice</a>" in ordinary
    assert f'href="{reverse("password_change")}"' in ordinary
    assert f'action="{reverse("logout")}"' in ordinary
    assert 'href="/admin/"' not in ordinary

    assert 'href="/admin/"' in logged_in(root).get("/").content.decode()


def test_log_out_is_a_post_that_ends_the_session(alice: User) -> None:
    """Logging out takes a POST (a link cannot log anyone out) and returns to the home page, signed out."""
    client = logged_in(alice)

    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))

    assert (response.status_code, response["Location"]) == (302, "/")
    assert "_auth_user_id" not in client.session


def test_an_ordinary_user_changes_their_password(client: Client, alice: User) -> None:
    """alice changes her password on the site's page, stays signed in, and the new one logs her in next time."""
    client.force_login(alice)
    new = "a-new-long-pass-77"
    data = {"old_password": "alice-password-1", "new_password1": new, "new_password2": new}

    response = client.post(reverse("password_change"), data, follow=True)

    assert response.redirect_chain == [(reverse("password_change_done"), 302)]
    assert "Password changed" in response.content.decode()
    assert Client().login(username="alice", password=new)


def test_the_being_page_lists_relationships_in_and_out_with_links_to_beings_the_user_may_view(
    alice: User, bob: User, make_being: Callable[..., BaseBeing], make_link: Callable[..., Relationship]
) -> None:
    """Links out and in are listed with the other being's page; one whose other end alice may not view is not."""
    adder, table, caller = make_being("adder"), make_being("lookup", kind="data"), make_being("caller")
    make_link(adder, table, tags=["reads"])
    make_link(caller, adder, tags=["calls"])
    hidden = make_being("bobs-hidden", actor=bob)
    make_link(adder, hidden, actor=bob)  # bob's link, to bob's being: not alice's to see
    for relationship in Relationship.objects.filter(target=hidden):
        assign_perm("relations.view_relationship", alice, relationship)  # she may view the link, not its other end

    response = logged_in(alice).get(page_of(adder))

    section = response.content.decode().split('id="relationships"', 1)[1].split("</section>", 1)[0]
    assert f'<a href="{page_of(table)}">lookup</a>' in section
    assert f'<a href="{page_of(caller)}">caller</a>' in section
    assert "→ out" in section and "← in" in section
    assert "reads" in section and "calls" in section
    assert "bobs-hidden" not in section
    assert page_of(hidden) not in section
