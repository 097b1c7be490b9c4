"""Executions record when they were folded into their being; runs finished before are taken as folded."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("beings", "0008_execution_sent_and_replay"),
    ]

    operations = [
        migrations.AddField(
            model_name="execution",
            name="folded_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When the finished run was written into its being (memories, self_awareness, energy).",
                null=True,
            ),
        ),
        # Until now every run was written into its being as it finished.
        migrations.RunSQL(
            "UPDATE executions SET folded_at = finished_at WHERE finished_at IS NOT NULL",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AddIndex(
            model_name="execution",
            index=models.Index(
                condition=models.Q(("finished_at__isnull", False), ("folded_at__isnull", True)),
                fields=["being", "finished_at"],
                name="idx_executions_unfolded",
            ),
        ),
    ]
