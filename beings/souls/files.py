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
import fcntl
import functools
import itertools
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from django.conf import settings
from django.db import DatabaseError, transaction

from beings import genotype
from beings.exceptions import LineageBrokenError
from beings.models import BaseBeing, SoulReportFailure
from beings.selectors import SoulVersion, being_versions
from beings.souls.reports import export_document, report_build, report_instant, report_markdown, report_stamp
from beings.souls.selectors import PRODUCTION, environment_clean, manifest_build
from chronos.context import context_current
from luxsite.files import file_replaced
from luxsite.permissions import User

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
    with file_replaced(path) as handle:
        handle.write(content.encode())


def json_text(value: Any) -> str:
    """Indented, key-sorted JSON with a final newline: stable files that diff well in git."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# Creation reports ----------------------------------------------------------------------------------

INDEX_NAME: Final = "hash_index.json"


def report_write(
    *,
    being: BaseBeing,
    event: str,
    parent_hash: str | None,
    context: dict[str, Any],
    directory: Path | None = None,
) -> Path:
    """Write the report of a being's current version (and its ``.md``) and list it in ``hash_index.json``."""
    current = being_versions(being)[-1]
    return _version_report_write(
        version=current,
        genotype_copy=current.genotype(),
        event=event,
        parent_hash=parent_hash,
        context=context,
        directory=directory,
    )


def _version_report_write(
    *,
    version: SoulVersion,
    genotype_copy: dict[str, str],
    event: str,
    parent_hash: str | None,
    context: dict[str, Any],
    directory: Path | None = None,
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
        return report_instant(entry.get("created_at")).isoformat()
    except ValueError:
        return ""


# After a write commits --------------------------------------------------------------------------------


def report_on_commit(
    *,
    being: BaseBeing,
    event: str,
    parent_hash: str | None,
    actor: User | None,
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
            _report_write_safely,
            version=version,
            genotype_copy=genotype_copy,
            event=event,
            parent_hash=parent_hash,
            context=context,
        )
    )


def _report_write_safely(
    *,
    version: SoulVersion,
    genotype_copy: dict[str, str],
    event: str,
    parent_hash: str | None,
    context: dict[str, Any],
) -> None:
    directory = soul_log_dir()
    try:
        _version_report_write(
            version=version,
            genotype_copy=genotype_copy,
            event=event,
            parent_hash=parent_hash,
            context=context,
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


def reports_export(*, directory: Path | None = None, progress: Callable[[int], None] | None = None) -> dict[str, int]:
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
                    document = export_document(being, version, versions[position - 1].hash if position else None)
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
    """``production_config.json`` and ``deployment_manifest_{env}.json``, when ``target`` is the live directory.

    The registry writes into ``LUXOS_SOUL_LOG_DIR`` only; an export elsewhere leaves them out.
    """
    if target.resolve() != soul_log_dir().resolve():
        return []
    return environment_files_write()


def environment_files_write(*, environment: str | None = None) -> list[Path]:
    """Rewrite ``deployment_manifest_{env}.json`` (and for production ``production_config.json``); the paths written.

    Every environment when ``environment`` is None. The promotions are read under the directory
    lock, so of two concurrent writers the last one writes what both committed. A file that cannot
    be written is logged and recorded as a ``SoulReportFailure``; it never fails the caller.
    """
    environments = [environment_clean(environment)] if environment is not None else list(settings.LUXOS_ENVIRONMENTS)
    written: list[Path] = []
    path = soul_log_dir()
    try:
        with soul_log_lock() as directory:
            for name in environments:
                manifest = manifest_build(environment=name)
                path = directory / f"deployment_manifest_{name}.json"
                file_write_atomic(path, json_text(manifest))
                written.append(path)
                if name == PRODUCTION:
                    path = directory / "production_config.json"
                    file_write_atomic(path, json_text(production_config(manifest)))
                    written.append(path)
    except OSError as error:
        logger.exception("could not write the environment files into %s", path)
        SoulReportFailure.objects.create(
            operation="environment_files", path=str(path), error=f"{type(error).__name__}: {error}"
        )
    return written


def production_config(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What production runs, by alias: ``{alias: {hash, version, soul, promoted_at}}``."""
    return {
        soul["alias"]: {key: soul[key] for key in ("hash", "version", "soul", "promoted_at")}
        for soul in manifest["souls"]
    }
