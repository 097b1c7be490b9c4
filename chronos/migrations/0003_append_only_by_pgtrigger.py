"""The append-only rule of chronos_change moves to the model (pgtrigger), and now covers DELETE and TRUNCATE too."""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("chronos", "0002_capture_triggers"),
    ]

    operations = [
        # The rule written in SQL by an earlier migration gives way to the one declared on the model.
        migrations.RunSQL(
            "DROP TRIGGER IF EXISTS chronos_change_no_update ON chronos_change;\nDROP FUNCTION IF EXISTS chronos_change_append_only();",
            reverse_sql=migrations.RunSQL.noop,
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="change",
            trigger=pgtrigger.compiler.Trigger(
                name="append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="RAISE EXCEPTION '% is append-only: its rows are never updated, deleted or truncated', TG_TABLE_NAME;",
                    hash="100c331aace984f5ef48e4cf91d679325ec6ec52",
                    operation="UPDATE OR DELETE",
                    pgid="pgtrigger_append_only_5d398",
                    table="chronos_change",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="change",
            trigger=pgtrigger.compiler.Trigger(
                name="append_only_truncate",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="RAISE EXCEPTION '% is append-only: its rows are never updated, deleted or truncated', TG_TABLE_NAME;",
                    hash="3f5e566d013363459525ace5502bc298abe0bd0c",
                    level="STATEMENT",
                    operation="TRUNCATE",
                    pgid="pgtrigger_append_only_truncate_aafd6",
                    table="chronos_change",
                    when="BEFORE",
                ),
            ),
        ),
    ]
