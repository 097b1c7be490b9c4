"""The seed's free-text assessment (HistorianAgent), in English and Polish, by whole words and their inflections.

Each concept is a set of word stems matched at word boundaries (``\\b``, Unicode-aware): a stem
takes the inflected endings (``migracj`` finds migracja, migracji, migrację, migracją), and a word
that only contains one (``information`` holds ``format``) never matches. A text's score is the
sum of the weights of the concepts it names, each counted once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from chronos.risk.exceptions import RiskTextInvalidError
from chronos.risk.levels import Reason, Risk, risk_of

MAX_TEXT: Final = 10_000


@dataclass(frozen=True)
class Concept:
    name: str
    weight: int
    pattern: re.Pattern[str]
    detail: str


def _words(*stems: str) -> re.Pattern[str]:
    """Any of ``stems`` as a whole word; a stem ending in ``*`` takes any ending (letters only)."""
    alternatives = [stem[:-1] + r"\w*" if stem.endswith("*") else stem for stem in stems]
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.IGNORECASE)


# Weights: one high-risk concept alone is high (50+), two or one with production are critical (80+).
CONCEPTS: Final = (
    Concept(
        "migration",
        55,
        _words("migrat*", "migracj*", "migrow*", "migruj*", "zmigr*", "przemigr*"),
        "a migration changes the shape of data",
    ),
    Concept(
        "deletion",
        55,
        _words(
            "delet*",
            "remove",
            "removes",
            "removed",
            "removing",
            "removal",
            "drop",
            "drops",
            "dropped",
            "dropping",
            "truncat*",
            "destroy*",
            "purg*",
            "wipe",
            "wipes",
            "wiped",
            "wiping",
            "usu[nń]*",
            "usuwa*",
            "usunię*",
            "skasuj*",
            "kasuj*",
            "kasowa*",
            "wyczyść",
            "wyczyszcz*",
        ),
        "a deletion loses data",
    ),
    Concept(
        "hot_patch",
        55,
        _words(r"hot[_ -]?patch*", r"hot[_ -]?fix*"),
        "a hot patch changes running code without the usual path",
    ),
    Concept(
        "refactor",
        50,
        _words("refactor*", "refaktor*", "przebud*"),
        "a refactoring changes much code at once",
    ),
    Concept(
        "format",
        50,
        _words("format", "formats", "formatted", "formatting", "reformat*", "sformatuj*", "formatuj*", "formatowa*"),
        "formatting a store erases it",
    ),
    Concept(
        "production",
        25,
        _words("production", "prod", "produkcj*", "produkcyjn*"),
        "production is where failures cost most",
    ),
    Concept(
        "modification",
        30,
        _words(
            "updat*",
            "modif*",
            "zaktualiz*",
            "zmodyfik*",
            "chang*",
            "edit*",
            "patch*",
            "evolv*",
            "renam*",
            "deploy*",
            "promot*",
            "zmie[nń]*",
            "zmian*",
            "modyfik*",
            "aktualiz*",
            "edyt*",
            "popraw*",
            "wdr[oó][zż]*",
            "wdraża*",
        ),
        "a modification changes state",
    ),
    Concept(
        "read_only",
        0,
        _words(
            "read*",
            "list*",
            "show*",
            "view*",
            "get",
            "fetch*",
            "inspect*",
            "odczyt*",
            "czyta*",
            "przeczytaj*",
            "poka[zż]*",
            "wyświetl*",
            "sprawd[zź]*",
            "przejrzyj*",
        ),
        "reading changes nothing",
    ),
)
NOTHING_FOUND: Final = Reason("no_keyword", 10, "no word of a known operation: assessed as low, confirm by hand")


def risk_assess_text(text: str) -> Risk:
    """How risky the operation a text describes is: each named concept a reason, heaviest first."""
    if not isinstance(text, str) or not text.strip():
        raise RiskTextInvalidError("the text to assess is empty")
    if len(text) > MAX_TEXT:
        raise RiskTextInvalidError(f"the text to assess has at most {MAX_TEXT} characters, not {len(text)}")
    reasons = []
    for concept in CONCEPTS:
        found = list(dict.fromkeys(match.group(0) for match in concept.pattern.finditer(text)))
        if found:
            words = ", ".join(f"“{word}”" for word in found[:5])
            reasons.append(Reason(concept.name, concept.weight, f"{words}: {concept.detail}"))
    changes = [reason for reason in reasons if reason.name != "read_only"]
    if changes:
        # Read-only words beside a change do not make it safer.
        reasons = changes
    elif not reasons:
        reasons = [NOTHING_FOUND]
    return risk_of("text", text.strip()[:80], reasons)
