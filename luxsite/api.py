"""The one NinjaAPI of LuxOS: routers mounted by dotted path, one error mapping, two ways to authenticate."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer, SessionAuth
from pydantic import Field

from beings.runtime.health import health_report
from luxsite.errors import DomainError
from luxsite.tokens import token_authenticate


class BearerTokenAuth(HttpBearer):
    """``Authorization: Bearer lux_…`` with a token created in the admin or by ``manage.py token create``."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = token_authenticate(token)
        if user is not None:
            request.user = user  # type: ignore[assignment]  # any authenticated user model
        return user


class SessionCookieAuth(SessionAuth):
    """Django's session, with its CSRF check, for requests that carry a session cookie; others are not its business.

    ninja's SessionAuth checks CSRF on every unsafe request, with or without a session, and its
    refusal ends the chain: a script's POST with a valid token would be refused for lack of a
    CSRF token it has no reason to hold.
    """

    def _get_key(self, request: HttpRequest) -> str | None:
        if self.param_name not in request.COOKIES:
            return None
        return super()._get_key(request)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        return super().authenticate(request, key) if key is not None else None


def _text_with_nul(request: HttpRequest, kwargs: dict[str, Any]) -> str | None:
    """The name of a query or path parameter holding a NUL character, which PostgreSQL text cannot hold."""
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return name.replace("\x00", "\\x00")
    return next((name for name, value in kwargs.items() if isinstance(value, str) and "\x00" in value), None)


def _route(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A route's view behind the door checks every route shares, its 405 in the error shape (Allow kept).

    A query or path parameter with a NUL character is a 422 here: compared with a column in a query,
    it was a 500 from the database on any route that filters by text.
    """

    @functools.wraps(view)
    def route(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        where = _text_with_nul(request, kwargs)
        if where is not None:
            return error(request, 422, "invalid", f"{where}: text may not contain a NUL character")
        response = view(request, *args, **kwargs)
        if response.status_code != 405 or response.get("Content-Type", "").startswith("application/json"):
            return response
        shaped = error(request, 405, "method_not_allowed", f"{request.method} is not allowed on {request.path}")
        shaped["Allow"] = response["Allow"]
        return shaped

    return route


@csrf_exempt
def api_not_found(request: HttpRequest) -> HttpResponse:
    return error(request, 404, "not_found", f"no API route at {request.path}")


class LuxAPI(NinjaAPI):
    """ninja's API whose routes answer with and without their trailing slash, and never redirect.

    Django's APPEND_SLASH answers a missing slash with a 301, which clients following it resend as a GET:
    a POST to ``/api/beings`` read the list and created nothing. Here each route answers both forms of
    its path (the document names one), any other path under the API is a 404 in the error shape, and
    every route passes the door checks of ``_route``.
    """

    @property
    def urls(self) -> tuple[list[URLPattern | URLResolver], str, str]:
        patterns, app_name, namespace = super().urls
        routes = [pattern for pattern in patterns if isinstance(pattern, URLPattern)]
        taken = {str(pattern.pattern) for pattern in routes}
        twins = []
        for pattern in routes:
            route = str(pattern.pattern)
            twin = route.removesuffix("/") if route.endswith("/") else route + "/"
            if route and twin not in taken:
                twins.append(path(twin, pattern.callback))
                taken.add(twin)
        for pattern in [*routes, *twins]:
            pattern.callback = _route(pattern.callback)
        return [*patterns, *twins, re_path(r"", api_not_found)], app_name, namespace


api = LuxAPI(
    title="LuxOS API",
    version="1.0",
    description="Beings, relationships and their history. Every error is `{code, detail}`.",
    # The token first: a request that carries one is a script's, whatever cookies come with it.
    auth=[BearerTokenAuth(), SessionCookieAuth()],
    urls_namespace="api",
)
api.add_router("/beings/", "beings.api.router")
api.add_router("/relationships/", "relations.api.router")
api.add_router("/souls/", "beings.souls.api.souls_router")
api.add_router("/aliases/", "beings.souls.api.aliases_router")
api.add_router("/environments/", "beings.souls.api.environments_router")
api.add_router("/chronos/", "chronos.api.router")
api.add_router("/chronos/dreams/", "chronos.dreams.api.router")
api.add_router("/chronos/risk", "chronos.risk.api.router")
api.add_router("/chronos/merges/", "chronos.merges.api.router")
api.add_router("/chronos/lessons/", "chronos.lessons.api.router")
# Run routes under /beings/, /souls/ and /aliases/, and /executions: one router at the root.
api.add_router("/", "beings.executions.api.router")

HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
}


def error(request: HttpRequest, status: int, code: str, detail: str) -> HttpResponse:
    return api.create_response(request, {"code": code, "detail": detail}, status=status)


@api.exception_handler(DomainError)
def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return error(request, exc.status, exc.code, exc.detail)


@api.exception_handler(AuthenticationError)
def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error(request, 401, "not_authenticated", "log in or send Authorization: Bearer <token>")


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400 and str(exc).startswith("Cannot parse request body"):
        return error(request, 400, "malformed_json", "the request body is not valid JSON")
    return error(request, exc.status_code, HTTP_CODES.get(exc.status_code, "error"), str(exc))


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    problems = []
    for problem in exc.errors:
        where = ".".join(str(part) for part in problem.get("loc", ()) if part not in ("body", "payload"))
        problems.append(f"{where or 'body'}: {problem.get('msg', 'invalid')}")
    return error(request, 422, "invalid", "; ".join(problems))


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error(request, 404, "not_found", str(exc) or "not found")


@api.exception_handler(DjangoPermissionDenied)
def on_permission_denied(request: HttpRequest, exc: DjangoPermissionDenied) -> HttpResponse:
    return error(request, 403, "permission_denied", str(exc) or "permission denied")


@api.exception_handler(RequestDataTooBig)
def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return error(request, 413, "too_large", "the request body is larger than LUXOS_MAX_REQUEST_BYTES")


class SandboxLayerOut(Schema):
    in_force: bool
    detail: str


class HealthOut(Schema):
    status: str
    database: bool
    sandbox: dict[str, SandboxLayerOut] = Field(
        description="The layers of the being sandbox on this host (rlimits, network, user, landlock, seccomp)."
    )
    sandbox_strict: bool = Field(description="LUXOS_SANDBOX_STRICT: being code is refused while a layer is missing.")
    sandbox_error: str | None = Field(None, description="Why the sandbox could not be checked, when it could not.")


@api.get("/health", auth=None, response=HealthOut, tags=["health"])
def health(request: HttpRequest) -> dict[str, Any]:
    """Liveness: the web process answers and reaches the database; which sandbox layers are in force here.

    Degraded when the database is unreachable, the sandbox cannot start, or a layer is missing under the
    strict setting (runs would be refused).
    """
    report = health_report()
    return {
        "status": "ok" if report.healthy else "degraded",
        "database": report.database,
        "sandbox": report.sandbox,
        "sandbox_strict": report.strict,
        "sandbox_error": report.sandbox_problem,
    }
