"""What a run names and who may see runs: resolving a soul, alias or hash to a pinned version; the permission
to execute; the executions a user may see."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, Permission, PermissionsMixin
from django.contrib.auth.models import User as AuthUser
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from beings import genotype, kinds, selectors
from beings.exceptions import (
    AliasNotFoundError,
    AliasNotPromotedError,
    ExecutionNotFoundError,
    LineageBrokenError,
    PromotionLineageError,
    SoulNotFoundError,
    TargetInvalidError,
)
from beings.models import (
    BaseBeing,
    BeingGroupObjectPermission,
    BeingUserObjectPermission,
    Execution,
    Promotion,
)
from beings.souls import selectors as soul_selectors
from luxsite.errors import BadRequest
from luxsite.pagination import Page, keyset_page, page_limit
from luxsite.permissions import User, codename
from luxsite.statements import instance_from_row, prepared

RUNNABLE = (kinds.FUNCTION, kinds.CLASS)
MAX_REF_CHARS = 200  # the longest alias; a soul or a hash is shorter
DEVELOPMENT = "development"
STATUS = Execution.Status
SUCCEEDED, RUNNING, QUEUED, KILLED = STATUS.SUCCEEDED, STATUS.RUNNING, STATUS.QUEUED, STATUS.KILLED


@dataclass(frozen=True)
class Target:
    """One exact version of a being to run: its genotype pinned by hash, and the environment it runs in."""

    being: BaseBeing
    hash: str
    version: int
    genotype: dict[str, str]
    environment: str  # "" for development


def target_resolve(
    *, user: User, ref: str | BaseBeing | None = None, environment: str | None = None, hash: str | None = None
) -> Target:
    """The version a run names for ``user``, resolved once: what every door that starts a run calls.

    ``ref`` is a being already fetched, or its soul, alias, or hash / unique prefix of at least 12.
    With ``environment`` only what is promoted there runs, from the promotion's stored genotype: a soul
    runs that being's hash promoted there, an alias the hash promoted under it, a hash itself if it is
    promoted there; anything else is refused. With ``hash`` it is that version of the being; ``hash``
    without ``ref`` names the version whichever being holds it. Otherwise it is the being's current version.
    """
    if isinstance(ref, str) or (ref is None and hash is None):
        ref = str(ref or "").strip()
        if not ref:
            raise TargetInvalidError("name the being to run: its soul, alias or hash")
        if len(ref) > MAX_REF_CHARS:
            raise TargetInvalidError(f"no soul, alias or hash is longer than {MAX_REF_CHARS} characters")
    if environment and hash is not None:
        raise TargetInvalidError("give a hash or an environment, not both: an environment runs the hash promoted there")
    environment = soul_selectors.environment_clean(environment) if environment else ""
    if isinstance(ref, BaseBeing):
        return _target_of(ref, user=user, environment=environment, hash=hash)
    if ref is None:  # the hash alone: the version whichever being holds it
        version = selectors.soul_get(hash=str(hash), user=user)
        return _pinned(version.holder, version.hash, version.version, version.genotype(), environment)
    soul = _uuid_or_none(ref)
    if soul is not None:
        return _target_of(_being_viewable(soul, user=user), user=user, environment=environment, hash=hash)
    if genotype.PREFIX_PATTERN.fullmatch(ref.lower()):
        try:
            version = selectors.soul_get(hash=ref, user=user)
        except SoulNotFoundError as missing:
            try:  # a hex-looking alias
                return _alias_target(ref, user=user, environment=environment, hash=hash)
            except AliasNotFoundError:
                raise missing from None
        if hash is not None:
            raise TargetInvalidError("the hash already names one version: give no second hash")
        if environment:
            promotion = (
                soul_selectors.promotions_active(environment=environment, user=user).filter(hash=version.hash).first()
            )
            if promotion is None:
                raise AliasNotPromotedError(f"hash {version.hash[:12]} is not promoted to {environment}")
            return _promoted(promotion, user=user)
        return _pinned(version.holder, version.hash, version.version, version.genotype(), "")
    return _alias_target(ref, user=user, environment=environment, hash=hash)


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _being_viewable(soul: uuid.UUID, *, user: User) -> BaseBeing:
    """``selectors.being_get`` in one query, without the being's memories: 404 unless ``user`` may view it.

    A run never reads the memories, the largest column of the row (its worker loads the being without
    them too). The view check is ``may``'s rule in SQL, as ``execution_allowed`` is: through ``may``,
    the user a token request loads afresh costs four permission queries before the run is recorded.
    An active superuser's is left out of the query, which PostgreSQL would otherwise plan on every request.
    """
    row = None
    if isinstance(user, PermissionsMixin) and user.is_authenticated:
        with prepared(
            _being_sql(checked=not (user.is_active and user.is_superuser)), {"user": user.pk, "soul": soul}
        ) as cursor:
            row = cursor.fetchone()
    if row is None:
        raise selectors.being_missing(soul)
    return instance_from_row(BaseBeing, _BEING_FIELDS, row)


_BEING_FIELDS = tuple(field for field in BaseBeing._meta.concrete_fields if field.attname != "memories")


@functools.cache
def _being_sql(*, checked: bool) -> str:
    columns = ", ".join(connection.ops.quote_name(str(field.column)) for field in _BEING_FIELDS)
    table = connection.ops.quote_name(BaseBeing._meta.db_table)
    allowed = f" AND ({permission_sql(codename(BaseBeing, 'view'))})" if checked else ""
    return f"SELECT {columns} FROM {table} WHERE soul = %(soul)s{allowed}"


def _alias_target(alias: str, *, user: User, environment: str, hash: str | None) -> Target:
    """In an environment the hash promoted there under the alias, whichever being holds it; else its newest being."""
    if environment:
        return _promoted(soul_selectors.soul_resolve(alias=alias, environment=environment, user=user), user=user)
    return _target_of(selectors.alias_get(alias=alias, user=user), user=user, environment="", hash=hash)


def _target_of(being: BaseBeing, *, user: User, environment: str, hash: str | None) -> Target:
    if environment:
        return _promoted(_promotion_of(being, user=user, environment=environment), user=user, being=being)
    if hash is not None:
        version = selectors.version_get(being=being, hash=hash)
        return _pinned(being, version.hash, version.version, version.genotype(), "")
    return _pinned(being, being.hash, being.version, genotype.genotype_of(being.genesis), "")


def _promotion_of(being: BaseBeing, *, user: User, environment: str) -> Promotion:
    """The promotion in force in ``environment`` of one of this being's own hashes, never another being's.

    A being may have several hashes promoted there, under several aliases: the one under its own alias
    wins; without it, more than one is ambiguous and refused (the alias or the hash says which).
    """
    promotions = list(soul_selectors.promotions_active(environment=environment, user=user).filter(soul=being.soul))
    if not promotions:
        raise AliasNotPromotedError(f"no version of being {being.soul} ({being.name!r}) is promoted to {environment}")
    own = [promotion for promotion in promotions if promotion.alias == being.name]
    if own:
        return own[0]
    if len(promotions) > 1:
        named = ", ".join(f"{promotion.alias!r} ({promotion.hash[:12]})" for promotion in promotions)
        raise TargetInvalidError(
            f"being {being.soul} has {len(promotions)} versions promoted to {environment}, none as {being.name!r}: "
            f"{named}; run the alias or the hash"
        )
    return promotions[0]


def _promoted(promotion: Promotion, *, user: User, being: BaseBeing | None = None) -> Target:
    """The promoted version, run on the being recorded with it, which must hold that hash in its own lineage.

    ``being`` is that being when the caller has it already.
    """
    if being is None:
        being = selectors.being_get(soul=promotion.soul, user=user)
    try:
        held = any(version.hash == promotion.hash for version in selectors.being_versions(being))
    except LineageBrokenError:
        held = False
    if not held:
        raise PromotionLineageError(
            f"hash {promotion.hash[:12]} promoted to {promotion.environment} as {promotion.alias!r} is not in the "
            f"lineage of being {being.soul}, recorded with it: it is not run (demote it and promote the right being)"
        )
    return _pinned(being, promotion.hash, promotion.version, dict(promotion.genotype), promotion.environment)


def _pinned(being: BaseBeing, hash: str, version: int, genome: dict[str, str], environment: str) -> Target:
    if genotype.soul_hash(genome) != hash:
        raise LineageBrokenError(f"the genotype kept for hash {hash[:12]} no longer has that hash")
    return Target(being=being, hash=hash, version=version, genotype=genome, environment=environment)


def execution_allowed(*, user_id: int | None, soul: uuid.UUID) -> bool:
    """Whether the user may run the being: ``may(user, "execute_being", being)`` in one query.

    The same rule (an active user; superuser, or the permission globally or on the being, directly or
    through a group) without loading the user: a worker holds no user object, and a fresh one costs
    Django's and guardian's permission caches four queries on every run.
    """
    if user_id is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute(execution_allowed_sql(), {"user": user_id, "soul": soul})
        row = cursor.fetchone()
    return bool(row and row[0])


def execution_allowed_sql() -> str:
    """The query of ``execution_allowed`` with ``%(user)s`` and ``%(soul)s`` placeholders, for a statement to embed."""
    return permission_sql("execute_being")


@functools.cache
def permission_sql(permission: str) -> str:
    """Whether user ``%(user)s`` holds the being permission ``permission`` (a codename) on being ``%(soul)s``.

    ``may``'s rule: an active user; superuser, or the permission globally or on the being, directly or
    through a group.
    """
    if not permission.isidentifier():
        raise ValueError(f"not a permission codename: {permission!r}")
    tables = {
        "user": AuthUser._meta.db_table,
        "member": AuthUser.groups.through._meta.db_table,
        "user_global": AuthUser.user_permissions.through._meta.db_table,
        "group_global": Group.permissions.through._meta.db_table,
        "user_grant": BeingUserObjectPermission._meta.db_table,
        "group_grant": BeingGroupObjectPermission._meta.db_table,
    }
    return """
WITH permission AS (
    SELECT permission.id FROM auth_permission permission
    JOIN django_content_type kind ON kind.id = permission.content_type_id
    WHERE kind.app_label = 'beings' AND permission.codename = '{codename}'
), member AS (SELECT group_id FROM {member} WHERE user_id = %(user)s)
SELECT EXISTS (SELECT 1 FROM {user} person WHERE person.id = %(user)s AND person.is_active AND (
    person.is_superuser
    OR EXISTS (SELECT 1 FROM {user_grant} grant_row JOIN permission ON permission.id = grant_row.permission_id
               WHERE grant_row.user_id = %(user)s AND grant_row.content_object_id = %(soul)s)
    OR EXISTS (SELECT 1 FROM {group_grant} grant_row JOIN permission ON permission.id = grant_row.permission_id
               JOIN member ON member.group_id = grant_row.group_id WHERE grant_row.content_object_id = %(soul)s)
    OR EXISTS (SELECT 1 FROM {user_global} grant_row JOIN permission ON permission.id = grant_row.permission_id
               WHERE grant_row.user_id = %(user)s)
    OR EXISTS (SELECT 1 FROM {group_global} grant_row JOIN permission ON permission.id = grant_row.permission_id
               JOIN member ON member.group_id = grant_row.group_id)
))
""".format(codename=permission, **tables)


# An execution's columns, named: the run path's prepared statements read them, and a prepared statement's columns
# may not change under a long-lived process (a migration that adds one).
EXECUTION_FIELDS = Execution._meta.concrete_fields
EXECUTION_COLUMNS = [str(field.column) for field in EXECUTION_FIELDS]
FINISHED_SQL = f"SELECT {', '.join(EXECUTION_COLUMNS)} FROM executions WHERE id = %(id)s AND status = ANY(%(finished)s)"


def execution_from_row(row: Sequence[Any], extra: Sequence[str] = ()) -> Execution:
    """The Execution of a row that starts with ``EXECUTION_COLUMNS``; the columns after them become attributes."""
    return instance_from_row(Execution, EXECUTION_FIELDS, row, extra)


def execution_finished_get(execution_id: uuid.UUID) -> Execution | None:
    """The run if it has finished (one prepared statement), else None."""
    with prepared(
        FINISHED_SQL, {"id": execution_id, "finished": [str(status) for status in Execution.FINISHED]}
    ) as cursor:
        row = cursor.fetchone()
    return None if row is None else execution_from_row(row)


def execution_fetch(execution_id: uuid.UUID | str) -> Execution:
    try:
        return Execution.objects.get(pk=execution_id)
    except (Execution.DoesNotExist, ValueError, TypeError, ValidationError):
        raise _missing(execution_id) from None


def _missing(execution_id: uuid.UUID | str) -> ExecutionNotFoundError:
    return ExecutionNotFoundError(f"no execution has id {execution_id}")


def executions_visible(*, user: User, queryset: QuerySet[Execution]) -> QuerySet[Execution]:
    """The executions of ``queryset`` that ``user`` may see: those they started and those of beings they may change.

    Superusers and holders of the global ``beings.change_basebeing`` see them all.
    """
    if not (user.is_authenticated and isinstance(user, PermissionsMixin)):
        return queryset.none()
    if user.is_superuser or user.has_perm("beings.change_basebeing"):
        return queryset
    change = Subquery(
        Permission.objects.filter(
            content_type=ContentType.objects.get_for_model(BaseBeing), codename=codename(BaseBeing, "change")
        ).values("pk")
    )
    grants = BeingUserObjectPermission.objects.filter(
        content_object_id=OuterRef("being_id"), user_id=user.pk, permission_id=change
    )
    visible = Q(actor_id=user.pk) | Q(Exists(grants))
    groups = list(user.groups.values_list("pk", flat=True))
    if groups:
        group_grants = BeingGroupObjectPermission.objects.filter(
            content_object_id=OuterRef("being_id"), group__in=groups, permission_id=change
        )
        visible |= Q(Exists(group_grants))
    return queryset.filter(visible)


def execution_get(*, id: uuid.UUID | str, user: User) -> Execution:
    """One execution ``user`` may see: 404 when there is none or it is not theirs to see (the same answer)."""
    execution = execution_fetch(id)
    if not executions_visible(user=user, queryset=Execution.objects.filter(pk=execution.pk)).exists():
        raise _missing(id)
    return execution


def execution_list(
    *,
    user: User,
    being: BaseBeing | None = None,
    status: str | None = None,
    environment: str | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> Page[Execution]:
    """A page of the executions ``user`` may see, newest first, continuing after a cursor.

    ``environment`` is one of ``LUXOS_ENVIRONMENTS`` or ``development`` (runs outside any environment).
    """
    limit = page_limit(limit)
    queryset = executions_visible(user=user, queryset=Execution.objects.all())
    if being is not None:
        queryset = queryset.filter(being=being)
    if status:
        if status not in STATUS.values:
            raise BadRequest(f"status must be one of {', '.join(STATUS.values)}", code="bad_status")
        queryset = queryset.filter(status=status)
    if environment:
        queryset = queryset.filter(
            environment="" if environment == DEVELOPMENT else soul_selectors.environment_clean(environment)
        )
    return keyset_page(queryset, field="queued_at", descending=True, after=after, limit=limit)
