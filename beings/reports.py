"""Files under ``LUXOS_SOUL_LOG_DIR``: exports for GitOps and people; the database stays the truth.

Every file is written atomically (a temporary file in the same directory, then a rename) while
holding an exclusive lock on ``.lock`` in that directory, so concurrent writers (web processes,
workers, commands) never interleave a read-modify-write or leave a half-written file.

Every creation, evolution and mutation writes, once its transaction commits, the report of the
version it made: ``{hash[:16]}_{UTC creation time}.json`` (``soul_info``, the complete
``genotype``, the ``analysis`` of its source, the ``context`` it came through, ``system_info``),
a ``.md`` summary beside it, and its line in ``hash_index.json``. The name carries the
version's own creation time, so ``reports_export`` rebuilds the same names from the database.
Bulk imports (``beings_import``) write no reports, one COPY being the point of them; an export
covers the beings they brought.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import itertools
import json
import logging
import os
import platform
import re
import socket
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import django
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import DatabaseError, transaction

import luxsite
from beings import genotype
from beings.analysis import source_analyse
from beings.exceptions import LineageBrokenError
from beings.models import BaseBeing, SoulReportFailure
from beings.selectors import SoulVersion, being_versions
from chronos.context import context_current

logger = logging.getLogger(__name__)


def soul_log_dir() -> Path:
    return Path(settings.LUXOS_SOUL_LOG_DIR)


@contextlib.contextmanager
def soul_log_lock(directory: Path | None = None) -> Iterator[Path]:
    """Hold the directory's writer lock; yields the directory, created if missing."""
    directory = directory or soul_log_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield directory
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def file_write_atomic(path: Path, content: str) -> None:
    """Replace ``path`` with ``content`` in one rename: readers see the old file or the new, never half."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            # mkstemp makes the file private (0600); these files are exports meant to be read by others.
            os.fchmod(handle.fileno(), 0o644)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def json_text(value: Any) -> str:
    """Indented, key-sorted JSON with a final newline: stable files that diff well in git."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# Creation reports ----------------------------------------------------------------------------------

INDEX_NAME: Final = "hash_index.json"
# A version first written as a creation is recorded as ``genesis`` in its lineage.
EVENTS: Final = {"genesis": "creation"}


def report_stamp(created_at: str | datetime | None) -> str:
    """The UTC timestamp of a report's name, with microseconds: ``20261122T051234.123456Z``."""
    moment = _instant(created_at)
    return moment.strftime("%Y%m%dT%H%M%S.%fZ")


def _instant(created_at: str | datetime | None) -> datetime:
    if isinstance(created_at, datetime):
        moment = created_at
    elif isinstance(created_at, str) and created_at:
        moment = datetime.fromisoformat(created_at)
    else:
        raise ValueError("the version records no creation time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@functools.cache
def system_info() -> dict[str, str]:
    """What wrote a report: LuxOS, Python and Django versions and the host."""
    return {
        "luxos_version": _luxos_version(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "host": socket.gethostname(),
    }


def _luxos_version() -> str:
    declared = getattr(luxsite, "__version__", None)
    if declared:
        return str(declared)
    # The project is run from its checkout, not installed: pyproject.toml declares the version.
    try:
        with open(Path(settings.BASE_DIR) / "pyproject.toml", "rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def report_build(
    *, version: SoulVersion, genotype_copy: dict[str, str], event: str, parent_hash: str | None,
    context: dict[str, Any],
) -> dict[str, Any]:
    """The report of one version: who it is, its complete genotype, what its source holds, how it came."""
    return {
        "soul_info": {
            "hash": version.hash,
            "alias": version.alias,
            "soul": str(version.soul),
            "version": version.version,
            "parent_hash": parent_hash,
            "created_at": version.created_at,
        },
        "genotype": genotype_copy,
        "analysis": source_analyse(genotype_copy.get("source", "")),
        "context": {"actor": None, "door": None, "reason": "", **context, "event": event},
        "system_info": system_info(),
    }


def report_write(
    *, being: BaseBeing, event: str, parent_hash: str | None, context: dict[str, Any],
    directory: Path | None = None,
) -> Path:
    """Write the report of a being's current version (and its ``.md``) and list it in ``hash_index.json``."""
    current = being_versions(being)[-1]
    return _version_report_write(
        version=current, genotype_copy=current.genotype(), event=event, parent_hash=parent_hash, context=context,
        directory=directory,
    )


def _version_report_write(
    *, version: SoulVersion, genotype_copy: dict[str, str], event: str, parent_hash: str | None,
    context: dict[str, Any], directory: Path | None = None,
) -> Path:
    document = report_build(
        version=version, genotype_copy=genotype_copy, event=event, parent_hash=parent_hash, context=context
    )
    with soul_log_lock(directory) as target:
        path = _report_store(target, document)
        index = _index_read(target)
        _index_add(index, *_index_entry(document, path))
        file_write_atomic(target / INDEX_NAME, json_text(index))
    return path


def _report_store(directory: Path, document: dict[str, Any]) -> Path:
    """Write ``document`` and its summary under the version's name; the JSON path. Hold the lock.

    A file of that name that reports another version (another being with this genotype, created
    in the same microsecond) is never overwritten: the name takes a ``-2``, ``-3`` … suffix. The
    same version's report is rewritten in place, so an export lands on the names written live.
    """
    info = document["soul_info"]
    stem = f"{info['hash'][:16]}_{report_stamp(info['created_at'])}"
    content = json_text(document)
    for number in itertools.count(1):
        path = directory / (f"{stem}.json" if number == 1 else f"{stem}-{number}.json")
        existing = _report_identity(path)
        if existing is None or existing == (info["hash"], info["soul"], info["version"]):
            break
    file_write_atomic(path, content)
    file_write_atomic(path.with_suffix(".md"), report_markdown(document))
    return path


def _report_identity(path: Path) -> tuple[Any, Any, Any] | None:
    """``(hash, soul, version)`` of the report at ``path``; None when there is no file there."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))["soul_info"]
        return info["hash"], info["soul"], info["version"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        # Not a report we can read: it is not ours to replace.
        return ("?", "?", "?")


def _index_read(directory: Path) -> dict[str, Any]:
    path = directory / INDEX_NAME
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"souls": {}, "aliases": {}}
    except ValueError:
        logger.warning("%s is not valid JSON: starting it again (souls export-logs rebuilds it whole)", path)
        return {"souls": {}, "aliases": {}}
    if not isinstance(index, dict):
        return {"souls": {}, "aliases": {}}
    index.setdefault("souls", {})
    index.setdefault("aliases", {})
    return index


def _index_entry(document: dict[str, Any], path: Path) -> tuple[str, dict[str, Any]]:
    info = document["soul_info"]
    entry = {
        "alias": info["alias"],
        "soul": info["soul"],
        "version": info["version"],
        "created_at": info["created_at"],
        "report": path.name,
    }
    return info["hash"], entry


def _index_add(index: dict[str, Any], hash: str, entry: dict[str, Any]) -> None:
    """List one version in the index: a hash once, an alias's hashes once each, oldest first.

    When several beings hold one genotype the hash keeps its oldest version, whatever the order
    reports come in, so a live index and an exported one agree.
    """
    souls = index["souls"]
    known = souls.get(hash)
    if known is None or known.get("soul") == entry["soul"] or _sort_key(entry) < _sort_key(known):
        souls[hash] = entry
    hashes = index["aliases"].setdefault(entry["alias"], [])
    if hash not in hashes:
        hashes.append(hash)
    hashes.sort(key=lambda value: _sort_key(souls.get(value) or {}))


def _sort_key(entry: dict[str, Any]) -> str:
    try:
        return _instant(entry.get("created_at")).isoformat()
    except ValueError:
        return ""


def report_markdown(document: dict[str, Any]) -> str:
    """A summary of a report for people: who, how, what the source holds, and the source itself."""
    info, context, analysis = document["soul_info"], document["context"], document["analysis"]
    source = document["genotype"].get("source", "")
    lines = [
        f"# {info['alias']} v{info['version']}",
        "",
        f"- hash: `{info['hash']}`",
        f"- soul: `{info['soul']}`",
        f"- parent: {'`' + info['parent_hash'] + '`' if info['parent_hash'] else '(none)'}",
        f"- created: {info['created_at']}",
        f"- event: {context.get('event')} through {context.get('door')} by {context.get('actor') or '(nobody)'}",
        f"- reason: {context.get('reason') or '(none given)'}",
    ]
    if context.get("rebuilt"):
        lines.append("- rebuilt from the database by an export, not written when the version was made")
    lines += ["", "## Analysis", "", f"{analysis['lines']} lines, cyclomatic complexity {analysis['complexity']}."]
    if analysis.get("error"):
        lines += ["", f"The source does not parse: {analysis['error']}"]
    if analysis["functions"] or analysis["classes"]:
        lines += ["", "| kind | name | signature | line | docstring |", "| --- | --- | --- | --- | --- |"]
        for function in analysis["functions"]:
            lines.append(_row("function", function["qualname"], function["signature"], function))
        for klass in analysis["classes"]:
            bases = f"({', '.join(klass['bases'])})" if klass["bases"] else ""
            lines.append(_row("class", klass["qualname"], f"class {klass['name']}{bases}", klass))
            for method in klass["methods"]:
                lines.append(_row("method", method["qualname"], method["signature"], method))
    if analysis["calls"]:
        lines += ["", "### Calls to other beings", ""]
        for call in analysis["calls"]:
            target = repr(call["target"]) if call["target"] is not None else "…"
            lines.append(f"- line {call['line']}: `{call['function']}({target})`")
    if analysis["imports"]:
        lines += ["", "### Imports attempted", ""]
        lines += [f"- line {item['line']}: `{item['module']}`" for item in analysis["imports"]]
    fence = "`" * max(3, _longest_backtick_run(source) + 1)
    lines += ["", "## Source", "", f"{fence}python", source.rstrip("\n"), fence, ""]
    return "\n".join(lines)


def _row(kind: str, name: str, signature: str, item: dict[str, Any]) -> str:
    docstring = (item.get("docstring") or "").strip().splitlines()
    cells = [kind, f"`{name}`", f"`{signature}`", str(item["line"]), docstring[0] if docstring else ""]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


# After a write commits --------------------------------------------------------------------------------


def report_on_commit(
    *, being: BaseBeing, event: str, parent_hash: str | None, actor: AbstractBaseUser | AnonymousUser | None,
    reason: str = "",
) -> None:
    """Write the report of the version a write just made, once that write commits.

    The context (door, actor, reason) is taken now, while the door's context is open; a rolled-back
    write writes nothing. A report that cannot be written is logged and kept as a
    ``SoulReportFailure`` row: the database, not the file, is the truth, so the write stands.
    """
    current = context_current()
    context = {
        "actor": getattr(actor, "username", None) or None,
        "door": current.door,
        "reason": reason or current.reason,
    }
    # The version as it is now: the being object may change again before the commit.
    version = being_versions(being)[-1]
    genotype_copy = genotype.genotype_of(being.genesis)
    transaction.on_commit(
        functools.partial(
            _report_write_safely, version=version, genotype_copy=genotype_copy, event=event,
            parent_hash=parent_hash, context=context,
        )
    )


def _report_write_safely(
    *, version: SoulVersion, genotype_copy: dict[str, str], event: str, parent_hash: str | None,
    context: dict[str, Any],
) -> None:
    directory = soul_log_dir()
    try:
        _version_report_write(
            version=version, genotype_copy=genotype_copy, event=event, parent_hash=parent_hash, context=context,
            directory=directory,
        )
    # Broad on purpose: this runs after the commit, and any error raised here would turn a write
    # that succeeded into a failed request or task that its caller retries.
    except Exception as error:
        logger.exception("could not write the %s report of %s into %s", event, version.hash, directory)
        report_failure_record(operation=event, hash=version.hash, path=directory, error=error)


def report_failure_record(*, operation: str, hash: str, path: Path, error: BaseException) -> None:
    """Keep a failed file write where the admin shows it; a database that refuses it too is only logged."""
    try:
        SoulReportFailure.objects.create(
            operation=operation[:32], hash=hash[:64], path=str(path), error=f"{type(error).__name__}: {error}"
        )
    except DatabaseError:
        logger.exception("could not record the failed %s report of %s", operation, hash)


# Export: every file again, from the database -------------------------------------------------------


def reports_export(
    *, directory: Path | None = None, progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Rebuild every report, ``hash_index.json`` and the environment files from the database.

    Every version a being owns gets its report, its genotype rebuilt from the lineage (the
    versions a mutant inherited are its parent's to report). The context says what the lineage
    still knows (actor, reason) and ``"rebuilt": true``. A version whose lineage does not rebuild
    its hash gets no report but a ``SoulReportFailure``, and is counted in ``failures``. Beings are
    read 500 at a time; ``progress`` is called with the number of beings done after each.
    Returns ``{reports, souls, aliases, failures, environment_files}``.
    """
    target = directory or soul_log_dir()
    index: dict[str, Any] = {"souls": {}, "aliases": {}}
    reports = failures = done = 0
    for being in BaseBeing.objects.order_by("created_at", "soul").iterator(chunk_size=500):
        versions = being_versions(being)
        with soul_log_lock(target):
            for position, version in enumerate(versions):
                if not version.owned:
                    continue
                try:
                    document = _export_document(being, version, versions[position - 1].hash if position else None)
                except (LineageBrokenError, ValueError) as error:
                    report_failure_record(operation="export", hash=version.hash, path=target, error=error)
                    failures += 1
                    continue
                path = _report_store(target, document)
                _index_add(index, *_index_entry(document, path))
                reports += 1
        done += 1
        if progress is not None:
            progress(done)
    with soul_log_lock(target):
        _index_keep_concurrent(index, _index_read(target))
        file_write_atomic(target / INDEX_NAME, json_text(index))
    return {
        "reports": reports,
        "souls": len(index["souls"]),
        "aliases": len(index["aliases"]),
        "failures": failures,
        "environment_files": len(_environment_files_write(target)),
    }


def _export_document(being: BaseBeing, version: SoulVersion, parent_hash: str | None) -> dict[str, Any]:
    """The report of one version rebuilt from the lineage; LineageBrokenError when it does not rebuild."""
    genotype_copy = version.genotype()
    rebuilt = genotype.soul_hash(genotype_copy)
    if rebuilt != version.hash:
        raise LineageBrokenError(
            f"version {version.version} of {version.soul} rebuilds to {rebuilt}, not {version.hash}"
        )
    if version.created_at is None and being.created_at is not None:
        # An imported lineage entry without a time: the being's own row time keeps the name stable.
        version = dataclasses.replace(version, created_at=being.created_at.isoformat())
    report_stamp(version.created_at)  # ValueError now, before anything is written, when there is no time
    return report_build(
        version=version, genotype_copy=genotype_copy, event=EVENTS.get(version.kind, version.kind),
        parent_hash=parent_hash, context=_recorded_context(being, version),
    )


def _recorded_context(being: BaseBeing, version: SoulVersion) -> dict[str, Any]:
    """What the database still knows of how a version came: its lineage entry or origin, its memory event."""
    genesis = being.genesis
    recorded = (genesis.get("origin") or {}) if version.index is None else genesis["ancestors"][version.index]
    memories = being.memories.get("events", []) if isinstance(being.memories, dict) else being.memories
    event = next(
        (
            item for item in reversed(memories if isinstance(memories, list) else [])
            if isinstance(item, dict) and item.get("hash") == version.hash
        ),
        {},
    )
    return {
        "actor": recorded.get("actor") or event.get("actor") or None,
        "door": "export",
        "reason": recorded.get("reason") or event.get("reason") or "",
        "rebuilt": True,
    }


def _index_keep_concurrent(index: dict[str, Any], written: dict[str, Any]) -> None:
    """Keep the versions the index on disk lists that this export missed and a being still holds.

    They were made while the export ran and their reports were written live; versions of deleted
    beings drop out. Only hashes missing from the export are looked up.
    """
    for hash, entry in written.get("souls", {}).items():
        if hash in index["souls"] or not isinstance(entry, dict) or not genotype.HASH_PATTERN.fullmatch(hash):
            continue
        holders = BaseBeing.objects.holding_hash(hash)
        if any(version.hash == hash for holder in holders for version in being_versions(holder)):
            _index_add(index, hash, entry)


def _environment_files_write(target: Path) -> list[Path]:
    """``production_config.json`` and ``deployment_manifest_{env}.json``, written by the registry.

    The registry writes into ``LUXOS_SOUL_LOG_DIR`` only; an export elsewhere leaves them out.
    """
    if target.resolve() != soul_log_dir().resolve():
        return []
    from beings import registry  # the registry imports this module

    return registry.environment_files_write()
