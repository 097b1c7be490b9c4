"""What ``manage.py chronos`` prints: documents for ``--json`` and short aligned tables for people.

A document holds the same data a table shows, in JSON's types: ids and times as text. Nothing
here reads the database beyond the objects it is handed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from chronos.archive import ArchiveReport
from chronos.diffs import Diff, RowDiff
from chronos.models import Checkpoint, Timeline
from chronos.retention import GcReport
from chronos.selectors import HistoryEntry
from chronos.services import RestorePreview, TravelReport

ID_PREFIX = 8
VALUE_WIDTH = 80


def json_text(document: Any) -> str:
    """A document as ``--json`` prints it: indented, UUIDs and times as text."""
    return json.dumps(document, indent=2, ensure_ascii=False, default=json_value)


def json_value(value: Any) -> str:
    """What JSON does not hold, as the API writes it: a time in ISO 8601, anything else (a UUID) as text."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Rows under their headers in columns as wide as their widest cell."""
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]


def moment(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value is not None else "-"


def value_text(value: Any) -> str:
    """A JSON value on one line, cut to a readable width."""
    text = json.dumps(value, ensure_ascii=False, default=json_value)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def checkpoint_document(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "id": checkpoint.id,
        "name": checkpoint.name,
        "description": checkpoint.description,
        "timeline": checkpoint.timeline.name,
        "kind": checkpoint.kind,
        "pinned": checkpoint.pinned,
        "created_at": checkpoint.created_at,
        "actor": checkpoint.actor_name,
    }


def checkpoint_label(checkpoint: Checkpoint) -> str:
    return f"{checkpoint.name} ({str(checkpoint.id)[:ID_PREFIX]})"


def checkpoints_table(checkpoints: Sequence[Checkpoint]) -> list[str]:
    rows = [
        [
            str(checkpoint.id)[:ID_PREFIX],
            checkpoint.name,
            checkpoint.timeline.name,
            checkpoint.kind,
            "pinned" if checkpoint.pinned else "",
            moment(checkpoint.created_at),
            checkpoint.actor_name,
        ]
        for checkpoint in checkpoints
    ]
    return table(["ID", "NAME", "TIMELINE", "KIND", "PINNED", "CREATED", "ACTOR"], rows)


def timeline_document(timeline: Timeline, changes: int) -> dict[str, Any]:
    return {
        "name": timeline.name,
        "live": timeline.live,
        "parent": timeline.parent.name if timeline.parent else None,
        "fork": {"id": timeline.fork.id, "name": timeline.fork.name} if timeline.fork else None,
        "changes": changes,
        "created_at": timeline.created_at,
        "actor": timeline.actor_name,
        "description": timeline.description,
    }


def timelines_table(documents: Sequence[dict[str, Any]]) -> list[str]:
    rows = [
        [
            "*" if document["live"] else "",
            document["name"],
            document["parent"] or "-",
            f"{document['fork']['name']} ({str(document['fork']['id'])[:ID_PREFIX]})" if document["fork"] else "-",
            document["changes"],
        ]
        for document in documents
    ]
    return table(["LIVE", "NAME", "PARENT", "FORK", "CHANGES"], rows)


def row_document(row: RowDiff) -> dict[str, Any]:
    """A row that differs; an added or removed row carries its image, a changed one its JSON paths."""
    document: dict[str, Any] = {"table": row.table, "row_id": row.row_id, "kind": row.kind}
    if row.kind == "changed":
        document["fields"] = [
            {"path": field.path, "kind": field.kind, "old": field.old, "new": field.new} for field in row.fields
        ]
    else:
        document["row"] = row.new if row.kind == "added" else row.old
    return document


def diff_document(diff: Diff, *, stat_only: bool = False) -> dict[str, Any]:
    document: dict[str, Any] = {
        "from": str(diff.origin),
        "to": str(diff.target),
        "total": diff.total,
        "changes": diff.changes,
        "stat": [{"table": table, "kind": kind, "count": count} for (table, kind), count in sorted(diff.stat.items())],
    }
    if not stat_only:
        document["offset"] = diff.offset
        document["entries"] = [row_document(row) for row in diff.entries]
    return document


def diff_lines(diff: Diff, *, stat_only: bool = False) -> list[str]:
    """The counts per table and kind; then, unless ``stat_only``, each row of the page and its changed paths."""
    if not diff.total:
        return [f"no difference between {diff.origin} and {diff.target}"]
    lines = table(["TABLE", "KIND", "ROWS"], [[t, k, n] for (t, k), n in sorted(diff.stat.items())])
    lines.append(f"{diff.total} row(s) differ between {diff.origin} and {diff.target} ({diff.changes} log entries)")
    if stat_only:
        return lines
    for row in diff.entries:
        lines.append("")
        lines.append(f"{row.kind} {row.table} {row.row_id}")
        lines.extend(f"  {field.path}: {value_text(field.old)} → {value_text(field.new)}" for field in row.fields)
    shown = len(diff.entries)
    if diff.offset + shown < diff.total:
        lines.append("")
        lines.append(
            f"rows {diff.offset + 1}-{diff.offset + shown} of {diff.total}: --offset {diff.offset + shown} for more"
        )
    return lines


def preview_document(preview: RestorePreview) -> dict[str, Any]:
    def promoted(promotions: Sequence[Any]) -> list[dict[str, Any]]:
        return [{"alias": p.alias, "hash": p.hash, "environment": p.environment, "soul": p.soul} for p in promotions]

    return {
        "checkpoint": checkpoint_document(preview.checkpoint),
        "diff": diff_document(preview.diff),
        "promotions_removed": promoted(preview.promotions_removed),
        "promotions_changed": promoted(preview.promotions_changed),
        "needs_force": preview.needs_force,
    }


def preview_lines(preview: RestorePreview) -> list[str]:
    lines = [f"restore to {checkpoint_label(preview.checkpoint)} on {preview.checkpoint.timeline.name}", ""]
    lines.extend(diff_lines(preview.diff))
    for label, promotions in (
        ("deletes the being of", preview.promotions_removed),
        ("changes the being of", preview.promotions_changed),
    ):
        if promotions:
            listed = ", ".join(f"{p.alias} ({p.hash[:12]}) in {p.environment}" for p in promotions)
            lines.append(f"the restore {label} active promotions: {listed}")
    if preview.needs_force:
        lines.append("it needs --force")
    return lines


def report_document(report: TravelReport) -> dict[str, Any]:
    return {
        "safety": checkpoint_document(report.safety) if report.safety else None,
        "undone": report.undone,
        "redone": report.redone,
        "rows": report.rows,
    }


def report_line(report: TravelReport) -> str:
    rows = ", ".join(f"{table} {count}" for table, count in sorted(report.rows.items())) or "none"
    safety = f"; safety checkpoint {checkpoint_label(report.safety)}" if report.safety else ""
    return f"{report.undone} log entries undone, {report.redone} redone; rows written: {rows}{safety}"


def history_document(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "operation": entry.operation,
        "timeline": entry.timeline,
        "kind": entry.kind,
        "context": entry.context,
        "committed_at": entry.committed_at,
        "data": entry.data,
    }


def history_table(entries: Sequence[HistoryEntry]) -> list[str]:
    rows = [
        [
            entry.id,
            moment(entry.committed_at),
            entry.timeline,
            entry.kind,
            entry.operation,
            entry.context.get("actor") or "-",
            entry.context.get("door") or "-",
            entry.context.get("operation") or "-",
            entry.context.get("reason") or "",
        ]
        for entry in entries
    ]
    return table(["ID", "COMMITTED", "TIMELINE", "KIND", "CHANGE", "BY", "DOOR", "OPERATION", "REASON"], rows)


def size_text(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def stats_lines(stats: dict[str, Any]) -> list[str]:
    lines = [
        f"log:          {size_text(stats['log_bytes'])} of changes, {size_text(stats['context_bytes'])} of contexts",
        f"checkpoints:  {stats['checkpoints']} ({stats['pinned']} pinned)",
        f"archives:     {stats['archives']}, {size_text(stats['archive_bytes'])}",
        "",
    ]
    rows = [["*" if t["live"] else "", t["name"], t["changes"]] for t in stats["timelines"]]
    return lines + table(["LIVE", "TIMELINE", "CHANGES"], rows)


def export_document(checkpoint: Checkpoint, path: Path, report: ArchiveReport) -> dict[str, Any]:
    return {
        "checkpoint": checkpoint_document(checkpoint),
        "path": str(path),
        "beings": report.beings,
        "relationships": report.relationships,
        "bytes": report.bytes_written,
        "manifest": report.manifest,
    }


def export_line(checkpoint: Checkpoint, path: Path, report: ArchiveReport) -> str:
    return (
        f"exported {checkpoint_label(checkpoint)}: {report.beings} beings, {report.relationships} relationships, "
        f"{size_text(report.bytes_written)} to {path}"
    )


def gc_lines(report: GcReport) -> list[str]:
    verb = "would remove" if report.dry_run else "removed"
    lines = [f"{verb} {len(report.checkpoints)} checkpoint(s)" + (":" if report.checkpoints else "")]
    lines.extend(f"  {label}" for label in report.checkpoints)
    if report.timelines:
        lines.append(f"the log of deleted timelines: {', '.join(report.timelines)}")
    lines.append(
        f"{verb} {report.changes} log entries, {report.transactions} transactions and {report.permissions} "
        f"rights of rows gone for good: {size_text(report.bytes_freed)}"
    )
    return lines
