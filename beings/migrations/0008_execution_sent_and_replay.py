"""Executions record when their broker message was sent, and which execution a replay repeats."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("beings", "0007_chronos_capture"),
    ]

    operations = [
        migrations.AddField(
            model_name="execution",
            name="replay_of",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                help_text="The execution this one replays: the same hash, inputs and self snapshot.",
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="replays",
                to="beings.execution",
            ),
        ),
        migrations.AddField(
            model_name="execution",
            name="sent_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When its broker message was last published: the reaper re-sends it past a grace.",
                null=True,
            ),
        ),
    ]
