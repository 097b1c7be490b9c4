"""The agent door over stdio: ``manage.py mcp`` spawned as the SDK client's subprocess, on the test database."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from mcp import Client

from beings.models import BaseBeing, Execution
from chronos.models import Checkpoint
from chronos.selectors import being_history
from chronos.tests.agent_clients import over_stdio, session
from luxsite.tests.fixtures import BeingMaker
from luxsite.tokens import token_create

pytestmark = pytest.mark.django_db(transaction=True)

CHRONO_SKILL = {
    "create_checkpoint",
    "restore_checkpoint",
    "list_checkpoints",
    "delete_checkpoint",
    "branch_timeline",
    "list_timelines",
}
REGISTRY = {"get_being", "execute_being", "evolve_being", "promote_soul"}


def test_tools_are_listed_with_their_json_schemas(root: User, subprocess_env: dict[str, str]) -> None:
    """Every tool is offered with an input schema naming its parameters, the required ones marked."""

    async def work(client: Client) -> dict[str, Any]:
        return {tool.name: tool for tool in (await client.list_tools()).tools}

    tools = session(over_stdio(subprocess_env, "--as", "root"), work)

    assert set(tools) >= CHRONO_SKILL | REGISTRY
    create = tools["create_checkpoint"].input_schema
    assert create["type"] == "object"
    assert create["required"] == ["name"]
    assert create["properties"]["name"]["type"] == "string"
    assert tools["execute_being"].input_schema["properties"]["wait"]["maximum"] == 30
    assert tools["list_checkpoints"].annotations.read_only_hint is True
    assert tools["restore_checkpoint"].annotations.destructive_hint is True


def test_a_checkpoint_created_through_the_door_is_listed_and_recorded(
    root: User, subprocess_env: dict[str, str]
) -> None:
    """create_checkpoint answers the checkpoint as the API does; list_checkpoints shows it; it is in the database."""

    async def work(client: Client) -> tuple[Any, Any]:
        created = await client.call_tool("create_checkpoint", {"name": "before-agent", "description": "by MCP"})
        listed = await client.call_tool("list_checkpoints", {})
        return created, listed

    created, listed = session(over_stdio(subprocess_env, "--as", "root"), work)

    assert not created.is_error
    assert created.structured_content["name"] == "before-agent"
    assert created.structured_content["timeline"] == "main"
    assert created.structured_content["actor"] == "root"
    assert [item["name"] for item in listed.structured_content["items"]] == ["before-agent"]
    checkpoint = Checkpoint.objects.get(name="before-agent")
    assert str(checkpoint.id) == created.structured_content["id"]
    assert checkpoint.description == "by MCP"


def test_get_being_answers_the_being_and_a_missing_one_is_a_not_found_tool_error(
    root: User, make_being: BeingMaker, subprocess_env: dict[str, str]
) -> None:
    """get_being returns the being's fields; an unknown soul is a tool error with the API's code and detail."""
    being = make_being("greeter", tags=["agent"])
    missing = "00000000-0000-4000-8000-000000000000"

    async def work(client: Client) -> tuple[Any, Any]:
        return (
            await client.call_tool("get_being", {"soul": str(being.soul)}),
            await client.call_tool("get_being", {"soul": missing}),
        )

    found, absent = session(over_stdio(subprocess_env, "--as", "root"), work)

    assert not found.is_error
    assert found.structured_content["soul"] == str(being.soul)
    assert found.structured_content["name"] == "greeter"
    assert found.structured_content["tags"] == ["agent"]
    assert found.structured_content["hash"] == being.hash
    assert absent.is_error
    assert absent.structured_content == {"code": "being_not_found", "detail": f"no being has soul {missing}"}


def test_execute_being_runs_on_the_worker_and_answers_the_outcome(
    root: User, make_being: BeingMaker, celery_worker: Any, subprocess_env: dict[str, str]
) -> None:
    """execute_being queues the run for the real worker, waits, and answers its success with the result."""
    being = make_being("doubler", genesis={"source": "def run(x):\n    return x * 2\n"})

    async def work(client: Client) -> Any:
        return await client.call_tool("execute_being", {"being": str(being.soul), "args": [21], "wait": 30})

    result = session(over_stdio(subprocess_env, "--as", "root"), work)

    assert not result.is_error, result.content
    assert result.structured_content["status"] == "succeeded"
    assert result.structured_content["result"] == 42
    assert result.structured_content["actor"] == "root"
    execution = Execution.objects.get(pk=result.structured_content["id"])
    assert execution.status == "succeeded"
    assert execution.being_id == being.soul


def test_a_user_without_chronos_rights_gets_a_permission_tool_error_and_nothing_changes(
    alice: User, subprocess_env: dict[str, str]
) -> None:
    """alice (not staff, no chronos.view_checkpoint) is refused as the API refuses her: code and detail, no row."""

    async def work(client: Client) -> Any:
        return await client.call_tool("create_checkpoint", {"name": "not-hers"})

    result = session(over_stdio(subprocess_env, "--as", "alice"), work)

    assert result.is_error
    assert result.structured_content == {
        "code": "permission_denied",
        "detail": "chronos is for staff, or for who holds chronos.view_checkpoint",
    }
    assert not Checkpoint.objects.filter(name="not-hers").exists()


def test_the_token_names_the_acting_user(alice: User, make_being: BeingMaker, subprocess_env: dict[str, str]) -> None:
    """``--token`` acts as the token's owner: alice sees her own being, and her changes are recorded as hers."""
    _token, secret = token_create(user=alice, name="agent")
    source = "def run():\n    word = 'hi'\n    return word\n"
    being = make_being("mine", genesis={"source": source})

    async def work(client: Client) -> Any:
        return await client.call_tool(
            "evolve_being", {"soul": str(being.soul), "source": source + "LIMIT = 10\n", "reason": "by agent"}
        )

    result = session(over_stdio(subprocess_env, "--token", secret), work)

    assert not result.is_error, result.content
    assert result.structured_content["kind"] == "evolution"
    assert result.structured_content["version"] == 2
    evolved = BaseBeing.objects.get(soul=being.soul)
    assert evolved.genesis["origin"] == {**evolved.genesis["origin"], "actor": "alice", "reason": "by agent"}
    [latest] = being_history(soul=being.soul, user=alice, limit=1)
    assert latest.context == {**latest.context, "actor": "alice", "door": "agent", "operation": "being_evolution"}


@pytest.mark.parametrize(
    ("options", "refusal"),
    [
        (["--as", "nobody"], "no active user named 'nobody'"),
        (["--as", "gone"], "no active user named 'gone'"),
        (["--token", "lux_not-a-token"], "the token is unknown, revoked, or its user is inactive"),
    ],
    ids=["unknown-user", "inactive-user", "unknown-token"],
)
def test_the_command_refuses_to_serve_nobody(django_user_model: type[User], options: list[str], refusal: str) -> None:
    """Without an active user to act as, ``manage.py mcp`` exits 1 before serving anything."""
    django_user_model.objects.create_user("gone", is_active=False)

    with pytest.raises(CommandError, match=refusal) as error:
        call_command("mcp", *options)

    assert error.value.returncode == 1
