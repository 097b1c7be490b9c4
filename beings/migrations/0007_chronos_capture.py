"""Capture every change into the chronos log (chronos.capture); refuse TRUNCATE and a changed key."""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("chronos", "0005_commit_time"),
        ("beings", "0006_append_only_by_pgtrigger"),
    ]

    operations = [
        pgtrigger.migrations.AddTrigger(
            model_name="basebeing",
            trigger=pgtrigger.compiler.Trigger(
                name="capture_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE recorded bigint; live integer;",
                    func="recorded := chronos_begin(); IF recorded IS NULL THEN RETURN NULL; END IF; SELECT timeline_id INTO live FROM chronos_transaction WHERE id = recorded; INSERT INTO chronos_change (xid, transaction_id, timeline_id, replay, \"table\", row_id, operation, data) SELECT pg_current_xact_id()::text::bigint, recorded, live, coalesce(current_setting('luxos.chronos_kind', true), '') = 'switch', TG_TABLE_NAME, r.soul, 'INSERT', to_jsonb(r) FROM new_rows r; RETURN NULL;",
                    hash="8b797c8d4d54c9286974a95c8f42a451ed562bbc",
                    level="STATEMENT",
                    operation="INSERT",
                    pgid="pgtrigger_capture_insert_12ee5",
                    referencing="REFERENCING NEW TABLE AS new_rows ",
                    table="base_beings",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="basebeing",
            trigger=pgtrigger.compiler.Trigger(
                name="capture_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE recorded bigint; live integer;",
                    func="recorded := chronos_begin(); IF recorded IS NULL THEN RETURN NULL; END IF; SELECT timeline_id INTO live FROM chronos_transaction WHERE id = recorded; INSERT INTO chronos_change (xid, transaction_id, timeline_id, replay, \"table\", row_id, operation, data) SELECT pg_current_xact_id()::text::bigint, recorded, live, coalesce(current_setting('luxos.chronos_kind', true), '') = 'switch', TG_TABLE_NAME, r.soul, 'DELETE', to_jsonb(r) FROM old_rows r; RETURN NULL;",
                    hash="12665b596288f77dc8e1898c95e76fc0f318db77",
                    level="STATEMENT",
                    operation="DELETE",
                    pgid="pgtrigger_capture_delete_57d90",
                    referencing="REFERENCING OLD TABLE AS old_rows ",
                    table="base_beings",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="basebeing",
            trigger=pgtrigger.compiler.Trigger(
                name="capture_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE recorded bigint; live integer;",
                    func="recorded := chronos_begin(); IF recorded IS NULL THEN RETURN NULL; END IF; SELECT timeline_id INTO live FROM chronos_transaction WHERE id = recorded; INSERT INTO chronos_change (xid, transaction_id, timeline_id, replay, \"table\", row_id, operation, data) SELECT pg_current_xact_id()::text::bigint, recorded, live, coalesce(current_setting('luxos.chronos_kind', true), '') = 'switch', TG_TABLE_NAME, o.pk, 'UPDATE', chronos_delta(o.doc, n.doc) FROM (SELECT r.soul AS pk, to_jsonb(r) AS doc FROM old_rows r) o JOIN (SELECT r.soul AS pk, to_jsonb(r) AS doc FROM new_rows r) n ON n.pk = o.pk WHERE o.doc IS DISTINCT FROM n.doc; RETURN NULL;",
                    hash="7561db0c845503c1fce6659e955c4257c50e300b",
                    level="STATEMENT",
                    operation="UPDATE",
                    pgid="pgtrigger_capture_update_7d441",
                    referencing="REFERENCING OLD TABLE AS old_rows  NEW TABLE AS new_rows ",
                    table="base_beings",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="basebeing",
            trigger=pgtrigger.compiler.Trigger(
                name="no_truncate",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="RAISE EXCEPTION 'TRUNCATE of % is refused: every change goes through the log', TG_TABLE_NAME;",
                    hash="6c99d60c7bfbf59b6089bdac33aa62a8929419e2",
                    level="STATEMENT",
                    operation="TRUNCATE",
                    pgid="pgtrigger_no_truncate_3577d",
                    table="base_beings",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="basebeing",
            trigger=pgtrigger.compiler.Trigger(
                name="key_immutable",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."soul" IS DISTINCT FROM (NEW."soul"))',
                    func="RAISE EXCEPTION 'pgtrigger: Cannot update rows from % table', TG_TABLE_NAME;",
                    hash="76eeb2c94a5493c509e474aeeccdfde7123ee5c8",
                    operation="UPDATE",
                    pgid="pgtrigger_key_immutable_c3a4b",
                    table="base_beings",
                    when="BEFORE",
                ),
            ),
        ),
    ]
