"""Reading lessons with policy: who sees which, search (English full text plus trigrams), open ones, statistics.

Staff and holders of chronos.view_checkpoint see every lesson; anyone else sees the lessons about
beings they may view, and none about no being (restores, switches: history of everyone's rows).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import PermissionsMixin
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from beings.models import BaseBeing
from chronos.guards import VIEW_PERMISSION
from chronos.lessons.exceptions import LessonFilterInvalidError, LessonNotFoundError
from chronos.lessons.expressions import TrigramCoverage, Unnest, query_stems, query_trigrams
from chronos.models import Lesson
from luxsite.moments import moment_utc
from luxsite.permissions import User, visible

# A lesson matches a query word when it holds this share of the word's leading trigrams: an inflected
# form (migracja / migracji / migrację) keeps them, a word merely containing it (format in information)
# lacks the leading ones.
STEM_SHARE = 0.6
QUERY_MAX = 200
SEARCH_LIMIT_MAX = 200
SEARCH_COLUMNS = ("search_vector", "search_trigrams")


def lessons_see_all(user: User) -> bool:
    """Whether ``user`` sees every lesson (staff, or chronos.view_checkpoint)."""
    if not (user.is_authenticated and user.is_active and isinstance(user, PermissionsMixin)):
        return False
    return bool(getattr(user, "is_staff", False) or user.has_perm(VIEW_PERMISSION))


def lessons_visible(*, user: User) -> QuerySet[Lesson]:
    """The lessons ``user`` may read."""
    # The search columns are for the database; nobody reading a lesson needs them.
    lessons = Lesson.objects.defer(*SEARCH_COLUMNS)
    if lessons_see_all(user):
        return lessons
    if not (user.is_authenticated and user.is_active):
        return lessons.none()
    beings = visible(user=user, queryset=BaseBeing.objects.filter(soul=OuterRef("being_id")))
    return lessons.filter(Exists(beings))


def lesson_get(*, id: int | str, user: User) -> Lesson:
    """One lesson ``user`` may read; 404 alike for a missing one and one not theirs to see."""
    try:
        return lessons_visible(user=user).get(pk=int(id))
    except (Lesson.DoesNotExist, ValueError, TypeError):
        raise LessonNotFoundError(f"no lesson {id}") from None


def lessons_search(
    *,
    user: User,
    query: str = "",
    being: BaseBeing | uuid.UUID | str | None = None,
    hash: str = "",
    tag: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    open_only: bool = False,
    limit: int = 50,
) -> list[Lesson]:
    """Lessons ``user`` may read matching ``query`` and the filters, best first.

    A lesson matches when its English full-text vector matches the query (migrate finds migration)
    or when it holds the leading trigrams of every query word (migracja finds migracji); it ranks by
    the full-text rank plus the share of the query's trigrams it holds. Without a query, the newest
    first. Each result carries ``rank``.
    """
    since, until = moments_range(since, until)
    if not 1 <= limit <= SEARCH_LIMIT_MAX:
        raise LessonFilterInvalidError(f"limit is between 1 and {SEARCH_LIMIT_MAX}")
    text = (query or "").strip()
    if len(text) > QUERY_MAX:
        raise LessonFilterInvalidError(f"a search has at most {QUERY_MAX} characters")
    lessons = lessons_visible(user=user)
    if being:
        lessons = lessons.filter(being_id=getattr(being, "pk", being))
    if hash:
        lessons = lessons.filter(hash__startswith=hash.strip().lower())
    if tag:
        lessons = lessons.filter(tags__contains=[tag.strip().lower()])
    if since is not None:
        lessons = lessons.filter(last_seen_at__gte=since)
    if until is not None:
        lessons = lessons.filter(last_seen_at__lt=until)
    if open_only:
        lessons = lessons.filter(resolved_at__isnull=True)
    if not text:
        return list(lessons.order_by("-last_seen_at", "-id")[:limit])
    words = SearchQuery(text, config="english", search_type="websearch")
    stems = query_stems(text, share=STEM_SHARE)
    matching = Q(search_vector=words)
    if stems:  # every word of the query in some form, as the full-text query asks for every word
        matching |= Q(search_trigrams__contains=sorted({trigram for stem in stems for trigram in stem}))
    closeness = TrigramCoverage(query_trigrams(text), F("search_trigrams"))
    ranked = lessons.filter(matching).annotate(rank=SearchRank(F("search_vector"), words) + closeness)
    return list(ranked.order_by("-rank", "-last_seen_at", "-id")[:limit])


def lessons_open(*, beings: Collection[Any] = (), hashes: Collection[str] = ()) -> QuerySet[Lesson]:
    """Lessons not resolved yet about any of ``beings`` (or souls) or ``hashes``: what risk and promotion weigh."""
    souls = [getattr(being, "pk", being) for being in beings]
    if not souls and not hashes:
        return Lesson.objects.none()
    lessons = Lesson.objects.defer(*SEARCH_COLUMNS)
    return lessons.filter(Q(being_id__in=souls) | Q(hash__in=list(hashes)), resolved_at__isnull=True)


def moments_range(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """``since`` and ``until`` in UTC, refused when either is outside the calendar or they are inverted."""
    try:
        since, until = (moment if moment is None else moment_utc(moment) for moment in (since, until))
    except ValueError as error:
        raise LessonFilterInvalidError(str(error)) from None
    if since is not None and until is not None and since > until:
        raise LessonFilterInvalidError("since is after until")
    return since, until


@dataclass(frozen=True)
class LessonStats:
    lessons: int
    open: int
    occurrences: int
    first_seen: datetime | None
    last_seen: datetime | None
    by_operation: dict[str, int]
    by_error_class: list[dict[str, Any]]
    by_tag: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "lessons": self.lessons,
            "open": self.open,
            "occurrences": self.occurrences,
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "by_operation": self.by_operation,
            "by_error_class": self.by_error_class,
            "by_tag": self.by_tag,
        }


def lessons_stats(*, user: User, top: int = 10) -> LessonStats:
    """Counts of the lessons ``user`` may read: in all, open, occurrences, by operation, error class and tag."""
    lessons = lessons_visible(user=user).order_by()
    totals = lessons.aggregate(
        lessons=Count("id"),
        open=Count("id", filter=Q(resolved_at__isnull=True)),
        occurrences=Coalesce(Sum("count"), 0),
        first_seen=Min("created_at"),
        last_seen=Max("last_seen_at"),
    )
    by_operation = {
        row["operation"]: row["lessons"]
        for row in lessons.values("operation").annotate(lessons=Count("id")).order_by("operation")
    }
    classes = (
        lessons.exclude(error_class="")
        .values("error_class")
        .annotate(lessons=Count("id"), occurrences=Sum("count"))
        .order_by("-occurrences", "error_class")
    )
    by_error_class = [dict(row) for row in classes[:top]]
    tags = lessons.annotate(tag=Unnest(F("tags"))).values("tag").annotate(lessons=Count("id"))
    by_tag = [dict(row) for row in tags.order_by("-lessons", "tag")[:top]]
    return LessonStats(by_operation=by_operation, by_error_class=by_error_class, by_tag=by_tag, **totals)


@dataclass(frozen=True)
class BeingLessons:
    """What the being page shows: the newest lessons about the being, and how many are open."""

    lessons: list[Lesson]
    open: int
    total: int


def lessons_about_being(*, being: BaseBeing, limit: int = 5) -> BeingLessons:
    """The lessons about a being its viewer may read (all of them: who may view the being may read its lessons)."""
    about = Lesson.objects.defer(*SEARCH_COLUMNS).filter(being_id=being.pk)
    counts = about.order_by().aggregate(total=Count("id"), open=Count("id", filter=Q(resolved_at__isnull=True)))
    shown = list(about.order_by("resolved_at", "-last_seen_at", "-id")[:limit]) if counts["total"] else []
    return BeingLessons(lessons=shown, open=counts["open"], total=counts["total"])
