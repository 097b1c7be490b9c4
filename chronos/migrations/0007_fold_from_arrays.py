"""chronos_fold reads no log itself: chronos_steps reads every row's steps in one statement, then each row is
folded from arrays (a query per row cost more than its fold). The SQL functions are installed again."""

from django.db import migrations

from chronos.sql import FUNCTIONS

OLD_FOLD = "DROP FUNCTION IF EXISTS chronos_fold(jsonb, bigint[], boolean[])"
NEW = """
DROP FUNCTION IF EXISTS chronos_fold(jsonb, text[], jsonb[], boolean[], bigint[]);
DROP FUNCTION IF EXISTS chronos_steps(jsonb);
"""
# What migration 0004 installed, for the way back: the fold, and the writer that called it.
OLD = r"""
CREATE OR REPLACE FUNCTION chronos_write_rows(tbl text, steps jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    pk text := CASE tbl WHEN 'base_beings' THEN 'soul' ELSE 'id' END;
    columns text;
    written integer;
    total integer := 0;
BEGIN
    -- Each row's steps folded onto its present image, then one statement per kind of write: whatever
    -- the number of steps, a row is written once, and the capture triggers log it once per statement.
    SELECT string_agg(format('%I', attname), ', ' ORDER BY attnum) INTO columns
    FROM pg_attribute WHERE attrelid = tbl::regclass AND attnum > 0 AND NOT attisdropped;
    CREATE TEMP TABLE IF NOT EXISTS chronos_target (row_id uuid PRIMARY KEY, present boolean, doc jsonb)
        ON COMMIT DROP;
    TRUNCATE chronos_target;
    EXECUTE format(
        'INSERT INTO chronos_target SELECT s.row_id, t.%1$I IS NOT NULL, '
        'chronos_fold(CASE WHEN t.%1$I IS NULL THEN NULL ELSE to_jsonb(t) END, s.ids, s.undos) '
        'FROM jsonb_to_recordset($1) AS s(row_id uuid, ids bigint[], undos boolean[]) '
        'LEFT JOIN %2$I t ON t.%1$I = s.row_id', pk, tbl) USING steps;
    EXECUTE format('DELETE FROM %I t USING chronos_target x WHERE t.%I = x.row_id AND x.doc IS NULL', tbl, pk);
    GET DIAGNOSTICS written = ROW_COUNT;
    total := total + written;
    EXECUTE format(
        'UPDATE %1$I t SET (%3$s) = (SELECT %3$s FROM jsonb_populate_record(NULL::%1$I, x.doc)) '
        'FROM chronos_target x WHERE t.%2$I = x.row_id AND x.present AND x.doc IS NOT NULL '
        'AND to_jsonb(t) IS DISTINCT FROM x.doc', tbl, pk, columns);
    GET DIAGNOSTICS written = ROW_COUNT;
    total := total + written;
    EXECUTE format(
        'INSERT INTO %1$I SELECT r.* FROM chronos_target x, jsonb_populate_record(NULL::%1$I, x.doc) r '
        'WHERE NOT x.present AND x.doc IS NOT NULL', tbl);
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN total + written;
END;
$$;

CREATE FUNCTION chronos_fold(doc jsonb, ids bigint[], undos boolean[]) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    entry record;
BEGIN
    FOR entry IN SELECT c.id, c."table", c.row_id, c.operation, c.data, i.undo
                 FROM unnest(ids, undos) WITH ORDINALITY AS i(id, undo, n)
                 JOIN chronos_change c ON c.id = i.id ORDER BY i.n LOOP
        -- The row must be there exactly when the step updates or removes it: a log that disagrees is refused.
        IF (entry.operation = 'UPDATE' AND doc IS NULL)
           OR (entry.operation <> 'UPDATE' AND (doc IS NOT NULL) <> ((entry.operation = 'INSERT') = entry.undo)) THEN
            RAISE EXCEPTION 'chronos: cannot % change % (% of % row %): the row is %',
                CASE WHEN entry.undo THEN 'undo' ELSE 'redo' END, entry.id, entry.operation, entry."table",
                entry.row_id, CASE WHEN doc IS NULL THEN 'missing' ELSE 'present' END;
        END IF;
        doc := chronos_row_apply(doc, entry.operation, entry.data, entry.undo);
    END LOOP;
    RETURN doc;
END;
$$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("chronos", "0006_history_from"),
    ]

    operations = [
        migrations.RunSQL([OLD_FOLD, FUNCTIONS], reverse_sql=[NEW, OLD]),
    ]
