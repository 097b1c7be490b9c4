"""Checks every being passes on its way in, whichever door it comes through."""

from __future__ import annotations

import ast
import json
import math
import uuid
from typing import Any

from django.conf import settings

from beings import genotype, kinds, lineage
from beings.exceptions import (
    DocumentTooLargeError,
    GenesisInvalidError,
    HashMismatchError,
    LineageBrokenError,
    SourceSyntaxError,
    TagsInvalidError,
)

# Keys of genesis whose value, when present, must be a string.
GENESIS_TEXT_KEYS = ("name", "type", "language", "entrypoint", "source", "workload", "description", "author", "hash")


def document_size(value: Any) -> int:
    """Bytes of a JSON document as PostgreSQL receives it."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def unstorable(value: Any) -> str | None:
    """Why PostgreSQL's jsonb cannot hold ``value`` (NUL characters, lone surrogates, NaN, infinities), or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "contains NUL characters, which PostgreSQL cannot store"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "contains lone surrogates (not UTF-8), which PostgreSQL cannot store"
        elif isinstance(item, float) and not math.isfinite(item):
            return "contains NaN or an infinity, which JSON cannot hold"
    return None


def document_check(field: str, value: Any) -> None:
    """Refuse a JSON document PostgreSQL's jsonb cannot hold, or over the size limit."""
    problem = unstorable(value)
    if problem:
        raise GenesisInvalidError(f"{field} {problem}")
    limit = settings.LUXOS_MAX_JSON_BYTES
    size = document_size(value)
    if size > limit:
        raise DocumentTooLargeError(f"{field} is {size} bytes; the limit is {limit} bytes")


# How deep a source's syntax tree may nest (the module is level 1). The walks after the parse (the
# analysis, the evolve's comparison, RestrictedPython's compile) recurse a few frames per level, so a
# source past this would exhaust Python's recursion limit in one of them; real code stays far below it.
MAX_SOURCE_DEPTH = 150
TOO_DEEP = "nested brackets, blocks, or a long chain such as 1+1+…"


def source_depth(tree: ast.AST, *, limit: int) -> int:
    """How many levels the tree nests, counted without recursion; the count stops once past ``limit``."""
    deepest = 0
    pending = [(tree, 1)]
    while pending and deepest <= limit:
        node, depth = pending.pop()
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def source_parse(source: str) -> ast.Module:
    """Parse being source, refusing oversize, invalid or too deeply nested Python with the cause."""
    limit = settings.LUXOS_MAX_SOURCE_BYTES
    try:
        size = len(source.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate, which JSON can carry and PostgreSQL cannot store
        raise SourceSyntaxError("genesis.source is not valid UTF-8 (it holds a lone surrogate)") from None
    if size > limit:
        raise DocumentTooLargeError(f"genesis.source is {size} bytes; the limit is {limit} bytes")
    try:
        tree = ast.parse(source, filename="<being>")
    except SyntaxError as error:
        raise SourceSyntaxError(
            f"genesis.source is not valid Python: {error.msg} (line {error.lineno}, column {error.offset})"
        ) from None
    except ValueError as error:  # e.g. a NUL byte in the source
        raise SourceSyntaxError(f"genesis.source is not valid Python: {error}") from None
    except (RecursionError, MemoryError):  # CPython's parser runs out of stack on deep nesting
        raise SourceSyntaxError(f"genesis.source nests too deeply for Python's parser ({TOO_DEEP})") from None
    depth = source_depth(tree, limit=MAX_SOURCE_DEPTH)
    if depth > MAX_SOURCE_DEPTH:
        raise SourceSyntaxError(
            f"genesis.source nests too deeply ({TOO_DEEP}): the limit is {MAX_SOURCE_DEPTH} levels of its syntax tree"
        )
    return tree


def genesis_clean(genesis: Any) -> dict[str, Any]:
    """Validate a genesis document and stamp its soul hash.

    ``name`` and ``type`` are required, the kind known, the source parsable Python; the genotype's
    language, entrypoint and workload valid; a lineage (``version``, ``ancestors``) well formed. A
    ``hash`` the caller sends must be the hash of the genotype: it is computed here either way.
    """
    if not isinstance(genesis, dict):
        raise GenesisInvalidError("genesis must be a JSON object")
    for key in ("name", "type"):
        if key not in genesis:
            raise GenesisInvalidError(f"genesis.{key} is required")
    for key in GENESIS_TEXT_KEYS:
        if key in genesis and not isinstance(genesis[key], str):
            raise GenesisInvalidError(f"genesis.{key} must be a string")
    name = genesis["name"].strip()
    if not name:
        raise GenesisInvalidError("genesis.name must not be empty")
    if len(name) > 200:
        raise GenesisInvalidError("genesis.name must be at most 200 characters")
    if genesis["type"] not in kinds.KINDS:
        raise GenesisInvalidError(f"genesis.type must be one of {', '.join(kinds.KINDS)}, not {genesis['type']!r}")
    if "source" in genesis:
        source_parse(genesis["source"])
    _genotype_check(genesis)
    version, ancestors = _lineage_check(genesis)
    expected = genotype.genesis_hash(genesis)
    if "hash" in genesis and genesis["hash"] != expected:
        raise HashMismatchError(
            f"genesis.hash {genesis['hash'][:80]!r} is not the hash of the genotype; it would be {expected}"
        )
    cleaned = {**genesis, "name": name, "hash": expected, "version": version, "ancestors": ancestors}
    document_check("genesis", cleaned)
    return cleaned


def _genotype_check(genesis: dict[str, Any]) -> None:
    language = genesis.get("language", genotype.PYTHON)
    if language not in genotype.LANGUAGES:
        raise GenesisInvalidError(f"genesis.language must be one of {', '.join(genotype.LANGUAGES)}, not {language!r}")
    workload = genesis.get("workload", genotype.CPU)
    if workload not in genotype.WORKLOADS:
        raise GenesisInvalidError(f"genesis.workload must be one of {', '.join(genotype.WORKLOADS)}, not {workload!r}")
    entrypoint = genesis.get("entrypoint", "run")
    if not entrypoint.isidentifier() or entrypoint.startswith("_"):
        raise GenesisInvalidError(f"genesis.entrypoint must be a public Python name, not {entrypoint!r}")


def _lineage_check(genesis: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """The version and ancestors of a genesis, defaulting to a first version with no ancestors."""
    version = genesis.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise GenesisInvalidError("genesis.version must be a positive integer")
    ancestors = genesis.get("ancestors", [])
    if not isinstance(ancestors, list):
        raise GenesisInvalidError("genesis.ancestors must be a list")
    for number, entry in enumerate(ancestors):
        where = f"genesis.ancestors[{number}]"
        if not isinstance(entry, dict):
            raise GenesisInvalidError(f"{where} must be an object")
        entry_version = entry.get("version")
        if isinstance(entry_version, bool) or not isinstance(entry_version, int) or entry_version < 1:
            raise GenesisInvalidError(f"{where}.version must be a positive integer")
        if not isinstance(entry.get("hash"), str) or not genotype.HASH_PATTERN.fullmatch(entry["hash"]):
            raise GenesisInvalidError(f"{where}.hash must be 64 lowercase hex characters")
        if not isinstance(entry.get("diff"), list) and not isinstance(entry.get("source"), str):
            raise GenesisInvalidError(f"{where} needs a reverse diff or a source snapshot")
        if "soul" in entry:
            entry["soul"] = _soul_clean(f"{where}.soul", entry["soul"])
    if "parent" in genesis:
        parent = genesis["parent"]
        if not isinstance(parent, dict) or "soul" not in parent:
            raise GenesisInvalidError("genesis.parent must be an object naming the parent's soul")
        parent["soul"] = _soul_clean("genesis.parent.soul", parent["soul"])
    # Each recorded version must rebuild to its hash: a lookup by that hash returns what the entry rebuilds.
    for number, entry in enumerate(ancestors):
        try:
            rebuilt = genotype.soul_hash(lineage.genotype_rebuild(genesis, number))
        except LineageBrokenError as broken:
            raise GenesisInvalidError(f"genesis.ancestors[{number}] does not rebuild: {broken.detail}") from None
        if rebuilt != entry["hash"]:
            raise GenesisInvalidError(
                f"genesis.ancestors[{number}] rebuilds to hash {rebuilt}, not its recorded {entry['hash']}"
            )
    origin = genesis.get("origin", {})
    if not isinstance(origin, dict) or not all(
        isinstance(origin.get(key, ""), str) for key in ("kind", "at", "actor", "reason")
    ):
        raise GenesisInvalidError("genesis.origin must be an object whose kind, at, actor and reason are strings")
    return version, ancestors


def _soul_clean(where: str, value: Any) -> str:
    """A soul named in a lineage, as the canonical UUID text (how the lineage compares souls)."""
    try:
        return str(uuid.UUID(value if isinstance(value, str) else ""))
    except ValueError:
        raise GenesisInvalidError(f"{where} must be a being's soul (a UUID)") from None


def tags_clean(tags: Any) -> list[str]:
    """Validate tags: a list of at most LUXOS_MAX_TAGS non-empty strings of bounded length, duplicates dropped."""
    if not isinstance(tags, list | tuple) or not all(isinstance(tag, str) for tag in tags):
        raise TagsInvalidError("tags must be a list of strings")
    cleaned = list(dict.fromkeys(tag.strip() for tag in tags))
    if len(cleaned) > settings.LUXOS_MAX_TAGS:
        raise TagsInvalidError(f"at most {settings.LUXOS_MAX_TAGS} tags, not {len(cleaned)}")
    for tag in cleaned:
        if not tag:
            raise TagsInvalidError("a tag must not be empty")
        if len(tag) > settings.LUXOS_MAX_TAG_LENGTH:
            raise TagsInvalidError(f"tag {tag[:20]!r}… is longer than {settings.LUXOS_MAX_TAG_LENGTH} characters")
    return cleaned


def energy_clean(energy_level: Any) -> int:
    if isinstance(energy_level, bool) or not isinstance(energy_level, int):
        raise GenesisInvalidError("energy_level must be an integer")
    if not -(2**31) <= energy_level < 2**31:
        raise GenesisInvalidError("energy_level must fit in a 32-bit integer")
    return energy_level


def object_clean(field: str, value: Any) -> dict[str, Any]:
    """A JSON object field (attributes, self_awareness) within the size limit."""
    if not isinstance(value, dict):
        raise GenesisInvalidError(f"{field} must be a JSON object")
    document_check(field, value)
    return value


def memories_clean(value: Any) -> Any:
    """Memories are an event log: a JSON array (or an object keyed by topic) within the size limit."""
    if not isinstance(value, list | dict):
        raise GenesisInvalidError("memories must be a JSON array or object")
    document_check("memories", value)
    return value
