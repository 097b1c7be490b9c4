"""Capture every row change of base_beings and relationships into chronos_change.

Statement-level triggers with transition tables: one INSERT ... SELECT per
statement rather than one per row, so a bulk import pays for its log once.
"""

from django.db import migrations

CAPTURE_FUNCTION = """
CREATE OR REPLACE FUNCTION chronos_capture() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ctx jsonb := coalesce(nullif(current_setting('luxos.context', true), '')::jsonb, '{}'::jsonb);
    pk text := TG_ARGV[0];
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO chronos_change ("table", row_id, operation, before, after, context, transaction_id, changed_at)
        SELECT TG_TABLE_NAME, (to_jsonb(n) ->> pk)::uuid, 'INSERT', NULL, to_jsonb(n), ctx, txid_current(), now()
        FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO chronos_change ("table", row_id, operation, before, after, context, transaction_id, changed_at)
        SELECT TG_TABLE_NAME, (o.doc ->> pk)::uuid, 'UPDATE', o.doc, n.doc, ctx, txid_current(), now()
        FROM (SELECT to_jsonb(r) AS doc FROM old_rows r) o
        JOIN (SELECT to_jsonb(r) AS doc FROM new_rows r) n ON (o.doc ->> pk) = (n.doc ->> pk)
        WHERE o.doc IS DISTINCT FROM n.doc;
    ELSE
        INSERT INTO chronos_change ("table", row_id, operation, before, after, context, transaction_id, changed_at)
        SELECT TG_TABLE_NAME, (to_jsonb(o) ->> pk)::uuid, 'DELETE', to_jsonb(o), NULL, ctx, txid_current(), now()
        FROM old_rows o;
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION chronos_change_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'chronos_change is append-only: rows are never updated';
END;
$$;
CREATE TRIGGER chronos_change_no_update BEFORE UPDATE ON chronos_change
    FOR EACH ROW EXECUTE FUNCTION chronos_change_append_only();
"""


def triggers_for(table: str, pk: str) -> str:
    return f"""
CREATE TRIGGER {table}_capture_insert AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chronos_capture('{pk}');
CREATE TRIGGER {table}_capture_update AFTER UPDATE ON {table}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chronos_capture('{pk}');
CREATE TRIGGER {table}_capture_delete AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION chronos_capture('{pk}');
"""


def drop_triggers_for(table: str) -> str:
    return "".join(f"DROP TRIGGER IF EXISTS {table}_capture_{op} ON {table};" for op in ("insert", "update", "delete"))


class Migration(migrations.Migration):
    dependencies = [
        ("chronos", "0001_initial"),
        ("beings", "0001_initial"),
        ("relations", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            CAPTURE_FUNCTION + triggers_for("base_beings", "soul") + triggers_for("relationships", "id"),
            reverse_sql=drop_triggers_for("base_beings")
            + drop_triggers_for("relationships")
            + "DROP TRIGGER IF EXISTS chronos_change_no_update ON chronos_change;"
            + "DROP FUNCTION IF EXISTS chronos_capture(); DROP FUNCTION IF EXISTS chronos_change_append_only();",
        ),
    ]
