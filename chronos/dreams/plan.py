"""A dream's plan: a list of steps, each an execution with its inputs and expected result, or an evolution.

``{"execute": SOUL_OR_ALIAS, "args": [...], "kwargs": {...}, "expect": RESULT}`` runs the being's code as
it stands at that point of the dream (``expect`` absent: any success counts);
``{"evolve": SOUL_OR_ALIAS, "source": "...", "reason": "...", "expect": "evolution" | "mutation"}`` gives
it a new source through the evolve service. Everything that can be checked before the dream runs is
checked here, so a bad plan is a 422 naming its step and nothing is written.
"""

from __future__ import annotations

from typing import Any, Final

from beings import validation
from beings.evolution import being_evolve_check
from beings.executions.selectors import target_resolve
from beings.executions.services import execution_admit, inputs_clean
from chronos.dreams.exceptions import DreamPlanInvalidError
from luxsite.errors import DomainError
from luxsite.permissions import User

MAX_STEPS: Final = 100
EXECUTE_KEYS: Final = frozenset({"execute", "args", "kwargs", "expect"})
EVOLVE_KEYS: Final = frozenset({"evolve", "source", "reason", "expect"})
EVOLUTION_KINDS: Final = ("evolution", "mutation")


def plan_clean(plan: Any, *, actor: User) -> list[dict[str, Any]]:
    """The plan in its stored form, or a 422 naming the first step that is wrong and why."""
    if not isinstance(plan, list) or not plan:
        raise DreamPlanInvalidError("a plan is a non-empty JSON array of steps")
    if len(plan) > MAX_STEPS:
        raise DreamPlanInvalidError(f"a plan has at most {MAX_STEPS} steps, not {len(plan)}")
    cleaned = []
    evolved: set[Any] = set()
    for number, step in enumerate(plan, start=1):
        try:
            cleaned.append(_step_clean(step, actor=actor, evolved=evolved))
        except DomainError as error:
            raise DreamPlanInvalidError(f"step {number}: {error.detail}") from None
    problem = validation.unstorable(cleaned)
    if problem:
        raise DreamPlanInvalidError(f"the plan {problem}")
    return cleaned


def _step_clean(step: Any, *, actor: User, evolved: set[Any]) -> dict[str, Any]:
    if not isinstance(step, dict):
        raise DreamPlanInvalidError("a step is a JSON object with execute or evolve")
    if ("execute" in step) == ("evolve" in step):
        raise DreamPlanInvalidError("a step has exactly one of execute and evolve")
    kind = "execute" if "execute" in step else "evolve"
    allowed = EXECUTE_KEYS if kind == "execute" else EVOLVE_KEYS
    unknown = sorted(set(step) - allowed)
    if unknown:
        raise DreamPlanInvalidError(f"unknown key(s) {', '.join(unknown)} in an {kind} step")
    ref = step[kind]
    if not isinstance(ref, str) or not ref.strip():
        raise DreamPlanInvalidError(f"{kind} names a being: its soul, alias or hash")
    target = target_resolve(user=actor, ref=ref.strip())
    if kind == "execute":
        args, kwargs = inputs_clean(args=step.get("args"), kwargs=step.get("kwargs"))
        execution_admit(target=target, args=args, kwargs=kwargs, actor=actor)
        cleaned: dict[str, Any] = {"execute": ref.strip(), "args": args, "kwargs": kwargs}
        if "expect" in step:
            cleaned["expect"] = step["expect"]
        return cleaned
    source, reason = step.get("source"), step.get("reason", "")
    if not isinstance(source, str) or not source.strip():
        raise DreamPlanInvalidError("an evolve step needs the new source as a string")
    if not isinstance(reason, str):
        raise DreamPlanInvalidError("reason is a string")
    if "expect" in step and step["expect"] not in EVOLUTION_KINDS:
        raise DreamPlanInvalidError(f"an evolve step expects {' or '.join(EVOLUTION_KINDS)}")
    if target.being.pk in evolved:
        validation.source_parse(source)  # its later source is checked against the dream's version, when it runs
    else:
        being_evolve_check(being=target.being, source=source, actor=actor)
        evolved.add(target.being.pk)
    cleaned = {"evolve": ref.strip(), "source": source, "reason": reason}
    if "expect" in step:
        cleaned["expect"] = step["expect"]
    return cleaned
