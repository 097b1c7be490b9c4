"""Promotion gated by evidence: what was weighed and any override reason kept on the promotion; who may override.

Adding the columns rewrites no row (one is nullable, the other's default is kept in the catalogue), so the
append-only trigger of ``soul_promotions`` is never asked to allow an update. The index serves a hash's runs, newest first.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("beings", "0009_execution_folded"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="basebeing",
            options={
                "ordering": ["-created_at", "soul"],
                "permissions": [
                    ("execute_being", "Can execute the being's code"),
                    ("promote_soul", "Can promote a soul (hash) to an environment"),
                    ("promote_soul_override", "Can promote a soul without the evidence its environment asks for"),
                ],
                "verbose_name": "being",
            },
        ),
        migrations.AddField(
            model_name="promotion",
            name="evidence",
            field=models.JSONField(
                blank=True,
                help_text="The evidence weighed at the promotion: {met, missing, figures, rules}; null where none is asked.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="promotion",
            name="override_reason",
            # Existing rows read the default without being rewritten (PostgreSQL keeps it in the catalogue): no
            # UPDATE reaches the append-only trigger.
            field=models.TextField(
                blank=True,
                default="",
                help_text="Why the promoter went ahead without the evidence the environment asks for; empty when it was met.",
            ),
        ),
        migrations.AddIndex(
            model_name="execution",
            index=models.Index(fields=["hash", "finished_at"], name="idx_executions_hash_finished"),
        ),
    ]
