"""Response shapes shared by every router."""

from ninja import Schema


class ErrorOut(Schema):
    code: str
    detail: str


# Every status an endpoint may answer with an error, for the OpenAPI document.
ERRORS: dict[int, type[Schema]] = {status: ErrorOut for status in (400, 401, 403, 404, 409, 413, 422)}
