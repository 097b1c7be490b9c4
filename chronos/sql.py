"""The SQL functions of chronos, installed by migration 0004 (and again by any later one that changes them).

- ``chronos_delta(old, new)``: what changed from one JSON value to another, in a form that goes both ways.
- ``chronos_apply(doc, delta, undo)``: one side of a delta applied to a value.
- ``chronos_row_apply(doc, operation, data, undo)``: a row image after undoing or redoing one change
  (NULL: the row does not exist).
- ``chronos_replay(ids, undo)``: undo or redo log entries, in the order given, on the tables themselves.
- ``chronos_fold(doc, ids, undos)``: the same on one row image, each step its own way, for reading the past.
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

CREATE OR REPLACE FUNCTION chronos_fold(doc jsonb, ids bigint[], undos boolean[]) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    entry record;
BEGIN
    FOR entry IN SELECT c.operation, c.data, i.undo FROM unnest(ids, undos) WITH ORDINALITY AS i(id, undo, n)
                 JOIN chronos_change c ON c.id = i.id ORDER BY i.n LOOP
        doc := chronos_row_apply(doc, entry.operation, entry.data, entry.undo);
    END LOOP;
    RETURN doc;
END;
$$;

CREATE OR REPLACE FUNCTION chronos_replay(ids bigint[], undo boolean) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    entry record;
    pk text;
    present jsonb;
    wanted jsonb;
    columns text;
    done integer := 0;
BEGIN
    FOR entry IN SELECT c.* FROM unnest(ids) WITH ORDINALITY AS i(id, n)
                 JOIN chronos_change c ON c.id = i.id ORDER BY i.n LOOP
        pk := CASE entry."table" WHEN 'base_beings' THEN 'soul' ELSE 'id' END;
        EXECUTE format('SELECT to_jsonb(t) FROM %I t WHERE %I = $1', entry."table", pk) INTO present USING entry.row_id;
        wanted := chronos_row_apply(present, entry.operation, entry.data, undo);
        -- The row must be there exactly when the step updates or removes it.
        IF (entry.operation = 'UPDATE' AND present IS NULL)
           OR (entry.operation <> 'UPDATE' AND (present IS NOT NULL) <> ((entry.operation = 'INSERT') = undo)) THEN
            RAISE EXCEPTION 'chronos: cannot % change % (% of % row %): the row is %',
                CASE WHEN undo THEN 'undo' ELSE 'redo' END, entry.id, entry.operation, entry."table", entry.row_id,
                CASE WHEN present IS NULL THEN 'missing' ELSE 'present' END;
        END IF;
        IF wanted IS NULL THEN
            EXECUTE format('DELETE FROM %I WHERE %I = $1', entry."table", pk) USING entry.row_id;
        ELSIF present IS NULL THEN
            EXECUTE format('INSERT INTO %I SELECT * FROM jsonb_populate_record(NULL::%I, $1)',
                           entry."table", entry."table") USING wanted;
        ELSE
            SELECT string_agg(format('%I', key), ', ') INTO columns FROM jsonb_object_keys(entry.data -> 'k') AS key;
            EXECUTE format('UPDATE %I SET (%s) = (SELECT %s FROM jsonb_populate_record(NULL::%I, $1)) WHERE %I = $2',
                           entry."table", columns, columns, entry."table", pk) USING wanted, entry.row_id;
        END IF;
        done := done + 1;
    END LOOP;
    RETURN done;
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
DROP FUNCTION IF EXISTS chronos_replay(bigint[], boolean);
DROP FUNCTION IF EXISTS chronos_fold(jsonb, bigint[], boolean[]);
DROP FUNCTION IF EXISTS chronos_row_apply(jsonb, text, jsonb, boolean);
DROP FUNCTION IF EXISTS chronos_apply(jsonb, jsonb, boolean);
DROP FUNCTION IF EXISTS chronos_delta(jsonb, jsonb);
DROP FUNCTION IF EXISTS chronos_slice(jsonb, integer, integer);
"""
