"""The sandbox job of a queued run: the pinned genotype, the being's snapshot as ``self``, the inputs.

The worker's claim reads what the job needs with the run itself (``JOB_COLUMNS``, one statement);
a run of the being's current hash needs nothing more, an older hash its lineage, an environment's
run its promotion.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from beings import genotype, selectors
from beings.exceptions import BeingNotFoundError, BeingNotRunnableError, LineageBrokenError
from beings.executions import selectors as execution_selectors
from beings.executions.selectors import RUNNABLE, execution_allowed
from beings.models import BaseBeing, Execution, Promotion
from luxsite.errors import PermissionDenied

# The key of a replay's ``limits`` that holds the ``self`` its run must see (beings.executions.replay).
REPLAY_SELF_KEY = "self"


# The columns a job needs beside the run (``job_columns``), as the claim's row names them.
JOB_NAMES = (
    "job_being_found",
    "job_genesis",
    "job_tags",
    "job_energy_level",
    "job_attributes",
    "job_self_awareness",
    "job_allowed",
)


@functools.cache
def job_columns(run: str) -> str:
    """SQL columns, beside the ``run`` row of executions (joined to its being as ``being``), that a job needs.

    Not the being's memories: the run does not see them, and they are the largest part of the row.
    The starter's permission is the rule of ``execution_allowed``, read in the same statement.
    """
    allowed = (
        execution_selectors.execution_allowed_sql()
        .replace("%(user)s", f"{run}.actor_id")
        .replace("%(soul)s", "being.soul")
    )
    expressions = (
        "being.soul IS NOT NULL",
        "being.genesis::text",
        "being.tags",
        "being.energy_level",
        "being.attributes::text",
        "being.self_awareness::text",
        f"({allowed})",
    )
    return ", ".join(f"{expression} AS {name}" for expression, name in zip(expressions, JOB_NAMES, strict=True))


def execution_job(execution: Execution) -> dict[str, Any]:
    """The sandbox job: the pinned source, the being's snapshot as ``self``, its attributes, the inputs.

    ``execution`` as the claim returns it (with the ``job_columns``) is not read again; any other
    is completed with a query.
    """
    being, allowed = _being_of(execution)
    if being is None:
        raise BeingNotFoundError(f"the being {execution.being_id} no longer exists")
    # Checked again here: a permission taken away while the run waited in the queue counts.
    if not allowed:
        raise PermissionDenied("the user who started the run may no longer execute this being")
    genome = genotype_pinned(execution, being)
    if genome.get("type") not in RUNNABLE:
        raise BeingNotRunnableError(f"a {genome.get('type')} being has no code to run")
    seen = {
        "name": being.name,
        "tags": list(being.tags or []),
        "energy_level": being.energy_level or 0,
        "attributes": being.attributes,
        "self_awareness": being.self_awareness,
    }
    kept = execution.limits.get(REPLAY_SELF_KEY) if isinstance(execution.limits, dict) else None
    if execution.replay_of_id is not None and isinstance(kept, dict):
        seen.update({key: kept[key] for key in seen if key in kept})  # a replay sees what the run it repeats saw
    return {
        "source": genome["source"],
        "kind": genome["type"],
        "entrypoint": genome.get("entrypoint") or "run",
        "class_name": None,
        "self": {
            "soul": str(being.soul),
            "name": seen["name"],
            "version": execution.version,
            "hash": execution.hash,
            "tags": seen["tags"],
            "energy_level": seen["energy_level"],
            "attributes": seen["attributes"],
            "self_awareness": seen["self_awareness"],
        },
        "attributes": seen["attributes"],
        "args": execution.args,
        "kwargs": execution.kwargs,
    }


def _being_of(execution: Execution) -> tuple[BaseBeing | None, bool]:
    """The being as the job sees it and whether the starter may run it: from the claim's columns, else read."""
    found = getattr(execution, "job_being_found", None)
    if found is None:
        being = BaseBeing.objects.defer("memories").filter(soul=execution.being_id).first()
        return being, being is not None and execution_allowed(user_id=execution.actor_id, soul=being.soul)
    if not found:
        return None, False
    columns: dict[str, Any] = execution.__dict__
    being = BaseBeing(
        soul=execution.being_id,
        genesis=json.loads(columns["job_genesis"]),
        tags=columns["job_tags"],
        energy_level=columns["job_energy_level"],
        attributes=json.loads(columns["job_attributes"]),
        self_awareness=json.loads(columns["job_self_awareness"]),
    )
    return being, bool(columns["job_allowed"])


def genotype_pinned(execution: Execution, being: BaseBeing) -> dict[str, str]:
    """The genotype of the hash the run was queued with: the promotion's copy, or rebuilt from the lineage.

    The being's current hash is its genesis' genotype as it stands (the table's constraint holds the
    hash to it); only an older one walks the lineage.
    """
    if not execution.environment and execution.hash == being.hash:
        return genotype.genotype_of(being.genesis)
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
