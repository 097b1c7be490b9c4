"""The agent door over streamable HTTP at ``/mcp``: the SDK's own client against the live site, with a bearer token."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.contrib.auth.models import User
from mcp import Client
from pytest_django.live_server_helper import LiveServer

from beings.models import BaseBeing
from chronos.models import Checkpoint
from chronos.tests.agent_clients import session
from luxsite.tests.fixtures import BeingMaker
from luxsite.tokens import token_create


@pytest.fixture
def root_token(root: User) -> str:
    _token, secret = token_create(user=root, name="agent")
    return secret


def test_the_sdk_client_lists_and_calls_tools_over_http_with_a_token(
    live_server: LiveServer, root_token: str, make_being: BeingMaker
) -> None:
    """With root's token the client lists the tools, takes a checkpoint and reads a being, as root."""
    being = make_being("greeter")

    async def work(client: Client) -> tuple[set[str], Any, Any]:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        created = await client.call_tool("create_checkpoint", {"name": "over-http"})
        found = await client.call_tool("get_being", {"soul": str(being.soul)})
        return tools, created, found

    tools, created, found = session(f"{live_server.url}/mcp", work, token=root_token)

    assert {"create_checkpoint", "list_checkpoints", "get_being", "execute_being"} <= tools
    assert not created.is_error
    assert created.structured_content["actor"] == "root"
    assert Checkpoint.objects.get(name="over-http").actor_name == "root"
    assert found.structured_content["name"] == "greeter"


def test_the_token_s_user_permissions_apply_over_http(
    live_server: LiveServer, alice: User, bob: User, make_being: BeingMaker
) -> None:
    """bob's token acts as bob: alice's being is not found for him, chronos refuses him; each with code and detail."""
    _token, secret = token_create(user=bob, name="agent")
    being = make_being("private")

    async def work(client: Client) -> tuple[Any, Any]:
        return (
            await client.call_tool("get_being", {"soul": str(being.soul)}),
            await client.call_tool("branch_timeline", {"name": "bobs"}),
        )

    hidden, refused = session(f"{live_server.url}/mcp", work, token=secret)

    assert hidden.is_error
    assert hidden.structured_content == {"code": "being_not_found", "detail": f"no being has soul {being.soul}"}
    assert refused.is_error
    assert refused.structured_content["code"] == "permission_denied"
    assert BaseBeing.objects.filter(soul=being.soul).exists()


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer lux_not-a-token", "Basic cm9vdDpyb290", "Bearer "],
    ids=["none", "unknown-token", "basic", "empty"],
)
def test_without_a_valid_token_the_endpoint_answers_401(
    live_server: LiveServer, root_token: str, authorization: str | None
) -> None:
    """No token, an unknown one, or another scheme: a 401 in the API's error shape, asking for a bearer token."""
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    request = urllib.request.Request(
        f"{live_server.url}/mcp",
        data=json.dumps(message).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
        method="POST",
    )
    if authorization is not None:
        request.add_header("Authorization", authorization)

    with pytest.raises(urllib.error.HTTPError) as refusal:
        urllib.request.urlopen(request, timeout=10)

    assert refusal.value.code == 401
    assert refusal.value.headers["WWW-Authenticate"] == "Bearer"
    assert json.loads(refusal.value.read()) == {
        "code": "not_authenticated",
        "detail": "send Authorization: Bearer <token> with an active API token",
    }


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
def test_only_post_is_served_stateless_as_it_is(live_server: LiveServer, root_token: str, method: str) -> None:
    """The endpoint keeps no session and opens no stream: anything but POST is a 405 naming POST."""
    request = urllib.request.Request(
        f"{live_server.url}/mcp",
        headers={"Authorization": f"Bearer {root_token}", "Accept": "application/json, text/event-stream"},
        method=method,
    )

    with pytest.raises(urllib.error.HTTPError) as refusal:
        urllib.request.urlopen(request, timeout=10)

    assert refusal.value.code == 405
    assert refusal.value.headers["Allow"] == "POST"
    assert json.loads(refusal.value.read()) == {
        "code": "method_not_allowed",
        "detail": f"{method} is not allowed on /mcp: POST a message",
    }


def test_concurrent_agents_are_each_answered(live_server: LiveServer, root_token: str) -> None:
    """Six clients calling at once (each request its own event loop in its own thread) all get their checkpoints."""
    failures: list[str] = []

    def agent(number: int) -> None:
        async def work(client: Client) -> list[Any]:
            return [await client.call_tool("create_checkpoint", {"name": f"agent-{number}-{i}"}) for i in range(5)]

        try:
            results = session(f"{live_server.url}/mcp", work, token=root_token)
        except Exception as error:  # a thread cannot fail the test itself: reported below
            failures.append(repr(error))
            return
        failures.extend(str(result.structured_content) for result in results if result.is_error)

    threads = [threading.Thread(target=agent, args=(number,)) for number in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    assert Checkpoint.objects.filter(name__startswith="agent-").count() == 30
