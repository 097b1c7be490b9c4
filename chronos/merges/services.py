"""Merging one timeline into another: preview (conflicts listed), resolve them one by one, apply.

A merge is three-way against the fork point of the two timelines (``chronos.merges.plan``), with the
rules of ``chronos.merges.combine``. It applies to the live timeline only, when no conflict is left
open, in one transaction that holds writers off the two tables (as a restore does): a safety checkpoint
``before-merge-<source>`` first, then every merged row written once, set-based, captured with the kind
``merge``. The merge is therefore history on the timeline merged into, and a restore to its safety
checkpoint undoes it exactly. A side that changed since the preview makes the apply a 409
``merge_stale`` (preview again). Anything failing on the way leaves the tables as they were, and is
recorded as a lesson. Who may merge holds ``chronos.merge_timeline``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from beings import lineage, validation
from beings.genotype import GENOTYPE_KEYS
from beings.services import being_clean
from chronos.checkpoints import safety_checkpoint
from chronos.exceptions import TimelineNotLiveError
from chronos.guards import actor_name, chronos_enabled, hold_writers_off, permission_require, writes_tagged
from chronos.lessons.services import failure_record
from chronos.merges.combine import CODE_PATH, RowMerge, code_of, row_resolved, stored
from chronos.merges.exceptions import (
    MergeConflictsOpenError,
    MergeFailedError,
    MergeNotOpenError,
    MergeStaleError,
    MergeStrategyInvalidError,
    ResolutionInvalidError,
)
from chronos.merges.plan import Plan, merge_base, merge_plan
from chronos.merges.writes import RowWrites, rows_write
from chronos.models import Merge, MergeConflict, Timeline
from chronos.points import timeline_resolve
from luxsite.errors import DomainError
from luxsite.permissions import User
from relations.services import relationship_clean

MERGE_PERMISSION = "chronos.merge_timeline"
# Conflicts named in the detail of a 409 that lists the open ones.
CONFLICTS_LISTED = 20
# Columns an edited value may set, per table, and how each is validated (as the services validate a write).
OBJECT_COLUMNS = {"base_beings": ("attributes", "self_awareness"), "relationships": ("genesis", "attributes")}


def _timeline(reference: Timeline | str) -> Timeline:
    return timeline_resolve(reference.name if isinstance(reference, Timeline) else reference)


def merge_preview(
    *, source: Timeline | str, into: Timeline | str, strategy: str = Merge.Strategy.FIELD, actor: User
) -> Merge:
    """An open merge of ``source`` into ``into`` with its conflicts (base, ours, theirs); nothing is written to
    the two tables. An earlier open merge of the same two timelines is abandoned."""
    chronos_enabled()
    permission_require(actor, MERGE_PERMISSION, "merging timelines")
    if strategy not in Merge.Strategy.values:
        raise MergeStrategyInvalidError(
            f"the strategy is one of {', '.join(Merge.Strategy.values)}, not {str(strategy)[:40]!r}"
        )
    theirs, ours = _timeline(source), _timeline(into)
    base = merge_base(source=theirs, into=ours)
    plan = merge_plan(source=theirs, into=ours, base=base, strategy=strategy)
    with transaction.atomic():
        Merge.objects.filter(source=theirs, into=ours, status=Merge.Status.OPEN).update(status=Merge.Status.ABANDONED)
        merge = Merge.objects.create(
            source=theirs, into=ours, strategy=strategy, base=base, stats=plan.stats(), actor_name=actor_name(actor)
        )
        MergeConflict.objects.bulk_create(
            MergeConflict(
                merge=merge,
                table=row.table,
                row_id=row.row_id,
                path=clash.path,
                base=stored(clash.base),
                ours=stored(clash.ours),
                theirs=stored(clash.theirs),
            )
            for row in plan.rows
            for clash in row.clashes
        )
    return merge


def conflict_resolve(*, conflict: MergeConflict, resolution: str, value: Any = None, actor: User) -> MergeConflict:
    """Settle one conflict of an open merge: ours, theirs, or an edited value validated as a write would be.

    A conflict may be resolved again, another way, until the merge applies.
    """
    chronos_enabled()
    permission_require(actor, MERGE_PERMISSION, "resolving a merge conflict")
    status = Merge.objects.filter(id=conflict.merge_id).values_list("status", flat=True).first()
    if status != Merge.Status.OPEN:
        raise MergeNotOpenError(f"the merge is {status}: its conflicts are settled")
    if resolution not in MergeConflict.Resolution.values:
        raise ResolutionInvalidError(f"a resolution is ours, theirs or value, not {str(resolution)[:40]!r}")
    cleaned = _value_clean(conflict, value) if resolution == MergeConflict.Resolution.VALUE else None
    conflict.resolution, conflict.value, conflict.resolved_by = resolution, cleaned, actor_name(actor)
    conflict.save(update_fields=["resolution", "value", "resolved_by"])
    return conflict


def _value_clean(conflict: MergeConflict, value: Any) -> Any:
    """An edited value for the conflict's path, refused as the services refuse the same write."""
    table, path = conflict.table, list(conflict.path)
    if not path:
        if not isinstance(value, dict):
            raise ResolutionInvalidError("an edited row is a JSON object of the fields to set")
        return _fields_clean(table, value)
    column = path[0]
    if table == "base_beings" and path == CODE_PATH:
        return _code_clean(conflict, value)
    if len(path) == 1:
        return _fields_clean(table, {column: value})[column]
    if column not in (*OBJECT_COLUMNS[table], "memories", "genesis"):
        raise ResolutionInvalidError(f"{'.'.join(path)} is not inside a JSON document")
    validation.document_check(column, value)
    return value


def _code_clean(conflict: MergeConflict, value: Any) -> dict[str, Any]:
    """Edited code: the genotype keys sent, as a new version on top of ours (its lineage kept whole), hashed."""
    if not isinstance(value, dict) or not value or set(value) - set(GENOTYPE_KEYS):
        raise ResolutionInvalidError(f"edited code is a JSON object of some of {', '.join(GENOTYPE_KEYS)}")
    side: dict[str, Any] = conflict.ours if isinstance(conflict.ours, dict) else conflict.theirs or {}
    entry = lineage.ancestor_entry(
        genesis=side,
        newer_source=str(value.get("source", side.get("source", ""))),
        snapshot_every=settings.LUXOS_SNAPSHOT_EVERY,
    )
    draft = {
        "name": "merge",
        **{key: item for key, item in side.items() if key != "hash"},
        **value,
        "version": side.get("version", 1) + 1,
        "ancestors": [*side.get("ancestors", []), entry],
        "origin": {"kind": "merge", "at": timezone.now().isoformat(), "reason": "edited in a merge"},
    }
    return code_of(validation.genesis_clean(draft))


def _fields_clean(table: str, fields: dict[str, Any]) -> dict[str, Any]:
    if table == "base_beings":
        fields = {key: value for key, value in fields.items() if key != "soul"}
        if "genesis" in fields:
            raise ResolutionInvalidError("a being's genesis is resolved at its own path, not in an edited row")
        return being_clean(fields, partial=True)
    return relationship_clean(fields)


def _conflicts_open_error(merge: Merge, open_conflicts: list[MergeConflict]) -> MergeConflictsOpenError:
    listed = "; ".join(
        f"#{conflict.id} {conflict.table} {conflict.row_id} {'.'.join(map(str, conflict.path)) or '(row)'}"
        for conflict in open_conflicts[:CONFLICTS_LISTED]
    )
    more = len(open_conflicts) - CONFLICTS_LISTED
    return MergeConflictsOpenError(
        f"merge {merge.id} has {len(open_conflicts)} open conflict(s): {listed}"
        f"{f' and {more} more' if more > 0 else ''}; resolve each (ours, theirs or a value), then apply"
    )


def merge_apply(*, merge: Merge, actor: User) -> Merge:
    """Write a previewed merge with every conflict resolved into the live timeline, after a safety checkpoint."""
    chronos_enabled()
    permission_require(actor, MERGE_PERMISSION, "merging timelines")
    if merge.status != Merge.Status.OPEN:
        raise MergeNotOpenError(f"the merge is {merge.status}, not open: preview it again")
    open_conflicts = list(merge.conflicts.filter(resolution=""))
    if open_conflicts:
        raise _conflicts_open_error(merge, open_conflicts)
    try:
        with transaction.atomic():
            hold_writers_off()
            _apply(merge, actor)
    except (MergeNotOpenError, MergeStaleError, TimelineNotLiveError):
        raise
    except DomainError as error:
        _failure_record(merge, error, actor)
        raise
    except DatabaseError as error:
        Merge.objects.filter(id=merge.id).update(status=Merge.Status.FAILED, stats={**merge.stats, "error": str(error)})
        _failure_record(merge, error, actor)
        raise MergeFailedError(
            f"the database refused the merged state, nothing changed: {str(error).splitlines()[0]}"
        ) from None
    merge.refresh_from_db()
    return merge


def _apply(merge: Merge, actor: User) -> None:
    """The apply's transaction, writers held off: checks again under the lock, then the safety checkpoint first."""
    if not Merge.objects.filter(id=merge.id, status=Merge.Status.OPEN).exists():
        raise MergeNotOpenError("the merge is no longer open (applied or abandoned meanwhile)")
    into, source = Timeline.objects.get(id=merge.into_id), Timeline.objects.get(id=merge.source_id)
    if not into.live:
        raise TimelineNotLiveError(f"a merge writes the live timeline: switch to {into.name} first")
    safety = safety_checkpoint(prefix=f"before-merge-{source.name}", timeline=into, actor=actor)
    if merge.base is None:
        raise MergeStaleError("the merge's fork point was removed: preview again")
    plan = merge_plan(source=source, into=into, base=merge.base, strategy=merge.strategy)
    if plan.digest != merge.stats.get("digest"):
        raise MergeStaleError(
            f"{source.name} or {into.name} changed since the preview: preview the merge again and resolve afresh"
        )
    writes = _writes(plan, {(c.table, c.row_id, tuple(c.path)): c for c in merge.conflicts.all()})
    writes_tagged("merge", actor=actor, operation="timeline_merge", reason=f"merge {source.name} into {into.name}")
    written = {table: rows_write(table, rows) for table, rows in writes.items()}
    with connection.cursor() as cursor:
        # The deferred foreign keys checked now, inside the transaction: a refusal is the merge's, not the commit's.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    Merge.objects.filter(id=merge.id).update(
        status=Merge.Status.APPLIED,
        safety=safety,
        applied_at=timezone.now(),
        stats={**merge.stats, "written": written},
    )


def _writes(plan: Plan, resolutions: dict[Any, MergeConflict]) -> dict[str, RowWrites]:
    """Per table, each written row's final image: conflicts settled, composed or edited columns validated."""
    writes: dict[str, RowWrites] = {}
    for row in plan.rows:
        chosen: dict[tuple[str, ...], Any] = {}
        edited: set[str] = set(row.composed)
        for clash in row.clashes:
            conflict = resolutions[(row.table, row.row_id, tuple(clash.path))]
            chosen[tuple(clash.path)] = _chosen(row, clash.path, conflict)
            if conflict.resolution == MergeConflict.Resolution.VALUE:
                edited.update([clash.path[0]] if clash.path else (row.ours or row.theirs or {}).keys())
        image = row_resolved(row, chosen)
        if image is not None and edited:
            image = _image_check(row.table, image, edited)
        if image != row.ours:
            writes.setdefault(row.table, RowWrites()).add(row.row_id, image, existed=row.ours is not None)
    return writes


def _chosen(row: RowMerge, path: list[str], conflict: MergeConflict) -> Any:
    clash = next(clash for clash in row.clashes if clash.path == path)
    if conflict.resolution == MergeConflict.Resolution.OURS:
        return clash.ours
    if conflict.resolution == MergeConflict.Resolution.THEIRS:
        return clash.theirs
    if path:
        return conflict.value
    # An edited row: its fields over the side that has the row (an edited value keeps a deleted row).
    return {**(row.ours or row.theirs or {}), **(conflict.value or {})}


def _image_check(table: str, image: dict[str, Any], columns: set[str]) -> dict[str, Any]:
    """A merged row whose ``columns`` neither side wrote as they are: validated as a write, genesis hashed afresh."""
    fields = {column: image[column] for column in columns if column in image}
    if table == "base_beings":
        cleaned = being_clean(
            {key: value for key, value in fields.items() if key not in ("soul", "created_at")}, partial=True
        )
    else:
        cleaned = relationship_clean(
            {
                key: value
                for key, value in fields.items()
                if key in OBJECT_COLUMNS[table] or key in ("tags", "energy_level")
            }
        )
    return {**image, **cleaned}


def timeline_merge(
    *, source: Timeline | str, into: Timeline | str, strategy: str = Merge.Strategy.FIELD, actor: User
) -> Merge:
    """Preview and apply in one call; with conflicts, a 409 listing them (the merge stays open to resolve them)."""
    merge = merge_preview(source=source, into=into, strategy=strategy, actor=actor)
    return merge_apply(merge=merge, actor=actor)


def _failure_record(merge: Merge, error: BaseException, actor: User) -> None:
    """The failed merge as a lesson, after its transaction rolled back."""
    failure_record(
        operation="merge",
        error=error,
        timeline=Timeline.objects.filter(id=merge.into_id).first(),
        actor=actor,
        metadata={"merge": str(merge.id), "source": merge.source.name, "strategy": merge.strategy},
    )
