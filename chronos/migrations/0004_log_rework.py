"""The change log, reworked: timelines, checkpoints, context once per transaction, deltas for updates.

Existing log rows keep their meaning: an INSERT keeps its new image, a DELETE its old one, an
UPDATE becomes the delta of its two images; their contexts move into one row per transaction, and
all of them belong to ``main``, the timeline that exists from here on and is live.
"""

import uuid

import django.db.models.deletion
import pgtrigger
from django.db import migrations, models

from chronos.sql import DROP, FUNCTIONS

CONVERT = """
INSERT INTO chronos_transaction (xid, timeline_id, kind, context, started_at, committed_at)
SELECT DISTINCT ON (old_xid) old_xid, 1, 'write', context, changed_at, changed_at
FROM chronos_change ORDER BY old_xid, id;
UPDATE chronos_change c SET
    xid = c.old_xid,
    transaction_id = t.id,
    timeline_id = 1,
    data = CASE c.operation WHEN 'INSERT' THEN c.after WHEN 'DELETE' THEN c.before ELSE chronos_delta(c.before, c.after) END
FROM chronos_transaction t WHERE t.xid = c.old_xid;
"""

OLD_CAPTURE = (
    "".join(
        f"DROP TRIGGER IF EXISTS {table}_capture_{operation} ON {table};"
        for table in ("base_beings", "relationships")
        for operation in ("insert", "update", "delete")
    )
    + "DROP FUNCTION IF EXISTS chronos_capture();"
)


def convert(apps, schema_editor):
    with pgtrigger.ignore("chronos.Change:append_only"):
        schema_editor.execute(CONVERT)


class Migration(migrations.Migration):
    dependencies = [
        ("chronos", "0003_append_only_by_pgtrigger"),
        ("beings", "0006_append_only_by_pgtrigger"),
        ("relations", "0001_initial"),
    ]

    operations = [
        # The capture triggers are declared on the models from now on (chronos.capture).
        migrations.RunSQL(OLD_CAPTURE, reverse_sql=migrations.RunSQL.noop),
        # A list: Django splits a plain string on semicolons, which cuts PL/pgSQL bodies apart.
        migrations.RunSQL([FUNCTIONS], reverse_sql=[DROP]),
        migrations.CreateModel(
            name="Timeline",
            fields=[
                ("id", models.AutoField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=100)),
                ("description", models.TextField(blank=True, default="")),
                ("live", models.BooleanField(default=False)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("actor_name", models.CharField(blank=True, default="", max_length=150)),
                ("deleted_at", models.DateTimeField(blank=True, null=True)),
                (
                    "parent",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="children",
                        to="chronos.timeline",
                    ),
                ),
            ],
            options={
                "db_table": "chronos_timeline",
                "ordering": ["id"],
                "permissions": [("switch_timeline", "Can switch the live timeline")],
            },
        ),
        migrations.CreateModel(
            name="Checkpoint",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=100)),
                ("description", models.TextField(blank=True, default="")),
                (
                    "kind",
                    models.CharField(
                        choices=[("manual", "Manual"), ("safety", "Safety"), ("fork", "Fork"), ("import", "Import")],
                        default="manual",
                        max_length=10,
                    ),
                ),
                ("snapshot", models.TextField()),
                ("position", models.BigIntegerField()),
                ("pinned", models.BooleanField(default=False)),
                ("created_at", models.DateTimeField()),
                ("actor_name", models.CharField(blank=True, default="", max_length=150)),
                ("stats", models.JSONField(blank=True, default=dict)),
                (
                    "timeline",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="checkpoints", to="chronos.timeline"
                    ),
                ),
            ],
            options={
                "db_table": "chronos_checkpoint",
                "ordering": ["-created_at"],
                "permissions": [("restore_checkpoint", "Can restore a checkpoint")],
                "indexes": [models.Index(fields=["timeline", "created_at"], name="chronos_checkpoint_timeline")],
                "constraints": [models.UniqueConstraint(fields=("timeline", "name"), name="chronos_checkpoint_name")],
            },
        ),
        migrations.AddField(
            model_name="timeline",
            name="fork",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="forks",
                to="chronos.checkpoint",
            ),
        ),
        migrations.AddConstraint(
            model_name="timeline",
            constraint=models.UniqueConstraint(
                condition=models.Q(("deleted_at__isnull", True)), fields=("name",), name="chronos_timeline_name"
            ),
        ),
        migrations.AddConstraint(
            model_name="timeline",
            constraint=models.UniqueConstraint(
                condition=models.Q(("live", True)), fields=("live",), name="chronos_timeline_one_live"
            ),
        ),
        migrations.RunSQL(
            "INSERT INTO chronos_timeline (id, name, description, live, created_at, actor_name) "
            "VALUES (1, 'main', 'The first line of history.', true, now(), '');"
            "SELECT setval(pg_get_serial_sequence('chronos_timeline', 'id'), 1);",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.CreateModel(
            name="Transaction",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("xid", models.BigIntegerField()),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("write", "Write"),
                            ("restore", "Restore"),
                            ("switch", "Switch"),
                            ("merge", "Merge"),
                            ("import", "Import"),
                            ("gap", "Gap"),
                        ],
                        default="write",
                        max_length=10,
                    ),
                ),
                ("context", models.JSONField(default=dict)),
                ("started_at", models.DateTimeField()),
                ("committed_at", models.DateTimeField(null=True)),
                (
                    "timeline",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="chronos.timeline",
                    ),
                ),
            ],
            options={
                "db_table": "chronos_transaction",
                "indexes": [
                    models.Index(fields=["xid"], name="chronos_transaction_xid"),
                    models.Index(fields=["timeline", "committed_at"], name="chronos_transaction_commit"),
                    models.Index(
                        condition=models.Q(("kind", "gap")), fields=["timeline", "xid"], name="chronos_transaction_gap"
                    ),
                ],
            },
        ),
        migrations.RemoveIndex(model_name="change", name="chronos_change_txid"),
        # Out of the way of the foreign key's attribute of the same name.
        migrations.RenameField(model_name="change", old_name="transaction_id", new_name="old_xid"),
        migrations.AddField(model_name="change", name="xid", field=models.BigIntegerField(null=True)),
        migrations.AddField(
            model_name="change",
            name="transaction",
            field=models.ForeignKey(
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="changes",
                to="chronos.transaction",
            ),
        ),
        migrations.AddField(
            model_name="change",
            name="timeline",
            field=models.ForeignKey(
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="chronos.timeline",
            ),
        ),
        migrations.AddField(model_name="change", name="replay", field=models.BooleanField(default=False)),
        migrations.AddField(model_name="change", name="data", field=models.JSONField(null=True)),
        migrations.RunPython(convert, migrations.RunPython.noop),
        migrations.RemoveField(model_name="change", name="before"),
        migrations.RemoveField(model_name="change", name="after"),
        migrations.RemoveField(model_name="change", name="context"),
        migrations.RemoveField(model_name="change", name="old_xid"),
        migrations.RemoveField(model_name="change", name="changed_at"),
        migrations.AlterField(model_name="change", name="xid", field=models.BigIntegerField()),
        migrations.AlterField(
            model_name="change",
            name="transaction",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="changes",
                to="chronos.transaction",
            ),
        ),
        migrations.AlterField(
            model_name="change",
            name="timeline",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="chronos.timeline",
            ),
        ),
        migrations.AlterField(model_name="change", name="data", field=models.JSONField()),
        migrations.AddIndex(model_name="change", index=models.Index(fields=["xid"], name="chronos_change_xid")),
        migrations.AddIndex(
            model_name="change",
            index=models.Index(
                condition=models.Q(("replay", False)), fields=["timeline", "xid"], name="chronos_change_history"
            ),
        ),
    ]
