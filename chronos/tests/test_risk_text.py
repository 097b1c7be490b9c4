"""The seed's free-text assessment: English and Polish, whole words and their inflections."""

from __future__ import annotations

import pytest

from chronos.risk.exceptions import RiskTextInvalidError
from chronos.risk.services import risk_assess_text


@pytest.mark.parametrize(
    ("text", "level", "concepts"),
    [
        # Polish inflections of one word all find it.
        ("Przeprowadź migrację schematu bazy danych", "high", ["migration"]),
        ("Plan migracji na jutro", "high", ["migration"]),
        ("Migracja bazy", "high", ["migration"]),
        ("zmigruj tabelę", "high", ["migration"]),
        ("Migrate the schema", "high", ["migration"]),
        ("database migration v2", "high", ["migration"]),
        ("usuń moduł core", "high", ["deletion"]),
        ("trzeba usunąć stare rekordy", "high", ["deletion"]),
        ("Delete old records", "high", ["deletion"]),
        ("Wykonaj hot_patch na module core", "high", ["hot_patch"]),
        ("ship a hotfix", "high", ["hot_patch"]),
        ("refaktoryzacja modułu płatności", "high", ["refactor"]),
        ("Refactor the parser", "high", ["refactor"]),
        # Two high concepts, or one in production, are critical.
        ("hotfix on production", "critical", ["hot_patch", "production"]),
        ("Usuń migrację na produkcji", "critical", ["migration", "deletion", "production"]),
        # Modifications are medium; reads are low.
        ("Update the greeting", "medium", ["modification"]),
        ("Zaktualizuj opis modułu", "medium", ["modification"]),
        ("Zmień nazwę", "medium", ["modification"]),
        ("Show the information", "low", ["read_only"]),
        ("pokaż listę checkpointów", "low", ["read_only"]),
        # Reading beside a change is still the change.
        ("read the config and delete the cache", "high", ["deletion"]),
    ],
)
def test_words_and_their_inflections_in_both_languages(text: str, level: str, concepts: list[str]) -> None:
    """Each language's words, in any inflection, name their concept and set the level."""
    risk = risk_assess_text(text)
    assert (risk.level, sorted(reason.name for reason in risk.reasons)) == (level, sorted(concepts))


@pytest.mark.parametrize(
    "text",
    ["information about the weather", "immigration statistics", "the dropdown menu", "a removable cover", "prodigy"],
)
def test_a_word_that_only_contains_a_keyword_does_not_match(text: str) -> None:
    """Word boundaries: "information" holds "format", "immigration" holds "migration", and neither matches."""
    risk = risk_assess_text(text)
    assert "format" not in {reason.name for reason in risk.reasons}
    assert "migration" not in {reason.name for reason in risk.reasons}
    assert risk.level in ("low", "medium")


def test_format_as_a_word_matches_and_says_which_word() -> None:
    """ "format" itself, or "sformatuj", is high, and the reason quotes the word found."""
    risk = risk_assess_text("Sformatuj dysk, format everything")
    [reason] = risk.reasons
    assert (reason.name, risk.level) == ("format", "high")
    assert reason.detail.startswith("“Sformatuj”, “format”:")


def test_a_text_of_no_known_word_is_low_and_says_so() -> None:
    """Nothing recognised: low, with a reason asking for a person's look."""
    risk = risk_assess_text("lorem ipsum dolor")
    assert (risk.level, [reason.name for reason in risk.reasons]) == ("low", ["no_keyword"])


@pytest.mark.parametrize("text", ["", "   ", "x" * 10_001])
def test_empty_or_oversized_text_is_refused(text: str) -> None:
    """An empty text, or one over 10,000 characters, is a 422."""
    with pytest.raises(RiskTextInvalidError):
        risk_assess_text(text)
