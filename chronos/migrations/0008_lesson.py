"""Lessons: what LuxOS learned from operations, outside the captured tables."""

import django.contrib.postgres.fields
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("beings", "0009_execution_folded"),
        ("chronos", "0007_fold_from_arrays"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
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
                ],
            },
        ),
    ]
