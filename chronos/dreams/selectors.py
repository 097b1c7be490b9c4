"""Reads of dreams: lists newest first, one by id; the doors check who may look (chronos' viewers)."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from chronos.dreams.exceptions import DreamNotFoundError
from chronos.models import Dream


def dream_list(*, status: str | None = None) -> QuerySet[Dream]:
    dreams = Dream.objects.select_related("timeline").order_by("-created_at", "id")
    return dreams.filter(status=status) if status else dreams


def dream_get(reference: uuid.UUID | str) -> Dream:
    """A dream by its id or a unique id prefix (at least 4 characters)."""
    text = str(reference).strip().lower()
    dreams = Dream.objects.select_related("timeline", "fork", "merge")
    try:
        return dreams.get(id=uuid.UUID(text))
    except ValueError:
        pass
    except Dream.DoesNotExist:
        raise DreamNotFoundError(f"no dream {text[:40]!r}") from None
    if len(text) >= 4 and all(char in "0123456789abcdef-" for char in text):
        found = list(dreams.extra(where=["chronos_dream.id::text LIKE %s"], params=[text + "%"])[:2])
        if len(found) == 1:
            return found[0]
    raise DreamNotFoundError(f"no dream {text[:40]!r} (an id or a unique id prefix)")
