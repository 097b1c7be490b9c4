"""The two tables match seed 001 column by column, with its indexes and foreign keys."""

import json

import pytest
from django.db import connection

from beings import kinds
from beings.genotype import genesis_hash
from beings.models import BaseBeing, FunctionBeing, QueueBeing

pytestmark = pytest.mark.django_db

# (column, type, nullable, default) exactly as seed 001 declares them; created_at is timezone-aware.
BASE_BEINGS = [
    ("soul", "uuid", "NO", None),
    ("tags", "ARRAY", "YES", "'{}'::text[]"),
    ("energy_level", "integer", "YES", "0"),
    ("genesis", "jsonb", "NO", None),
    ("attributes", "jsonb", "NO", None),
    ("memories", "jsonb", "NO", None),
    ("self_awareness", "jsonb", "NO", None),
    ("created_at", "timestamp with time zone", "YES", "statement_timestamp()"),
]
RELATIONSHIPS = [
    ("id", "uuid", "NO", None),
    ("tags", "ARRAY", "YES", "'{}'::text[]"),
    ("energy_level", "integer", "YES", "0"),
    ("source_soul", "uuid", "NO", None),
    ("target_soul", "uuid", "NO", None),
    ("genesis", "jsonb", "NO", None),
    ("attributes", "jsonb", "NO", None),
    ("created_at", "timestamp with time zone", "YES", "statement_timestamp()"),
]


def columns(table: str) -> list[tuple[str, str, str, str | None]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns"
            " WHERE table_name = %s ORDER BY ordinal_position",
            [table],
        )
        return cursor.fetchall()


def indexes(table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        return {name: definition.split(" USING ", 1)[1] for name, definition in cursor.fetchall()}


@pytest.mark.parametrize(("table", "expected"), [("base_beings", BASE_BEINGS), ("relationships", RELATIONSHIPS)])
def test_columns_match_seed(table, expected):
    """Every column has the seed's name, type, nullability and default, in the seed's order."""
    assert columns(table) == expected


def test_base_beings_indexes_match_seed():
    """GIN on the four jsonb columns and tags, btree on energy_level (plus the keyset and hash lookup indexes)."""
    assert indexes("base_beings") == {
        "base_beings_pkey": "btree (soul)",
        "idx_base_beings_genesis": "gin (genesis jsonb_path_ops)",
        "idx_base_beings_attributes": "gin (attributes jsonb_path_ops)",
        "idx_base_beings_memories": "gin (memories jsonb_path_ops)",
        "idx_base_beings_self_awareness": "gin (self_awareness jsonb_path_ops)",
        "idx_base_beings_energy_level": "btree (energy_level)",
        "idx_being_tags": "gin (tags)",
        "idx_base_beings_created_soul": "btree (created_at, soul)",
        "idx_base_beings_hash_keys": "gin (luxos_hash_keys(genesis))",
    }


def test_relationships_indexes_match_seed():
    """GIN on genesis, attributes and tags; btree on source, target and energy_level."""
    assert indexes("relationships") == {
        "relationships_pkey": "btree (id)",
        "idx_relationships_genesis": "gin (genesis jsonb_path_ops)",
        "idx_relationships_attributes": "gin (attributes jsonb_path_ops)",
        "idx_relationships_source": "btree (source_soul)",
        "idx_relationships_target": "btree (target_soul)",
        "idx_relationships_energy_level": "btree (energy_level)",
        "idx_rel_tags": "gin (tags)",
    }


def test_relationships_reference_base_beings():
    """source_soul and target_soul are foreign keys to base_beings(soul)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'relationships'::regclass AND contype = 'f' ORDER BY 1"
        )
        definitions = [row[0] for row in cursor.fetchall()]
    assert [d.split(" DEFERRABLE")[0] for d in definitions] == [
        "FOREIGN KEY (source_soul) REFERENCES base_beings(soul)",
        "FOREIGN KEY (target_soul) REFERENCES base_beings(soul)",
    ]


def test_database_defaults_fill_omitted_columns():
    """A raw insert that names only the NOT NULL columns gets the seed's defaults."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO base_beings (soul, genesis, attributes, memories, self_awareness)"
            " VALUES (gen_random_uuid(), %s, '{}', '[]', '{}')"
            " RETURNING tags, energy_level, created_at IS NOT NULL",
            [json.dumps({"name": "raw", "type": "data", "hash": genesis_hash({"type": "data"})})],
        )
        assert cursor.fetchone() == ([], 0, True)


# Fixed forever: every machine and every database agrees on these souls.
CORE_SOULS = {
    "Kernel": ("448d74d1-6dc1-541f-8d26-83e75d12acad", "kernel"),
    "Factory": ("9aec4b43-f9ec-506b-938a-2415de52afc0", "factory"),
    "IOQueue": ("f2ac76c4-e70d-53a0-ab6a-f6f0ba2b4f1e", "queue"),
    "CPUQueue": ("bea62451-c957-5d9f-8bdb-bf9bb17a2168", "queue"),
}


@pytest.mark.parametrize("name", CORE_SOULS)
def test_core_beings_have_fixed_souls(name):
    """Kernel, Factory, IOQueue and CPUQueue exist, created by the data migration, with their fixed souls."""
    soul, kind = CORE_SOULS[name]
    assert str(kinds.core_soul(name)) == soul
    being = BaseBeing.objects.get(soul=soul)
    assert (being.name, being.kind, being.is_core) == (name, kind, True)


def test_proxy_models_select_their_kind(make_being):
    """Each kind's proxy model sees only beings of that kind."""
    function = make_being("f", kind="function")
    make_being("d", kind="data")
    assert list(FunctionBeing.objects.values_list("soul", flat=True)) == [function.soul]
    assert set(QueueBeing.objects.values_list("genesis__name", flat=True)) == {"IOQueue", "CPUQueue"}
