"""Reads of merges and their conflicts, with what each door shows next to them fetched once."""

from __future__ import annotations

import re
import uuid

from django.db.models import Count, Prefetch, Q, QuerySet

from chronos.merges.exceptions import ConflictNotFoundError, MergeNotFoundError
from chronos.models import Merge, MergeConflict

UUID_PREFIX = re.compile(r"^[0-9a-f-]{4,36}$")


def merge_list(*, status: str | None = None) -> QuerySet[Merge]:
    """Merges, newest first, each with its timelines and its count of open conflicts."""
    merges = Merge.objects.select_related("source", "into", "base", "safety").annotate(
        open_count=Count("conflicts", filter=Q(conflicts__resolution=""))
    )
    return merges.filter(status=status) if status else merges


def merge_get(reference: uuid.UUID | str) -> Merge:
    """A merge by id or a unique id prefix, its conflicts prefetched in order."""
    text = str(reference).strip().lower()
    merges = Merge.objects.select_related("source", "into", "base__timeline", "safety").prefetch_related(
        Prefetch("conflicts", queryset=MergeConflict.objects.order_by("id"))
    )
    if UUID_PREFIX.match(text):
        try:
            return merges.get(id=uuid.UUID(text))
        except (ValueError, Merge.DoesNotExist):
            pass
        found = list(merges.extra(where=["chronos_merge.id::text LIKE %s"], params=[text + "%"])[:2])
        if len(found) == 1:
            return found[0]
    raise MergeNotFoundError(f"no merge {text[:100]!r} (its id or a unique id prefix)")


def conflict_get(id: int, *, merge: Merge | None = None) -> MergeConflict:
    """A conflict by its number (of ``merge``, when given), with its merge and timelines."""
    conflicts = MergeConflict.objects.select_related("merge__source", "merge__into")
    if merge is not None:
        conflicts = conflicts.filter(merge=merge)
    conflict = conflicts.filter(id=id).first()
    if conflict is None:
        raise ConflictNotFoundError(f"no conflict #{id}{f' in merge {merge.id}' if merge else ''}")
    return conflict


def conflicts_open(*, merge: Merge | None = None) -> QuerySet[MergeConflict]:
    """Conflicts nobody resolved yet, of one merge or of every open merge, oldest first."""
    conflicts = MergeConflict.objects.select_related("merge__source", "merge__into").filter(
        resolution="", merge__status=Merge.Status.OPEN
    )
    return (conflicts.filter(merge=merge) if merge is not None else conflicts).order_by("id")
