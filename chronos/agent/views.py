"""``/mcp``: the agent door over streamable HTTP, for the bearer of an API token.

The site is WSGI, the SDK's HTTP transport ASGI: each POST is handed to a stateless, JSON-answering
session manager of the SDK in an event loop of its own, as one ASGI request, and its answer goes back
as the response. Stateless, nothing outlives the request, so any worker process can answer any call,
and the token is checked on every request. Only a bearer token is accepted: no session cookie, hence
no CSRF to check.
"""

from __future__ import annotations

import anyio
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.types import Message, Scope

from chronos.agent.acting import acting_as
from chronos.agent.server import agent_server
from luxsite.tokens import token_authenticate


@csrf_exempt
def mcp_endpoint(request: HttpRequest) -> HttpResponse:
    """One MCP message (or batch) in, its answer out, acting as the token's user; a 401 without a token."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    user = token_authenticate(secret.strip()) if scheme.lower() == "bearer" else None
    if user is None:
        refusal = JsonResponse(
            {"code": "not_authenticated", "detail": "send Authorization: Bearer <token> with an active API token"},
            status=401,
        )
        refusal["WWW-Authenticate"] = "Bearer"
        return refusal
    if request.method != "POST":
        # Stateless: no stream for the server to open (GET) and no session to end (DELETE).
        refusal = JsonResponse(
            {"code": "method_not_allowed", "detail": f"{request.method} is not allowed on /mcp: POST a message"},
            status=405,
        )
        refusal["Allow"] = "POST"
        return refusal
    try:
        body = request.body
    except RequestDataTooBig:
        return JsonResponse(
            {"code": "too_large", "detail": "the request body is larger than LUXOS_MAX_REQUEST_BYTES"}, status=413
        )
    with acting_as(user):
        status, headers, content = anyio.run(_exchange, _scope(request), body)
    response = HttpResponse(content, status=status)
    for name, value in headers:
        response[name] = value
    return response


def _scope(request: HttpRequest) -> Scope:
    """The ASGI scope of the Django request: what the SDK reads of it (method, path, headers)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.path.encode(),
        "root_path": "",
        "query_string": request.META.get("QUERY_STRING", "").encode("latin-1"),
        "headers": [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in request.headers.items()
        ],
        "client": (request.META.get("REMOTE_ADDR", ""), 0),
        "server": (request.META.get("SERVER_NAME", ""), int(request.META.get("SERVER_PORT") or 80)),
    }


async def _exchange(scope: Scope, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run one request through a fresh stateless session manager; collect its status, headers and body."""
    manager = StreamableHTTPSessionManager(app=agent_server()._lowlevel_server, json_response=True, stateless=True)
    answered = anyio.Event()
    delivered = False
    status = 500
    headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await answered.wait()  # the client stays connected until the answer is complete
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                answered.set()

    async with manager.run():
        await manager.handle_request(scope, receive, send)
    return status, headers, b"".join(chunks)
