"""Merges of one timeline into another, and their conflicts."""

import uuid

import django.contrib.postgres.fields
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chronos", "0008_lesson"),
    ]

    operations = [
        migrations.CreateModel(
            name="Merge",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                (
                    "strategy",
                    models.CharField(
                        choices=[("field", "Field"), ("row", "Row"), ("ours", "Ours"), ("theirs", "Theirs")],
                        default="field",
                        max_length=8,
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("open", "Open"),
                            ("applied", "Applied"),
                            ("failed", "Failed"),
                            ("abandoned", "Abandoned"),
                        ],
                        default="open",
                        max_length=10,
                    ),
                ),
                ("stats", models.JSONField(blank=True, default=dict)),
                ("actor_name", models.CharField(blank=True, default="", max_length=150)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("applied_at", models.DateTimeField(blank=True, null=True)),
                (
                    "base",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="chronos.checkpoint",
                    ),
                ),
                (
                    "into",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="merges_in", to="chronos.timeline"
                    ),
                ),
                (
                    "safety",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="chronos.checkpoint",
                    ),
                ),
                (
                    "source",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="merges_out", to="chronos.timeline"
                    ),
                ),
            ],
            options={
                "db_table": "chronos_merge",
                "ordering": ["-created_at"],
                "permissions": [("merge_timeline", "Can merge one timeline into another")],
            },
        ),
        migrations.CreateModel(
            name="MergeConflict",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("table", models.TextField()),
                ("row_id", models.UUIDField()),
                ("path", models.JSONField(default=list)),
                ("base", models.JSONField(null=True)),
                ("ours", models.JSONField(null=True)),
                ("theirs", models.JSONField(null=True)),
                (
                    "resolution",
                    models.CharField(
                        blank=True,
                        choices=[("ours", "Ours"), ("theirs", "Theirs"), ("value", "Value")],
                        default="",
                        max_length=8,
                    ),
                ),
                ("value", models.JSONField(blank=True, null=True)),
                ("resolved_by", models.CharField(blank=True, default="", max_length=150)),
                (
                    "merge",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="conflicts", to="chronos.merge"
                    ),
                ),
            ],
            options={
                "db_table": "chronos_merge_conflict",
                "ordering": ["id"],
            },
        ),
    ]
