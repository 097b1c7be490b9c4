"""Merges through their doors: the API, manage.py chronos merge|conflicts|resolve, the merge page and the admin."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from beings.models import BaseBeing
from beings.services import being_update
from chronos.models import Merge
from chronos.services import timeline_create, timeline_switch
from chronos.tests.helpers import tables_dump
from luxsite.tests.fixtures import logged_in
from luxsite.tests.helpers import command, command_refused, post
from luxsite.tokens import token_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def root_bearer(root: User) -> dict[str, str]:
    _token, secret = token_create(user=root, name="tests")
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def clash(root: User, make_being: Callable[..., BaseBeing]) -> BaseBeing:
    """A being whose colour the branch made blue and main made green, and whose size only the branch changed."""
    being = make_being("painter", attributes={"colour": "red", "size": 1})
    timeline_create(name="branch", actor=root)
    timeline_switch(name="branch", actor=root)
    being_update(being=being, data={"attributes": {"colour": "blue", "size": 2}}, actor=root)
    timeline_switch(name="main", actor=root)
    being_update(
        being=BaseBeing.objects.get(soul=being.soul), data={"attributes": {"colour": "green", "size": 1}}, actor=root
    )
    return being


def attributes(being: BaseBeing) -> dict[str, Any]:
    return BaseBeing.objects.get(soul=being.soul).attributes


def test_api_preview_resolve_apply(root_bearer: dict[str, str], clash: BaseBeing) -> None:
    """Preview lists the conflict; apply is a 409 naming it; resolved, apply writes and names the safety checkpoint."""
    client = Client()
    created = post(client, "/api/chronos/merges/", {"source": "branch", "into": "main"}, **root_bearer)
    assert created.status_code == 201, created.content
    merge = created.json()
    assert (merge["source"], merge["into"], merge["strategy"], merge["status"]) == ("branch", "main", "field", "open")
    assert merge["open_conflicts"] == 1 and merge["stats"]["writes"] == 1
    [conflict] = merge["conflicts"]
    assert {key: conflict[key] for key in ("table", "path", "base", "ours", "theirs", "resolution")} == {
        "table": "base_beings",
        "path": ["attributes", "colour"],
        "base": "red",
        "ours": "green",
        "theirs": "blue",
        "resolution": "",
    }
    before = tables_dump()
    refused = post(client, f"/api/chronos/merges/{merge['id']}/apply", **root_bearer)
    assert refused.status_code == 409
    assert refused.json()["code"] == "merge_conflicts_open"
    assert f"#{conflict['id']}" in refused.json()["detail"]
    assert tables_dump() == before

    bad = post(
        client,
        f"/api/chronos/merges/{merge['id']}/conflicts/{conflict['id']}",
        {"resolution": "sideways"},
        **root_bearer,
    )
    assert bad.status_code == 422
    resolved = post(
        client,
        f"/api/chronos/merges/{merge['id'][:8]}/conflicts/{conflict['id']}",
        {"resolution": "value", "value": "purple"},
        **root_bearer,
    )
    assert resolved.status_code == 200, resolved.content
    assert (resolved.json()["resolution"], resolved.json()["value"], resolved.json()["resolved_by"]) == (
        "value",
        "purple",
        "root",
    )
    applied = post(client, f"/api/chronos/merges/{merge['id']}/apply", **root_bearer)
    assert applied.status_code == 200, applied.content
    assert applied.json()["status"] == "applied" and applied.json()["safety"]
    assert attributes(clash) == {"colour": "purple", "size": 2}
    shown = client.get(f"/api/chronos/merges/{merge['id']}", headers=root_bearer).json()
    assert shown["status"] == "applied" and shown["conflicts"][0]["resolution"] == "value"
    listed = client.get("/api/chronos/merges/", headers=root_bearer).json()
    assert [(item["id"], item["status"], item["open_conflicts"]) for item in listed] == [(merge["id"], "applied", 0)]


def test_api_refuses_who_may_not_merge(alice: User, clash: BaseBeing) -> None:
    """A viewer of chronos without chronos.merge_timeline gets a 403, and nothing is created."""
    alice.user_permissions.add(Permission.objects.get(codename="view_checkpoint"))
    _token, secret = token_create(user=alice, name="tests")
    response = post(
        Client(), "/api/chronos/merges/", {"source": "branch", "into": "main"}, Authorization=f"Bearer {secret}"
    )
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert not Merge.objects.exists()
    nobody = post(Client(), "/api/chronos/merges/", {"source": "branch", "into": "main"})
    assert nobody.status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"source": "nowhere", "into": "main"}, 404, "timeline_not_found"),
        ({"source": "main", "into": "main"}, 422, "merge_same_timeline"),
        ({"source": "branch", "into": "main", "strategy": "mine"}, 422, None),
        ({"source": "branch"}, 422, None),
    ],
)
def test_api_refuses_bad_previews(
    root_bearer: dict[str, str], clash: BaseBeing, body: dict[str, Any], status: int, code: str | None
) -> None:
    """An unknown timeline, a merge into itself, an unknown strategy or a missing field: refused, nothing made."""
    response = post(Client(), "/api/chronos/merges/", body, **root_bearer)
    assert response.status_code == status, response.content
    if code:
        assert response.json()["code"] == code
    assert not Merge.objects.exists()


def chronos(*args: str) -> str:
    return command("chronos", *args, "--as", "root")


def test_command_merge_conflicts_resolve_continue(clash: BaseBeing) -> None:
    """merge stops on the conflict and lists it; resolve takes theirs; merge --continue --yes applies it."""
    preview = json.loads(chronos("merge", "branch", "--into", "main", "--preview", "--json"))
    assert preview["status"] == "open" and preview["conflicts"][0]["path"] == ["attributes", "colour"]
    error = command_refused("chronos", "merge", "branch", "--into", "main", "--yes", "--as", "root")
    assert error.returncode == 1 and "1 open conflict(s)" in str(error)
    merge = Merge.objects.get(status="open")
    listed = chronos("conflicts")
    assert "attributes.colour" in listed and '"green"' in listed and '"blue"' in listed
    [conflict] = json.loads(chronos("conflicts", str(merge.id)[:8], "--json"))
    assert command_refused("chronos", "resolve", str(conflict["id"]), "--as", "root").returncode == 2
    assert "resolved: theirs" in chronos("resolve", str(conflict["id"]), "theirs")
    printed = chronos("merge", "branch", "--into", "main", "--continue", "--yes")
    assert "merged branch into main: 1 rows written" in printed and "undo it with" in printed
    assert attributes(clash) == {"colour": "blue", "size": 2}
    assert chronos("conflicts") == "no conflicts\n"


def test_command_resolves_with_an_edited_value_and_refuses_a_bad_one(clash: BaseBeing) -> None:
    """--value JSON sets the value; a value the write refuses exits 1 with its code."""
    chronos("merge", "branch", "--into", "main", "--preview")
    conflict = Merge.objects.get().conflicts.get()
    assert "resolved: value" in chronos("resolve", str(conflict.id), "--value", '"teal"')
    chronos("merge", "branch", "--into", "main", "--continue", "--yes")
    assert attributes(clash)["colour"] == "teal"
    error = command_refused("chronos", "resolve", "999999", "ours", "--as", "root")
    assert "conflict_not_found" in str(error)


def test_the_merge_page_resolves_and_applies(root: User, clash: BaseBeing) -> None:
    """The dashboard links the merge; its page shows the three values, refuses bad JSON, then resolves and applies."""
    client = logged_in(root)
    dashboard = client.get("/chronos/").content.decode()
    assert "/chronos/merges/?source=branch" in dashboard
    start = client.get("/chronos/merges/?source=branch")
    assert start.status_code == 200 and 'value="branch"' in start.content.decode()
    preview = client.post("/chronos/merges/", {"source": "branch", "into": "main", "strategy": "field"})
    assert preview.status_code == 302
    page_url = preview["Location"]
    merge = Merge.objects.get()
    conflict = merge.conflicts.get()
    page = client.get(page_url).content.decode()
    assert f'id="conflict-{conflict.id}"' in page and "&quot;green&quot;" in page and "&quot;blue&quot;" in page
    assert 'id="risk"' in page

    refused = client.post(f"{page_url}apply/")
    assert refused.status_code == 409 and "merge_conflicts_open" in refused.content.decode()
    bad = client.post(f"{page_url}conflicts/{conflict.id}/", {"resolution": "value", "value": "{nope"})
    assert bad.status_code == 422 and "not JSON" in bad.content.decode()
    done = client.post(f"{page_url}conflicts/{conflict.id}/", {"resolution": "ours"})
    assert done.status_code == 302
    applied = client.post(f"{page_url}apply/", follow=True)
    assert applied.status_code == 200
    assert "Merged branch into main" in applied.content.decode()
    assert attributes(clash) == {"colour": "green", "size": 2}


def test_the_merge_start_page_says_why_a_preview_is_refused(root: User, clash: BaseBeing) -> None:
    """A merge of a timeline that does not exist shows the form again with the reason."""
    response = logged_in(root).post("/chronos/merges/", {"source": "nowhere", "into": "main", "strategy": "field"})
    assert response.status_code == 404 and "timeline_not_found" in response.content.decode()


def test_the_admin_lists_a_merge_and_applies_it(root: User, clash: BaseBeing) -> None:
    """The admin shows a merge with its conflicts and applies it by its action once they are resolved."""
    client = logged_in(root)
    chronos("merge", "branch", "--into", "main", "--preview")
    merge = Merge.objects.get()
    assert client.get("/admin/chronos/merge/").status_code == 200
    detail = client.get(f"/admin/chronos/merge/{merge.id}/change/").content.decode()
    assert "attributes" in detail and f"/chronos/merges/{merge.id}/" in detail
    refused = client.post(
        "/admin/chronos/merge/", {"action": "apply_merges", "_selected_action": [str(merge.id)]}, follow=True
    )
    assert "merge_conflicts_open" in refused.content.decode()
    chronos("resolve", str(merge.conflicts.get().id), "theirs")
    client.post("/admin/chronos/merge/", {"action": "apply_merges", "_selected_action": [str(merge.id)]})
    assert Merge.objects.get().status == "applied"
    assert attributes(clash) == {"colour": "blue", "size": 2}


def test_listing_merges_costs_the_same_queries_for_one_or_many(
    root: User, root_bearer: dict[str, str], clash: BaseBeing
) -> None:
    """The API list and the merges page read each merge's timelines and open conflicts without a query per merge."""
    client, page = Client(), logged_in(root)

    def queries() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as api_queries:
            assert client.get("/api/chronos/merges/", headers=root_bearer).status_code == 200
        with CaptureQueriesContext(connection) as page_queries:
            assert page.get("/chronos/merges/").status_code == 200
        return len(api_queries), len(page_queries)

    chronos("merge", "branch", "--into", "main", "--preview")
    queries()  # the first API request stamps the token's last use: one UPDATE more
    one = queries()
    timeline_create(name="other", actor=root)
    for strategy in ("row", "ours"):
        chronos("merge", "other", "--into", "main", "--preview", "--strategy", strategy)
    assert Merge.objects.count() == 3
    assert queries() == one
    listed = page.get("/chronos/merges/").content.decode()
    assert listed.count('href="/chronos/merges/') == 3 and "abandoned" in listed
