"""Response shapes shared by every router."""

from typing import Any

from ninja import Schema


class ErrorOut(Schema):
    code: str
    detail: str


# Every status an endpoint may answer with an error, for the OpenAPI document.
ERRORS: dict[int, type[Schema]] = {status: ErrorOut for status in (400, 401, 403, 404, 409, 413, 422)}


def described(descriptions: dict[int, str]) -> dict[str, Any]:
    """``openapi_extra`` saying what each success status of a route's ``response=`` means.

    Keyed by the same integers as ``response=``, so each description lands in that status's entry beside
    its schema; a string key ("200") would be a second entry for the status, which JSON parsers in
    YAML mode (Swagger UI) refuse as a duplicated key.
    """
    return {"responses": {status: {"description": text} for status, text in descriptions.items()}}
