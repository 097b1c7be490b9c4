"""How two versions of a row combine against their common base: the three-way rules of a merge.

Pure functions on row images (the JSON ``to_jsonb`` gives of a row; None when the row does not exist).
``ours`` is the timeline merged into, ``theirs`` the one merged from, ``base`` their fork point.

- A row changed on one side only takes that side; changed the same way on both, that way.
- ``row`` strategy: a row changed two ways is one conflict on the whole row. ``ours`` / ``theirs``:
  that side wins every row changed two ways, with no conflict.
- ``field`` strategy (the default): column by column, and inside JSON objects key by key, recursively:
  different keys merge cleanly, the same key changed two ways is a conflict at its path.
  ``tags`` merge as sets (what either side added, minus what either side removed), ``memories`` as
  the union of both sides' events in time order (the newest ``LUXOS_MEMORY_LIMIT`` kept).
- A row deleted on one side and changed on the other, or inserted on both sides differently, is a
  conflict on the whole row (path ``[]``).
- Code: a being's genotype and lineage (``CODE_KEYS`` of genesis: source, version, hash, ancestors…)
  are one unit, never merged key by key: a being evolved on one side takes that side's code whole; evolved
  on both sides two ways, it is one conflict at path ``["genesis"]`` whose values are the code of each
  side, to pick a side (or an edited code, validated and hashed afresh). One lineage is never stitched
  from two. The other keys of genesis (name, description…) merge key by key.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from beings.genotype import GENOTYPE_KEYS

# Genesis keys that are the being's code: the genotype and the lineage that hashes and versions it.
CODE_KEYS = (*GENOTYPE_KEYS, "version", "hash", "ancestors", "origin", "parent")
CODE_PATH = ["genesis"]


class Absent:
    """A key that one version of a document does not have (distinct from a JSON null)."""

    def __repr__(self) -> str:
        return "absent"


ABSENT: Any = Absent()


@dataclass(frozen=True)
class Clash:
    """One value changed two ways: where, and the three versions (``ABSENT`` for a key a version lacks)."""

    path: list[str]
    base: Any
    ours: Any
    theirs: Any


@dataclass
class RowMerge:
    """One row touched on either side: its three versions, the merged image and the conflicts in it.

    ``result`` holds ours wherever there is a conflict, until the conflicts are resolved; ``composed``
    names the columns whose merged value is neither side's own, which are validated before writing.
    """

    table: str
    row_id: uuid.UUID
    base: dict[str, Any] | None
    ours: dict[str, Any] | None
    theirs: dict[str, Any] | None
    result: dict[str, Any] | None
    clashes: list[Clash] = field(default_factory=list)
    composed: set[str] = field(default_factory=set)

    @property
    def changed(self) -> bool:
        """The merge writes this row: its merged image is not what ours holds."""
        return self.result != self.ours or bool(self.clashes)


def stored(value: Any) -> Any:
    """A version as a conflict row stores it: an absent key as JSON null."""
    return None if value is ABSENT else value


def digest_text(value: Any) -> str:
    """Canonical JSON of a value, an absent key included (for digests and set membership)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def row_combine(*, table: str, row_id: uuid.UUID, base: Any, ours: Any, theirs: Any, strategy: str) -> RowMerge:
    """The three-way merge of one row under ``strategy`` (field, row, ours or theirs)."""
    merge = RowMerge(table, row_id, base, ours, theirs, result=ours)
    if ours == theirs or theirs == base:
        return merge
    if ours == base:
        merge.result = theirs
        return merge
    if strategy == "ours":
        return merge
    if strategy == "theirs":
        merge.result = theirs
        return merge
    if strategy == "row" or base is None or ours is None or theirs is None:
        merge.clashes.append(Clash([], base, ours, theirs))
        return merge
    result: dict[str, Any] = {}
    for column in [*ours, *(key for key in theirs if key not in ours)]:
        b, o, t = base.get(column, ABSENT), ours.get(column, ABSENT), theirs.get(column, ABSENT)
        if column == "tags":
            value = tags_combine(b, o, t)
        elif column == "memories":
            value = memories_combine([column], b, o, t, merge.clashes)
        elif column == "genesis" and table == "base_beings":
            value = genesis_combine(b, o, t, merge.clashes)
        else:
            value = document_combine([column], b, o, t, merge.clashes)
        if value is not ABSENT:
            result[column] = value
            if value != o and value != t:
                merge.composed.add(column)
    merge.result = result
    return merge


def document_combine(path: list[str], base: Any, ours: Any, theirs: Any, clashes: list[Clash]) -> Any:
    """Three-way merge of a JSON value: objects key by key, anything else whole (a conflict when changed twice)."""
    if ours == theirs or theirs == base:
        return ours
    if ours == base:
        return theirs
    if isinstance(ours, dict) and isinstance(theirs, dict) and (isinstance(base, dict) or base is ABSENT):
        return keys_combine(path, base, ours, theirs, clashes, document_combine)
    clashes.append(Clash(path, base, ours, theirs))
    return ours


def keys_combine(
    path: list[str],
    base: Any,
    ours: dict[str, Any],
    theirs: dict[str, Any],
    clashes: list[Clash],
    combine: Callable[[list[str], Any, Any, Any, list[Clash]], Any],
) -> dict[str, Any]:
    """Two objects key by key against their base, each key of either side by ``combine``; a removed key is left out
    (a key only the base had was removed on both sides)."""
    original = base if isinstance(base, dict) else {}
    merged: dict[str, Any] = {}
    for key in [*ours, *(key for key in theirs if key not in ours)]:
        sides = (original.get(key, ABSENT), ours.get(key, ABSENT), theirs.get(key, ABSENT))
        value = combine([*path, key], *sides, clashes)
        if value is not ABSENT:
            merged[key] = value
    return merged


def tags_combine(base: Any, ours: Any, theirs: Any) -> Any:
    """Tags as sets: kept unless either side removed it, plus what either side added (ours' order first)."""
    if ours == theirs or theirs == base:
        return ours
    if ours == base:
        return theirs
    original, mine, other = (set(tags) if isinstance(tags, list) else set() for tags in (base, ours, theirs))
    removed = (original - mine) | (original - other)
    ordered = [*(ours if isinstance(ours, list) else []), *(theirs if isinstance(theirs, list) else [])]
    return [tag for tag in dict.fromkeys(ordered) if tag not in removed]


def memories_combine(path: list[str], base: Any, ours: Any, theirs: Any, clashes: list[Clash]) -> Any:
    """Memories: event lists as the union of both sides' events in time order; topics (an object) key by key."""
    if ours == theirs or theirs == base:
        return ours
    if ours == base:
        return theirs
    if isinstance(ours, list) and isinstance(theirs, list):
        return events_union(ours, theirs)
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return keys_combine(path, base, ours, theirs, clashes, memories_combine)
    clashes.append(Clash(path, base, ours, theirs))
    return ours


def events_union(ours: list[Any], theirs: list[Any]) -> list[Any]:
    """Every event of either list once, ordered by its ``at`` time (an event without one keeps its place after
    the event before it), the newest ``LUXOS_MEMORY_LIMIT`` kept."""
    seen: set[str] = set()
    timed: list[tuple[str, int, Any]] = []
    for events in (ours, theirs):
        moment = ""
        for event in events:
            text = digest_text(event)
            if isinstance(event, dict) and isinstance(event.get("at"), str):
                moment = event["at"]
            if text in seen:
                continue
            seen.add(text)
            timed.append((moment, len(timed), event))
    union = [event for _, _, event in sorted(timed, key=lambda entry: (entry[0], entry[1]))]
    limit = settings.LUXOS_MEMORY_LIMIT
    return union[-limit:] if limit > 0 else []


def code_of(genesis: Any) -> dict[str, Any]:
    """The code unit of a genesis: its genotype and lineage keys."""
    return {key: genesis[key] for key in CODE_KEYS if isinstance(genesis, dict) and key in genesis}


def genesis_combine(base: Any, ours: Any, theirs: Any, clashes: list[Clash]) -> Any:
    """A being's genesis: the code as one unit (a conflict at ``["genesis"]`` when evolved two ways), the
    other keys merged key by key."""
    if ours == theirs or theirs == base:
        return ours
    if ours == base:
        return theirs
    if not (isinstance(ours, dict) and isinstance(theirs, dict)):
        clashes.append(Clash(list(CODE_PATH), base, ours, theirs))
        return ours
    code_base, code_ours, code_theirs = code_of(base), code_of(ours), code_of(theirs)
    if code_ours == code_theirs or code_theirs == code_base:
        code = code_ours
    elif code_ours == code_base:
        code = code_theirs
    else:
        clashes.append(Clash(list(CODE_PATH), code_base, code_ours, code_theirs))
        code = code_ours
    rest = document_combine(
        ["genesis"],
        {key: value for key, value in (base or {}).items() if key not in CODE_KEYS},
        {key: value for key, value in ours.items() if key not in CODE_KEYS},
        {key: value for key, value in theirs.items() if key not in CODE_KEYS},
        clashes,
    )
    return {**rest, **code}


def row_resolved(row: RowMerge, chosen: dict[tuple[str, ...], Any]) -> dict[str, Any] | None:
    """The row's merged image with each conflict's chosen value put at its path."""
    if not row.clashes:
        return row.result
    result = copy.deepcopy(row.result)
    for clash in row.clashes:
        value = copy.deepcopy(chosen[tuple(clash.path)])
        if not clash.path:
            result = value
        elif result is None:
            continue
        elif row.table == "base_beings" and clash.path == CODE_PATH and isinstance(value, dict):
            kept = {key: item for key, item in result.get("genesis", {}).items() if key not in CODE_KEYS}
            result["genesis"] = {**kept, **value}
        else:
            path_set(result, clash.path, value)
    return result


def path_set(document: dict[str, Any], path: list[str], value: Any) -> None:
    """Put ``value`` at ``path`` inside ``document`` (``ABSENT`` removes the key), making objects on the way."""
    node = document
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if value is ABSENT:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
