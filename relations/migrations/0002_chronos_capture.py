"""Capture every change into the chronos log (chronos.capture); refuse TRUNCATE and a changed key."""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("chronos", "0005_commit_time"),
        ("relations", "0001_initial"),
    ]

    operations = [
        pgtrigger.migrations.AddTrigger(
            model_name="relationship",
            trigger=pgtrigger.compiler.Trigger(
                name="capture_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE recorded bigint; live integer;",
                    func="recorded := chronos_begin(); IF recorded IS NULL THEN RETURN NULL; END IF; SELECT timeline_id INTO live FROM chronos_transaction WHERE id = recorded; INSERT INTO chronos_change (xid, transaction_id, timeline_id, replay, \"table\", row_id, operation, data) SELECT pg_current_xact_id()::text::bigint, recorded, live, coalesce(current_setting('luxos.chronos_kind', true), '') = 'switch', TG_TABLE_NAME, r.id, 'INSERT', to_jsonb(r) FROM new_rows r; RETURN NULL;",
                    hash="4655c92758af8aab20f4b197b49983136476c8fe",
                    level="STATEMENT",
                    operation="INSERT",
                    pgid="pgtrigger_capture_insert_575cc",
                    referencing="REFERENCING NEW TABLE AS new_rows ",
                    table="relationships",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="relationship",
            trigger=pgtrigger.compiler.Trigger(
                name="capture_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE recorded bigint; live integer;",
                    func="recorded := chronos_begin(); IF recorded IS NULL THEN RETURN NULL; END IF; SELECT timeline_id INTO live FROM chronos_transaction WHERE id = recorded; INSERT INTO chronos_change (xid, transaction_id, timeline_id, replay, \"table\", row_id, operation, data) SELECT pg_current_xact_id()::text::bigint, recorded, live, coalesce(current_setting('luxos.chronos_kind', true), '') = 'switch', TG_TABLE_NAME, r.id, 'DELETE', to_jsonb(r) FROM old_rows r; RETURN NULL;",
                    hash="a023efc7ad966e36447de757cc5cff2e1c95cfc8",
                    level="STATEMENT",
                    operation="DELETE",
                    pgid="pgtrigger_capture_delete_5ecdc",
                    referencing="REFERENCING OLD TABLE AS old_rows ",
                    table="relationships",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="relationship",
            trigger=pgtrigger.compiler.Trigger(
                name="capture_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE recorded bigint; live integer;",
                    func="recorded := chronos_begin(); IF recorded IS NULL THEN RETURN NULL; END IF; SELECT timeline_id INTO live FROM chronos_transaction WHERE id = recorded; INSERT INTO chronos_change (xid, transaction_id, timeline_id, replay, \"table\", row_id, operation, data) SELECT pg_current_xact_id()::text::bigint, recorded, live, coalesce(current_setting('luxos.chronos_kind', true), '') = 'switch', TG_TABLE_NAME, o.pk, 'UPDATE', chronos_delta(o.doc, n.doc) FROM (SELECT r.id AS pk, to_jsonb(r) AS doc FROM old_rows r) o JOIN (SELECT r.id AS pk, to_jsonb(r) AS doc FROM new_rows r) n ON n.pk = o.pk WHERE o.doc IS DISTINCT FROM n.doc; RETURN NULL;",
                    hash="31ecda1e9cdf483b3e29abb29b577e05fedbd837",
                    level="STATEMENT",
                    operation="UPDATE",
                    pgid="pgtrigger_capture_update_c6b80",
                    referencing="REFERENCING OLD TABLE AS old_rows  NEW TABLE AS new_rows ",
                    table="relationships",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="relationship",
            trigger=pgtrigger.compiler.Trigger(
                name="no_truncate",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="RAISE EXCEPTION 'TRUNCATE of % is refused: every change goes through the log', TG_TABLE_NAME;",
                    hash="8c8d27b6dddc89e28ece52540a5763d1a579d26c",
                    level="STATEMENT",
                    operation="TRUNCATE",
                    pgid="pgtrigger_no_truncate_385ce",
                    table="relationships",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="relationship",
            trigger=pgtrigger.compiler.Trigger(
                name="key_immutable",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."id" IS DISTINCT FROM (NEW."id"))',
                    func="RAISE EXCEPTION 'pgtrigger: Cannot update rows from % table', TG_TABLE_NAME;",
                    hash="dbdc573f2c6d198abe429cdf58387ffedd261140",
                    operation="UPDATE",
                    pgid="pgtrigger_key_immutable_ada06",
                    table="relationships",
                    when="BEFORE",
                ),
            ),
        ),
    ]
