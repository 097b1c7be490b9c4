"""The demo runs: every being seed_demo creates, run with its default arguments on a real worker, does what it says."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from beings import kinds
from beings.exceptions import BeingNotRunnableError
from beings.executions.queue import execution_wait
from beings.executions.selectors import RUNNABLE, target_resolve
from beings.executions.services import execution_start
from beings.models import BaseBeing, Execution

WAIT_SECONDS = 30.0


def meant_to_fail(being: BaseBeing) -> bool:
    """A demo being may show a failure, and then its description says so."""
    return "fail" in being.genesis.get("description", "").lower()


@pytest.mark.django_db(transaction=True)
def test_every_demo_being_runs_with_its_default_arguments(celery_worker, root: User) -> None:
    """Each runnable demo being (and greet as production runs it) succeeds on a worker; data beings are refused."""
    before = set(BaseBeing.objects.values_list("soul", flat=True))
    call_command("seed_demo", user="root")
    demo = list(BaseBeing.objects.exclude(soul__in=before).order_by("created_at"))
    runnable = [being for being in demo if being.kind in RUNNABLE]
    assert {being.kind for being in runnable} == {kinds.FUNCTION, kinds.CLASS}
    for being in demo:
        if being.kind not in RUNNABLE:
            with pytest.raises(BeingNotRunnableError):
                execution_start(target=target_resolve(ref=str(being.soul), user=root), actor=root)

    runs: list[tuple[BaseBeing, Execution]] = [
        (being, execution_start(target=target_resolve(ref=str(being.soul), user=root), actor=root))
        for being in runnable
    ]
    production = target_resolve(ref="greet", environment="production", user=root)
    runs.append((production.being, execution_start(target=production, actor=root)))

    results = {}
    for being, execution in runs:
        done = execution_wait(execution=execution, timeout=WAIT_SECONDS)
        label = f"{being.name} v{done.version} ({being.soul})"
        assert done.finished, f"{label} still {done.status} after {WAIT_SECONDS:g} s"
        if meant_to_fail(being):
            assert done.status == "failed", f"{label} says it shows a failure, but {done.status}"
        else:
            assert done.status == "succeeded", f"{label}: {done.error}, and its description says nothing of failing"
        results[being.name, done.version, done.environment] = done.result
    assert results == {
        ("greet", 3, ""): "Hello, world!",
        ("greet", 1, ""): "Hello, World!",  # the mutant, which tidies the name
        ("greet", 2, "production"): "Hello, world!",
        ("add", 1, ""): 5,
        ("fibonacci", 1, ""): [0, 1, 1, 2, 3, 5, 8, 13, 21, 34],
        ("Counter", 1, ""): [1, 2, 3],
    }
