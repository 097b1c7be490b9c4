"""SQL expressions of lesson search: the indexed document, its english vector and its trigrams.

The trigrams follow pg_trgm's rules (lower case, each word padded with two spaces before and one
after, every three characters), computed by ``chronos_trigrams`` of migration 0008 rather than by the
pg_trgm extension, which the embedded PostgreSQL does not ship. The lesson stores both (generated
columns, GIN-indexed): a word's leading trigrams (``query_stems``) find the lessons holding a form of
it through the index, ``chronos_trigram_coverage`` ranks them.
"""

from __future__ import annotations

import math
import re
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import F, Func, Value

DOCUMENT_FIELDS = ("situation", "action", "result", "feedback", "tags")
# chronos_trigrams splits words on what is not a letter or a digit (the underscore too).
WORD_SPLIT = re.compile(r"[\W_]+")
STEM_WORD_MIN = 3


class LessonDocument(Func):
    """A lesson's searchable text: situation, action, result, feedback and tags in one string."""

    function = "chronos_lesson_document"
    output_field = models.TextField()

    def __init__(self, **extra: Any) -> None:
        super().__init__(*(F(name) for name in DOCUMENT_FIELDS), **extra)


class Trigrams(Func):
    """The distinct trigrams of a text (pg_trgm's rules)."""

    function = "chronos_trigrams"
    output_field = ArrayField(models.TextField())


class EnglishVector(Func):
    """``to_tsvector('english', …)``: the full-text vector of a text, stemmed as English."""

    template = "to_tsvector('english'::regconfig, %(expressions)s)"
    output_field = SearchVectorField()


class TrigramCoverage(Func):
    """The share (0..1) of a query's trigrams found in a document's: how close an inflected word comes."""

    function = "chronos_trigram_coverage"
    output_field = models.FloatField()


class Unnest(Func):
    """One row per element of an array (tags, for counting them)."""

    function = "unnest"
    output_field = models.CharField()


def lesson_trigrams() -> Trigrams:
    return Trigrams(LessonDocument())


def lesson_vector() -> EnglishVector:
    return EnglishVector(LessonDocument())


def query_trigrams(text: str) -> Trigrams:
    return Trigrams(Value(text, output_field=models.TextField()))


def word_trigrams(word: str) -> list[str]:
    """A word's trigrams in order, as ``chronos_trigrams`` makes them: padded with two spaces before, one after."""
    padded = f"  {word} "
    return [padded[start : start + 3] for start in range(len(padded) - 2)]


def query_stems(text: str, *, share: float) -> list[list[str]]:
    """For each word of ``text``, the first ``share`` of its trigrams: what an inflected form keeps of it.

    Polish and English inflect at the end of a word (migracja, migracji, migrację; migrate, migration),
    so a lesson holding a word's leading trigrams holds a form of it; the GIN index answers ``@>`` on them.
    """
    stems = []
    for word in WORD_SPLIT.split(text.lower()):
        if len(word) < STEM_WORD_MIN:  # "a", "of": in nearly every lesson, they would narrow nothing
            continue
        trigrams = word_trigrams(word)
        stems.append(list(dict.fromkeys(trigrams[: math.ceil(share * len(trigrams))])))
    return stems
