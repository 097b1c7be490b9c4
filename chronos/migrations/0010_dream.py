"""Dreams: plans run in isolation on timelines of their own."""

import uuid

import django.contrib.postgres.fields
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chronos", "0009_merge"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Dream",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=100)),
                ("plan", models.JSONField(default=list)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("queued", "Queued"),
                            ("running", "Running"),
                            ("kept", "Kept"),
                            ("merged", "Merged"),
                            ("discarded", "Discarded"),
                            ("failed", "Failed"),
                        ],
                        default="queued",
                        max_length=10,
                    ),
                ),
                ("results", models.JSONField(blank=True, default=list)),
                ("success_rate", models.FloatField(blank=True, null=True)),
                ("error", models.TextField(blank=True, default="")),
                ("task_id", models.CharField(blank=True, default="", max_length=64)),
                ("seconds", models.PositiveIntegerField(default=60)),
                ("not_before", models.DateTimeField(blank=True, null=True)),
                ("actor_name", models.CharField(blank=True, default="", max_length=150)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
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
                    "fork",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="chronos.checkpoint",
                    ),
                ),
                (
                    "timeline",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="dreams",
                        to="chronos.timeline",
                    ),
                ),
                (
                    "merge",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="chronos.merge",
                    ),
                ),
            ],
            options={
                "db_table": "chronos_dream",
                "ordering": ["-created_at"],
                "indexes": [models.Index(fields=["status", "not_before"], name="chronos_dream_due")],
            },
        ),
    ]
