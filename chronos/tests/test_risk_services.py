"""Risk of an operation: each reason weighed from LuxOS data, the levels, the safety checkpoint before a risky one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from beings.models import BaseBeing, Execution
from beings.services import being_delete, being_update, beings_import
from beings.souls.services import soul_promote
from chronos.lessons.services import lesson_add
from chronos.models import Checkpoint
from chronos.points import timeline_resolve
from chronos.risk.exceptions import RiskOperationUnknownError, RiskTargetInvalidError
from chronos.risk.levels import level_of
from chronos.risk.services import Target, risk_assess, safety_guard
from chronos.services import checkpoint_create, timeline_create, timeline_switch
from relations.models import Relationship
from relations.services import relationship_delete

BeingMaker = Callable[..., BaseBeing]
LinkMaker = Callable[..., Relationship]
SOURCE = "def run():\n    a = 1\n    b = 2\n    c = 3\n    return a + b + c\n"


def reasons(risk: Any) -> dict[str, Any]:
    return {reason.name: reason for reason in risk.reasons}


def runs_record(being: BaseBeing, *statuses: str, age: timedelta = timedelta(0)) -> None:
    """Runs of ``being`` as the worker leaves them: finished, with a status, queued ``age`` ago."""
    now = timezone.now()
    for status in statuses:
        Execution.objects.create(
            being=being, hash=being.hash, alias=being.name, status=status, queued_at=now - age, finished_at=now - age
        )


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0, "low"),
        (24, "low"),
        (25, "medium"),
        (49, "medium"),
        (50, "high"),
        (79, "high"),
        (80, "critical"),
        (100, "critical"),
    ],
)
def test_levels_follow_the_documented_thresholds(score: int, level: str) -> None:
    """Scores fall in low < 25 ≤ medium < 50 ≤ high < 80 ≤ critical."""
    assert level_of(score) == level


@pytest.mark.django_db
def test_reading_is_low_and_weighs_nothing_else(root: User, make_being: BeingMaker) -> None:
    """A read-only operation is low, whatever the being: one reason, the operation, weighing 0."""
    risk = risk_assess(operation="read", target=make_being("quiet"), actor=root)
    assert (risk.level, risk.score, [r.name for r in risk.reasons]) == ("low", 0, ["operation"])


@pytest.mark.django_db
def test_the_operation_kind_sets_the_base(root: User, make_being: BeingMaker) -> None:
    """On a quiet being an update is low and a delete is high: the kind alone decides."""
    being = make_being("quiet")
    update = risk_assess(operation="update", target=being, actor=root)
    delete = risk_assess(operation="delete", target=being, actor=root)
    assert (update.level, reasons(update)["operation"].weight) == ("low", 15)
    assert (delete.level, reasons(delete)["operation"].weight) == ("high", 50)
    assert delete.as_dict()["reasons"][0] == {
        "name": "operation",
        "weight": 50,
        "detail": "delete: deletes a being",
    }


@pytest.mark.django_db
def test_blast_radius_counts_beings_reaching_the_target_recursively(
    root: User, make_being: BeingMaker, make_link: LinkMaker
) -> None:
    """c invokes b invokes a, d reads c: three beings reach a, up to three links away; a reaches nobody's b."""
    a, b, c, d = (make_being(name) for name in "abcd")
    make_link(b, a, tags=["invokes"])
    make_link(c, b, tags=["invokes"])
    make_link(d, c, tags=["reads"])
    make_link(a, d, tags=["reads"])  # a cycle: a itself is not counted
    radius = reasons(risk_assess(operation="evolve", target=a, actor=root))["blast_radius"]
    assert radius.detail == "3 being(s) reach the target through links, up to 4 step(s) away"
    assert radius.weight == 8  # 4·log2(1+3)
    alone = reasons(risk_assess(operation="evolve", target=make_being("alone"), actor=root))["blast_radius"]
    assert (alone.weight, alone.detail) == (0, "no being reaches the target through links")


@pytest.mark.django_db
def test_unlinking_weighs_who_reaches_the_links_source(
    root: User, make_being: BeingMaker, make_link: LinkMaker
) -> None:
    """Removing b → a hurts b and every being that reaches b."""
    a, b, c = (make_being(name) for name in "abc")
    link = make_link(b, a)
    make_link(c, b)
    risk = risk_assess(operation="unlink", target=link, actor=root)
    assert reasons(risk)["blast_radius"].detail.startswith("2 being(s) reach its source b")


@pytest.mark.django_db
def test_promotions_in_force_raise_it_most_in_production(root: User, make_being: BeingMaker, settings: Any) -> None:
    """A being promoted to staging adds 10, to production as well 30 more: its update becomes high."""
    settings.LUXOS_PROMOTION_EVIDENCE = {}
    being = make_being("served")
    soul_promote(hash=being.hash, environment="staging", actor=root)
    staged = reasons(risk_assess(operation="update", target=being, actor=root))["promoted"]
    assert staged.weight == 10 and "in staging" in staged.detail
    soul_promote(hash=being.hash, environment="production", actor=root)
    risk = risk_assess(operation="update", target=being, actor=root)
    assert reasons(risk)["promoted"].weight == 40
    assert risk.level == "high"


@pytest.mark.django_db
def test_promoting_to_production_weighs_the_environment(root: User, make_being: BeingMaker) -> None:
    """Promoting to production is high; to staging the environment adds nothing."""
    being = make_being("candidate")
    production = risk_assess(operation="promote", target=Target(being=being, environment="production"), actor=root)
    staging = risk_assess(operation="promote", target=Target(being=being, environment="staging"), actor=root)
    assert (production.level, reasons(production)["environment"].weight) == ("high", 20)
    assert (staging.level, reasons(staging)["environment"].weight) == ("medium", 0)


@pytest.mark.django_db
def test_upgrading_what_production_runs_is_high_not_critical(root: User, make_being: BeingMaker, settings: Any) -> None:
    """A being already served in production, busy in the last day: promoting its next version there weighs
    production once (``environment``), not again as a promotion in force, so the evidence gate's
    "below critical" does not refuse every routine upgrade."""
    settings.LUXOS_PROMOTION_EVIDENCE = {}
    being = make_being("served")
    soul_promote(hash=being.hash, environment="production", actor=root)
    runs_record(being, *["succeeded"] * 20)
    risk = risk_assess(operation="promote", target=Target(being=being, environment="production"), actor=root)
    assert "promoted" not in reasons(risk)
    assert risk.level == "high"
    staged = risk_assess(operation="promote", target=Target(being=being, environment="staging"), actor=root)
    assert reasons(staged)["promoted"].weight == 30, "production is still weighed when promoting elsewhere"


@pytest.mark.django_db
def test_runs_of_the_last_day_and_past_failures_count(root: User, make_being: BeingMaker) -> None:
    """Runs of the last day raise it (older ones do not); failed, timed-out and killed runs count as failures."""
    being = make_being("busy")
    runs_record(being, "succeeded", "succeeded", "succeeded")
    runs_record(being, "failed", "timeout", "killed", age=timedelta(days=3))
    found = reasons(risk_assess(operation="update", target=being, actor=root))
    assert (found["recent_runs"].weight, found["recent_runs"].detail) == (6, "3 run(s) in the last day")
    assert (found["past_failures"].weight, found["past_failures"].detail) == (
        10,
        "3 failed run(s) of the being and its ancestors",
    )


@pytest.mark.django_db
def test_open_lessons_on_the_being_or_its_hash_count_until_resolved(root: User, make_being: BeingMaker) -> None:
    """Two open lessons (one on the being, one on its hash) add 20; a resolved one adds nothing."""
    being = make_being("taught")
    lesson_add(situation="it timed out", being=being)
    lesson_add(situation="this hash leaks memory", hash=being.hash)
    closed = lesson_add(situation="fixed long ago", being=being)
    type(closed).objects.filter(id=closed.id).update(resolved_at=timezone.now())
    lessons = reasons(risk_assess(operation="update", target=being, actor=root))["open_lessons"]
    assert (lessons.weight, lessons.detail) == (20, "2 open lesson(s) on the being, its hash or its ancestors")


@pytest.mark.django_db
def test_lines_removed_by_an_evolution_weigh_by_their_share(root: User, make_being: BeingMaker) -> None:
    """Adding a line removes nothing; rewriting most of the code weighs up to 20."""
    being = make_being("coded", genesis={"source": SOURCE})
    added = SOURCE + "EXTRA = 1\n"
    rewritten = "def run():\n    return 42\n"
    grown = reasons(risk_assess(operation="evolve", target=Target(being=being, source=added), actor=root))
    cut = reasons(risk_assess(operation="evolve", target=Target(being=being, source=rewritten), actor=root))
    assert grown["lines_removed"].weight == 0
    assert cut["lines_removed"].weight == 20
    assert cut["lines_removed"].detail.startswith("removes 0 and changes 4 of 5 line(s) (a mutation)")


@pytest.mark.django_db
def test_rows_of_a_bulk_import_weigh_by_their_order_of_magnitude(root: User) -> None:
    """10 rows add 5, 10,000 rows 20: a large import is high."""
    small = risk_assess(operation="bulk_import", target=10, actor=root)
    large = risk_assess(operation="bulk_import", target=10_000, actor=root)
    assert (reasons(small)["rows"].weight, small.level) == (5, "medium")
    assert (reasons(large)["rows"].weight, large.level) == (20, "high")


@pytest.mark.django_db(transaction=True)
def test_restore_switch_and_merge_weigh_the_rows_they_rewrite_and_promotions_touched(
    root: User, make_being: BeingMaker, settings: Any
) -> None:
    """Rows changed since a checkpoint weigh on its restore (a promoted being among them adds its environment);
    a switch weighs what differs, a merge the other timeline's own changes."""
    settings.LUXOS_PROMOTION_EVIDENCE = {}
    served = make_being("served")
    soul_promote(hash=served.hash, environment="production", actor=root)
    mark = checkpoint_create(name="mark", actor=root)
    side = timeline_create(name="side", actor=root)
    for number in range(9):
        make_being(f"new{number}")
    being_update(being=served, data={"tags": ["changed"]}, actor=root)
    restore = risk_assess(operation="restore", target=mark, actor=root)
    assert reasons(restore)["rows"].detail == "rewrites 10 row(s)"
    promoted = reasons(restore)["promoted"]
    assert (promoted.weight, "served" in promoted.detail) == (30, True)
    assert restore.level == "critical"
    switch = risk_assess(operation="switch", target=side, actor=root)
    assert (reasons(switch)["rows"].detail, switch.level) == ("rewrites 10 row(s)", "critical")
    timeline_switch(name="side", actor=root)
    for number in range(3):
        make_being(f"dreamt{number}")
    timeline_switch(name="main", actor=root)
    merge = risk_assess(operation="merge", target=timeline_resolve("side"), actor=root)
    assert reasons(merge)["rows"].detail == "writes 3 row(s)"
    assert "promoted" not in reasons(merge)


@pytest.mark.django_db
def test_an_operation_without_a_person_is_unattended(make_being: BeingMaker) -> None:
    """The system acting alone (a task) adds 5: nobody confirms it."""
    risk = risk_assess(operation="update", target=make_being("tasked"), actor=None)
    assert reasons(risk)["unattended"].weight == 5


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("operation", "target", "error"),
    [
        ("explode", 1, RiskOperationUnknownError),
        ("", 1, RiskOperationUnknownError),
        ("delete", "a soul as text", RiskTargetInvalidError),
        ("bulk_import", -3, RiskTargetInvalidError),
        ("bulk_import", True, RiskTargetInvalidError),
    ],
)
def test_bad_operations_and_targets_are_refused(root: User, operation: str, target: Any, error: type) -> None:
    """An unknown operation or a target of no known kind is a 422 naming what is accepted."""
    with pytest.raises(error):
        risk_assess(operation=operation, target=target, actor=root)


def checkpoints_named(prefix: str) -> list[Checkpoint]:
    return list(Checkpoint.objects.filter(name__startswith=prefix).order_by("created_at"))


@pytest.mark.django_db(transaction=True)
def test_a_delete_takes_a_safety_checkpoint_named_after_it_that_undoes_it(root: User, make_being: BeingMaker) -> None:
    """Deleting a being (high) takes ``before-delete-<name>`` first; restoring it brings the being back."""
    from chronos.services import checkpoint_restore

    being = make_being("doomed")
    being_delete(being=being, actor=root)
    [safety] = checkpoints_named("before-delete-doomed")
    assert safety.kind == "safety"
    assert safety.description == "Taken automatically before a high delete (score 50)."
    assert not BaseBeing.objects.filter(soul=being.soul).exists()
    checkpoint_restore(checkpoint=safety, actor=root)
    assert BaseBeing.objects.filter(soul=being.soul).exists()


@pytest.mark.django_db(transaction=True)
def test_low_and_medium_operations_take_no_checkpoint(root: User, make_being: BeingMaker) -> None:
    """An update of a quiet being is low: no checkpoint is taken."""
    being = make_being("quiet")
    before = Checkpoint.objects.count()
    being_update(being=being, data={"tags": ["x"]}, actor=root)
    assert Checkpoint.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_unlink_and_bulk_import_take_theirs_when_high(
    root: User, make_being: BeingMaker, make_link: LinkMaker, settings: Any
) -> None:
    """An unlink whose source is widely reached, and a large import, each take a safety checkpoint first."""
    hub = make_being("hub")
    target = make_being("leaf")
    link = make_link(hub, target)
    for number in range(70):
        make_link(make_being(f"caller{number}"), hub)
    risk = risk_assess(operation="unlink", target=link, actor=root)
    assert (risk.level, risk.score) == ("high", 50)  # 25 for the kind, 25 for the 71 beings it cuts off
    relationship_delete(relationship=link, actor=root)
    assert [c.name for c in checkpoints_named("before-unlink-")] == [f"before-unlink-{str(link.id)[:8]}"]
    lines = [f'{{"genesis": {{"name": "bulk{n}", "type": "data"}}}}' for n in range(10_000)]
    beings_import(lines=lines, actor=root)
    assert [c.name for c in checkpoints_named("before-bulk_import-")] == ["before-bulk_import-10000-rows"]


@pytest.mark.django_db(transaction=True)
def test_the_switch_off_and_a_written_transaction_take_none(root: User, make_being: BeingMaker, settings: Any) -> None:
    """CHRONOS_AUTO_CHECKPOINT false takes none; nor does a transaction that has already written (it would hold
    those writes): the risk is still assessed."""
    from django.db import transaction

    settings.CHRONOS_AUTO_CHECKPOINT = False
    risk, checkpoint = safety_guard(operation="delete", target=make_being("kept"), actor=root)
    assert (risk.level, checkpoint) == ("high", None)
    settings.CHRONOS_AUTO_CHECKPOINT = True
    with transaction.atomic():
        being = make_being("inside")
        risk, checkpoint = safety_guard(operation="delete", target=being, actor=root)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    assert (risk.level, checkpoint) == ("high", None)
    assert not checkpoints_named("before-delete-")


@pytest.mark.django_db(transaction=True)
def test_a_queued_evolution_takes_one_checkpoint_however_often_delivered(root: User, make_being: BeingMaker) -> None:
    """The worker's evolution (keyed by its request) takes its checkpoint once; a redelivery takes none."""
    from beings.evolution import being_evolve_once

    being = make_being("queued", genesis={"source": SOURCE})
    for _delivery in range(2):
        being_evolve_once(soul=being.soul, source="def run():\n    return 0\n", reason="", actor=root, request="r1")
    assert [c.name for c in checkpoints_named("before-evolve-")] == ["before-evolve-queued"]
