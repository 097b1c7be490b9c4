"""Open a change context for each request, so writes record which door they came through, and name in the
response the safety checkpoints its operation took."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from chronos.context import Door, change_context
from chronos.risk.services import SAFETY_HEADER, safety_recorded


class ChangeContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        door: Door = "view"
        if request.path.startswith("/api/"):
            door = "api"
        elif request.path.startswith("/admin/"):
            door = "admin"
        with change_context(door=door, request_id=request.headers.get("X-Request-ID")), safety_recorded() as taken:
            response = self.get_response(request)
        if taken and response.status_code < 400:
            # The safety checkpoints a risky operation took first (chronos.risk.safety_guard): id and name.
            response[SAFETY_HEADER] = ", ".join(f"{checkpoint.id} {checkpoint.name}" for checkpoint in taken)
        return response
