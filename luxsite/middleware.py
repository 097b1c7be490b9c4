"""Django's CommonMiddleware, with its added slash never turning a write into a read."""

from __future__ import annotations

from typing import TypeVar

from django.http import HttpRequest, HttpResponseBase, HttpResponsePermanentRedirect
from django.middleware import common
from django.utils.http import escape_leading_slashes

SAFE_METHODS = ("GET", "HEAD")
Response = TypeVar("Response", bound=HttpResponseBase | None)


class CommonMiddleware(common.CommonMiddleware):
    """APPEND_SLASH and PREPEND_WWW redirect a read with a 301, anything else with a 308.

    Clients following a 301 (browsers, ``urllib``, ``requests``) resend a POST as a GET, so a form
    posted to a page without its slash would silently read the page; a 308 is followed with the
    method and body kept, or refused by the client, never turned into another request.
    """

    def process_request(self, request: HttpRequest) -> HttpResponsePermanentRedirect | None:
        return self._method_kept(request, super().process_request(request))

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        redirected = super().process_response(request, response)
        return self._method_kept(request, redirected) if redirected is not response else redirected

    def get_full_path_with_slash(self, request: HttpRequest) -> str:
        # Django refuses a write here under DEBUG because its 301 would lose the body; a 308 keeps it.
        return escape_leading_slashes(request.get_full_path(force_append_slash=True))

    @staticmethod
    def _method_kept(request: HttpRequest, response: Response) -> Response:
        if response is not None and response.status_code == 301 and request.method not in SAFE_METHODS:
            response.status_code = 308
        return response
