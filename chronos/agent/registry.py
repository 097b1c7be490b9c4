"""The registry as tools: read a being, run it, evolve it, promote a version.

Each tool calls what the API route calls, with the same checks: a being the user may not view is
not found, a run needs ``beings.execute_being`` on it, an evolution the right to change it, a
promotion ``beings.promote_soul``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from mcp.types import CallToolResult
from pydantic import Field

from beings import evolution, selectors
from beings.executions import selectors as execution_selectors
from beings.executions import services as execution_services
from beings.executions.schemas import MAX_WAIT_SECONDS, ExecutionOut
from beings.executions.visibility import execution_shown
from beings.schemas import BeingOut, EvolutionOut
from beings.souls import services as soul_services
from beings.souls.schemas import PromotionDetailOut
from chronos.agent.acting import act
from chronos.agent.timelines import DESTRUCTIVE, READ, WRITE
from luxsite.permissions import User


def get_being(soul: Annotated[uuid.UUID, Field(description="The being's soul (a UUID).")]) -> CallToolResult:
    """A being you may view: its genesis (source, version, hash), tags, attributes, memories and energy."""

    def work(actor: User) -> dict[str, Any]:
        being = selectors.being_get(soul=soul, user=actor)
        return BeingOut.from_orm(being).model_dump(mode="json")

    return act("get_being", work)


def execute_being(
    being: Annotated[str, Field(description="What to run: a soul, an alias, or a hash (a unique prefix of 12+).")],
    args: Annotated[list[Any] | None, Field(description="Positional arguments of the entrypoint (JSON).")] = None,
    kwargs: Annotated[dict[str, Any] | None, Field(description="Keyword arguments of the entrypoint (JSON).")] = None,
    hash: Annotated[str | None, Field(description="Run this version of the being; its current one by default.")] = None,
    environment: Annotated[
        str | None, Field(description="Run the hash promoted there (e.g. production) instead of the current version.")
    ] = None,
    wait: Annotated[
        float, Field(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for the outcome; 0 answers queued.")
    ] = 10,
) -> CallToolResult:
    """Run a being in its sandbox on a worker (needs beings.execute_being on it) and wait for its outcome.

    The answer is the run: its status (queued, running, succeeded, failed…), its result or error and output.
    """

    def work(actor: User) -> dict[str, Any]:
        target = execution_selectors.target_resolve(ref=being, user=actor, environment=environment, hash=hash)
        execution = execution_services.execution_call(target=target, args=args, kwargs=kwargs, actor=actor, wait=wait)
        return ExecutionOut.from_orm(execution_shown(execution, user=actor)).model_dump(mode="json")

    return act("execute_being", work)


def evolve_being(
    soul: Annotated[uuid.UUID, Field(description="The being to evolve (a UUID).")],
    source: Annotated[str, Field(description="The new Python source of the being.")],
    reason: Annotated[str, Field(max_length=500, description="Why: kept in the lineage and memories.")] = "",
) -> CallToolResult:
    """Give a being a new source: a few added lines evolve it (same soul, next version), anything else mutates
    it into a new being linked to its parent."""

    def work(actor: User) -> dict[str, Any]:
        current = selectors.being_get(soul=soul, user=actor)
        evolved = evolution.being_evolve(being=current, source=source, reason=reason, actor=actor)
        document = evolved.as_dict()
        return EvolutionOut.model_validate(document).model_dump(mode="json")

    return act("evolve_being", work)


def promote_soul(
    hash: Annotated[str, Field(description="The version to promote: a full hash or a unique prefix of 12+.")],
    environment: Annotated[str, Field(description="One of LUXOS_ENVIRONMENTS.")] = "production",
    note: Annotated[str, Field(description="Why: kept with the promotion.")] = "",
    alias: Annotated[str | None, Field(description="Promote under this alias; the version's own by default.")] = None,
    soul: Annotated[
        str | None, Field(description="The being whose version it is, when several beings hold this hash.")
    ] = None,
    replace_owner: Annotated[
        bool, Field(description="Confirm replacing the being the alias runs with a being of other owners.")
    ] = False,
    override_reason: Annotated[
        str | None,
        Field(
            description="Promote without the evidence the environment asks for (needs beings.promote_soul_override)."
        ),
    ] = None,
) -> CallToolResult:
    """Promote a version to an environment (needs beings.promote_soul); the alias's previous hash there ends.

    Where the environment asks for evidence (successful runs, no recent failure, no open lesson, risk below
    critical), a version without it is refused with what is missing.
    """

    def work(actor: User) -> dict[str, Any]:
        promotion = soul_services.soul_promote(
            hash=hash,
            environment=environment,
            actor=actor,
            note=note,
            alias=alias,
            soul=soul,
            replace_owner=replace_owner,
            override_reason=override_reason,
        )
        return PromotionDetailOut.from_orm(promotion).model_dump(mode="json")

    return act("promote_soul", work)


TOOLS = [
    (get_being, READ),
    (execute_being, WRITE),
    (evolve_being, WRITE),
    (promote_soul, DESTRUCTIVE),
]
