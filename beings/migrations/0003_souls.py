"""Souls: the soul hash computed and enforced by PostgreSQL, the hash lookup index, and the soul registry.

``luxos_genotype_json`` spells the genotype exactly as Python's
``json.dumps(genotype, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` does: keys
in sorted order, and ``to_json(text)`` escapes strings as Python does with ``ensure_ascii=False``
(quote, backslash, \\b \\f \\n \\r \\t, other control characters as lowercase \\u00xx).
"""

import django.contrib.postgres.indexes
import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models

import beings.models

FUNCTIONS = """
CREATE OR REPLACE FUNCTION luxos_genotype_json(genesis jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '{"entrypoint":' || to_json(COALESCE(genesis->>'entrypoint', 'run'))::text
        || ',"language":' || to_json(COALESCE(genesis->>'language', 'python'))::text
        || ',"source":' || to_json(COALESCE(genesis->>'source', ''))::text
        || ',"type":' || to_json(COALESCE(genesis->>'type', ''))::text
        || ',"workload":' || to_json(COALESCE(genesis->>'workload', 'cpu'))::text
        || '}'
$$;
CREATE OR REPLACE FUNCTION luxos_soul_hash(genesis jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(luxos_genotype_json(genesis), 'UTF8')), 'hex')
$$;
CREATE OR REPLACE FUNCTION luxos_hash_matches(genesis jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT COALESCE(genesis->>'hash' = luxos_soul_hash(genesis), false)
$$;
CREATE OR REPLACE FUNCTION luxos_hash_keys(genesis jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY(
        SELECT left(hash, 12) FROM (
            SELECT genesis->>'hash' AS hash
            UNION ALL
            SELECT entry->>'hash' FROM jsonb_array_elements(
                CASE WHEN jsonb_typeof(genesis->'ancestors') = 'array' THEN genesis->'ancestors' ELSE '[]'::jsonb END
            ) AS entry
        ) AS lineage WHERE hash IS NOT NULL
    )
$$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS luxos_hash_keys(jsonb);
DROP FUNCTION IF EXISTS luxos_hash_matches(jsonb);
DROP FUNCTION IF EXISTS luxos_soul_hash(jsonb);
DROP FUNCTION IF EXISTS luxos_genotype_json(jsonb);
"""

# Beings stored before souls existed get a first version, no ancestors and their hash.
BACKFILL = """
SELECT set_config('luxos.context', '{"door": "migration", "operation": "soul_hash_backfill"}', true);
UPDATE base_beings SET genesis = genesis || jsonb_build_object(
    'hash', luxos_soul_hash(genesis),
    'version', COALESCE(genesis->'version', '1'::jsonb),
    'ancestors', COALESCE(genesis->'ancestors', '[]'::jsonb)
) WHERE NOT luxos_hash_matches(genesis) OR NOT genesis ? 'version' OR NOT genesis ? 'ancestors';
"""

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION soul_promotions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'soul_promotions is append-only: promotions are never updated or deleted'
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER soul_promotions_no_change BEFORE UPDATE OR DELETE ON soul_promotions
    FOR EACH ROW EXECUTE FUNCTION soul_promotions_append_only();
"""

DROP_APPEND_ONLY = """
DROP TRIGGER IF EXISTS soul_promotions_no_change ON soul_promotions;
DROP FUNCTION IF EXISTS soul_promotions_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("beings", "0002_core_beings"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunSQL(FUNCTIONS, DROP_FUNCTIONS),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.CreateModel(
            name="Promotion",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("environment", models.CharField(max_length=32)),
                ("action", models.CharField(choices=[("promote", "Promote"), ("demote", "Demote")], max_length=8)),
                ("hash", models.CharField(max_length=64)),
                ("alias", models.CharField(max_length=200)),
                ("soul", models.UUIDField()),
                ("version", models.PositiveIntegerField()),
                ("genotype", models.JSONField()),
                ("actor_name", models.CharField(blank=True, max_length=150)),
                ("note", models.TextField(blank=True)),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
            ],
            options={
                "db_table": "soul_promotions",
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="SoulReportFailure",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                ("operation", models.CharField(max_length=32)),
                ("hash", models.CharField(blank=True, max_length=64)),
                ("path", models.TextField(blank=True)),
                ("error", models.TextField()),
            ],
            options={
                "db_table": "soul_report_failures",
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="SoulValidation",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("environment", models.CharField(max_length=32)),
                (
                    "checked_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                ("ok", models.BooleanField()),
                ("checked", models.PositiveIntegerField()),
                ("problems", models.JSONField(default=list, help_text="[{hash, alias, reason}] for every mismatch.")),
                ("door", models.CharField(blank=True, max_length=16)),
                ("actor_name", models.CharField(blank=True, max_length=150)),
            ],
            options={
                "db_table": "soul_validations",
                "ordering": ["-checked_at", "-id"],
            },
        ),
        migrations.AddIndex(
            model_name="basebeing",
            index=django.contrib.postgres.indexes.GinIndex(
                beings.models.HashKeys("genesis"), name="idx_base_beings_hash_keys"
            ),
        ),
        migrations.AddConstraint(
            model_name="basebeing",
            constraint=models.CheckConstraint(
                condition=beings.models.HashMatches("genesis"), name="base_beings_hash_matches_genotype"
            ),
        ),
        migrations.AddField(
            model_name="promotion",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="promotion",
            name="ends",
            field=models.OneToOneField(
                blank=True,
                help_text="The active promotion this event ends: superseded by a promotion, or demoted.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="ended_by",
                to="beings.promotion",
            ),
        ),
        migrations.AddIndex(
            model_name="soulvalidation",
            index=models.Index(fields=["environment", "checked_at"], name="idx_validations_env_at"),
        ),
        migrations.AddIndex(
            model_name="promotion",
            index=models.Index(fields=["environment", "alias", "created_at"], name="idx_promotions_env_alias_at"),
        ),
        migrations.AddIndex(
            model_name="promotion",
            index=models.Index(fields=["environment", "hash"], name="idx_promotions_env_hash"),
        ),
        migrations.AddConstraint(
            model_name="promotion",
            constraint=models.CheckConstraint(
                condition=models.Q(("hash__regex", "^[0-9a-f]{64}$")), name="soul_promotions_full_hash"
            ),
        ),
        migrations.AddConstraint(
            model_name="promotion",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("action", "promote"), models.Q(("action", "demote"), ("ends__isnull", False)), _connector="OR"
                ),
                name="soul_promotions_demote_ends_a_promotion",
            ),
        ),
        migrations.RunSQL(APPEND_ONLY, DROP_APPEND_ONLY),
    ]
