"""Keyset pagination: stable pages over any ordering, O(page) however deep."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from luxsite.errors import BadRequest

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class Page(Generic[M]):
    items: list[M]
    next_cursor: str | None

    def as_dict(self) -> dict[str, Any]:
        """The page as the API returns it."""
        return {"items": self.items, "next": self.next_cursor}


def page_limit(limit: int | None) -> int:
    """The page size asked for, ``LUXOS_PAGE_SIZE`` when none is; 400 outside 1..``LUXOS_MAX_PAGE_SIZE``."""
    limit = limit or settings.LUXOS_PAGE_SIZE
    if not 1 <= limit <= settings.LUXOS_MAX_PAGE_SIZE:
        raise BadRequest(f"limit must be between 1 and {settings.LUXOS_MAX_PAGE_SIZE}", code="bad_limit")
    return limit


def _encode(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value) if isinstance(value, uuid.UUID) else value


def cursor_encode(values: list[Any]) -> str:
    raw = json.dumps([_encode(v) for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_invalid() -> BadRequest:
    return BadRequest("the cursor is not one this API gave out", code="invalid_cursor")


def cursor_decode(cursor: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        raise cursor_invalid() from None
    if not isinstance(values, list) or len(values) != 2:
        raise cursor_invalid()
    return values


def _cursor_values(model: type[models.Model], field: str, values: list[Any]) -> tuple[Any, Any]:
    """The cursor's (field value, primary key) as the model's fields read them; a 400 for anything else.

    A cursor is the client's text: a value its column cannot hold would fail in the database as a 500.
    """
    pk = model._meta.pk
    assert pk is not None
    cleaned = []
    for model_field, value in zip((model._meta.get_field(field), pk), values, strict=True):
        if value is None or isinstance(value, list | dict | bool):
            raise cursor_invalid()
        try:
            read = model_field.to_python(value)  # type: ignore[union-attr]
        except (ValidationError, TypeError, ValueError, OverflowError, AttributeError):
            raise cursor_invalid() from None
        # Only what cursor_encode writes reads back: a float for an id, a time without its zone, a
        # number past bigint are not values this API gave out, whatever the field would make of them.
        if _encode(read) != value or (isinstance(read, int) and not -(2**63) <= read < 2**63):
            raise cursor_invalid()
        cleaned.append(read)
    if isinstance(cleaned[0], datetime) and timezone.is_naive(cleaned[0]):
        raise cursor_invalid()
    return cleaned[0], cleaned[1]


def keyset_page(
    queryset: models.QuerySet[M], *, field: str, descending: bool, after: str | None, limit: int
) -> Page[M]:
    """One page of ``queryset`` ordered by (``field``, pk), starting after ``after``."""
    pk = queryset.model._meta.pk
    assert pk is not None
    pk_name = pk.name
    if after:
        value, last_pk = _cursor_values(queryset.model, field, cursor_decode(after))
        op = "lt" if descending else "gt"
        queryset = queryset.filter(
            models.Q(**{f"{field}__{op}": value}) | models.Q(**{field: value, f"{pk_name}__{op}": last_pk})
        )
    sign = "-" if descending else ""
    rows = list(queryset.order_by(f"{sign}{field}", f"{sign}{pk_name}")[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = cursor_encode([getattr(last, field), getattr(last, pk_name)])
    return Page(items=rows, next_cursor=next_cursor)
