"""Every write to beings: create, update, delete, bulk import."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sized
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg.errors import UniqueViolation
from psycopg.types.json import Jsonb

from beings import validation
from beings.exceptions import (
    BeingExistsError,
    BeingHasRelationshipsError,
    CoreBeingError,
    EnergyWriteError,
    GenesisInvalidError,
    GenotypeChangeError,
    ImportLineError,
    LineageForeignError,
)
from beings.models import BaseBeing
from beings.selectors import being_missing
from beings.souls.files import report_on_commit
from chronos.context import context_apply, context_current
from chronos.risk.services import Target, safety_guard
from luxsite.errors import DomainError
from luxsite.locks import advisory_lock
from luxsite.permissions import User, may, owner_grant, require, visible

# Keys of genesis that record the lineage: LuxOS writes them, callers never change them.
LINEAGE_KEYS = ("version", "hash", "ancestors", "origin", "parent")

# What a being's creator may do beyond view, change and delete: run its code.
OWNER_EXTRA = ("execute_being",)

# Fields a caller may set on a being, and their validators.
BEING_FIELDS = ("genesis", "tags", "energy_level", "attributes", "memories", "self_awareness")


def being_clean(data: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Validate the writable fields of a being; unknown fields are refused."""
    unknown = set(data) - set(BEING_FIELDS) - {"soul"}
    if unknown:
        raise GenesisInvalidError(f"unknown fields: {', '.join(sorted(unknown))}")
    if not partial and "genesis" not in data:
        raise GenesisInvalidError("genesis is required")
    cleaned: dict[str, Any] = {}
    if "soul" in data:
        try:
            cleaned["soul"] = uuid.UUID(str(data["soul"]))
        except ValueError:
            raise GenesisInvalidError(f"soul {data['soul']!r} is not a UUID") from None
    if "genesis" in data:
        cleaned["genesis"] = validation.genesis_clean(data["genesis"])
    if "tags" in data:
        cleaned["tags"] = validation.tags_clean(data["tags"])
    if "energy_level" in data:
        cleaned["energy_level"] = validation.energy_clean(data["energy_level"])
    for field in ("attributes", "self_awareness"):
        if field in data:
            cleaned[field] = validation.object_clean(field, data[field])
    if "memories" in data:
        cleaned["memories"] = validation.memories_clean(data["memories"])
    if not partial:
        cleaned.setdefault("tags", [])
        cleaned.setdefault("energy_level", 0)
        cleaned.setdefault("attributes", {})
        cleaned.setdefault("memories", [])
        cleaned.setdefault("self_awareness", {})
    return cleaned


def being_create(*, data: dict[str, Any], actor: User | None) -> BaseBeing:
    """Create a being, or return the one with the same genotype and alias (see ``being_create_or_get``)."""
    return being_create_or_get(data=data, actor=actor)[0]


@transaction.atomic
def being_create_or_get(*, data: dict[str, Any], actor: User | None) -> tuple[BaseBeing, bool]:
    """Create a being and give its creator view/change/delete on it; ``(being, created)``.

    Content addressing makes creation idempotent: when a being the actor may view already has
    this genotype (the same hash) and this alias, that being comes back and nothing is written.
    An advisory lock on (hash, alias) keeps two concurrent identical creations to one being.
    """
    fields = being_clean(data)
    _energy_check(fields, current=0, actor=actor)
    genesis = fields["genesis"]
    lineage_souls_check(named=provenance_apply(genesis=genesis, soul=fields.get("soul"), actor=actor), actor=actor)
    advisory_lock(f"{genesis['hash']}:{genesis['name']}")
    existing = None
    if actor is not None:
        same = BaseBeing.objects.filter(genesis__contains={"hash": genesis["hash"], "name": genesis["name"]})
        existing = visible(user=actor, queryset=same).order_by("-created_at").first()
    if existing is not None and fields.get("soul", existing.soul) == existing.soul:
        return existing, False
    if "soul" in fields and BaseBeing.objects.filter(soul=fields["soul"]).exists():
        raise BeingExistsError(f"a being with soul {fields['soul']} already exists")
    context_apply(actor=actor, operation="being_create")
    being = BaseBeing.objects.create(**fields)
    owner_grant(model=BaseBeing, pks=[being.pk], user=actor, extra=OWNER_EXTRA)
    report_on_commit(being=being, event="creation", parent_hash=None, actor=actor)
    return being, True


@transaction.atomic
def being_update(*, being: BaseBeing, data: dict[str, Any], actor: User) -> BaseBeing:
    """Change some fields of a being; the caller must hold change permission."""
    require(user=actor, action="change", obj=being, missing=being_missing(being.soul))
    if being.is_core:
        raise CoreBeingError(f"{being.name} is a core being and never changes")
    fields = being_clean(data, partial=True)
    _energy_check(fields, current=being.energy_level or 0, actor=actor)
    if "soul" in fields and fields["soul"] != being.soul:
        raise GenesisInvalidError("a being's soul never changes")
    fields.pop("soul", None)
    if "genesis" in fields:
        fields["genesis"] = _genesis_keep_lineage(being, data["genesis"], fields["genesis"])
    if not fields:
        return being
    safety_guard(operation="update", target=being, actor=actor)
    context_apply(actor=actor, operation="being_update")
    for name, value in fields.items():
        setattr(being, name, value)
    being.save(update_fields=list(fields))
    return being


def provenance_apply(*, genesis: dict[str, Any], soul: uuid.UUID | None, actor: User | None) -> list[tuple[str, str]]:
    """Provenance is the server's: stamp ``genesis.origin``; the other beings its lineage names, to check.

    ``origin`` (kind, time, actor, door) is set here, never taken from the caller, except from a
    superuser's import, which keeps it marked ``imported``. A lineage entry or a ``parent`` that
    names a soul other than the being's own is accepted only from a caller who may change every
    being it names (``lineage_souls_check``): otherwise anyone could present their code as a
    version of someone else's being. The evolve service writes mutants' lineages itself and does
    not come through here. No query: an import calls it while its COPY holds the connection.
    """
    trusted = actor is None or bool(getattr(actor, "is_superuser", False))
    sent = genesis.get("origin")
    if sent is not None and actor is not None and trusted:
        genesis["origin"] = {**sent, "imported": True}
    else:
        genesis["origin"] = {
            "kind": "import" if genesis.get("ancestors") else "genesis",
            "at": timezone.now().isoformat(),
            "actor": actor_name(actor),
            "door": context_current().door,
        }
    if trusted:
        return []
    own = str(soul) if soul is not None else None
    named = [
        (f"genesis.ancestors[{number}]", entry["soul"])
        for number, entry in enumerate(genesis.get("ancestors", []))
        if "soul" in entry
    ]
    if "parent" in genesis:
        named.append(("genesis.parent", genesis["parent"]["soul"]))
    return [(where, other) for where, other in named if other != own]


def lineage_souls_check(*, named: list[tuple[str, str]], actor: User | None) -> None:
    """Refuse unless ``actor`` may change every being ``named`` (where it is named, its soul); one query."""
    if not named or actor is None:
        return
    beings = BaseBeing.objects.in_bulk({soul for _where, soul in named}, field_name="soul")
    for where, other in named:
        being = beings.get(uuid.UUID(other))
        if being is None or not may(user=actor, action="change", obj=being):
            # The same words whether the being exists or not: a refusal must not tell that it does.
            raise LineageForeignError(
                f"{where} names being {other}, which you may not change: a lineage may name another being only "
                "when you may change it (a mutant is made by evolving its parent)"
            )


def _energy_check(fields: dict[str, Any], *, current: int, actor: User | None) -> None:
    """Energy is the broker priority of a being's runs, earned by runs: only a superuser sets it by hand."""
    if "energy_level" not in fields or fields["energy_level"] == current:
        return
    if actor is None or getattr(actor, "is_superuser", False):
        return
    raise EnergyWriteError(
        f"energy_level is earned by runs (it sets their queue priority): only a superuser may set it; "
        f"leave it out or send the current value {current}"
    )


def _genesis_keep_lineage(being: BaseBeing, sent: dict[str, Any], cleaned: dict[str, Any]) -> dict[str, Any]:
    """A new genesis for ``being`` may rename it or change its metadata, never its genotype or lineage.

    Code changes go through ``being_evolve``, which keeps the version they replace.
    """
    if cleaned["hash"] != being.hash:
        raise GenotypeChangeError(
            "the genotype (type, language, entrypoint, source, workload) changes only by evolving the being"
        )
    current = being.genesis
    for key in LINEAGE_KEYS:
        if key in sent and sent[key] != current.get(key):
            raise GenotypeChangeError(f"genesis.{key} is kept by LuxOS and cannot be written")
    return {**cleaned, **{key: current[key] for key in LINEAGE_KEYS if key in current}}


@transaction.atomic
def being_delete(*, being: BaseBeing, actor: User) -> None:
    """Delete a being that has no relationships; the caller must hold delete permission."""
    require(user=actor, action="delete", obj=being, missing=being_missing(being.soul))
    if being.is_core:
        raise CoreBeingError(f"{being.name} is a core being and cannot be deleted")
    links = being.outgoing.count() + being.incoming.count()
    if links:
        raise BeingHasRelationshipsError(f"the being has {links} relationship(s); delete them first")
    safety_guard(operation="delete", target=being, actor=actor)
    context_apply(actor=actor, operation="being_delete")
    # In SQL, not through the ORM: its cascade would drop the being's permissions, and a restore that
    # brings the being back must bring it back to those who could see and run it.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM base_beings WHERE soul = %s", [being.soul])


@dataclass(frozen=True)
class ImportReport:
    created: int
    souls: list[uuid.UUID]


IMPORT_COLUMNS = ("soul", "tags", "energy_level", "genesis", "attributes", "memories", "self_awareness")


def beings_import(*, lines: Iterable[bytes | str], actor: User | None) -> ImportReport:
    """Import beings from JSON Lines, all or nothing: one bad line and nothing is stored.

    Every line is validated like ``being_create`` and written into one ``COPY`` as soon as it passes,
    so PostgreSQL stores a row while Python checks the next and no list of rows is held. The primary
    key refuses souls that already exist; the creator's permissions go in with one ``INSERT``.
    """
    souls: list[uuid.UUID] = []
    seen: set[uuid.UUID] = set()
    named: list[tuple[str, str]] = []  # other beings the file's lineages name, checked once the COPY is done
    copy_sql = f"COPY base_beings ({', '.join(IMPORT_COLUMNS)}) FROM STDIN"
    try:
        with transaction.atomic():
            rows = len(lines) if isinstance(lines, Sized) else 0
            safety_guard(operation="bulk_import", target=Target(rows=rows), actor=actor)
            context_apply(actor=actor, operation="beings_import")
            with connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
                copy.set_types(["uuid", "text[]", "int4", "jsonb", "jsonb", "jsonb", "jsonb"])
                for number, line in enumerate(lines, start=1):
                    if not line.strip():
                        continue
                    row = _import_row(number, line, actor)
                    if row["soul"] in seen:
                        raise ImportLineError("the file names the same soul more than once")
                    seen.add(row["soul"])
                    souls.append(row["soul"])
                    named.extend(row["named"])
                    copy.write_row(
                        (
                            row["soul"],
                            row["tags"],
                            row["energy_level"],
                            Jsonb(row["genesis"]),
                            Jsonb(row["attributes"]),
                            Jsonb(row["memories"]),
                            Jsonb(row["self_awareness"]),
                        )
                    )
            # A soul named is checked against the database as it was: not against the file's own beings.
            lineage_souls_check(
                named=[(where, soul) for where, soul in named if uuid.UUID(soul) not in seen], actor=actor
            )
            owner_grant(model=BaseBeing, pks=souls, user=actor, extra=OWNER_EXTRA)
    except UniqueViolation:
        # One array parameter: ``soul__in`` would put a placeholder per soul of the file in the SQL.
        with connection.cursor() as cursor:
            cursor.execute("SELECT soul FROM base_beings WHERE soul = ANY(%s) LIMIT 5", [souls])
            existing = [soul for (soul,) in cursor.fetchall()]
        raise BeingExistsError(f"beings already exist: {', '.join(map(str, existing))}") from None
    return ImportReport(created=len(souls), souls=souls)


def _import_row(number: int, line: bytes | str, actor: User | None) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except ValueError as error:
        raise ImportLineError(f"line {number}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ImportLineError(f"line {number}: each line must be a JSON object")
    try:
        row = being_clean(data)
        _energy_check(row, current=0, actor=actor)
        row.setdefault("soul", uuid.uuid4())
        row["named"] = [
            (f"line {number}: {where}", soul)
            for where, soul in provenance_apply(genesis=row["genesis"], soul=row["soul"], actor=actor)
        ]
    except DomainError as error:
        raise type(error)(f"line {number}: {error.detail}") from None
    return row


def memories_append(memories: Any, event: dict[str, Any]) -> Any:
    """Memories with ``event`` appended, keeping the newest ``LUXOS_MEMORY_LIMIT`` events.

    Memories kept as an object (by topic) take the event under ``events``.
    """
    limit = settings.LUXOS_MEMORY_LIMIT
    if isinstance(memories, dict):
        return {**memories, "events": memories_append(memories.get("events", []), event)}
    events = [*(memories if isinstance(memories, list) else []), event]
    return events[-limit:] if limit > 0 else []


def actor_name(actor: User | None) -> str:
    return str(getattr(actor, "username", "") or f"({context_current().door})")
