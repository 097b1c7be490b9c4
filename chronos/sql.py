"""The SQL functions of chronos, installed by migration 0004 and again by any later one that changes them (0007).

- ``chronos_delta(old, new)``: what changed from one JSON value to another, in a form that goes both ways.
- ``chronos_apply(doc, delta, undo)``: one side of a delta applied to a value.
- ``chronos_row_apply(doc, operation, data, undo)``: a row image after undoing or redoing one change
  (NULL: the row does not exist).
- ``chronos_write_rows(table, steps)``: the tables made what a path's steps lead to: each touched row folded
  from its present image, then written once (delete, update, insert: three statements).
- ``chronos_steps(steps)``: each row's steps (``[{n, row_id, image, ids, undos}]``) read from the log in one
  statement; ``chronos_fold(doc, operations, datas, undos, ids)`` applies them to one row image, each its own
  way: for writing the tables and for reading the past.
- ``chronos_begin()``: called by the capture triggers: the context's row, written once; NULL while capture is off.
"""

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION chronos_slice(doc jsonb, first integer, last integer) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN first > last THEN '[]'::jsonb
                ELSE jsonb_path_query_array(doc, ('$[' || first || ' to ' || last || ']')::jsonpath) END
$$;

CREATE OR REPLACE FUNCTION chronos_delta(old jsonb, new jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    changed jsonb := '{}';
    key text;
    n integer;
    m integer;
    dropped integer := 0;
BEGIN
    IF old IS NOT DISTINCT FROM new THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(old) = 'object' AND jsonb_typeof(new) = 'object' THEN
        FOR key IN SELECT jsonb_object_keys(old) UNION SELECT jsonb_object_keys(new) LOOP
            IF NOT old ? key THEN
                changed := changed || jsonb_build_object(key, jsonb_build_object('n', new -> key));
            ELSIF NOT new ? key THEN
                changed := changed || jsonb_build_object(key, jsonb_build_object('o', old -> key));
            ELSIF old -> key IS DISTINCT FROM new -> key THEN
                changed := changed || jsonb_build_object(key, chronos_delta(old -> key, new -> key));
            END IF;
        END LOOP;
        RETURN jsonb_build_object('k', changed);
    END IF;
    IF jsonb_typeof(old) = 'array' AND jsonb_typeof(new) = 'array' THEN
        -- A list that lost elements at its head and gained some at its tail (memories at their bound).
        n := jsonb_array_length(old);
        m := jsonb_array_length(new);
        WHILE dropped < n AND (m = 0 OR old -> dropped IS DISTINCT FROM new -> 0) LOOP
            dropped := dropped + 1;
        END LOOP;
        -- At least one element kept: otherwise the whole old and new values say it as shortly.
        IF dropped < n AND n - dropped <= m
           AND chronos_slice(old, dropped, n - 1) = chronos_slice(new, 0, n - dropped - 1) THEN
            RETURN jsonb_build_object('a', jsonb_build_object(
                'd', chronos_slice(old, 0, dropped - 1),
                'p', chronos_slice(new, n - dropped, m - 1)));
        END IF;
    END IF;
    RETURN jsonb_build_object('o', old, 'n', new);
END;
$$;

CREATE OR REPLACE FUNCTION chronos_apply(doc jsonb, delta jsonb, undo boolean) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    side text := CASE WHEN undo THEN 'o' ELSE 'n' END;
    key text;
    node jsonb;
    cut integer;
BEGIN
    IF delta ? 'k' THEN
        FOR key, node IN SELECT * FROM jsonb_each(delta -> 'k') LOOP
            IF node ? 'k' OR node ? 'a' THEN
                doc := jsonb_set(doc, ARRAY[key], chronos_apply(doc -> key, node, undo));
            ELSIF node ? side THEN
                doc := doc || jsonb_build_object(key, node -> side);
            ELSE
                doc := doc - key;
            END IF;
        END LOOP;
        RETURN doc;
    END IF;
    IF delta ? 'a' THEN
        IF undo THEN
            cut := jsonb_array_length(doc) - jsonb_array_length(delta -> 'a' -> 'p');
            RETURN (delta -> 'a' -> 'd') || chronos_slice(doc, 0, cut - 1);
        END IF;
        cut := jsonb_array_length(delta -> 'a' -> 'd');
        RETURN chronos_slice(doc, cut, jsonb_array_length(doc) - 1) || (delta -> 'a' -> 'p');
    END IF;
    RETURN delta -> side;
END;
$$;

CREATE OR REPLACE FUNCTION chronos_row_apply(doc jsonb, operation text, data jsonb, undo boolean) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN operation = 'UPDATE' THEN chronos_apply(doc, data, undo)
        WHEN (operation = 'INSERT') = undo THEN NULL
        ELSE data
    END
$$;

CREATE OR REPLACE FUNCTION chronos_steps(steps jsonb)
RETURNS TABLE (n integer, row_id uuid, image jsonb, operations text[], datas jsonb[], undos boolean[], ids bigint[])
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- Each row's steps read from the log in one statement, in order, as arrays for chronos_fold (plpgsql:
    -- its body is checked when it runs, after migration 0004 has made the log's columns).
    RETURN QUERY SELECT r.n, r.row_id, r.image, a.operations, a.datas, a.undos, a.ids
    FROM jsonb_to_recordset(steps) AS r(n integer, row_id uuid, image jsonb, ids bigint[], undos boolean[]),
         LATERAL (SELECT array_agg(c.operation ORDER BY i.k) AS operations, array_agg(c.data ORDER BY i.k) AS datas,
                         array_agg(i.undo ORDER BY i.k) AS undos, array_agg(i.id ORDER BY i.k) AS ids
                  FROM unnest(r.ids, r.undos) WITH ORDINALITY AS i(id, undo, k)
                  JOIN chronos_change c ON c.id = i.id) AS a;
END;
$$;

CREATE OR REPLACE FUNCTION chronos_fold(
    doc jsonb, operations text[], datas jsonb[], undos boolean[], ids bigint[]
) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    FOR k IN 1 .. coalesce(array_length(ids, 1), 0) LOOP
        -- The row must be there exactly when the step updates or removes it: a log that disagrees is refused.
        IF (operations[k] = 'UPDATE' AND doc IS NULL)
           OR (operations[k] <> 'UPDATE' AND (doc IS NOT NULL) <> ((operations[k] = 'INSERT') = undos[k])) THEN
            RAISE EXCEPTION 'chronos: cannot % change % (an %): the row is %',
                CASE WHEN undos[k] THEN 'undo' ELSE 'redo' END, ids[k], operations[k],
                CASE WHEN doc IS NULL THEN 'missing' ELSE 'present' END;
        END IF;
        doc := chronos_row_apply(doc, operations[k], datas[k], undos[k]);
    END LOOP;
    RETURN doc;
END;
$$;

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
        'chronos_fold(CASE WHEN t.%1$I IS NULL THEN NULL ELSE to_jsonb(t) END, s.operations, s.datas, s.undos, s.ids) '
        'FROM chronos_steps($1) s '
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

CREATE OR REPLACE FUNCTION chronos_begin() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    recorded bigint := nullif(current_setting('luxos.context_row', true), '')::bigint;
    live integer;
    kind text := coalesce(nullif(current_setting('luxos.chronos_kind', true), ''), 'write');
BEGIN
    -- context_apply() empties luxos.context_row; the first captured statement after it records the context.
    IF recorded IS NOT NULL THEN
        RETURN CASE WHEN kind = 'gap' THEN NULL ELSE recorded END;
    END IF;
    SELECT id INTO live FROM chronos_timeline WHERE chronos_timeline.live;
    IF live IS NULL THEN
        RAISE EXCEPTION 'chronos: no timeline is live; nothing may change the tables unrecorded';
    END IF;
    IF current_setting('luxos.chronos_capture', true) = 'off' THEN
        kind := 'gap';
        PERFORM set_config('luxos.chronos_kind', 'gap', true);
    END IF;
    INSERT INTO chronos_transaction (xid, timeline_id, kind, context, started_at)
    VALUES (pg_current_xact_id()::text::bigint, live, kind,
            coalesce(nullif(current_setting('luxos.context', true), '')::jsonb, '{}'::jsonb), clock_timestamp())
    RETURNING id INTO recorded;
    PERFORM set_config('luxos.context_row', recorded::text, true);
    IF kind = 'gap' THEN
        RETURN NULL;
    END IF;
    RETURN recorded;
END;
$$;
"""

DROP = """
DROP FUNCTION IF EXISTS chronos_begin();
DROP FUNCTION IF EXISTS chronos_write_rows(text, jsonb);
DROP FUNCTION IF EXISTS chronos_fold(jsonb, text[], jsonb[], boolean[], bigint[]);
DROP FUNCTION IF EXISTS chronos_steps(jsonb);
DROP FUNCTION IF EXISTS chronos_row_apply(jsonb, text, jsonb, boolean);
DROP FUNCTION IF EXISTS chronos_apply(jsonb, jsonb, boolean);
DROP FUNCTION IF EXISTS chronos_delta(jsonb, jsonb);
DROP FUNCTION IF EXISTS chronos_slice(jsonb, integer, integer);
"""
