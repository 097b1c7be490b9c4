"""Executions: what to run, queueing it, running it on a worker through the sandbox, and how it went.

A door resolves a ``Target`` (a soul, alias or hash; with an environment, the hash promoted there)
and calls ``execution_start``, which checks ``beings.execute_being``, records a queued
``Execution`` and sends ``beings.tasks.execution_run`` to the being's queue (``io`` or ``cpu``)
when the transaction commits, with a broker priority taken from the being's energy.

On the worker, ``execution_run`` claims the row (a finished run is never run again), rebuilds the
pinned genotype, and hands the job to the sandbox. The worker never runs being code itself. The
being's ``execution()`` and ``summon()`` come back as requests that ``_Requests`` performs as the
user who started the run, with that user's permissions: a nested execution is a child row run
inline in the same worker (a prefork process waiting on its own queue would deadlock) with the
wall-clock time its caller has left; a summon creates a being through the services. Both are
recorded as child executions and as ``invokes``/``summoned`` relationships.

Every finished run is written to its being: a bounded ``memories`` event, run statistics in
``self_awareness`` and ``energy_level`` one up on success, one down on failure, within 0..100.

Cancelling a queued run marks it killed and the worker that later takes its message skips it.
Cancelling a running run marks it (and the nested runs under it) killed at once: its result is
discarded and it may start no further nested execution or summon, but its sandbox child runs on
until it ends or reaches its wall-clock limit, which bounds what it can still cost. Killing the
child from another host would need a signal path to every worker; terminating a Celery task
kills a whole prefork process and cannot stop a thread of the io pool.

A worker that dies mid-run leaves its row ``running``: ``executions_reap`` (beat, every minute)
puts a run still running ``LUXOS_EXECUTION_REAP_GRACE_SECONDS`` after its wall-clock limit back in
the queue once, and marks it killed the second time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission, PermissionsMixin
from django.contrib.auth.models import User as AuthUser
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import DatabaseError, DataError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Now
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from psycopg.types.json import Jsonb

from beings import genotype, kinds, registry, selectors, services, validation
from beings.exceptions import (
    AliasNotFoundError,
    AliasNotPromotedError,
    BeingNotFoundError,
    BeingNotRunnableError,
    ExecutionFinishedError,
    ExecutionInputInvalidError,
    ExecutionNotFoundError,
    LineageBrokenError,
    PromotionLineageError,
    SoulNotFoundError,
    TargetInvalidError,
)
from beings.models import BaseBeing, BeingGroupObjectPermission, BeingUserObjectPermission, Execution, Promotion
from beings.registry import ClockTimestamp
from beings.runtime.sandbox import (
    InvalidJob,
    RequestRefused,
    RunResult,
    RunStatus,
    Sandbox,
    SandboxLimits,
    SandboxUnavailable,
    sandbox_default,
)
from chronos.context import context_apply
from luxsite.errors import BadRequest, DomainError, PermissionDenied
from luxsite.pagination import Page, keyset_page
from luxsite.permissions import codename
from relations.models import Relationship
from relations.services import relationship_link

logger = logging.getLogger(__name__)

User = AbstractBaseUser | AnonymousUser

RUNNABLE = (kinds.FUNCTION, kinds.CLASS)
MAX_REF_CHARS = 200  # the longest alias; a soul or a hash is shorter
# A run is tried at most this often: once, and once more after its worker died.
MAX_ATTEMPTS = 2
ENERGY_MIN, ENERGY_MAX = 0, 100
PRIORITY_LEVELS = 10
DEVELOPMENT = "development"
# A nested execution gets what its caller has left minus this, so that it times out first and the
# caller hears why; below the minimum there is no point in forking a child.
NESTED_MARGIN_SECONDS = 0.05
NESTED_MIN_SECONDS = 0.1
# What an `invokes` relationship keeps of the last call's inputs.
LAST_CALL_BYTES = 4096
WAIT_FIRST_SECONDS, WAIT_LONGEST_SECONDS = 0.02, 0.2
REAP_BATCH = 500
STATUS = Execution.Status
SUCCEEDED, RUNNING, QUEUED, KILLED = STATUS.SUCCEEDED, STATUS.RUNNING, STATUS.QUEUED, STATUS.KILLED
CANCELLED = "Cancelled"


# --- what to run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One exact version of a being to run: its genotype pinned by hash, and the environment it runs in."""

    being: BaseBeing
    hash: str
    version: int
    genotype: dict[str, str]
    environment: str  # "" for development


def target_resolve(*, ref: str, user: User, environment: str | None = None, hash: str | None = None) -> Target:
    """The version ``ref`` (soul, alias, or hash / unique prefix of at least 12) names for ``user``.

    With ``environment`` it is the hash promoted there for the being's alias, from the promotion's
    stored genotype: production runs pinned hashes. With ``hash`` it is that version of the being.
    Otherwise it is the being's current version.
    """
    ref = str(ref).strip()
    if not ref:
        raise TargetInvalidError("name the being to run: its soul, alias or hash")
    if len(ref) > MAX_REF_CHARS:
        raise TargetInvalidError(f"no soul, alias or hash is longer than {MAX_REF_CHARS} characters")
    if environment and hash is not None:
        raise TargetInvalidError("give a hash or an environment, not both: an environment runs the hash promoted there")
    environment = registry.environment_clean(environment) if environment else ""
    soul = _uuid_or_none(ref)
    if soul is not None:
        return _target_of(selectors.being_get(soul=soul, user=user), user=user, environment=environment, hash=hash)
    if genotype.PREFIX_PATTERN.fullmatch(ref.lower()):
        try:
            version = selectors.soul_get(hash=ref, user=user)
        except SoulNotFoundError as missing:
            try:  # a hex-looking alias
                being = selectors.alias_get(alias=ref, user=user)
            except AliasNotFoundError:
                raise missing from None
            return _target_of(being, user=user, environment=environment, hash=hash)
        if hash is not None:
            raise TargetInvalidError("the hash already names one version: give no second hash")
        if environment:
            promotion = registry.promotions_active(environment=environment).filter(hash=version.hash).first()
            if promotion is None:
                raise AliasNotPromotedError(f"hash {version.hash[:12]} is not promoted to {environment}")
            return _promoted(promotion, user=user)
        return _pinned(version.holder, version.hash, version.version, version.genotype(), "")
    if environment:
        return _promoted(registry.soul_resolve(alias=ref, environment=environment), user=user)
    return _target_of(selectors.alias_get(alias=ref, user=user), user=user, environment="", hash=hash)


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _target_of(being: BaseBeing, *, user: User, environment: str, hash: str | None) -> Target:
    if environment:
        promotion = registry.soul_resolve(alias=being.name, environment=environment)
        if promotion.soul != being.soul:
            # The alias runs another being's version there: this being has nothing promoted to run.
            raise AliasNotPromotedError(
                f"no version of being {being.soul} is promoted to {environment}: "
                f"{being.name!r} runs being {promotion.soul} there"
            )
        return _promoted(promotion, user=user)
    if hash is not None:
        version = selectors.version_get(being=being, hash=hash)
        return _pinned(being, version.hash, version.version, version.genotype(), "")
    return _pinned(being, being.hash, being.version, genotype.genotype_of(being.genesis), "")


def _promoted(promotion: Promotion, *, user: User) -> Target:
    """The promoted version, run on the being recorded with it, which must hold that hash in its own lineage."""
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


# --- queueing --------------------------------------------------------------------------------------


def execution_start(
    *, target: Target, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None, actor: User
) -> Execution:
    """Record a run of ``target`` by ``actor`` (who needs ``beings.execute_being``) and queue it on commit.

    Runs nested in it (``execution()`` in being code) are recorded and run by its worker, inline.
    """
    args, kwargs = _admit(target=target, args=args, kwargs=kwargs, actor=actor)
    execution = _execution_create(
        target=target, args=args, kwargs=kwargs, actor=actor, parent=None, limits=limits_snapshot()
    )
    transaction.on_commit(_enqueuer(execution))
    return execution


def _admit(
    *, target: Target, args: list[Any] | None, kwargs: dict[str, Any] | None, actor: User
) -> tuple[list[Any], dict[str, Any]]:
    """The checks every run passes before it is recorded: permission, a runnable kind, clean inputs."""
    if not execution_allowed(user_id=actor.pk if actor.is_authenticated else None, soul=target.being.pk):
        raise PermissionDenied("you may not execute this being")
    kind = target.genotype.get("type", "")
    if kind not in RUNNABLE:
        raise BeingNotRunnableError(f"a {kind or 'typeless'} being has no code to run: only {' and '.join(RUNNABLE)}")
    return inputs_clean(args=args, kwargs=kwargs)


def execution_allowed(*, user_id: int | None, soul: uuid.UUID) -> bool:
    """Whether the user may run the being: ``may(user, "execute_being", being)`` in one query.

    The same rule (an active user; superuser, or the permission globally or on the being, directly or
    through a group) without loading the user: a worker holds no user object, and a fresh one costs
    Django's and guardian's permission caches four queries on every run.
    """
    if user_id is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute(_allowed_sql(), {"user": user_id, "soul": soul})
        row = cursor.fetchone()
    return bool(row and row[0])


@functools.cache
def _allowed_sql() -> str:
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
    WHERE kind.app_label = 'beings' AND permission.codename = 'execute_being'
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
""".format(**tables)


def inputs_clean(*, args: Any, kwargs: Any) -> tuple[list[Any], dict[str, Any]]:
    """Arguments of a run: a JSON list and a JSON object, storable, within ``LUXOS_MAX_JSON_BYTES``."""
    args = [] if args is None else args
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(args, list):
        raise ExecutionInputInvalidError("args must be a JSON array")
    if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
        raise ExecutionInputInvalidError("kwargs must be a JSON object")
    for name, value in (("args", args), ("kwargs", kwargs)):
        problem = validation.unstorable(value)
        if problem:
            raise ExecutionInputInvalidError(f"{name} {problem}")
    validation.document_check("args and kwargs", {"args": args, "kwargs": kwargs})
    return args, kwargs


def limits_snapshot() -> dict[str, Any]:
    """The sandbox limits of the settings now, as a run keeps them: its worker applies these, not its own."""
    return dataclasses.asdict(SandboxLimits.from_settings(settings))


def priority_of(energy: int | None, *, backlog: int = 0) -> int:
    """A being's energy as a run priority, 0..9, higher first: ten energy points a step.

    Each run the starter already has waiting takes a step off, so a stream of one user's runs sinks
    to the common priority 0 and waits its turn there: energy orders a few runs, it cannot starve others.
    """
    return min(PRIORITY_LEVELS - 1, max(0, (energy or 0) // 10 - backlog))


def _backlog(actor: User) -> int:
    """How many top-level runs ``actor`` has queued, counted up to the number of priority levels."""
    if not actor.is_authenticated:
        return 0
    waiting = Execution.objects.filter(actor_id=actor.pk, status=QUEUED, parent__isnull=True)
    return waiting[:PRIORITY_LEVELS].count()


def broker_priority(priority: int) -> int:
    """The Redis transport pops priority 0 first (``priority_steps`` in settings): the scale turned over."""
    return PRIORITY_LEVELS - 1 - priority


def _execution_create(
    *, target: Target, args: list[Any], kwargs: dict[str, Any], actor: User, parent: Execution | None,
    limits: dict[str, Any],
) -> Execution:
    workload = target.genotype.get("workload", genotype.CPU)
    return Execution.objects.create(
        being=target.being,
        hash=target.hash,
        alias=target.being.name,
        version=target.version,
        environment=target.environment,
        args=args,
        kwargs=kwargs,
        status=QUEUED,
        queue=workload if workload in genotype.WORKLOADS else genotype.CPU,
        task_id="" if parent is not None else str(uuid.uuid4()),
        priority=priority_of(target.being.energy_level, backlog=_backlog(actor) if parent is None else 0),
        parent=parent,
        root_id=(parent.root_id or parent.pk) if parent is not None else None,
        depth=parent.depth + 1 if parent is not None else 0,
        limits=limits,
        # The clock, not the transaction's start: runs queued in one transaction keep their order.
        queued_at=ClockTimestamp(),
        actor_id=actor.pk if actor.is_authenticated else None,
        actor_name=str(getattr(actor, "username", "")),
    )


def _enqueuer(execution: Execution) -> Callable[[], None]:
    """The on-commit callback that sends the task: ids and plain values only, never the instance."""
    execution_id, queue, task_id = str(execution.pk), execution.queue, execution.task_id
    priority = broker_priority(execution.priority)

    def enqueue() -> None:
        from beings.tasks import execution_run_task  # the tasks module imports this one

        try:
            execution_run_task.apply_async(args=(execution_id,), queue=queue, priority=priority, task_id=task_id)
        except BrokerError as error:
            # Nothing will ever take the run: say so rather than leave it queued.
            logger.error("execution %s could not be queued: %s", execution_id, error)
            Execution.objects.filter(pk=execution_id, status=QUEUED).update(
                status=STATUS.REJECTED, finished_at=Now(),
                error=_error("BrokerUnavailable", f"the run could not be queued: {type(error).__name__}"),
            )

    return enqueue


def execution_wait(*, execution: Execution, timeout: float) -> Execution:
    """``execution`` read again once it has finished, or as it is when ``timeout`` seconds have passed.

    The task's result (published by Redis) wakes the wait the moment a worker is done; the row is
    then polled, 20 ms growing to 200 ms apart, for what ends a run without its task (a cancel).
    """
    deadline = time.monotonic() + max(0.0, timeout)
    execution_id = execution.pk
    if execution.finished or timeout <= 0:
        return _fetch(execution_id)
    if execution.task_id and execution.depth == 0:
        from celery.exceptions import TimeoutError as ResultTimeout

        from luxsite.celery import app

        with contextlib.suppress(ResultTimeout):
            app.AsyncResult(execution.task_id).get(timeout=timeout, propagate=False, disable_sync_subtasks=False)
    pause = WAIT_FIRST_SECONDS
    while True:
        execution = _fetch(execution_id)
        left = deadline - time.monotonic()
        if execution.finished or left <= 0:
            return execution
        time.sleep(min(pause, left))
        pause = min(pause * 2, WAIT_LONGEST_SECONDS)


def _fetch(execution_id: uuid.UUID | str) -> Execution:
    try:
        return Execution.objects.get(pk=execution_id)
    except (Execution.DoesNotExist, ValueError, TypeError, ValidationError):
        raise _missing(execution_id) from None


def _missing(execution_id: uuid.UUID | str) -> ExecutionNotFoundError:
    return ExecutionNotFoundError(f"no execution has id {execution_id}")


# --- reading ---------------------------------------------------------------------------------------


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
    execution = _fetch(id)
    if not executions_visible(user=user, queryset=Execution.objects.filter(pk=execution.pk)).exists():
        raise _missing(id)
    return execution


def execution_list(
    *, user: User, being: BaseBeing | None = None, status: str | None = None, environment: str | None = None,
    after: str | None = None, limit: int | None = None,
) -> Page[Execution]:
    """A page of the executions ``user`` may see, newest first, continuing after a cursor.

    ``environment`` is one of ``LUXOS_ENVIRONMENTS`` or ``development`` (runs outside any environment).
    """
    limit = limit or settings.LUXOS_PAGE_SIZE
    if not 1 <= limit <= settings.LUXOS_MAX_PAGE_SIZE:
        raise BadRequest(f"limit must be between 1 and {settings.LUXOS_MAX_PAGE_SIZE}", code="bad_limit")
    queryset = executions_visible(user=user, queryset=Execution.objects.all())
    if being is not None:
        queryset = queryset.filter(being=being)
    if status:
        if status not in STATUS.values:
            raise BadRequest(f"status must be one of {', '.join(STATUS.values)}", code="bad_status")
        queryset = queryset.filter(status=status)
    if environment:
        queryset = queryset.filter(
            environment="" if environment == DEVELOPMENT else registry.environment_clean(environment)
        )
    return keyset_page(queryset, field="queued_at", descending=True, after=after, limit=limit)


# --- cancelling ------------------------------------------------------------------------------------


def execution_cancel(*, execution: Execution, actor: User) -> Execution:
    """Stop a queued or running execution and the nested runs under it; 409 when it has finished.

    A queued run will not start. A running one is marked killed at once: its result will be
    discarded and it may make no further call or summon, but its sandbox child keeps running
    until it ends or reaches its wall-clock limit (see the module's docstring).
    """
    execution = execution_get(id=execution.pk, user=actor)
    error = _error(CANCELLED, f"cancelled by {getattr(actor, 'username', '') or 'an anonymous user'}")
    with transaction.atomic():
        row = Execution.objects.select_for_update().get(pk=execution.pk)
        if row.finished:
            raise ExecutionFinishedError(f"the execution has already finished: it {_ended(row.status)}")
        cancelled = [row.pk]
        frontier = [row.pk]
        while frontier:  # nested runs, at most LUXOS_SANDBOX_DEPTH levels
            frontier = list(
                Execution.objects.select_for_update()
                .filter(parent_id__in=frontier, status__in=(QUEUED, RUNNING))
                .values_list("pk", flat=True)
            )
            cancelled += frontier
        now = timezone.now()
        Execution.objects.filter(pk__in=cancelled).update(status=KILLED, error=error, finished_at=now)
        if row.started_at is not None:
            Execution.objects.filter(pk=row.pk).update(duration_ms=(now - row.started_at).total_seconds() * 1000)
    for stopped in Execution.objects.filter(pk__in=cancelled):
        _run_record(stopped, actor=actor)
    return _fetch(execution.pk)


def _ended(status: str) -> str:
    return {"succeeded": "succeeded", "failed": "failed", "timeout": "timed out", "killed": "was killed",
            "rejected": "was rejected"}.get(status, status)


# --- running, on a worker --------------------------------------------------------------------------


def execution_run(*, execution_id: uuid.UUID, worker: str, queue: str) -> Execution:
    """Run a queued execution in the sandbox and record how it went (the body of its Celery task).

    Idempotent: the row is claimed with one UPDATE, so a run that finished, or that another
    worker is running, is returned untouched. A run whose worker died is claimed again only once
    it is stale (past its wall-clock limit and the grace), and the third attempt marks it killed.
    """
    execution = _claim(execution_id=execution_id, worker=worker, queue=queue)
    if execution is None:
        return _fetch(execution_id)
    if execution.status == RUNNING:
        return _perform(execution)
    _run_record(execution)
    return execution


CLAIM_SQL = """
UPDATE executions SET
    status = CASE WHEN attempts >= %(max)s THEN 'killed' ELSE 'running' END,
    error = CASE WHEN attempts >= %(max)s THEN %(error)s::jsonb ELSE error END,
    finished_at = CASE WHEN attempts >= %(max)s THEN now() ELSE finished_at END,
    started_at = CASE WHEN attempts >= %(max)s THEN started_at ELSE now() END,
    attempts = CASE WHEN attempts >= %(max)s THEN attempts ELSE attempts + 1 END,
    worker = %(worker)s,
    queue = %(queue)s
WHERE id = %(id)s AND (
    status = 'queued'
    OR (status = 'running' AND started_at < now() - make_interval(
        secs => coalesce((limits ->> 'wall_seconds')::float8, %(wall)s) + %(grace)s))
)
RETURNING *
"""


def _claim(*, execution_id: uuid.UUID, worker: str, queue: str) -> Execution | None:
    """Take the run for this worker: the row, now running (or killed, out of attempts); None when it is not ours."""
    error = _error("WorkerLost", f"its worker stopped during each of {MAX_ATTEMPTS} attempts")
    claimed = Execution.objects.raw(CLAIM_SQL, {
        "max": MAX_ATTEMPTS, "error": json.dumps(error), "worker": worker[:200], "queue": queue[:8],
        "id": execution_id, "wall": settings.LUXOS_SANDBOX_WALL_SECONDS,
        "grace": settings.LUXOS_EXECUTION_REAP_GRACE_SECONDS,
    })
    return next(iter(claimed), None)


def _perform(execution: Execution, *, actor: Any = None, spent: _Spent | None = None) -> Execution:
    """Run a claimed execution in a sandbox child and record the outcome; nothing raised leaves it running.

    ``actor``, the user who started the run, is loaded only when the being calls or summons;
    ``spent`` is what the top-level run and the runs nested in it have called and summoned so far.
    """
    try:
        limits = _limits(execution.limits)
        deadline = time.monotonic() + limits.wall_seconds
        job = _job(execution)
        requests = _Requests(execution=execution, actor=actor, limits=limits, deadline=deadline,
                             spent=spent or _Spent())
        outcome = sandbox_default().run(job, limits, requests, on_output=functools.partial(_output_flush, execution.pk))
    except DomainError as refusal:
        outcome = _outcome(RunStatus.REJECTED, type(refusal).__name__, refusal.detail)
    except InvalidJob as invalid:
        outcome = _outcome(RunStatus.FAILED, "InvalidJob", str(invalid))
    except SandboxUnavailable as unavailable:
        outcome = _outcome(RunStatus.REJECTED, "SandboxUnavailable", str(unavailable))
    except Exception:  # the one place that keeps "no run stays running": a bug or a lost database
        logger.exception("execution %s failed in the worker", execution.pk)
        outcome = _outcome(RunStatus.FAILED, "WorkerError", "the worker failed while running it; see its log")
    return _finish(execution, outcome)


def _output_flush(execution_id: uuid.UUID, output: str) -> None:
    """The output printed so far, on the running run's row, for its page to show before the run ends.

    The sandbox calls this at most every ``OUTPUT_EVERY_SECONDS``; the final write stores the whole
    output again. A run no longer running (cancelled, reaped) keeps what was written when it ended.
    """
    try:
        Execution.objects.filter(pk=execution_id, status=RUNNING).update(output=output)
    except DatabaseError:  # the output shows at the end instead; the run itself goes on
        logger.warning("execution %s: its output so far could not be stored", execution_id, exc_info=True)


def _limits(snapshot: dict[str, Any]) -> SandboxLimits:
    known = {field.name for field in dataclasses.fields(SandboxLimits)}
    return SandboxLimits(**{name: value for name, value in snapshot.items() if name in known})


def _outcome(status: RunStatus, error_type: str, message: str) -> RunResult:
    return RunResult(status=status, error=_error(error_type, message))


def _error(error_type: str, message: str) -> dict[str, str]:
    return {"type": error_type, "message": message, "traceback": ""}


def _job(execution: Execution) -> dict[str, Any]:
    """The sandbox job: the pinned source, the being's snapshot as ``self``, its attributes, the inputs."""
    # Not its memories: the run does not see them, and they are the largest part of the row.
    being = BaseBeing.objects.defer("memories").filter(soul=execution.being_id).first()
    if being is None:
        raise BeingNotFoundError(f"the being {execution.being_id} no longer exists")
    # Checked again here: a permission taken away while the run waited in the queue counts.
    if not execution_allowed(user_id=execution.actor_id, soul=being.soul):
        raise PermissionDenied("the user who started the run may no longer execute this being")
    genome = _genotype_pinned(execution, being)
    if genome.get("type") not in RUNNABLE:
        raise BeingNotRunnableError(f"a {genome.get('type')} being has no code to run")
    return {
        "source": genome["source"],
        "kind": genome["type"],
        "entrypoint": genome.get("entrypoint") or "run",
        "class_name": None,
        "self": {
            "soul": str(being.soul), "name": being.name, "version": execution.version, "hash": execution.hash,
            "tags": list(being.tags or []), "energy_level": being.energy_level or 0,
            "attributes": being.attributes, "self_awareness": being.self_awareness,
        },
        "attributes": being.attributes,
        "args": execution.args,
        "kwargs": execution.kwargs,
    }


def _genotype_pinned(execution: Execution, being: BaseBeing) -> dict[str, str]:
    """The genotype of the hash the run was queued with: the promotion's copy, or rebuilt from the lineage."""
    if execution.environment:
        promotion = (
            Promotion.objects.filter(environment=execution.environment, hash=execution.hash,
                                     action=Promotion.Action.PROMOTE)
            .order_by("-created_at").first()
        )
        if promotion is None:
            raise LineageBrokenError(f"no promotion of {execution.hash[:12]} to {execution.environment} is recorded")
        genome = dict(promotion.genotype)
    else:
        genome = selectors.version_get(being=being, hash=execution.hash).genotype()
    if genotype.soul_hash(genome) != execution.hash:
        raise LineageBrokenError(f"the genotype rebuilt for {execution.hash[:12]} has another hash")
    return genome


FINISH_SQL = """
UPDATE executions SET status = %(status)s, result = %(result)s, error = %(error)s, output = %(output)s,
    output_truncated = %(output_truncated)s, layers = %(layers)s, calls = %(calls)s, summons = %(summons)s,
    finished_at = clock_timestamp(), duration_ms = %(duration_ms)s
WHERE id = %(id)s AND status = 'running'
RETURNING finished_at
"""


def _finish(execution: Execution, outcome: RunResult) -> Execution:
    """Store the outcome unless the run was cancelled or reaped meanwhile, and write it to the being: one commit."""
    status, result, error = str(outcome.status), outcome.result, outcome.error
    problem = validation.unstorable(result) if status == SUCCEEDED else None
    if problem:
        status, result, error = STATUS.FAILED, None, _error("ResultError", f"result {problem}")
    fields = {
        "status": status, "result": result, "error": error, "output": outcome.output,
        "output_truncated": outcome.output_truncated, "layers": outcome.layers, "calls": outcome.calls,
        "summons": outcome.summons, "duration_ms": round(outcome.duration * 1000, 3),
    }
    try:
        return _outcome_store(execution, fields)
    except DataError as refused:  # whatever else PostgreSQL will not store: the run still ends
        failure = _error("ResultError", f"the outcome could not be stored: {str(refused).splitlines()[0][:300]}")
        return _outcome_store(execution, {**fields, "status": STATUS.FAILED, "result": None, "error": failure})


def _outcome_store(execution: Execution, fields: dict[str, Any]) -> Execution:
    """One transaction: the outcome on the run (the row comes back with it) and the run in its being."""
    params = {**fields, "id": execution.pk, "layers": Jsonb(fields["layers"]),
              "result": None if fields["result"] is None else Jsonb(fields["result"]),
              "error": None if fields["error"] is None else Jsonb(fields["error"])}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(FINISH_SQL, params)
        row = cursor.fetchone()
        if row is None:  # cancelled or reaped meanwhile: what they wrote stands
            return _fetch(execution.pk)
        for name, value in fields.items():
            setattr(execution, name, value)
        execution.finished_at = row[0]
        _run_record(execution)
    return execution


# --- execution() and summon() from being code ------------------------------------------------------


@dataclasses.dataclass
class _Spent:
    """The calls and summons of a top-level run and of every run nested in it: the budget is the whole run's."""

    calls: int = 0
    summons: int = 0


class _Requests:
    """The worker's answers to one run's ``execution()`` and ``summon()``, as the user who started it."""

    def __init__(
        self, *, execution: Execution, actor: Any, limits: SandboxLimits, deadline: float, spent: _Spent
    ) -> None:
        self.execution = execution
        self._actor = actor
        self.limits = limits
        self.deadline = deadline
        self.spent = spent

    @property
    def actor(self) -> Any:
        if self._actor is None:
            starter = self.execution.actor_id
            self._actor = None if starter is None else AuthUser.objects.filter(pk=starter, is_active=True).first()
            if self._actor is None:
                raise PermissionDenied("the user who started the run no longer exists")
        return self._actor

    def __call__(self, request: dict[str, Any]) -> Any:
        try:
            if not Execution.objects.filter(pk=self.execution.pk, status=RUNNING).exists():
                raise RequestRefused(CANCELLED, "the run was cancelled: it may not call or summon")
            if request["op"] == "execution":
                self.spent.calls += 1
                if self.spent.calls > self.limits.calls:
                    raise RequestRefused("CallBudgetExceeded", f"a run may make at most {self.limits.calls} "
                                         "execution() calls, those of the runs it calls included")
                return self.call(request)
            self.spent.summons += 1
            if self.spent.summons > self.limits.summons:
                raise RequestRefused("SummonQuotaExceeded", f"a run may make at most {self.limits.summons} "
                                     "summon() calls, those of the runs it calls included")
            return self.summon(request)
        except DomainError as error:
            raise RequestRefused(error.code, error.detail) from None

    def call(self, request: dict[str, Any]) -> Any:
        depth = self.execution.depth + 1
        if depth > self.limits.depth:
            raise RequestRefused("CallDepthExceeded", f"call depth {depth} exceeds the limit of {self.limits.depth}")
        left = self.deadline - time.monotonic() - NESTED_MARGIN_SECONDS
        if left < NESTED_MIN_SECONDS:
            raise RequestRefused("TimeoutError", "no wall-clock time is left for a nested execution")
        target = target_resolve(ref=request["target"], user=self.actor, environment=self.execution.environment or None)
        args, kwargs = _admit(target=target, args=request["args"], kwargs=request["kwargs"], actor=self.actor)
        child = _execution_create(
            target=target, args=args, kwargs=kwargs, actor=self.actor, parent=self.execution,
            limits={**self.execution.limits, "wall_seconds": round(left, 3)},
        )
        _invokes_record(caller=self.execution.being_id, callee=target.being, actor=self.actor, child=child)
        claimed = _claim(execution_id=child.pk, worker=self.execution.worker, queue=self.execution.queue)
        if claimed is None or claimed.status != RUNNING:
            raise RequestRefused(CANCELLED, "the nested execution was cancelled before it started")
        child = _perform(claimed, actor=self.actor, spent=self.spent)
        if child.status == SUCCEEDED:
            return child.result
        error = child.error or {}
        error_type, message = str(error.get("type", child.status)), str(error.get("message", ""))
        if error_type == "BeingCallError" and ": " in message:
            # A refusal the callee did not catch: pass on its own type, not one more layer of wrapping.
            error_type, message = message.split(": ", 1)
        raise RequestRefused(error_type, message or f"the nested execution ended {child.status}")

    def summon(self, request: dict[str, Any]) -> str:
        problem = validation.unstorable(request)
        if problem:
            raise RequestRefused("SummonInvalid", f"the summon {problem}")
        started = time.monotonic()
        genesis: dict[str, Any] = {"name": request["name"], "type": request["type"] or (
            kinds.FUNCTION if request["source"] is not None else kinds.DATA)}
        if request["source"] is not None:
            genesis["source"] = request["source"]
        data = {"genesis": genesis, "attributes": request["attributes"], "tags": request["tags"]}
        parent = self.execution
        with transaction.atomic():
            being = services.being_create(data=data, actor=self.actor)
            caller = BaseBeing.objects.filter(soul=parent.being_id).first()
            if caller is not None and caller.pk != being.pk and not Relationship.objects.filter(
                source=caller, target=being, tags__contains=["summoned"]
            ).exists():
                relationship_link(
                    source=caller, target=being, actor=self.actor,
                    data={"tags": ["summoned"], "genesis": {"type": "summoned", "execution": str(parent.pk)}},
                )
            now = timezone.now()
            Execution.objects.create(
                being=being, hash=being.hash, alias=being.name, version=being.version,
                environment=parent.environment,
                kwargs={"summon": {key: request[key] for key in ("name", "type", "tags")}},
                status=SUCCEEDED, result={"soul": str(being.soul)}, queued_at=ClockTimestamp(), started_at=now,
                finished_at=now,
                duration_ms=round((time.monotonic() - started) * 1000, 3), worker=parent.worker, queue=parent.queue,
                attempts=1, priority=parent.priority, parent=parent, root_id=parent.root_id or parent.pk,
                depth=parent.depth + 1, limits={}, actor=self.actor, actor_name=parent.actor_name,
            )
        return str(being.soul)


def _invokes_record(*, caller: uuid.UUID, callee: BaseBeing, actor: Any, child: Execution) -> None:
    """The caller's ``invokes`` relationship to the callee: created on the first call, then counted."""
    if caller == callee.pk:
        return  # recursion: a being may not link to itself
    inputs = {"args": child.args, "kwargs": child.kwargs}
    if validation.document_size(inputs) > LAST_CALL_BYTES:
        inputs = {"omitted": f"the inputs exceed {LAST_CALL_BYTES} bytes"}
    last_call = {**inputs, "at": timezone.now().isoformat(), "execution": str(child.pk)}
    with transaction.atomic():
        with connection.cursor() as cursor:  # one creation however many workers call at once
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"invokes:{caller}:{callee.pk}"])
        link = Relationship.objects.filter(source_id=caller, target=callee, tags__contains=["invokes"]).first()
        if link is None:
            source = BaseBeing.objects.filter(soul=caller).first()
            if source is not None:
                relationship_link(
                    source=source, target=callee, actor=actor,
                    data={"tags": ["invokes"], "energy_level": 1, "genesis": {"type": "invokes"},
                          "attributes": {"last_call": last_call}},
                )
            return
        # Counted in SQL: concurrent calls add up instead of overwriting each other.
        context_apply(actor=actor, operation="relationship_invoke")
        Relationship.objects.filter(pk=link.pk).update(
            energy_level=Coalesce(F("energy_level"), Value(0)) + 1,
            attributes={**(link.attributes if isinstance(link.attributes, dict) else {}), "last_call": last_call},
        )


# --- what a run leaves in its being ----------------------------------------------------------------


@dataclass(frozen=True)
class _Starter:
    """Who started a run, as the change log names them, without loading the user."""

    pk: int | None
    username: str


def _run_record(execution: Execution, *, actor: Any = None) -> None:
    """Write a finished run to its being: a memories event, run statistics, energy; one locked update.

    Energy rises by one on success and falls by one on failure, never beyond 0..100 (a value set
    outside by hand is left where it is); a run cancelled by a user or refused by the host
    (rejected) leaves it alone: neither says anything about the being. The change is made in the
    name of ``actor``, by default the user who started the run.
    """
    actor = actor or _Starter(pk=execution.actor_id, username=execution.actor_name)
    with transaction.atomic(savepoint=False):
        # Not the memories: appended in SQL below, they are never decoded here, however many events they hold.
        being = (
            BaseBeing.objects.select_for_update().only("soul", "self_awareness", "energy_level")
            .filter(soul=execution.being_id).first()
        )
        if being is None:
            return
        error = execution.error or {}
        succeeded = execution.status == SUCCEEDED
        neutral = execution.status == STATUS.REJECTED or error.get("type") == CANCELLED
        at = (execution.finished_at or timezone.now()).isoformat()
        awareness = dict(being.self_awareness) if isinstance(being.self_awareness, dict) else {}
        runs = _count(awareness, "runs") + 1
        successes = _count(awareness, "successes") + succeeded
        failures = _count(awareness, "failures") + (not succeeded)
        mean = awareness.get("mean_duration_ms")
        mean = float(mean) if isinstance(mean, int | float) else None
        if execution.duration_ms is not None:
            mean = execution.duration_ms if mean is None else mean + (execution.duration_ms - mean) / runs
        awareness.update(
            runs=runs, successes=successes, failures=failures, success_rate=round(successes / runs, 4),
            mean_duration_ms=None if mean is None else round(mean, 3), last_run_at=at,
        )
        if not succeeded:
            awareness["last_error"] = {"type": error.get("type", execution.status), "message": error.get("message", ""),
                                       "execution": str(execution.pk), "at": at}
        # Small: every run rewrites the memories, and the change log keeps them before and after.
        event: dict[str, Any] = {"event": "run", "at": at, "execution": str(execution.pk), "status": execution.status,
                                 "version": execution.version, "duration_ms": execution.duration_ms}
        if execution.environment:
            event["environment"] = execution.environment
        if not succeeded:
            event["error"] = error.get("type", execution.status)
        energy = being.energy_level or 0
        if succeeded and energy < ENERGY_MAX:
            energy += 1
        elif not succeeded and not neutral and energy > ENERGY_MIN:
            energy -= 1
        context_apply(actor=actor, operation="being_run")
        params: dict[str, Any] = {"soul": being.soul, "event": Jsonb([event]), "awareness": Jsonb(awareness),
                                  "energy": energy, "limit": Jsonb({"n": max(0, settings.LUXOS_MEMORY_LIMIT)})}
        with connection.cursor() as cursor:
            cursor.execute(RECORD_SQL, params)


def _memories_tail(events: str) -> str:
    """SQL for ``events`` (a jsonb array) with the run's event appended, the newest ``limit`` kept.

    A JSON path slice reads the array once; a subquery over its elements would detoast it for each.
    """
    return f"jsonb_path_query_array({events} || %(event)s, 'lax $[last - $n + 1 to last]', %(limit)s)"


# services.memories_append's rule, in SQL: memories kept as an object take the event under "events".
RECORD_SQL = f"""
UPDATE base_beings SET
    memories = CASE
        WHEN jsonb_typeof(memories) = 'object' THEN jsonb_set(memories, '{{events}}', {_memories_tail(
            "(CASE WHEN jsonb_typeof(memories -> 'events') = 'array' THEN memories -> 'events' ELSE '[]'::jsonb END)")})
        ELSE {_memories_tail("(CASE WHEN jsonb_typeof(memories) = 'array' THEN memories ELSE '[]'::jsonb END)")}
    END,
    self_awareness = %(awareness)s,
    energy_level = %(energy)s
WHERE soul = %(soul)s
"""


def _count(awareness: dict[str, Any], key: str) -> int:
    value = awareness.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


# --- the reaper ------------------------------------------------------------------------------------


REAP_SQL = """
SELECT id FROM executions
WHERE (status = 'running' AND started_at < now() - make_interval(
           secs => coalesce((limits ->> 'wall_seconds')::float8, %(wall)s) + %(grace)s))
   OR (status = 'queued' AND depth > 0 AND queued_at < now() - make_interval(
           secs => coalesce((limits ->> 'wall_seconds')::float8, %(wall)s) + %(grace)s))
ORDER BY queued_at
LIMIT %(batch)s
"""


def executions_reap() -> int:
    """Runs whose worker died: a top-level run goes back to its queue once, then is killed; nested ones are killed.

    A run counts as dead when it is still running ``LUXOS_EXECUTION_REAP_GRACE_SECONDS`` after its
    wall-clock limit, which a live worker never lets happen. Returns how many runs it reaped.
    """
    with connection.cursor() as cursor:
        cursor.execute(REAP_SQL, {"wall": settings.LUXOS_SANDBOX_WALL_SECONDS,
                                  "grace": settings.LUXOS_EXECUTION_REAP_GRACE_SECONDS, "batch": REAP_BATCH})
        stale = [row[0] for row in cursor.fetchall()]
    return sum(_reap(execution_id) for execution_id in stale)


def _reap(execution_id: uuid.UUID) -> bool:
    with transaction.atomic():
        # Re-checked under the lock: the run may have finished since the scan.
        row = Execution.objects.select_for_update(skip_locked=True).filter(
            pk=execution_id, status__in=(QUEUED, RUNNING)
        ).first()
        if row is None:
            return False
        if row.status == RUNNING and row.depth == 0 and row.attempts < MAX_ATTEMPTS:
            row.status, row.started_at, row.worker, row.task_id = QUEUED, None, "", str(uuid.uuid4())
            row.save(update_fields=["status", "started_at", "worker", "task_id"])
            transaction.on_commit(_enqueuer(row))
            return True
        where = f" on {row.worker}" if row.worker else ""
        message = (f"its worker{where} stopped during attempt {row.attempts} of {MAX_ATTEMPTS}" if row.depth == 0
                   else f"its worker{where} stopped while it ran nested in {row.parent_id}")
        lost = _error("WorkerLost", message)
        Execution.objects.filter(pk=row.pk).update(status=KILLED, finished_at=Now(), error=lost)
    _run_record(_fetch(execution_id))
    return True


# --- the health of the sandbox ---------------------------------------------------------------------


_layers: dict[str, dict[str, Any]] | None = None
_layers_lock = threading.Lock()


def sandbox_layers() -> dict[str, dict[str, Any]]:
    """Layer -> {in_force, detail} on this host, proven once per process by a self-test child.

    A sandbox of its own, closed afterwards: a web process that reports health keeps no zygote.
    """
    global _layers
    with _layers_lock:
        if _layers is None:
            sandbox = Sandbox()
            try:
                _layers = sandbox.layers_report()
            finally:
                sandbox.close()
        return _layers
