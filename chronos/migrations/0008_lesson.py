"""Lessons: what LuxOS learned from operations, outside the captured tables."""

import django.contrib.postgres.fields
import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import chronos.lessons.expressions

# Lesson search: the document, its trigrams by pg_trgm's rules (pg_trgm itself is not in every PostgreSQL,
# the embedded one among them), and how much of a query's trigrams a document holds. Immutable, so the
# expression indexes can use them.
SEARCH_FUNCTIONS = """
CREATE FUNCTION chronos_lesson_document(situation text, action text, result text, feedback text, tags varchar[])
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT concat_ws(' ', situation, action, result, feedback, array_to_string(tags, ' '))
$$;

CREATE FUNCTION chronos_trigrams(document text)
RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT substr(padded, start, 3)), '{}')
    FROM (
        SELECT '  ' || word || ' ' AS padded
        FROM regexp_split_to_table(lower(document), '[^[:alnum:]]+') AS word
        WHERE word <> ''
    ) AS words
    CROSS JOIN LATERAL generate_series(1, length(padded) - 2) AS start
$$;

CREATE FUNCTION chronos_trigram_coverage(query text[], document text[])
RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN cardinality(query) = 0 THEN 0.0
                ELSE (SELECT count(*) FROM (SELECT unnest(query) INTERSECT SELECT unnest(document)) AS shared)::float8
                     / cardinality(query) END
$$;
"""
SEARCH_FUNCTIONS_DROP = """
DROP FUNCTION chronos_trigram_coverage(text[], text[]);
DROP FUNCTION chronos_trigrams(text);
DROP FUNCTION chronos_lesson_document(text, text, text, text, varchar[]);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("beings", "0009_execution_folded"),
        ("chronos", "0007_fold_from_arrays"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunSQL(SEARCH_FUNCTIONS, SEARCH_FUNCTIONS_DROP),
        migrations.CreateModel(
            name="Lesson",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "operation",
                    models.CharField(
                        choices=[
                            ("manual", "Manual"),
                            ("execution", "Execution"),
                            ("evolution", "Evolution"),
                            ("validation", "Validation"),
                            ("restore", "Restore"),
                            ("switch", "Switch"),
                            ("merge", "Merge"),
                            ("dream", "Dream"),
                            ("import", "Import"),
                        ],
                        default="manual",
                        max_length=16,
                    ),
                ),
                ("situation", models.TextField()),
                ("action", models.TextField(blank=True, default="")),
                ("result", models.TextField(blank=True, default="")),
                ("feedback", models.TextField(blank=True, default="")),
                (
                    "tags",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(max_length=64), blank=True, default=list, size=None
                    ),
                ),
                ("metadata", models.JSONField(blank=True, default=dict)),
                ("error_class", models.CharField(blank=True, default="", max_length=200)),
                ("hash", models.CharField(blank=True, default="", max_length=64)),
                ("count", models.PositiveIntegerField(default=1)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("last_seen_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("resolved_at", models.DateTimeField(blank=True, null=True)),
                (
                    "search_vector",
                    models.GeneratedField(
                        db_persist=True,
                        expression=chronos.lessons.expressions.EnglishVector(
                            chronos.lessons.expressions.LessonDocument()
                        ),
                        output_field=django.contrib.postgres.search.SearchVectorField(),
                    ),
                ),
                (
                    "search_trigrams",
                    models.GeneratedField(
                        db_persist=True,
                        expression=chronos.lessons.expressions.Trigrams(chronos.lessons.expressions.LessonDocument()),
                        output_field=django.contrib.postgres.fields.ArrayField(
                            base_field=models.TextField(), size=None
                        ),
                    ),
                ),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "being",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="beings.basebeing",
                    ),
                ),
                (
                    "checkpoint",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="chronos.checkpoint",
                    ),
                ),
                (
                    "execution",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="beings.execution",
                    ),
                ),
                (
                    "timeline",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="chronos.timeline",
                    ),
                ),
            ],
            options={
                "db_table": "chronos_lesson",
                "ordering": ["-last_seen_at", "-id"],
                "indexes": [
                    models.Index(fields=["being", "last_seen_at"], name="chronos_lesson_being"),
                    models.Index(fields=["hash"], name="chronos_lesson_hash"),
                    models.Index(fields=["last_seen_at"], name="chronos_lesson_seen"),
                    django.contrib.postgres.indexes.GinIndex(fields=["tags"], name="chronos_lesson_tags"),
                    django.contrib.postgres.indexes.GinIndex(fields=["search_vector"], name="chronos_lesson_search"),
                    django.contrib.postgres.indexes.GinIndex(
                        fields=["search_trigrams"], name="chronos_lesson_trigrams"
                    ),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("resolved_at__isnull", True), models.Q(("error_class", ""), _negated=True)),
                        fields=("operation", "being", "hash", "error_class"),
                        name="chronos_lesson_failure_once",
                        nulls_distinct=False,
                    )
                ],
            },
        ),
    ]
