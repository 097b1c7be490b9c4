"""The lineage rules of issue 3: evolution, mutation, cosmetic changes, lookup by hash and by alias, who may evolve."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from guardian.shortcuts import assign_perm

from beings import kinds
from beings.evolution import being_evolve
from beings.exceptions import (
    AliasNotFoundError,
    BeingNotFoundError,
    CoreBeingError,
    GenesisInvalidError,
    HashAmbiguousError,
    HashInvalidError,
    NothingChangedError,
    SoulNotFoundError,
)
from beings.genotype import genesis_hash, soul_hash
from beings.models import BaseBeing
from beings.selectors import alias_get, being_versions, soul_get, version_get
from beings.services import being_create, being_delete
from luxsite.errors import PermissionDenied
from relations.models import Relationship

pytestmark = pytest.mark.django_db

# Four lines: two added lines are exactly the 0.5 ratio.
SOURCE = "def run(a, b):\n    total = a + b\n    return total\n\n"


def genotype_hash(source: str) -> str:
    """The hash of a function being with this source, by the formula of issue 3."""
    return soul_hash(
        {"type": "function", "language": "python", "entrypoint": "run", "source": source, "workload": "cpu"}
    )


def fresh(being: BaseBeing) -> BaseBeing:
    return BaseBeing.objects.get(pk=being.pk)


@pytest.fixture
def adder(make_being: Callable[..., BaseBeing]) -> BaseBeing:
    return make_being(
        "adder",
        genesis={"source": SOURCE, "description": "adds"},
        attributes={"team": "math"},
        tags=["demo"],
        energy_level=7,
        memories=[{"event": "born"}],
        self_awareness={"mood": "fine"},
    )


# --- evolution -----------------------------------------------------------------------------------------------------


def test_added_lines_within_the_ratio_evolve_the_same_being(alice: User, adder: BaseBeing) -> None:
    """Two lines added to four: same soul, version 2, the new hash, version 1 kept as a reverse diff."""
    source = SOURCE + "LIMIT = 10\nDEFAULT = 0\n"
    created_at = adder.genesis["origin"]["at"]

    evolution = being_evolve(being=adder, source=source, reason="limits", actor=alice)

    being = fresh(adder)
    assert (evolution.kind, evolution.being.soul, evolution.parent.soul) == ("evolution", adder.soul, adder.soul)
    assert (evolution.change.added, evolution.change.removed, evolution.change.changed) == (2, 0, 0)
    assert (being.version, being.hash, being.genesis["source"]) == (2, genotype_hash(source), source)
    assert being.hash == genesis_hash(being.genesis)
    [entry] = being.genesis["ancestors"]
    assert (
        {"version", "hash", "created_at", "kind", "diff"}
        <= set(entry)
        <= {"version", "hash", "created_at", "kind", "diff", "actor", "reason"}
    )
    assert (entry["version"], entry["hash"], entry["kind"], entry["created_at"]) == (
        1,
        genotype_hash(SOURCE),
        "genesis",
        created_at,
    )
    assert being.genesis["origin"]["kind"] == "evolution"
    assert being.genesis["origin"]["reason"] == "limits"
    assert being.genesis["origin"]["actor"] == "alice"
    assert BaseBeing.objects.named("adder").count() == 1


def test_evolution_leaves_attributes_and_state_untouched(alice: User, adder: BaseBeing) -> None:
    """An evolution changes the code and appends a memory; attributes, tags, energy and self-awareness stay."""
    being_evolve(being=adder, source=SOURCE + "LIMIT = 10\n", reason="", actor=alice)

    being = fresh(adder)
    assert (being.attributes, being.tags, being.energy_level, being.self_awareness) == (
        {"team": "math"},
        ["demo"],
        7,
        {"mood": "fine"},
    )
    assert being.genesis["description"] == "adds"
    assert being.memories[0] == {"event": "born"}
    assert not Relationship.objects.filter(source=adder).exists()


def test_evolution_appends_an_event_to_memories(alice: User, adder: BaseBeing) -> None:
    """The memories get one event naming the versions, hashes, reason, actor and counts."""
    being_evolve(being=adder, source=SOURCE + "LIMIT = 10\n", reason="a limit", actor=alice)

    event = fresh(adder).memories[-1]
    assert {key: event[key] for key in ("event", "version", "hash", "from_hash", "reason", "actor", "added")} == {
        "event": "evolution",
        "version": 2,
        "hash": genotype_hash(SOURCE + "LIMIT = 10\n"),
        "from_hash": genotype_hash(SOURCE),
        "reason": "a limit",
        "actor": "alice",
        "added": 1,
    }
    assert event["at"]


def test_memories_stay_bounded(alice: User, adder: BaseBeing, settings: Any) -> None:
    """With LUXOS_MEMORY_LIMIT 2, three evolutions leave the two newest events and drop the rest."""
    settings.LUXOS_MEMORY_LIMIT = 2
    source = SOURCE
    for number in range(3):
        source += f"STEP_{number} = {number}\n"
        being_evolve(being=adder, source=source, reason=f"step {number}", actor=alice)

    memories = fresh(adder).memories
    assert [(event["version"], event["reason"]) for event in memories] == [(3, "step 1"), (4, "step 2")]


def test_memories_kept_by_topic_take_events_under_events(alice: User, make_being: Callable[..., BaseBeing]) -> None:
    """Memories kept as an object keep their topics and take the events under ``events``."""
    being = make_being("topical", genesis={"source": SOURCE}, memories={"facts": ["sky is blue"]})

    being_evolve(being=being, source=SOURCE + "X = 1\n", reason="", actor=alice)

    memories = fresh(being).memories
    assert memories["facts"] == ["sky is blue"]
    assert [event["version"] for event in memories["events"]] == [2]


def test_a_full_snapshot_every_n_versions(alice: User, adder: BaseBeing, settings: Any) -> None:
    """With LUXOS_SNAPSHOT_EVERY 3, versions 3 and 6 keep their whole source; every version still rebuilds."""
    settings.LUXOS_SNAPSHOT_EVERY = 3
    sources = {1: SOURCE}
    source = SOURCE
    for number in range(2, 8):
        source += f"STEP_{number} = {number}\n"
        being_evolve(being=adder, source=source, reason="", actor=alice)
        sources[number] = source

    being = fresh(adder)
    ancestors = being.genesis["ancestors"]
    assert [entry["version"] for entry in ancestors] == [1, 2, 3, 4, 5, 6]
    assert {entry["version"]: entry["source"] for entry in ancestors if "source" in entry} == {
        3: sources[3],
        6: sources[6],
    }
    for version in being_versions(being):
        assert version.source() == sources[version.version]
        assert soul_hash(version.genotype()) == version.hash == genotype_hash(sources[version.version])


@pytest.mark.parametrize(
    ("ratio", "added", "kind"),
    [
        (0.5, 1, "evolution"),
        (0.5, 2, "evolution"),  # exactly half of four lines
        (0.5, 3, "mutation"),
        (1.0, 3, "evolution"),
        (1.0, 5, "mutation"),
        (0.0, 1, "mutation"),
    ],
)
def test_the_added_ratio_decides(
    alice: User, adder: BaseBeing, settings: Any, ratio: float, added: int, kind: str
) -> None:
    """Added lines up to LUXOS_EVOLUTION_MAX_ADDED_RATIO × current lines evolve; more mutate."""
    settings.LUXOS_EVOLUTION_MAX_ADDED_RATIO = ratio
    source = SOURCE + "".join(f"EXTRA_{number} = {number}\n" for number in range(added))

    evolution = being_evolve(being=adder, source=source, reason="", actor=alice)

    assert evolution.kind == kind
    assert evolution.change.added == added
    assert (evolution.being.soul == adder.soul) is (kind == "evolution")


def test_lines_inserted_in_the_middle_are_an_evolution(alice: User, adder: BaseBeing) -> None:
    """Additions anywhere count, not only at the end."""
    source = SOURCE.replace("    return total\n", "    total = int(total)\n    return total\n")

    evolution = being_evolve(being=adder, source=source, reason="", actor=alice)

    assert (evolution.kind, evolution.being.soul, fresh(adder).version) == ("evolution", adder.soul, 2)


def test_appending_to_a_last_line_without_newline_is_an_evolution(
    alice: User, make_being: Callable[..., BaseBeing]
) -> None:
    """A source that ends without a newline grows by added lines: its last line gains an ending, not a change."""
    source = "def run(a, b):\n    total = a + b\n    return total"
    being = make_being("open-ended", genesis={"source": source})

    evolution = being_evolve(being=being, source=source + "\nLIMIT = 10", reason="", actor=alice)

    assert (evolution.kind, evolution.change.added, evolution.change.changed) == ("evolution", 1, 0)
    assert being_versions(fresh(being))[0].source() == source


# --- mutation ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "removed", "changed"),
    [
        (SOURCE.replace("a + b", "a - b"), 0, 1),
        (SOURCE.replace("    return total\n", ""), 1, 0),
        ("def run(a, b):\n    return a + b\n", 0, 3),
    ],
)
def test_a_removed_or_changed_line_mutates(
    alice: User, adder: BaseBeing, source: str, removed: int, changed: int
) -> None:
    """Any removed or changed line makes a new being, whatever the size of the change."""
    evolution = being_evolve(being=adder, source=source, reason="", actor=alice)

    assert evolution.kind == "mutation"
    assert (evolution.change.removed, evolution.change.changed) == (removed, changed)
    assert evolution.being.soul != adder.soul
    assert evolution.being.genesis["source"] == source


def test_a_mutant_continues_the_lineage_and_names_its_parent(alice: User, adder: BaseBeing) -> None:
    """The mutant is version 1 with the parent's versions as inherited ancestors and the parent named."""
    evolved = SOURCE + "LIMIT = 10\n"
    being_evolve(being=adder, source=evolved, reason="", actor=alice)
    parent = fresh(adder)
    mutated = evolved.replace("a + b", "a * b")

    mutant = being_evolve(being=parent, source=mutated, reason="multiply", actor=alice).being

    mutant = fresh(mutant)
    genesis = mutant.genesis
    assert (mutant.version, mutant.hash, mutant.name) == (1, genotype_hash(mutated), "adder")
    assert genesis["parent"] == {"soul": str(adder.soul), "version": 2, "hash": genotype_hash(evolved)}
    assert [(entry["version"], entry["hash"], entry["soul"]) for entry in genesis["ancestors"]] == [
        (1, genotype_hash(SOURCE), str(adder.soul)),
        (2, genotype_hash(evolved), str(adder.soul)),
    ]
    assert (genesis["origin"]["kind"], genesis["origin"]["reason"]) == ("mutation", "multiply")
    assert genesis["description"] == "adds"
    sources = {genotype_hash(SOURCE): SOURCE, genotype_hash(evolved): evolved, genotype_hash(mutated): mutated}
    assert {version.hash: version.source() for version in being_versions(mutant)} == sources


def test_a_mutant_copies_attributes_and_starts_its_own_state(alice: User, adder: BaseBeing) -> None:
    """Attributes and tags are copied; energy, self-awareness and memories start afresh with the mutation event."""
    mutant = being_evolve(being=adder, source=SOURCE.replace("a + b", "a - b"), reason="", actor=alice).being

    mutant = fresh(mutant)
    assert (mutant.attributes, mutant.tags, mutant.energy_level, mutant.self_awareness) == (
        {"team": "math"},
        ["demo"],
        0,
        {},
    )
    [event] = mutant.memories
    assert (event["event"], event["parent"]["soul"], event["changed"]) == ("mutation", str(adder.soul), 1)
    assert all(alice.has_perm(f"beings.{action}_basebeing", mutant) for action in ("view", "change", "delete"))


def test_a_mutation_links_parent_to_child_with_its_statistics(alice: User, adder: BaseBeing) -> None:
    """A relationship parent → child tagged mutation carries the diff statistics and both hashes."""
    source = SOURCE.replace("a + b", "a - b") + "X = 1\n"
    evolution = being_evolve(being=adder, source=source, reason="why not", actor=alice)

    link = Relationship.objects.get(source=adder)
    assert (link.target_id, link.tags) == (evolution.being.soul, ["mutation"])
    assert link.genesis == {
        "type": "mutation",
        "reason": "why not",
        "kind": "mutation",
        "added": 1,
        "removed": 0,
        "changed": 1,
        "current_lines": 4,
        "from_hash": genotype_hash(SOURCE),
        "to_hash": genotype_hash(source),
    }


def test_a_mutation_leaves_the_parent_exactly_as_it_was(alice: User, adder: BaseBeing) -> None:
    """The parent's whole row, genesis included, is unchanged by its mutation (the original mutated parents)."""
    row = BaseBeing.objects.filter(pk=adder.pk).values().get()

    being_evolve(being=adder, source="def run(a, b):\n    return a - b\n", reason="", actor=alice)

    assert BaseBeing.objects.filter(pk=adder.pk).values().get() == row


def test_a_mutant_evolves_and_mutates_in_turn(alice: User, adder: BaseBeing) -> None:
    """A mutant's own evolution keeps the inherited entries; its mutant carries three generations."""
    child = being_evolve(being=adder, source=SOURCE.replace("a + b", "b + a"), reason="", actor=alice).being
    child_evolved = child.genesis["source"] + "Y = 2\n"
    being_evolve(being=child, source=child_evolved, reason="", actor=alice)
    grandchild = being_evolve(
        being=fresh(child), source=child_evolved.replace("Y = 2", "Y = 3"), reason="", actor=alice
    ).being

    souls = [version.soul for version in being_versions(fresh(grandchild))]
    assert souls == [adder.soul, child.soul, child.soul, grandchild.soul]
    assert [version.version for version in being_versions(fresh(grandchild))] == [1, 1, 2, 1]
    assert all(soul_hash(version.genotype()) == version.hash for version in being_versions(fresh(grandchild)))


# --- no change, cosmetic change ------------------------------------------------------------------------------------


def test_the_same_source_is_a_conflict_and_writes_nothing(
    alice: User, adder: BaseBeing, unchanged: Callable[..., Any]
) -> None:
    """Evolving to the genotype the being already has is 409 nothing_changed."""
    with unchanged(), pytest.raises(NothingChangedError) as refused:
        being_evolve(being=adder, source=SOURCE, reason="again", actor=alice)

    assert refused.value.status == 409
    assert refused.value.code == "nothing_changed"


@pytest.mark.parametrize(
    "source",
    [
        SOURCE.replace("total = a + b", "total = a + b  # the sum"),
        "# adds two numbers\n" + SOURCE,
        SOURCE.replace("a + b", "a+b"),
        SOURCE + "\n\n\n",
        SOURCE.replace("\n\n", "\n"),  # a blank line removed is no more than whitespace
    ],
)
def test_whitespace_or_comments_only_is_a_cosmetic_evolution(alice: User, adder: BaseBeing, source: str) -> None:
    """A change that leaves the AST the same evolves the being in place, marked cosmetic, with a new hash."""
    evolution = being_evolve(being=adder, source=source, reason="tidy", actor=alice)

    being = fresh(adder)
    assert (evolution.kind, evolution.being.soul) == ("cosmetic", adder.soul)
    assert (being.version, being.hash, being.genesis["origin"]["kind"]) == (2, genotype_hash(source), "cosmetic")
    assert being.memories[-1]["event"] == "cosmetic"
    assert being_versions(being)[0].source() == SOURCE


# --- lookup by hash and by alias -----------------------------------------------------------------------------------


def test_an_ancestor_is_found_by_full_hash_and_by_prefix(alice: User, adder: BaseBeing) -> None:
    """Looking up version 1's hash after an evolution returns version 1 itself, source rebuilt."""
    being_evolve(being=adder, source=SOURCE + "LIMIT = 10\n", reason="", actor=alice)
    old = genotype_hash(SOURCE)

    for key in (old, old[:12], old[:30].upper()):
        version = soul_get(hash=key, user=alice)
        assert (version.hash, version.version, version.soul, version.is_current) == (old, 1, adder.soul, False)
        assert version.source() == SOURCE
        assert soul_hash(version.genotype()) == old


def test_the_current_version_is_found_by_hash(alice: User, adder: BaseBeing) -> None:
    """The current hash names the current version."""
    version = soul_get(hash=adder.hash[:12], user=alice)

    assert (version.hash, version.version, version.is_current, version.alias) == (adder.hash, 1, True, "adder")


def test_an_inherited_hash_is_found_in_its_own_being(alice: User, adder: BaseBeing) -> None:
    """The parent's hash, copied into a mutant's lineage, still resolves to the parent's own version."""
    mutant = being_evolve(being=adder, source=SOURCE.replace("a + b", "a - b"), reason="", actor=alice).being

    version = soul_get(hash=adder.hash, user=alice)

    assert (version.holder.soul, version.soul, version.is_current) == (adder.soul, adder.soul, True)
    assert soul_get(hash=mutant.hash, user=alice).holder.soul == mutant.soul


@pytest.mark.parametrize("key", ["abc", "0123456789a", "g" * 12, "not a hash at all", "0" * 65, ""])
def test_a_malformed_hash_is_invalid(alice: User, key: str) -> None:
    """Fewer than 12 hex characters, non-hex characters or more than 64 are a 422."""
    with pytest.raises(HashInvalidError) as refused:
        soul_get(hash=key, user=alice)

    assert refused.value.status == 422


def test_an_unknown_or_invisible_hash_is_not_found(alice: User, bob: User, adder: BaseBeing) -> None:
    """A hash nobody has is 404, and so is alice's hash asked by bob."""
    with pytest.raises(SoulNotFoundError):
        soul_get(hash="0" * 64, user=alice)
    with pytest.raises(SoulNotFoundError) as refused:
        soul_get(hash=adder.hash, user=bob)

    assert refused.value.status == 404


SHARED = "abcdef012345"


def lineage_entry(version: int, tail: str, source: str) -> dict[str, Any]:
    """A hand-made lineage entry whose hash starts with SHARED (and so does not rebuild to its hash)."""
    return {"version": version, "hash": SHARED + tail * 52, "created_at": None, "kind": "genesis", "source": source}


def forged(being: BaseBeing, *entries: dict[str, Any]) -> BaseBeing:
    """``being`` with ``entries`` written as its ancestors behind the service's back, which refuses entries that
    do not rebuild to their hash: 12 shared hex characters of two real hashes would take ~2^24 hashes to find."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE base_beings SET genesis = jsonb_set(genesis, '{ancestors}', %s::jsonb) WHERE soul = %s",
            [json.dumps(entries), being.soul],
        )
    being.refresh_from_db()
    return being


def test_an_ambiguous_prefix_is_a_conflict_listing_the_candidates(
    alice: User, make_being: Callable[..., BaseBeing]
) -> None:
    """Two hashes sharing their first 12 characters: the 12-character prefix is 409, a longer one finds each."""
    forged(make_being("one", genesis={"source": "X = 2\n", "version": 2}), lineage_entry(1, "a", "X = 1\n"))
    forged(make_being("two", genesis={"source": "Y = 2\n", "version": 2}), lineage_entry(1, "b", "Y = 1\n"))

    with pytest.raises(HashAmbiguousError) as refused:
        soul_get(hash=SHARED, user=alice)

    assert refused.value.status == 409
    assert SHARED + "a" * 52 in refused.value.detail
    assert SHARED + "b" * 52 in refused.value.detail
    assert soul_get(hash=SHARED + "a", user=alice).source() == "X = 1\n"
    assert soul_get(hash=SHARED + "b", user=alice).source() == "Y = 1\n"


def test_an_ambiguous_prefix_within_one_being(alice: User, make_being: Callable[..., BaseBeing]) -> None:
    """version_get refuses a prefix naming two versions of one being and finds each by a longer one."""
    being = forged(
        make_being("twice", genesis={"source": "Z = 3\n", "version": 3}),
        lineage_entry(1, "c", "Z = 1\n"),
        lineage_entry(2, "d", "Z = 2\n"),
    )

    with pytest.raises(HashAmbiguousError):
        version_get(being=being, hash=SHARED)
    assert version_get(being=being, hash=SHARED + "d").version == 2
    with pytest.raises(SoulNotFoundError):
        version_get(being=being, hash=SHARED + "e")


def test_ancestors_that_do_not_rebuild_to_their_hash_are_refused(
    alice: User, make_being: Callable[..., BaseBeing], adder: BaseBeing
) -> None:
    """A creation may carry a lineage (an import, say), but one whose entry claims another version's hash, whose
    genotype it is not, is refused: a lookup by that hash would return the forgery."""
    stolen = {"version": 1, "hash": adder.hash, "created_at": None, "kind": "genesis", "source": "import os\n"}
    with pytest.raises(GenesisInvalidError) as refused:
        make_being("thief", genesis={"source": "B = 2\n", "version": 2, "ancestors": [stolen]})
    assert refused.value.detail.startswith("genesis.ancestors[0] rebuilds to hash ")
    assert refused.value.detail.endswith(f"not its recorded {adder.hash}")
    assert soul_get(hash=adder.hash, user=alice).soul == adder.soul


def test_an_alias_names_the_newest_being(alice: User, bob: User, adder: BaseBeing) -> None:
    """After a mutation the alias names the mutant; bob's newer being of that name is not alice's to see."""
    assert alias_get(alias="adder", user=alice).soul == adder.soul
    mutant = being_evolve(being=adder, source=SOURCE.replace("a + b", "a - b"), reason="", actor=alice).being
    being_create(data={"genesis": {"name": "adder", "type": "data"}}, actor=bob)

    assert alias_get(alias="adder", user=alice).soul == mutant.soul
    assert alias_get(alias=" adder ", user=alice).soul == mutant.soul
    with pytest.raises(AliasNotFoundError):
        alias_get(alias="nobody", user=alice)


def test_an_alias_follows_evolution_without_changing_being(alice: User, adder: BaseBeing) -> None:
    """An evolution keeps the being the alias names and gives it the new hash."""
    being_evolve(being=adder, source=SOURCE + "X = 1\n", reason="", actor=alice)

    named = alias_get(alias="adder", user=alice)
    assert (named.soul, named.hash) == (adder.soul, genotype_hash(SOURCE + "X = 1\n"))


# --- who may evolve ------------------------------------------------------------------------------------------------


def test_evolving_needs_change_permission(bob: User, adder: BaseBeing, unchanged: Callable[..., Any]) -> None:
    """Bob may not evolve or mutate alice's being (unseen, it is not found for him), even when he may view it."""
    with unchanged():
        for source in (SOURCE + "X = 1\n", SOURCE.replace("a + b", "a - b")):
            with pytest.raises(BeingNotFoundError):
                being_evolve(being=adder, source=source, reason="", actor=bob)
    assign_perm("beings.view_basebeing", bob, adder)
    with unchanged(), pytest.raises(PermissionDenied):
        being_evolve(being=adder, source=SOURCE + "X = 1\n", reason="", actor=bob)


def test_change_permission_is_enough_to_evolve(alice: User, bob: User, adder: BaseBeing) -> None:
    """Given change on alice's being, bob evolves it; his mutant is his own."""
    assign_perm("beings.change_basebeing", bob, adder)

    evolved = being_evolve(being=adder, source=SOURCE + "X = 1\n", reason="", actor=bob)
    mutant = being_evolve(being=fresh(adder), source=SOURCE.replace("a + b", "a - b"), reason="", actor=bob).being

    assert (evolved.kind, fresh(adder).genesis["origin"]["actor"]) == ("evolution", "bob")
    assert bob.has_perm("beings.change_basebeing", mutant)
    assert not alice.has_perm("beings.view_basebeing", mutant)


@pytest.mark.parametrize("name", sorted(kinds.CORE_BEINGS))
def test_core_beings_never_evolve(root: User, unchanged: Callable[..., Any], name: str) -> None:
    """Not even a superuser evolves a core being."""
    core = BaseBeing.objects.get(soul=kinds.core_soul(name))

    with unchanged(), pytest.raises(CoreBeingError):
        being_evolve(being=core, source="X = 1\n", reason="", actor=root)


def test_an_invalid_source_is_refused_before_anything(
    alice: User, adder: BaseBeing, unchanged: Callable[..., Any]
) -> None:
    """Unparsable Python never becomes a version."""
    from beings.exceptions import SourceSyntaxError

    with unchanged(), pytest.raises(SourceSyntaxError):
        being_evolve(being=adder, source="def run(:\n", reason="", actor=alice)


def test_a_being_deleted_meanwhile_is_not_found(alice: User, adder: BaseBeing, unchanged: Callable[..., Any]) -> None:
    """Evolving a being that was deleted after it was read is a 404, and writes nothing."""
    being = fresh(adder)
    being_delete(being=adder, actor=alice)

    with unchanged(), pytest.raises(BeingNotFoundError):
        being_evolve(being=being, source=SOURCE + "X = 1\n", reason="", actor=None)
