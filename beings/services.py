"""Every write to beings: create, update, delete, bulk import."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from psycopg.errors import UniqueViolation
from psycopg.types.json import Jsonb

from beings import validation
from beings.exceptions import (
    BeingExistsError,
    BeingHasRelationshipsError,
    CoreBeingError,
    GenesisInvalidError,
    ImportLineError,
)
from beings.models import BaseBeing
from chronos.context import context_apply
from luxsite.errors import DomainError
from luxsite.permissions import owner_grant, require

User = AbstractBaseUser | AnonymousUser

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


@transaction.atomic
def being_create(*, data: dict[str, Any], actor: User | None) -> BaseBeing:
    """Create a being from validated fields and give its creator view/change/delete on it."""
    fields = being_clean(data)
    if "soul" in fields and BaseBeing.objects.filter(soul=fields["soul"]).exists():
        raise BeingExistsError(f"a being with soul {fields['soul']} already exists")
    context_apply(actor=actor, operation="being_create")
    being = BaseBeing.objects.create(**fields)
    owner_grant(model=BaseBeing, pks=[being.pk], user=actor)
    return being


@transaction.atomic
def being_update(*, being: BaseBeing, data: dict[str, Any], actor: User) -> BaseBeing:
    """Change some fields of a being; the caller must hold change permission."""
    require(user=actor, action="change", obj=being)
    if being.is_core:
        raise CoreBeingError(f"{being.name} is a core being and never changes")
    fields = being_clean(data, partial=True)
    if "soul" in fields and fields["soul"] != being.soul:
        raise GenesisInvalidError("a being's soul never changes")
    fields.pop("soul", None)
    if not fields:
        return being
    context_apply(actor=actor, operation="being_update")
    for name, value in fields.items():
        setattr(being, name, value)
    being.save(update_fields=list(fields))
    return being


@transaction.atomic
def being_delete(*, being: BaseBeing, actor: User) -> None:
    """Delete a being that has no relationships; the caller must hold delete permission."""
    require(user=actor, action="delete", obj=being)
    if being.is_core:
        raise CoreBeingError(f"{being.name} is a core being and cannot be deleted")
    links = being.outgoing.count() + being.incoming.count()
    if links:
        raise BeingHasRelationshipsError(f"the being has {links} relationship(s); delete them first")
    context_apply(actor=actor, operation="being_delete")
    being.delete()


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
    copy_sql = f"COPY base_beings ({', '.join(IMPORT_COLUMNS)}) FROM STDIN"
    try:
        with transaction.atomic():
            context_apply(actor=actor, operation="beings_import")
            with connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
                copy.set_types(["uuid", "text[]", "int4", "jsonb", "jsonb", "jsonb", "jsonb"])
                for number, line in enumerate(lines, start=1):
                    if not line.strip():
                        continue
                    row = _import_row(number, line)
                    if row["soul"] in seen:
                        raise ImportLineError("the file names the same soul more than once")
                    seen.add(row["soul"])
                    souls.append(row["soul"])
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
            owner_grant(model=BaseBeing, pks=souls, user=actor)
    except UniqueViolation:
        # One array parameter: ``soul__in`` would put a placeholder per soul of the file in the SQL.
        with connection.cursor() as cursor:
            cursor.execute("SELECT soul FROM base_beings WHERE soul = ANY(%s) LIMIT 5", [souls])
            existing = [soul for (soul,) in cursor.fetchall()]
        raise BeingExistsError(f"beings already exist: {', '.join(map(str, existing))}") from None
    return ImportReport(created=len(souls), souls=souls)


def _import_row(number: int, line: bytes | str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except ValueError as error:
        raise ImportLineError(f"line {number}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ImportLineError(f"line {number}: each line must be a JSON object")
    try:
        row = being_clean(data)
    except DomainError as error:
        raise type(error)(f"line {number}: {error.detail}") from None
    row.setdefault("soul", uuid.uuid4())
    return row
