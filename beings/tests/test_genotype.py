"""The soul hash: exactly the formula of issue 3, over the genotype only, enforced by PostgreSQL too."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.test import Client

from beings.exceptions import GenesisInvalidError, HashMismatchError, SourceSyntaxError
from beings.models import BaseBeing
from beings.services import being_create, being_create_or_get

pytestmark = pytest.mark.django_db

SOURCE = "def run(a, b):\n    return a + b\n"


def formula(
    *, source: str, kind: str = "function", language: str = "python", entrypoint: str = "run", workload: str = "cpu"
) -> str:
    """The hash as issue 3 spells it, computed here without LuxOS's own code."""
    genotype = {"type": kind, "language": language, "entrypoint": entrypoint, "source": source, "workload": workload}
    text = json.dumps(genotype, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stored_hash(being: BaseBeing) -> str:
    """genesis.hash as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT genesis->>'hash' FROM base_beings WHERE soul = %s", [being.soul])
        return str(cursor.fetchone()[0])


def test_hash_is_the_formula_with_defaults_filled_in(alice: User) -> None:
    """A being that names only type and source hashes as python / run / cpu, full length."""
    being = being_create(data={"genesis": {"name": "adder", "type": "function", "source": SOURCE}}, actor=alice)

    assert being.hash == formula(source=SOURCE)
    assert stored_hash(being) == being.hash
    assert len(being.hash) == 64
    assert set(being.hash) <= set("0123456789abcdef")


def test_spelling_out_the_defaults_gives_the_same_hash(alice: User) -> None:
    """language python, entrypoint run and workload cpu written out are the defaults: same hash."""
    implicit = being_create(data={"genesis": {"name": "a", "type": "function", "source": SOURCE}}, actor=alice)
    explicit = being_create(
        data={
            "genesis": {
                "name": "b",
                "type": "function",
                "source": SOURCE,
                "language": "python",
                "entrypoint": "run",
                "workload": "cpu",
            }
        },
        actor=alice,
    )

    assert implicit.hash == explicit.hash == formula(source=SOURCE)


@pytest.mark.parametrize(
    "genotype",
    [
        {"workload": "io"},
        {"entrypoint": "main"},
        {"type": "class"},
        {"source": SOURCE + "\n"},
    ],
)
def test_every_genotype_key_changes_the_hash(alice: User, genotype: dict[str, str]) -> None:
    """Workload, entrypoint, type and source are each part of the genotype."""
    genesis = {"name": "x", "type": "function", "source": SOURCE, **genotype}

    being = being_create(data={"genesis": genesis}, actor=alice)

    expected = formula(
        source=genesis["source"],
        kind=genesis["type"],
        entrypoint=genesis.get("entrypoint", "run"),
        workload=genesis.get("workload", "cpu"),
    )
    assert being.hash == expected != formula(source=SOURCE)


def test_alias_metadata_and_state_never_change_the_hash(alice: User, root: User) -> None:
    """Name, description, author, timestamps, tags, attributes, memories and energy are not in the genotype."""
    plain = being_create(data={"genesis": {"name": "plain", "type": "function", "source": SOURCE}}, actor=alice)
    dressed = being_create(
        data={
            "genesis": {
                "name": "dressed up",
                "type": "function",
                "source": SOURCE,
                "description": "adds",
                "author": "alice",
                "created_at": "2001-01-01T00:00:00Z",
                "machine": "laptop-7",
            },
            "tags": ["math"],
            "energy_level": 42,
            "attributes": {"team": "a"},
            "memories": [{"event": "born"}],
            "self_awareness": {"mood": "fine"},
        },
        actor=root,  # energy is a superuser's to set
    )

    assert plain.hash == dressed.hash == formula(source=SOURCE)


TRICKY = (
    '"""Zażółć gęślą jaźń — 日本語 🦄 ∑."""\n'
    "TEXT = 'tab\there, bell \x07, escape \x1b, delete \x7f, unit sep \x1f'\n"
    'QUOTES = "\\"double\\" and \\\\ backslash"\n'
    "# a line separator \u2028 and a paragraph separator \u2029 inside a comment\n"
    "NBSP = '\u00a0'  # non-breaking space; next: vertical tab \x0b and form feed \x0c\n"
    "def run():\n"
    "    return TEXT + QUOTES\n"
)


def test_unicode_and_control_characters_hash_the_same_in_python_and_postgresql(alice: User) -> None:
    """Source full of non-ASCII and control characters passes the database's own hash check and matches the formula."""
    being = being_create(data={"genesis": {"name": "tricky ✓", "type": "function", "source": TRICKY}}, actor=alice)

    assert being.hash == formula(source=TRICKY)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT luxos_soul_hash(genesis), genesis->>'source' FROM base_beings WHERE soul = %s", [being.soul]
        )
        database_hash, database_source = cursor.fetchone()
    assert database_hash == being.hash
    assert database_source == TRICKY


def test_the_database_refuses_a_source_changed_without_its_hash(alice: User) -> None:
    """A raw SQL UPDATE of the source that leaves the hash behind violates the CHECK constraint."""
    being = being_create(data={"genesis": {"name": "adder", "type": "function", "source": TRICKY}}, actor=alice)

    with (
        pytest.raises(IntegrityError, match="base_beings_hash_matches_genotype"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE base_beings SET genesis = jsonb_set(genesis, '{source}', to_jsonb(%s::text)) WHERE soul = %s",
            [TRICKY + "# sneaky\n", being.soul],
        )
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE base_beings SET genesis = genesis - 'hash' WHERE soul = %s", [being.soul])

    being.refresh_from_db()
    assert being.genesis["source"] == TRICKY


def test_the_database_accepts_a_renamed_being_with_its_hash(alice: User) -> None:
    """Changing the alias in SQL keeps the genotype, so the CHECK constraint lets it through."""
    being = being_create(data={"genesis": {"name": "adder", "type": "function", "source": SOURCE}}, actor=alice)

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE base_beings SET genesis = jsonb_set(genesis, '{name}', '\"summer\"') WHERE soul = %s", [being.soul]
        )

    being.refresh_from_db()
    assert (being.name, being.hash) == ("summer", formula(source=SOURCE))


@pytest.mark.parametrize(
    ("genesis", "error", "message"),
    [
        ({"workload": "gpu"}, GenesisInvalidError, "workload"),
        ({"workload": 1}, GenesisInvalidError, "workload"),
        ({"language": "ruby"}, GenesisInvalidError, "language"),
        ({"entrypoint": "_private"}, GenesisInvalidError, "entrypoint"),
        ({"entrypoint": "not a name"}, GenesisInvalidError, "entrypoint"),
        ({"entrypoint": ""}, GenesisInvalidError, "entrypoint"),
        ({"source": "x = '\x00'\n"}, SourceSyntaxError, "not valid Python"),
        ({"hash": "0" * 64}, HashMismatchError, "not the hash of the genotype"),
        ({"hash": formula(source=SOURCE)[:12]}, HashMismatchError, "not the hash of the genotype"),
        ({"hash": formula(source=SOURCE).upper()}, HashMismatchError, "not the hash of the genotype"),
        ({"version": 0}, GenesisInvalidError, "version"),
        ({"ancestors": [{"version": 1, "hash": "abc", "diff": []}]}, GenesisInvalidError, "ancestors"),
    ],
)
def test_bad_genotypes_are_refused_and_store_nothing(
    alice: User, unchanged: Callable[..., Any], genesis: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Unknown workloads and languages, private or empty entrypoints, NUL bytes and wrong hashes are refused."""
    with unchanged(), pytest.raises(error, match=message):
        being_create(data={"genesis": {"name": "x", "type": "function", "source": SOURCE, **genesis}}, actor=alice)


@pytest.mark.parametrize(
    ("genesis", "code"),
    [
        ({"workload": "gpu"}, "genesis_invalid"),
        ({"language": "javascript"}, "genesis_invalid"),
        ({"entrypoint": "__init__"}, "genesis_invalid"),
        ({"hash": "f" * 64}, "hash_mismatch"),
    ],
)
def test_bad_genotypes_over_http_are_422(
    api: Client, unchanged: Callable[..., Any], genesis: dict[str, Any], code: str
) -> None:
    """The API answers a bad workload, language, entrypoint or client-sent hash with 422 and its code."""
    body = {"genesis": {"name": "x", "type": "function", "source": SOURCE, **genesis}}
    with unchanged():
        response = api.post("/api/beings/", json.dumps(body), content_type="application/json")

    assert response.status_code == 422
    assert response.json()["code"] == code


def test_a_client_sent_correct_hash_is_accepted(api: Client) -> None:
    """A client that computes the hash itself, by the formula, is believed because it is right."""
    body = {"genesis": {"name": "x", "type": "function", "source": SOURCE, "hash": formula(source=SOURCE)}}

    response = api.post("/api/beings/", json.dumps(body), content_type="application/json")

    assert response.status_code == 201
    assert response.json()["hash"] == formula(source=SOURCE)


def test_create_is_idempotent_on_genotype_and_alias(alice: User, unchanged: Callable[..., Any]) -> None:
    """The same genotype and alias again returns the existing being and writes nothing, whatever else differs."""
    data = {"genesis": {"name": "adder", "type": "function", "source": SOURCE}}
    first, created = being_create_or_get(data=data, actor=alice)

    with unchanged():
        again, created_again = being_create_or_get(data=data, actor=alice)
        dressed, created_dressed = being_create_or_get(
            data={"genesis": {**data["genesis"], "description": "other words"}, "tags": ["x"]}, actor=alice
        )

    assert (created, created_again, created_dressed) == (True, False, False)
    assert again.soul == dressed.soul == first.soul


def test_another_alias_or_another_genotype_is_a_new_being(alice: User) -> None:
    """Change the alias or the source and creation makes a new being."""
    data = {"genesis": {"name": "adder", "type": "function", "source": SOURCE}}
    first = being_create(data=data, actor=alice)

    renamed, created_renamed = being_create_or_get(data={"genesis": {**data["genesis"], "name": "summer"}}, actor=alice)
    other, created_other = being_create_or_get(
        data={"genesis": {**data["genesis"], "source": SOURCE + "# v2\n"}}, actor=alice
    )

    assert (created_renamed, created_other) == (True, True)
    assert len({first.soul, renamed.soul, other.soul}) == 3
    assert renamed.hash == first.hash != other.hash


def test_someone_elses_identical_being_does_not_collide(alice: User, bob: User) -> None:
    """Bob cannot see alice's being, so his identical creation is a being of his own."""
    data = {"genesis": {"name": "adder", "type": "function", "source": SOURCE}}
    alices = being_create(data=data, actor=alice)

    bobs, created = being_create_or_get(data=data, actor=bob)

    assert created
    assert bobs.soul != alices.soul
    assert bob.has_perm("beings.change_basebeing", bobs)
    assert not bob.has_perm("beings.view_basebeing", alices)


def test_naming_the_soul_of_the_existing_being_returns_it(alice: User, unchanged: Callable[..., Any]) -> None:
    """Repeating a create that named its soul returns that being; naming another soul for it is a new being."""
    data = {"genesis": {"name": "adder", "type": "function", "source": SOURCE}}
    first = being_create(data=data, actor=alice)

    with unchanged():
        same, created = being_create_or_get(data={**data, "soul": str(first.soul)}, actor=alice)
    chosen = uuid.uuid4()
    other, created_other = being_create_or_get(data={**data, "soul": str(chosen)}, actor=alice)

    assert (same.soul, created) == (first.soul, False)
    assert (other.soul, created_other, other.hash) == (chosen, True, first.hash)
