"""Lineage: how a new source relates to the current one, and every past version rebuilt from diffs.

A being's ``genesis`` holds its current version (``version``, ``hash``, ``source`` …) and, in
``ancestors``, one entry per earlier version, oldest first::

    {"version": 3, "hash": "…", "created_at": "…", "kind": "evolution", "diff": [[i1, i2, [lines]], …]}

``diff`` is a reverse diff: applied to the source of the next version (the next entry, or the
current source after the last entry), it gives this version's source exactly. Every
``LUXOS_SNAPSHOT_EVERY`` versions an entry also keeps its full ``source``, so rebuilding an old
version applies at most that many diffs. A mutant's ancestors continue its parent's: the
inherited entries carry the parent's ``soul``.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass
from typing import Any, Literal

from beings import genotype
from beings.exceptions import LineageBrokenError

ChangeKind = Literal["evolution", "cosmetic", "mutation"]
Diff = list[list[Any]]


@dataclass(frozen=True)
class SourceChange:
    """How a new source differs from the current one."""

    kind: ChangeKind
    added: int
    removed: int
    changed: int
    current_lines: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "current_lines": self.current_lines,
        }


def _lines(source: str) -> list[str]:
    return source.splitlines(keepends=True)


def change_classify(*, current: str, new: str, max_added_ratio: float) -> SourceChange:
    """Evolution when lines are only added, and few; cosmetic when the AST is the same; mutation otherwise."""
    # Lines without their endings: appending to a source whose last line has no newline adds lines, it changes none.
    old_lines, new_lines = current.splitlines(), new.splitlines()
    added = removed = changed = 0
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "insert":
            added += j2 - j1
        elif tag == "delete":
            removed += i2 - i1
        elif tag == "replace":
            changed += i2 - i1
            added += max(0, (j2 - j1) - (i2 - i1))
    counts = {"added": added, "removed": removed, "changed": changed, "current_lines": len(old_lines)}
    if _same_ast(current, new):
        return SourceChange(kind="cosmetic", **counts)
    if not removed and not changed and added <= max_added_ratio * len(old_lines):
        return SourceChange(kind="evolution", **counts)
    return SourceChange(kind="mutation", **counts)


def _same_ast(first: str, second: str) -> bool:
    try:
        return ast.dump(ast.parse(first)) == ast.dump(ast.parse(second))
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # unparsable, or too deep to parse or dump
        return False


def diff_reverse(*, newer: str, older: str) -> Diff:
    """The edits that turn ``newer`` back into ``older``: ``[start, end, replacement lines]`` on newer's lines."""
    newer_lines, older_lines = _lines(newer), _lines(older)
    matcher = difflib.SequenceMatcher(None, newer_lines, older_lines, autojunk=False)
    return [[i1, i2, older_lines[j1:j2]] for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def diff_apply(source: str, diff: Diff) -> str:
    """Apply a reverse diff to a source."""
    lines = _lines(source)
    try:
        for start, end, replacement in reversed(diff):
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(lines)):
                raise ValueError(f"edit {start}:{end} is outside a source of {len(lines)} lines")
            lines[start:end] = replacement
    except (TypeError, ValueError) as error:
        raise LineageBrokenError(f"a reverse diff does not apply: {error}") from None
    return "".join(lines)


def ancestor_entry(
    *, genesis: dict[str, Any], newer_source: str, snapshot_every: int, soul: str | None = None
) -> dict[str, Any]:
    """The lineage entry that keeps the current version of ``genesis`` once ``newer_source`` replaces it."""
    origin = genesis.get("origin") or {}
    version = genesis.get("version", 1)
    source = genesis.get("source", "")
    entry: dict[str, Any] = {
        "version": version,
        "hash": genotype.genesis_hash(genesis),
        "created_at": origin.get("at") or genesis.get("created_at"),
        "kind": origin.get("kind", "genesis"),
        "diff": diff_reverse(newer=newer_source, older=source),
    }
    # Who made this version, why and at whose request, so reports rebuilt from the lineage can still say it.
    for key in ("actor", "reason", "request"):
        if origin.get(key):
            entry[key] = origin[key]
    if snapshot_every > 0 and version % snapshot_every == 0:
        entry["source"] = source
    if soul is not None:
        entry["soul"] = soul
    return entry


def source_rebuild(genesis: dict[str, Any], index: int) -> str:
    """The source of ``genesis['ancestors'][index]``, from the nearest snapshot or the current source."""
    ancestors = genesis.get("ancestors") or []
    if not 0 <= index < len(ancestors):
        raise LineageBrokenError(f"the lineage has no entry {index}")
    start = next((k for k in range(index, len(ancestors)) if isinstance(ancestors[k].get("source"), str)), None)
    if start is None:
        source, position = genesis.get("source", ""), len(ancestors)
    else:
        source, position = ancestors[start]["source"], start
    for k in range(position - 1, index - 1, -1):
        source = diff_apply(source, ancestors[k].get("diff") or [])
    return source


def genotype_rebuild(genesis: dict[str, Any], index: int) -> dict[str, str]:
    """The genotype of a past version: its rebuilt source with the traits every version shares."""
    return genotype.with_source(genesis, source_rebuild(genesis, index))
