"""Replay (issue 13): a finished run run again with the same hash, inputs and ``self`` snapshot as a new execution
linked by ``replay_of``, through the API, the command and the run page, with whether the two came out the same.
Runs go through a real worker."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from guardian.shortcuts import assign_perm, remove_perm

from beings.executions.queue import execution_wait
from beings.executions.selectors import target_resolve
from beings.executions.services import execution_start
from beings.models import BaseBeing, Execution
from beings.services import being_update
from luxsite.tests.fixtures import logged_in
from luxsite.tests.helpers import command, post

pytestmark = pytest.mark.django_db(transaction=True)

WAIT_SECONDS = 60.0
MULTIPLY = "def run(a, b=2):\n    print('multiplying', a, b)\n    return {'product': a * b}\n"
DICE = "import random\n\ndef run():\n    value = random.random()\n    print(value)\n    return value\n"
CLOCK = "import datetime\n\ndef run():\n    return datetime.datetime.now().isoformat()\n"
MIRROR = (
    "def run():\n"
    "    return {key: self[key] for key in ('name', 'tags', 'energy_level', 'attributes', 'self_awareness')}\n"
)


def function(make_being: Callable[..., BaseBeing], name: str, source: str, **fields: Any) -> BaseBeing:
    return make_being(name, genesis={"source": source}, **fields)


def ran(being: BaseBeing, actor: User, **inputs: Any) -> Execution:
    """A run of ``being`` by ``actor``, finished on the worker."""
    execution = execution_start(target=target_resolve(ref=str(being.soul), user=actor), actor=actor, **inputs)
    done = execution_wait(execution=execution, timeout=WAIT_SECONDS)
    assert done.finished, f"execution {done.pk} still {done.status}"
    return done


def replay_url(execution: Execution) -> str:
    return f"/api/executions/{execution.pk}/replay"


def replayed(client: Client, execution: Execution) -> dict[str, Any]:
    """The API's answer to a replay of ``execution`` waited for; the replay must have finished."""
    response = post(client, replay_url(execution), {"wait": 30})
    assert response.status_code == 200, response.content
    return dict(response.json())


def assert_refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "detail"} and body["code"] == code and body["detail"]


def test_a_deterministic_run_replays_the_same(celery_worker, make_being, alice, api):
    """The replay is a new run of the same hash with the same inputs, linked to the first; the two match."""
    being = function(make_being, "multiply", MULTIPLY)
    first = ran(being, alice, args=[6], kwargs={"b": 7})
    body = replayed(api, first)
    replay, original = body["replay"], body["original"]
    assert (body["deterministic"], body["same_status"], body["same_result"], body["same_output"]) == (
        True,
        True,
        True,
        True,
    )
    assert replay["id"] != str(first.pk) and replay["replay_of"] == original["id"] == str(first.pk)
    assert (replay["hash"], replay["args"], replay["kwargs"]) == (first.hash, [6], {"b": 7})
    assert (replay["status"], replay["result"], replay["output"]) == ("succeeded", {"product": 42}, "multiplying 6 7\n")
    assert Execution.objects.get(pk=replay["id"]).replay_of_id == first.pk
    comparison = api.get(f"/api/executions/{replay['id']}/comparison")
    assert comparison.status_code == 200 and comparison.json()["deterministic"] is True


def test_a_being_that_reads_random_or_the_clock_is_not_deterministic(celery_worker, make_being, alice, api):
    """A being drawing from `random` or reading the time answers differently on replay: not deterministic."""
    dice = ran(function(make_being, "dice", DICE), alice)
    clock = ran(function(make_being, "clock", CLOCK), alice)
    rolled = replayed(api, dice)
    assert (rolled["deterministic"], rolled["same_status"], rolled["same_result"], rolled["same_output"]) == (
        False,
        True,
        False,
        False,
    )
    timed = replayed(api, clock)
    assert (timed["deterministic"], timed["same_result"], timed["same_output"]) == (False, False, True)


def test_the_replay_carries_self_as_it_was_when_the_first_run_started(celery_worker, make_being, alice, api):
    """The being changed since (its attributes edited): the replay runs with the `self` the first run saw.

    The snapshot is rebuilt from chronos at the first run's start and kept in the replay's
    ``limits["self"]`` for the worker; a replay of the replay keeps the same snapshot.
    """
    being = function(make_being, "mirror", MIRROR, attributes={"colour": "blue"}, tags=["glass"])
    first = ran(being, alice)
    seen = first.result
    assert isinstance(seen, dict), first.error
    assert seen["attributes"] == {"colour": "blue"} and seen["self_awareness"] == {}
    being_update(being=BaseBeing.objects.get(pk=being.pk), data={"attributes": {"colour": "red"}}, actor=alice)
    now = BaseBeing.objects.get(pk=being.pk)
    assert now.attributes == {"colour": "red"}
    body = replayed(api, first)
    replay = Execution.objects.get(pk=body["replay"]["id"])
    assert replay.limits["self"] == seen
    assert (replay.result, body["deterministic"]) == (seen, True)  # the worker ran it with that snapshot
    again = Execution.objects.get(pk=replayed(api, replay)["replay"]["id"])
    assert (again.replay_of_id, again.limits["self"]) == (replay.pk, seen)


def test_only_the_starter_who_may_still_run_the_being_replays_it(celery_worker, make_being, alice, bob, root):
    """alice owns the being, bob ran it: alice may not replay bob's run (its inputs are bob's), a superuser may;
    bob may until his right to run the being is taken away; a stranger gets 404."""
    being = function(make_being, "multiply", MULTIPLY)
    assign_perm("beings.execute_being", bob, being)
    assign_perm("beings.view_basebeing", bob, being)
    bobs = ran(being, bob, args=[3])
    assert_refused(post(logged_in(alice), replay_url(bobs), {}), 403, "permission_denied")
    assert replayed(logged_in(root), bobs)["deterministic"] is True
    assert replayed(logged_in(bob), bobs)["replay"]["actor"] == "bob"
    remove_perm("beings.execute_being", bob, being)
    before = Execution.objects.count()
    assert_refused(post(logged_in(User.objects.get(pk=bob.pk)), replay_url(bobs), {}), 403, "permission_denied")
    stranger = User.objects.create_user("carol", password="carol-password-1")
    assert_refused(post(logged_in(stranger), replay_url(bobs), {}), 404, "execution_not_found")
    assert Execution.objects.count() == before


@pytest.mark.django_db
def test_a_run_not_finished_or_never_started_is_not_replayable(make_being, alice, api):
    """A queued run has nothing to compare with (409), and neither has one cancelled before it started."""
    being = function(make_being, "multiply", MULTIPLY)
    queued = execution_start(target=target_resolve(ref=str(being.soul), user=alice), args=[1], actor=alice)
    assert_refused(post(api, replay_url(queued)), 409, "execution_not_replayable")
    post(api, f"/api/executions/{queued.pk}/cancel")
    assert_refused(post(api, replay_url(queued)), 409, "execution_not_replayable")
    assert not Execution.objects.filter(replay_of=queued).exists()


def test_the_command_replays_and_says_whether_it_is_deterministic(celery_worker, make_being, alice, bob):
    """`beings replay ID` prints both runs and "deterministic: yes" (or no, and what differs); --json the comparison;
    another user's run is refused."""
    being = function(make_being, "multiply", MULTIPLY)
    first = ran(being, alice, args=[4])
    text = command("beings", "--user", "alice", "replay", str(first.pk))
    assert "deterministic: yes" in text and '"product": 8' in text and f"of {first.pk}" in text
    document = json.loads(command("beings", "replay", str(first.pk), "--json", "--user", "alice"))
    assert (document["deterministic"], document["original"]["id"], document["replay"]["replay_of"]) == (
        True,
        str(first.pk),
        str(first.pk),
    )
    dice = ran(function(make_being, "dice", DICE), alice)
    assert "deterministic: no (result, output differ)" in command("beings", "--user", "alice", "replay", str(dice.pk))
    assign_perm("beings.execute_being", bob, being)
    assign_perm("beings.view_basebeing", bob, being)
    bobs = ran(being, bob, args=[5])
    with pytest.raises(CommandError, match="permission_denied"):
        command("beings", "--user", "alice", "replay", str(bobs.pk))


def test_the_run_page_shows_the_pair_side_by_side(celery_worker, make_being, alice, api):
    """The replay's page and the first run's page both show the two runs' status, result and output, and the verdict."""
    being = function(make_being, "multiply", MULTIPLY)
    first = ran(being, alice, args=[9])
    replay_id = replayed(api, first)["replay"]["id"]
    for shown in (replay_id, first.pk):
        html = api.get(reverse("execution_detail", args=[shown])).content.decode()
        assert 'id="execution-replay"' in html
        assert '<strong id="execution-deterministic">yes</strong>' in html
        assert html.count("multiplying 9 2") >= 2 and html.count("&quot;product&quot;: 18") >= 2
        assert str(first.pk)[:8] in html and str(replay_id)[:8] in html
    dice = ran(function(make_being, "dice", DICE), alice)
    rolled = replayed(api, dice)["replay"]["id"]
    html = api.get(reverse("execution_detail", args=[rolled])).content.decode()
    assert '<strong id="execution-deterministic">no</strong>' in html


@pytest.mark.django_db
def test_replay_is_in_the_openapi_document_with_its_errors(api):
    """The replay route is documented with its success and error responses, each error a {code, detail}."""
    paths = api.get("/api/openapi.json").json()["paths"]
    responses = paths["/api/executions/{id}/replay"]["post"]["responses"]
    assert {"200", "202", "401", "403", "404", "409"} <= set(responses)
    assert (
        "starter" in responses["403"]["description"] and "execution_not_replayable" in responses["409"]["description"]
    )
    assert {"200", "404"} <= set(paths["/api/executions/{id}/comparison"]["get"]["responses"])
