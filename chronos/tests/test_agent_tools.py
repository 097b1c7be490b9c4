"""Each agent tool over HTTP with the SDK's client: what it does to LuxOS, and its refusals as tool errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from mcp import Client
from pytest_django.live_server_helper import LiveServer

from beings.models import BaseBeing, Promotion
from beings.services import being_update
from chronos import services
from chronos.models import Checkpoint, Dream, Lesson, Timeline
from chronos.tests.agent_clients import session
from luxsite.tests.fixtures import BeingMaker
from luxsite.tests.helpers import wait_for
from luxsite.tokens import token_create

pytestmark = pytest.mark.django_db(transaction=True)

Call = tuple[str, dict[str, Any]]


@pytest.fixture
def as_root(live_server: LiveServer, root: User) -> Callable[..., list[Any]]:
    """Call tools in order, in one session over HTTP, with root's token; their results."""
    _token, secret = token_create(user=root, name="agent")
    return lambda *calls: calls_run(live_server, secret, calls)


@pytest.fixture
def as_bob(live_server: LiveServer, bob: User) -> Callable[..., list[Any]]:
    """The same, as bob: no staff, no chronos permission."""
    _token, secret = token_create(user=bob, name="agent")
    return lambda *calls: calls_run(live_server, secret, calls)


def calls_run(live_server: LiveServer, secret: str, calls: tuple[Call, ...]) -> list[Any]:
    async def work(client: Client) -> list[Any]:
        return [await client.call_tool(name, arguments) for name, arguments in calls]

    run: Callable[[Client], Awaitable[list[Any]]] = work
    return session(f"{live_server.url}/mcp", run, token=secret)


def test_restore_checkpoint_undoes_a_change_and_names_its_safety_checkpoint(
    as_root: Callable[..., list[Any]], root: User, make_being: BeingMaker
) -> None:
    """Preview counts the changed row; the restore brings the old tags back after a safety checkpoint it names."""
    being = make_being("painter", tags=["red"])
    [created] = as_root(("create_checkpoint", {"name": "before-blue"}))
    being_update(being=being, data={"tags": ["blue"]}, actor=root)

    preview, restored, deleted = as_root(
        ("restore_checkpoint", {"checkpoint": "before-blue", "preview": True}),
        ("restore_checkpoint", {"checkpoint": "before-blue"}),
        ("delete_checkpoint", {"checkpoint": created.structured_content["id"]}),
    )

    assert preview.structured_content["total"] == 1
    assert preview.structured_content["stat"] == [{"table": "base_beings", "kind": "changed", "count": 1}]
    assert preview.structured_content["needs_force"] is False
    assert restored.structured_content["safety"]["name"] == "before-restore-before-blue"
    assert restored.structured_content["rows"] == {"base_beings": 1}
    assert BaseBeing.objects.get(soul=being.soul).tags == ["red"]
    assert deleted.structured_content == {"deleted": created.structured_content["id"], "name": "before-blue"}
    assert list(Checkpoint.objects.values_list("name", flat=True)) == ["before-restore-before-blue"]


def test_branch_list_and_merge_a_timeline_into_the_live_one(
    as_root: Callable[..., list[Any]], root: User, make_being: BeingMaker
) -> None:
    """A branch made through the door, changed while live, merges back into main: preview first, then applied."""
    being = make_being("painter", tags=["red"])
    [branched] = as_root(("branch_timeline", {"name": "side", "description": "an experiment"}))
    services.timeline_switch(name="side", actor=root)
    being_update(being=being, data={"tags": ["side"]}, actor=root)
    services.timeline_switch(name="main", actor=root)

    listed, preview, merged = as_root(
        ("list_timelines", {}),
        ("merge_timeline", {"source": "side", "preview": True}),
        ("merge_timeline", {"source": "side"}),
    )

    assert branched.structured_content == {**branched.structured_content, "name": "side", "live": False}
    assert branched.structured_content["parent"] == "main"
    assert [(t["name"], t["live"]) for t in listed.structured_content["items"]] == [("main", True), ("side", False)]
    assert (preview.structured_content["status"], preview.structured_content["conflicts"]) == ("open", [])
    assert (merged.structured_content["source"], merged.structured_content["into"]) == ("side", "main")
    assert merged.structured_content["status"] == "applied"
    assert BaseBeing.objects.get(soul=being.soul).tags == ["side"]
    assert Timeline.objects.get(live=True).name == "main"


def test_assess_risk_weighs_an_operation_or_a_text_and_refuses_both_or_neither(
    as_root: Callable[..., list[Any]], make_being: BeingMaker
) -> None:
    """An operation on a being and a Polish text are weighed with named reasons; a call with neither is refused."""
    being = make_being("painter")

    operation, text, neither, unknown = as_root(
        ("assess_risk", {"operation": "delete", "target": str(being.soul)}),
        ("assess_risk", {"text": "Usuń wszystkie byty i przeprowadź migrację"}),
        ("assess_risk", {}),
        ("assess_risk", {"operation": "explode", "target": str(being.soul)}),
    )

    assert operation.structured_content["operation"] == "delete"
    assert "operation" in [reason["name"] for reason in operation.structured_content["reasons"]]
    assert operation.structured_content["level"] in {"medium", "high", "critical"}
    assert text.structured_content["operation"] == "text"
    assert text.structured_content["level"] in {"high", "critical"}
    assert neither.is_error
    assert neither.structured_content == {
        "code": "risk_input_invalid",
        "detail": "send either operation (with target) or text",
    }
    assert unknown.is_error
    assert unknown.structured_content["detail"].startswith("'explode' is not an operation")


def test_a_lesson_added_by_the_agent_is_found_by_an_inflection(
    as_root: Callable[..., list[Any]], as_bob: Callable[..., list[Any]], make_being: BeingMaker
) -> None:
    """add_lesson records it (linked to the being); search_lessons finds it by "migracja"; bob may add none."""
    being = make_being("migrator")

    added, found, other = as_root(
        (
            "add_lesson",
            {
                "situation": "Błąd podczas migracji bazy danych",
                "action": "rollback",
                "tags": ["DB", "db"],
                "being": str(being.soul),
            },
        ),
        ("search_lessons", {"query": "migracja"}),
        ("search_lessons", {"query": "relationship"}),
    )
    [refused] = as_bob(("add_lesson", {"situation": "not mine to say"}))

    lesson = Lesson.objects.get(pk=added.structured_content["id"])
    assert (lesson.situation, lesson.tags, lesson.being_id) == ("Błąd podczas migracji bazy danych", ["db"], being.soul)
    assert [item["id"] for item in found.structured_content["items"]] == [lesson.id]
    assert other.structured_content["items"] == []
    assert refused.is_error
    assert refused.structured_content == {
        "code": "permission_denied",
        "detail": "adding a lesson needs the chronos.add_lesson permission",
    }
    assert Lesson.objects.count() == 1


def test_start_dream_queues_the_plan_and_the_worker_keeps_it(
    as_root: Callable[..., list[Any]], make_being: BeingMaker, celery_worker: Any
) -> None:
    """start_dream answers the queued dream; the real worker runs its plan, meeting what it expects."""
    being = make_being("adder", genesis={"source": "def run(x):\n    return x + 1\n"})

    started, bad = as_root(
        ("start_dream", {"name": "plus one", "plan": [{"execute": str(being.soul), "args": [2], "expect": 3}]}),
        ("start_dream", {"name": "bad", "plan": [{"explode": str(being.soul)}]}),
    )

    assert started.structured_content == {**started.structured_content, "name": "plus one", "status": "queued"}
    dream = wait_for(
        lambda: Dream.objects.filter(id=started.structured_content["id"], status__in={"kept", "merged"}).first(), 60
    )
    assert dream.success_rate == 1.0
    assert bad.is_error
    assert bad.structured_content["detail"] == "step 1: a step has exactly one of execute and evolve"
    assert Dream.objects.count() == 1


def test_promote_soul_needs_the_evidence_or_an_override_reason(
    as_root: Callable[..., list[Any]], make_being: BeingMaker
) -> None:
    """A version that never ran is refused in production with what is missing; with a reason root overrides."""
    being = make_being("fresh")

    refused, promoted = as_root(
        ("promote_soul", {"hash": being.hash}),
        ("promote_soul", {"hash": being.hash, "override_reason": "hotfix, tested by hand", "note": "agent"}),
    )

    assert refused.is_error
    assert refused.structured_content["code"] == "promotion_evidence_missing"
    promotion = Promotion.objects.get()
    assert promoted.structured_content["id"] == promotion.id
    assert (promotion.hash, promotion.environment, promotion.actor_name) == (being.hash, "production", "root")
    assert promotion.override_reason == "hotfix, tested by hand"
