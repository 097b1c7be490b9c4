"""Dreams through their doors: a plan refused as a whole, the API, ``manage.py chronos dream``, pages, admin, graph."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from beings.models import BaseBeing
from chronos.dreams.services import dream_run, dream_start
from chronos.graph import timelines_collect, timelines_dot
from chronos.models import Dream
from chronos.tests.test_dreams_run import ADD_ONE, TIMES_TEN, adder
from luxsite.tests.fixtures import logged_in
from luxsite.tests.helpers import command, command_refused, post, refused, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

DREAMS = "/api/chronos/dreams/"
FINISHED = {"kept", "merged", "discarded", "failed"}


def soul(being: BaseBeing) -> str:
    return str(being.soul)


BAD_PLANS: list[tuple[Callable[[BaseBeing], Any], str]] = [
    (lambda being: {"execute": soul(being)}, "a plan is a non-empty JSON array"),
    (lambda being: [], "a plan is a non-empty JSON array"),
    (lambda being: ["run"], "step 1: a step is a JSON object"),
    (lambda being: [{"execute": soul(being), "evolve": soul(being)}], "step 1: a step has exactly one of"),
    (lambda being: [{"run": soul(being)}], "step 1: a step has exactly one of"),
    (lambda being: [{"execute": soul(being), "args": [1]}, {"execute": soul(being), "bogus": 1}], "step 2: unknown"),
    (lambda being: [{"execute": "nobody-by-this-alias"}], "step 1: "),
    (lambda being: [{"execute": soul(being), "args": "1"}], "step 1: args must be a JSON array"),
    (lambda being: [{"evolve": soul(being)}], "step 1: an evolve step needs the new source"),
    (lambda being: [{"evolve": soul(being), "source": "def run(:\n"}], "step 1: "),
    (lambda being: [{"evolve": soul(being), "source": ADD_ONE}], "step 1: nothing changed"),
    (lambda being: [{"evolve": soul(being), "source": TIMES_TEN, "expect": "maybe"}], "step 1: an evolve step expects"),
]


@pytest.mark.parametrize(("plan_of", "detail"), BAD_PLANS)
def test_a_bad_plan_is_refused_whole_and_nothing_is_written(
    root: User,
    make_being: Callable[..., BaseBeing],
    unchanged: Callable[[], Any],
    plan_of: Callable[[BaseBeing], Any],
    detail: str,
) -> None:
    """Each kind of bad plan is a 422 naming its step and why; no dream, no change anywhere."""
    being = adder(make_being)
    with unchanged():
        error = refused("dream_plan_invalid", lambda: dream_start(name="bad", plan=plan_of(being), actor=root))
    assert detail in error.detail and error.status == 422
    assert not Dream.objects.exists()


@pytest.mark.parametrize("seconds", [0, 61, True])
def test_a_dream_is_bounded_by_its_setting(root: User, make_being: Callable[..., BaseBeing], seconds: Any) -> None:
    """A dream may ask for less time than CHRONOS_DREAM_SECONDS, never more, never none."""
    being = adder(make_being)
    plan = [{"execute": soul(being)}]
    error = refused("dream_plan_invalid", lambda: dream_start(name="bound", plan=plan, actor=root, seconds=seconds))
    assert "CHRONOS_DREAM_SECONDS (60)" in error.detail


def test_a_far_off_start_time_is_stored_in_utc_or_refused(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """not_before at an offset PostgreSQL refuses (past 15:59) is kept as the same instant; off the calendar, a 422."""
    plan = [{"execute": soul(adder(make_being))}]
    later = datetime(2999, 1, 1, 12, tzinfo=timezone.get_fixed_timezone(-(23 * 60 + 23)))
    dream = dream_start(name="late", plan=plan, actor=root, not_before=later)
    assert Dream.objects.get(pk=dream.pk).not_before == later
    too_early = datetime(1, 1, 1, tzinfo=timezone.get_fixed_timezone(23 * 60))
    error = refused(
        "dream_plan_invalid", lambda: dream_start(name="early", plan=plan, actor=root, not_before=too_early)
    )
    assert "outside the years 1 to 9999" in error.detail


def test_who_may_dream(bob: User, root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Starting a dream needs chronos.add_dream (the API first needs a chronos viewer): a 403 otherwise."""
    being = adder(make_being)
    plan = [{"execute": soul(being)}]
    refused("permission_denied", lambda: dream_start(name="no", plan=plan, actor=bob))
    response = post(logged_in(bob), DREAMS, {"name": "no", "plan": plan})
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert not Dream.objects.exists()


def test_the_api_starts_lists_shows_and_compares_dreams(
    celery_worker: Any,
    root: User,
    make_being: Callable[..., BaseBeing],
    django_assert_num_queries: Any,
) -> None:
    """POST queues a dream (202); GET follows it to its outcome; the list pages newest first; compare pairs two."""
    being = adder(make_being)
    client = logged_in(root)
    bad = post(client, DREAMS, {"name": "bad", "plan": [{"evolve": soul(being)}]})
    assert bad.status_code == 422 and bad.json()["code"] == "dream_plan_invalid"

    started = post(client, DREAMS, {"name": "one", "plan": [{"execute": soul(being), "args": [4], "expect": 5}]})
    assert started.status_code == 202, started.content
    body = started.json()
    assert (body["status"], body["name"], body["seconds"], body["timeline"]) == ("queued", "one", 60, None)
    done = wait_for(lambda: (r := client.get(f"{DREAMS}{body['id']}").json())["status"] in FINISHED and r)
    assert (done["status"], done["success_rate"], done["timeline"]) == ("kept", 1.0, f"dream_{body['id']}")
    assert (done["results"][0]["result"], done["results"][0]["ok"]) == (5, True)
    assert done["merge"] is not None and done["fork"] is not None

    other = post(client, DREAMS, {"name": "two", "plan": [{"execute": soul(being), "args": [4], "expect": 6}]}).json()
    wait_for(lambda: client.get(f"{DREAMS}{other['id']}").json()["status"] in FINISHED)

    with django_assert_num_queries(3):  # the session, its user, one page of dreams with their timelines
        listed = client.get(f"{DREAMS}?limit=1").json()
    assert [item["name"] for item in listed["items"]] == ["two"] and listed["next"]
    assert [item["name"] for item in client.get(f"{DREAMS}?after={listed['next']}").json()["items"]] == ["one"]
    assert [item["name"] for item in client.get(f"{DREAMS}?status=discarded").json()["items"]] == ["two"]

    compared = client.get(f"{DREAMS}compare?a={body['id'][:8]}&b={other['id']}").json()
    assert (compared["a"]["success_rate"], compared["b"]["success_rate"], compared["better"]) == (1.0, 0.0, "a")
    missing = client.get(f"{DREAMS}00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["code"] == "dream_not_found"


def test_the_command_starts_waits_lists_shows_and_compares(
    celery_worker: Any, root: User, make_being: Callable[..., BaseBeing], tmp_path: Path
) -> None:
    """``chronos dream start`` takes the plan inline or from a file and waits with --wait; list, show, compare."""
    being = adder(make_being)
    plan = [{"execute": soul(being), "args": [1], "expect": 2}]
    inline = json.loads(
        command("chronos", "dream", "start", "inline", "--plan", json.dumps(plan), "--wait", "--json", "--as", "root")
    )
    assert (inline["status"], inline["results"][0]["result"]) == ("kept", 2)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps([{"execute": soul(being), "args": [1], "expect": 3}]))
    text = command("chronos", "dream", "start", "from-file", str(plan_file), "--wait", "--as", "root")
    assert "from-file" in text and "discarded, 0% of its steps as planned" in text and "step 1 execute" in text

    listed = json.loads(command("chronos", "dream", "list", "--json", "--as", "root"))
    assert [dream["name"] for dream in listed] == ["from-file", "inline"]
    shown = command("chronos", "dream", "show", inline["id"][:8], "--as", "root")
    assert f"timeline dream_{inline['id']}" in shown and "ok 2" in shown
    compared = command("chronos", "dream", "compare", inline["id"], listed[0]["id"], "--as", "root")
    assert "better: A (inline)" in compared

    error = command_refused("chronos", "dream", "start", "bad", "--plan", "[{}]", "--as", "root")
    assert error.returncode == 1 and "dream_plan_invalid: step 1" in str(error)
    error = command_refused("chronos", "dream", "start", "both", str(plan_file), "--plan", "[]", "--as", "root")
    assert error.returncode == 2


@pytest.fixture
def dreamt(root: User, make_being: Callable[..., BaseBeing]) -> Dream:
    """A discarded dream run here (its plan only evolves: no sandbox needed), and its being."""
    being = adder(make_being, "dreamer")
    plan = [{"evolve": soul(being), "source": TIMES_TEN, "expect": "mutation"}]
    dream = dream_start(name="night", plan=plan, actor=root, not_before=timezone.now() + timedelta(days=1))
    return dream_run(dream_id=dream.id, worker="here")


def test_the_dream_pages_show_steps_changes_and_comparisons(root: User, dreamt: Dream, bob: User) -> None:
    """The list links the dream; its page shows each step and the diff from its fork; compare pairs two."""
    client = logged_in(root)
    listed = client.get("/chronos/dreams/")
    assert listed.status_code == 200 and f'href="/chronos/dreams/{dreamt.id}/"' in listed.content.decode()
    page = client.get(f"/chronos/dreams/{dreamt.id}/").content.decode()
    assert "discarded" in page and 'data-step="1"' in page and "genesis.source" in page and "dreamer" in page
    compared = client.get(f"/chronos/dreams/compare/?a={dreamt.id}&b={dreamt.id}").content.decode()
    assert "Step 1 evolve" in compared and "Even." in compared
    assert logged_in(bob).get("/chronos/dreams/").status_code == 403


def test_the_admin_shows_dreams_read_only(root: User, dreamt: Dream) -> None:
    """Dreams are listed and shown in the admin, never added or changed there."""
    client: Client = logged_in(root)
    assert "night" in client.get("/admin/chronos/dream/").content.decode()
    page = client.get(f"/admin/chronos/dream/{dreamt.id}/change/").content.decode()
    assert "evolve" in page and "Discarded" in page
    assert client.get("/admin/chronos/dream/add/").status_code == 403


def test_the_timeline_graph_marks_a_dreams_timeline(dreamt: Dream) -> None:
    """On the dashboard's graph a dream's timeline starts at a node named after the dream and its outcome."""
    dot = timelines_dot(timelines_collect())
    assert '"dream night\\ndiscarded"' in dot and f'URL="/chronos/dreams/{dreamt.id}/"' in dot
