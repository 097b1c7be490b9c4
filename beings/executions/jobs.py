"""The sandbox job of a queued run: the pinned genotype, the being's snapshot as ``self``, the inputs."""

from __future__ import annotations

from typing import Any

from beings import genotype, selectors
from beings.exceptions import BeingNotFoundError, BeingNotRunnableError, LineageBrokenError
from beings.executions.selectors import RUNNABLE, execution_allowed
from beings.models import BaseBeing, Execution, Promotion
from luxsite.errors import PermissionDenied


def execution_job(execution: Execution) -> dict[str, Any]:
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
            "soul": str(being.soul),
            "name": being.name,
            "version": execution.version,
            "hash": execution.hash,
            "tags": list(being.tags or []),
            "energy_level": being.energy_level or 0,
            "attributes": being.attributes,
            "self_awareness": being.self_awareness,
        },
        "attributes": being.attributes,
        "args": execution.args,
        "kwargs": execution.kwargs,
    }


def _genotype_pinned(execution: Execution, being: BaseBeing) -> dict[str, str]:
    """The genotype of the hash the run was queued with: the promotion's copy, or rebuilt from the lineage."""
    if execution.environment:
        promotion = (
            Promotion.objects.filter(
                environment=execution.environment, hash=execution.hash, action=Promotion.Action.PROMOTE
            )
            .order_by("-created_at")
            .first()
        )
        if promotion is None:
            raise LineageBrokenError(f"no promotion of {execution.hash[:12]} to {execution.environment} is recorded")
        genome = dict(promotion.genotype)
    else:
        genome = selectors.version_get(being=being, hash=execution.hash).genotype()
    if genotype.soul_hash(genome) != execution.hash:
        raise LineageBrokenError(f"the genotype rebuilt for {execution.hash[:12]} has another hash")
    return genome
