"""Timelines record from when their past can be rebuilt, once retention removed the log before it."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chronos", "0005_commit_time"),
    ]

    operations = [
        migrations.AddField(
            model_name="timeline",
            name="history_from",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
