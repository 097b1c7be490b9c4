"""On a worker: claim a queued run, run it in the sandbox, answer its ``execution()`` and ``summon()``, record it."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
import uuid
from typing import Any

from django.contrib.auth.models import User as AuthUser
from django.db import DatabaseError, DataError, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from beings import kinds, services, validation
from beings.executions.claim import execution_claim, outcome_store
from beings.executions.fold import CANCELLED, being_fold_soon
from beings.executions.jobs import execution_job
from beings.executions.queue import run_error
from beings.executions.selectors import (
    RUNNING,
    STATUS,
    SUCCEEDED,
    execution_fetch,
    target_resolve,
)
from beings.executions.services import execution_admit, execution_create
from beings.executions.signals import execution_signal
from beings.models import (
    BaseBeing,
    ClockTimestamp,
    Execution,
)
from beings.runtime.cancel import cancel_watch_default
from beings.runtime.jobs import InvalidJob, RequestRefused, RunResult, RunStatus, SandboxLimits, SandboxUnavailable
from beings.runtime.sandbox import sandbox_default
from chronos.context import context_apply
from luxsite.errors import DomainError, PermissionDenied
from luxsite.locks import advisory_lock
from relations.models import Relationship
from relations.services import relationship_link

logger = logging.getLogger(__name__)

# A nested execution gets what its caller has left minus this, so that it times out first and the
# caller hears why; below the minimum there is no point in forking a child.
NESTED_MARGIN_SECONDS = 0.05
NESTED_MIN_SECONDS = 0.1


def execution_run(*, execution_id: uuid.UUID, worker: str, queue: str) -> Execution:
    """Run a queued execution in the sandbox and record how it went (the body of its Celery task).

    Idempotent: the row is claimed with one UPDATE, so a run that finished, or that another
    worker is running, is returned untouched. A run whose worker died is claimed again only once
    it is stale (past its wall-clock limit and the grace), and the third attempt marks it killed.
    """
    worker = worker[:200]  # as the row keeps it: a cancel is published on the channel of the row's worker
    # Before the claim: a cancel of the run, published on this worker's channel once the claim has committed,
    # must find this process listening.
    cancel_watch_default().listen(worker)
    execution = execution_claim(execution_id=execution_id, worker=worker, queue=queue)
    if execution is None:
        return execution_fetch(execution_id)
    if execution.status == RUNNING:
        return _perform(execution)
    # Out of attempts: the claim marked it killed.
    execution_signal(execution.pk, execution.status)
    being_fold_soon(execution.being_id)
    return execution


def _perform(execution: Execution, *, actor: Any = None, spent: _Spent | None = None) -> Execution:
    """Run a claimed execution in a sandbox child and record the outcome; nothing raised leaves it running.

    ``actor``, the user who started the run, is loaded only when the being calls or summons;
    ``spent`` is what the top-level run and the runs nested in it have called and summoned so far.
    """
    try:
        limits = _limits(execution.limits)
        deadline = time.monotonic() + limits.wall_seconds
        job = execution_job(execution)
        requests = _Requests(
            execution=execution, actor=actor, limits=limits, deadline=deadline, spent=spent or _Spent()
        )
        outcome = sandbox_default().run(
            job,
            limits,
            requests,
            on_output=functools.partial(_output_flush, execution.pk),
            execution_id=execution.pk,  # a cancel published for it kills the child at once
        )
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
    return RunResult(status=status, error=run_error(error_type, message))


def _finish(execution: Execution, outcome: RunResult) -> Execution:
    """Store the outcome unless the run was cancelled or reaped meanwhile: one statement, one commit."""
    status, result, error = str(outcome.status), outcome.result, outcome.error
    problem = validation.unstorable(result) if status == SUCCEEDED else None
    if problem:
        status, result, error = STATUS.FAILED, None, run_error("ResultError", f"result {problem}")
    fields = {
        "status": status,
        "result": result,
        "error": error,
        "output": outcome.output,
        "output_truncated": outcome.output_truncated,
        "layers": outcome.layers,
        "calls": outcome.calls,
        "summons": outcome.summons,
        "duration_ms": round(outcome.duration * 1000, 3),
    }
    try:
        return outcome_store(execution, fields)
    except DataError as refused:  # whatever else PostgreSQL will not store: the run still ends
        failure = run_error("ResultError", f"the outcome could not be stored: {str(refused).splitlines()[0][:300]}")
        return outcome_store(execution, {**fields, "status": STATUS.FAILED, "result": None, "error": failure})


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
                    raise RequestRefused(
                        "CallBudgetExceeded",
                        f"a run may make at most {self.limits.calls} "
                        "execution() calls, those of the runs it calls included",
                    )
                return self.call(request)
            self.spent.summons += 1
            if self.spent.summons > self.limits.summons:
                raise RequestRefused(
                    "SummonQuotaExceeded",
                    f"a run may make at most {self.limits.summons} summon() calls, those of the runs it calls included",
                )
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
        args, kwargs = execution_admit(
            target=target, args=request["args"], kwargs=request["kwargs"], actor=self.actor, permission=False
        )
        child = execution_create(
            target=target,
            args=args,
            kwargs=kwargs,
            actor=self.actor,
            parent=self.execution,
            limits={**self.execution.limits, "wall_seconds": round(left, 3)},
            permission=True,
        )
        _invokes_record(caller=self.execution.being_id, callee=target.being, actor=self.actor, child=child)
        claimed = execution_claim(execution_id=child.pk, worker=self.execution.worker, queue=self.execution.queue)
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
        genesis: dict[str, Any] = {
            "name": request["name"],
            "type": request["type"] or (kinds.FUNCTION if request["source"] is not None else kinds.DATA),
        }
        if request["source"] is not None:
            genesis["source"] = request["source"]
        data = {"genesis": genesis, "attributes": request["attributes"], "tags": request["tags"]}
        parent = self.execution
        with transaction.atomic():
            being = services.being_create(data=data, actor=self.actor)
            caller = BaseBeing.objects.filter(soul=parent.being_id).first()
            if (
                caller is not None
                and caller.pk != being.pk
                and not Relationship.objects.filter(source=caller, target=being, tags__contains=["summoned"]).exists()
            ):
                relationship_link(
                    source=caller,
                    target=being,
                    actor=self.actor,
                    data={"tags": ["summoned"], "genesis": {"type": "summoned", "execution": str(parent.pk)}},
                )
            now = timezone.now()
            Execution.objects.create(
                being=being,
                hash=being.hash,
                alias=being.name,
                version=being.version,
                environment=parent.environment,
                kwargs={"summon": {key: request[key] for key in ("name", "type", "tags")}},
                status=SUCCEEDED,
                result={"soul": str(being.soul)},
                queued_at=ClockTimestamp(),
                started_at=now,
                finished_at=now,
                folded_at=now,  # a summon is the new being's birth, not a run of its own
                duration_ms=round((time.monotonic() - started) * 1000, 3),
                worker=parent.worker,
                queue=parent.queue,
                attempts=1,
                priority=parent.priority,
                parent=parent,
                root_id=parent.root_id or parent.pk,
                depth=parent.depth + 1,
                limits={},
                actor=self.actor,
                actor_name=parent.actor_name,
            )
        return str(being.soul)


def _invokes_record(*, caller: uuid.UUID, callee: BaseBeing, actor: Any, child: Execution) -> None:
    """The caller's ``invokes`` relationship to the callee: created on the first call, then counted."""
    if caller == callee.pk:
        return  # recursion: a being may not link to itself
    # When and which run, not its inputs: they are the starter's, and the link is seen by whoever may
    # view it (the run's own page shows them to whom they belong).
    last_call = {"at": timezone.now().isoformat(), "execution": str(child.pk)}
    with transaction.atomic():
        advisory_lock(f"invokes:{caller}:{callee.pk}")  # one creation however many workers call at once
        link = Relationship.objects.filter(source_id=caller, target=callee, tags__contains=["invokes"]).first()
        if link is None:
            source = BaseBeing.objects.filter(soul=caller).first()
            if source is not None:
                relationship_link(
                    source=source,
                    target=callee,
                    actor=actor,
                    data={
                        "tags": ["invokes"],
                        "energy_level": 1,
                        "genesis": {"type": "invokes"},
                        "attributes": {"last_call": last_call},
                    },
                )
            return
        # Counted in SQL: concurrent calls add up instead of overwriting each other.
        context_apply(actor=actor, operation="relationship_invoke")
        Relationship.objects.filter(pk=link.pk).update(
            energy_level=Coalesce(F("energy_level"), Value(0)) + 1,
            attributes={**(link.attributes if isinstance(link.attributes, dict) else {}), "last_call": last_call},
        )
