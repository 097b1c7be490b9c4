"""Open a change context for each request, so writes record which door they came through."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from chronos.context import Door, change_context


class ChangeContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        door: Door = "view"
        if request.path.startswith("/api/"):
            door = "api"
        elif request.path.startswith("/admin/"):
            door = "admin"
        with change_context(door=door, request_id=request.headers.get("X-Request-ID")):
            return self.get_response(request)
