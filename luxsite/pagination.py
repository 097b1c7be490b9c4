"""Keyset pagination: stable pages over any ordering, O(page) however deep."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.db import models

from luxsite.errors import BadRequest

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class Page(Generic[M]):
    items: list[M]
    next_cursor: str | None

    def as_dict(self) -> dict[str, Any]:
        """The page as the API returns it."""
        return {"items": self.items, "next": self.next_cursor}


def _encode(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def cursor_encode(values: list[Any]) -> str:
    raw = json.dumps([_encode(v) if not isinstance(v, uuid.UUID) else str(v) for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise BadRequest("the cursor is not one this API gave out", code="bad_cursor") from None
    if not isinstance(values, list) or len(values) != 2:
        raise BadRequest("the cursor is not one this API gave out", code="bad_cursor")
    return values


def keyset_page(
    queryset: models.QuerySet[M], *, field: str, descending: bool, after: str | None, limit: int
) -> Page[M]:
    """One page of ``queryset`` ordered by (``field``, pk), starting after ``after``."""
    pk = queryset.model._meta.pk
    assert pk is not None
    pk_name = pk.name
    if after:
        value, last_pk = cursor_decode(after)
        if field == "created_at":
            try:
                value = datetime.fromisoformat(value)
            except (TypeError, ValueError):
                raise BadRequest("the cursor is not one this API gave out", code="bad_cursor") from None
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
