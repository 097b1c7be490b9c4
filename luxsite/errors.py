"""Domain errors, raised once and mapped to responses in one place.

Services raise a ``DomainError`` subclass; the API turns it into
``{"code", "detail"}`` with the family's HTTP status, the middleware renders it
for HTML views, the admin shows it as a message, commands exit non-zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse


class DomainError(Exception):
    """An operation refused for a reason the caller can act on."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code  # type: ignore[misc]

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail}


class Invalid(DomainError):
    status = 422
    code = "invalid"


class BadRequest(DomainError):
    status = 400
    code = "bad_request"


class PermissionDenied(DomainError):
    status = 403
    code = "permission_denied"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class TooLarge(DomainError):
    status = 413
    code = "too_large"


def error_response(error: DomainError) -> JsonResponse:
    """The one JSON shape of every API error."""
    return JsonResponse(error.as_dict(), status=error.status)


class DomainErrorMiddleware:
    """Render a DomainError that escapes an HTML view as a page with its status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DomainError):
            return None
        if request.path.startswith("/api/"):
            return error_response(exception)
        response = TemplateResponse(request, "error.html", {"error": exception}, status=exception.status)
        return response.render()
