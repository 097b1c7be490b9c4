"""The append-only rule of soul_promotions moves to the model (pgtrigger), and now covers TRUNCATE too."""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("beings", "0005_execution_layers"),
    ]

    operations = [
        # The rule written in SQL by an earlier migration gives way to the one declared on the model.
        migrations.RunSQL(
            "DROP TRIGGER IF EXISTS soul_promotions_no_change ON soul_promotions;\nDROP FUNCTION IF EXISTS soul_promotions_append_only();",
            reverse_sql=migrations.RunSQL.noop,
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="promotion",
            trigger=pgtrigger.compiler.Trigger(
                name="append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="RAISE EXCEPTION '% is append-only: its rows are never updated, deleted or truncated', TG_TABLE_NAME;",
                    hash="fca3b8be85a10ba506888168a92fc719a415325d",
                    operation="UPDATE OR DELETE",
                    pgid="pgtrigger_append_only_77f89",
                    table="soul_promotions",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="promotion",
            trigger=pgtrigger.compiler.Trigger(
                name="append_only_truncate",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="RAISE EXCEPTION '% is append-only: its rows are never updated, deleted or truncated', TG_TABLE_NAME;",
                    hash="9cd5fe9f834fef4ad02dcb8364a2e3e74b13e67c",
                    level="STATEMENT",
                    operation="TRUNCATE",
                    pgid="pgtrigger_append_only_truncate_37115",
                    table="soul_promotions",
                    when="BEFORE",
                ),
            ),
        ),
    ]
