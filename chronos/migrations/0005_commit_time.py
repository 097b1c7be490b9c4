"""The commit time of each transaction, set at commit by a deferred trigger."""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("chronos", "0004_log_rework"),
    ]

    operations = [
        pgtrigger.migrations.AddTrigger(
            model_name="transaction",
            trigger=pgtrigger.compiler.Trigger(
                name="commit_time",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    constraint="CONSTRAINT",
                    func="UPDATE chronos_transaction SET committed_at = clock_timestamp() WHERE id = NEW.id; RETURN NULL;",
                    hash="e860d6ba8c7f68cac13bbe019d2b8b0101178a0d",
                    operation="INSERT",
                    pgid="pgtrigger_commit_time_9889d",
                    table="chronos_transaction",
                    timing="DEFERRABLE INITIALLY DEFERRED",
                    when="AFTER",
                ),
            ),
        ),
    ]
