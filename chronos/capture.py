"""The triggers that put every row change of a watched table into the change log.

Declared on the models (``Meta.triggers = capture_triggers("soul")``) so a reader sees them.
Statement-level with transition tables: one ``INSERT … SELECT`` per statement, so a bulk import
pays for its log once. ``chronos_begin()`` records the transaction's context once and returns its row
(NULL while capture is off, after recording the gap); the row holds the live timeline. An UPDATE stores only its delta
(``chronos_delta``); a row whose new image equals the old is not logged. TRUNCATE is refused,
and so is changing a primary key: nothing may change the table unseen.
"""

from __future__ import annotations

import pgtrigger

XID = "pg_current_xact_id()::text::bigint"
COLUMNS = 'INSERT INTO chronos_change (xid, transaction_id, timeline_id, replay, "table", row_id, operation, data)'
DECLARE = [("recorded", "bigint"), ("live", "integer")]
BEGIN = (
    "recorded := chronos_begin(); IF recorded IS NULL THEN RETURN NULL; END IF;"
    " SELECT timeline_id INTO live FROM chronos_transaction WHERE id = recorded;"
)
REPLAY = "coalesce(current_setting('luxos.chronos_kind', true), '') = 'switch'"


def capture_triggers(pk: str) -> list[pgtrigger.Trigger]:
    """The capture triggers of a table whose primary key column is ``pk``, and its TRUNCATE and key guards."""
    return [
        _image_trigger(pk, "INSERT", pgtrigger.Insert, pgtrigger.Referencing(new="new_rows"), "new_rows"),
        _image_trigger(pk, "DELETE", pgtrigger.Delete, pgtrigger.Referencing(old="old_rows"), "old_rows"),
        pgtrigger.Trigger(
            name="capture_update",
            level=pgtrigger.Statement,
            when=pgtrigger.After,
            operation=pgtrigger.Update,
            referencing=pgtrigger.Referencing(old="old_rows", new="new_rows"),
            declare=DECLARE,
            func=(
                f"{BEGIN} {COLUMNS} SELECT {XID}, recorded, live, {REPLAY}, TG_TABLE_NAME, o.pk, 'UPDATE', "
                "chronos_delta(o.doc, n.doc) "
                f"FROM (SELECT r.{pk} AS pk, to_jsonb(r) AS doc FROM old_rows r) o "
                f"JOIN (SELECT r.{pk} AS pk, to_jsonb(r) AS doc FROM new_rows r) n ON n.pk = o.pk "
                "WHERE o.doc IS DISTINCT FROM n.doc; RETURN NULL;"
            ),
        ),
        pgtrigger.Trigger(
            name="no_truncate",
            level=pgtrigger.Statement,
            when=pgtrigger.Before,
            operation=pgtrigger.Truncate,
            func="RAISE EXCEPTION 'TRUNCATE of % is refused: every change goes through the log', TG_TABLE_NAME;",
        ),
        pgtrigger.Protect(
            name="key_immutable",
            operation=pgtrigger.Update,
            condition=pgtrigger.Q(**{f"old__{pk}__df": pgtrigger.F(f"new__{pk}")}),
        ),
    ]


def _image_trigger(
    pk: str, operation: str, when: pgtrigger.Operation, referencing: pgtrigger.Referencing, rows: str
) -> pgtrigger.Trigger:
    """An INSERT or DELETE logs each row's whole image."""
    return pgtrigger.Trigger(
        name=f"capture_{operation.lower()}",
        level=pgtrigger.Statement,
        when=pgtrigger.After,
        operation=when,
        referencing=referencing,
        declare=DECLARE,
        func=f"{BEGIN} {COLUMNS} SELECT {XID}, recorded, live, {REPLAY}, TG_TABLE_NAME, r.{pk}, '{operation}', "
        f"to_jsonb(r) FROM {rows} r; RETURN NULL;",
    )


WATCHED = ("beings.BaseBeing", "relations.Relationship")


def truncate_uris() -> list[str]:
    """The TRUNCATE guards of the watched tables, for ``pgtrigger.ignore`` in the one reset that empties them."""
    return [f"{label}:no_truncate" for label in WATCHED]
