"""Every version of every being rebuilds from its lineage to exactly the source submitted, under any edit sequence."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from beings.evolution import being_evolve
from beings.exceptions import NothingChangedError
from beings.genotype import genesis_hash, soul_hash
from beings.models import BaseBeing
from beings.selectors import being_versions, soul_get
from beings.services import being_create

pytestmark = pytest.mark.django_db

# Lines that stay valid Python wherever they go: statements at module level, and comments carrying the characters
# that split lines for str.splitlines but not for Python (form feed, line and paragraph separators, ...).
COMMENT_TEXTS = ("note", "żółw 🐢", "form\x0cfeed", "line\u2028separator", "para\u2029graph", "nbsp\u00a0", "tab\t")

Edit = tuple[str, float, int, bool]
EDITS = st.tuples(
    st.sampled_from(["append", "insert", "delete", "replace", "whitespace", "comment"]),
    st.floats(min_value=0, max_value=1, allow_nan=False),  # where in the source, as a fraction of its lines
    st.integers(min_value=1, max_value=4),  # how many lines
    st.booleans(),  # whether the source ends with a newline afterwards
)


def edit_apply(source: str, edit: Edit, counter: itertools.count[int]) -> str:
    """Apply one edit to a source; every new line is unique, so no two steps write the same line by chance."""
    operation, where, count, final_newline = edit
    # Python's lines, not str.splitlines's: the comments hold characters that splitlines would break at.
    body = source if source.endswith("\n") or not source else f"{source}\n"
    lines = [f"{line}\n" for line in body.split("\n")[:-1]]
    position = min(int(where * len(lines)), len(lines))
    fresh = [f"x_{number} = {number}\n" for number in itertools.islice(counter, count)]
    if operation == "append":
        lines.extend(fresh)
    elif operation == "insert":
        lines[position:position] = fresh
    elif operation == "delete" and lines:
        del lines[min(position, len(lines) - 1) : position + count]
    elif operation == "replace" and lines:
        index = min(position, len(lines) - 1)
        lines[index : index + 1] = fresh[:1]
    elif operation == "whitespace" and lines:
        index = min(position, len(lines) - 1)
        lines[index] = lines[index].rstrip("\n") + " " * count + "\n" if lines[index].strip() else "\n\n"
    elif operation == "comment":
        text = COMMENT_TEXTS[next(counter) % len(COMMENT_TEXTS)]
        lines.insert(position, f"# {text} {count}\n")
    edited = "".join(lines)
    return edited if final_newline or not edited.endswith("\n") else edited[:-1]


@pytest.fixture
def property_user(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user(f"prop-{uuid.uuid4().hex[:8]}")


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(min_value=1, max_value=6), edits=st.lists(EDITS, min_size=1, max_size=12))
def test_every_version_rebuilds_to_the_submitted_source(
    property_user: User, settings: Any, start: int, edits: list[Edit]
) -> None:
    """Random appends, inserts, deletions, replacements, whitespace and comments: every version rebuilds exactly."""
    settings.LUXOS_SNAPSHOT_EVERY = 3
    counter = itertools.count()
    source = "".join(f"x_{number} = {number}\n" for number in itertools.islice(counter, start))
    being = being_create(
        data={"genesis": {"name": f"prop-{uuid.uuid4().hex}", "type": "function", "source": source}},
        actor=property_user,
    )
    submitted = {being.hash: source}
    souls = {being.soul}

    for edit in edits:
        new_source = edit_apply(source, edit, counter)
        if new_source == source:
            with pytest.raises(NothingChangedError):
                being_evolve(being=being, source=new_source, reason="", actor=property_user)
            continue
        evolution = being_evolve(being=being, source=new_source, reason=str(edit), actor=property_user)
        # Follow the code: an evolution stays in the being, a mutation moves on to the mutant.
        being, source = evolution.being, new_source
        assert being.genesis["source"] == source
        submitted[being.hash] = source
        souls.add(being.soul)

    for held in BaseBeing.objects.filter(soul__in=souls):
        assert held.hash == genesis_hash(held.genesis)
        versions = being_versions(held)
        own = [version.version for version in versions if version.owned]
        assert own == list(range(1, held.version + 1))
        for version in versions:
            genotype = version.genotype()
            assert soul_hash(genotype) == version.hash
            assert genotype["source"] == submitted[version.hash]
    for hash, expected in submitted.items():
        assert soul_get(hash=hash, user=property_user).source() == expected
