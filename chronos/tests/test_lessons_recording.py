"""Failures become lessons on their own, through the real doors, and no restore ever removes a lesson."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pgtrigger
import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import Client

from beings.evolution import being_evolve, being_evolve_once
from beings.models import BaseBeing
from beings.souls.services import soul_promote
from chronos.lessons.services import lesson_add
from chronos.models import Lesson
from chronos.services import checkpoint_create, checkpoint_restore
from chronos.tasks import checkpoint_restore_task
from luxsite.errors import DomainError
from luxsite.tests.fixtures import logged_in
from luxsite.tests.helpers import WAIT_SECONDS, post, wait_for
from luxsite.triggers import append_only_uris

pytestmark = pytest.mark.django_db(transaction=True)

FAILING = "def run():\n    raise ValueError('no input')\n"


@pytest.fixture
def root_client(root: User) -> Client:
    return logged_in(root)


def test_a_failed_run_on_the_worker_becomes_a_lesson_once_counted_twice(
    celery_worker: Any, api: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """Two failed runs through the API and a real worker: the fold records one lesson with count 2, type only."""
    being = make_being("failing", genesis={"source": FAILING})
    for _ in range(2):
        response = post(api, f"/api/beings/{being.soul}/execute", {"wait": 20})
        assert response.status_code == 200 and response.json()["status"] == "failed", response.content

    def counted_twice() -> Lesson | None:
        return Lesson.objects.filter(operation="execution", being_id=being.soul, count=2).first()

    lesson = wait_for(counted_twice)
    assert (lesson.error_class, lesson.hash) == ("ValueError", being.hash)
    assert lesson.execution_id is not None and "failure" in lesson.tags
    assert "no input" not in lesson.result + lesson.situation, "the message may quote the starter's inputs"
    assert Lesson.objects.count() == 1


def test_a_refused_evolution_through_the_api_is_recorded(api: Client, make_being: Callable[..., BaseBeing]) -> None:
    """A source that does not parse is refused with 422, and the refusal is a lesson on the being and its hash."""
    being = make_being("parser")
    response = post(api, f"/api/beings/{being.soul}/evolve", {"source": "def run(:\n"})
    assert response.status_code == 422 and response.json()["code"] == "source_syntax_error"
    lesson = Lesson.objects.get()
    assert (lesson.operation, lesson.error_class, lesson.being_id, lesson.hash) == (
        "evolution",
        "source_syntax_error",
        being.soul,
        being.hash,
    )
    assert lesson.result == response.json()["detail"]


def test_a_refusal_of_the_caller_is_no_lesson(api: Client, bob: User, make_being: Callable[..., BaseBeing]) -> None:
    """Bob may not change alice's being: his refusal says nothing about the evolution and records nothing."""
    being = make_being("hers")
    with pytest.raises(DomainError):
        being_evolve(being=being, source="def run():\n    return 2\n", actor=bob)
    assert not Lesson.objects.exists()


def test_a_refusal_inside_a_callers_transaction_waits_for_its_commit(
    alice: User, make_being: Callable[..., BaseBeing]
) -> None:
    """A caller that catches the refusal and commits gets the lesson; one that rolls back keeps nothing."""
    being = make_being("waiting")
    with transaction.atomic():
        with pytest.raises(DomainError):
            being_evolve(being=being, source=being.genesis["source"], actor=alice)
        assert not Lesson.objects.exists()
    assert Lesson.objects.get().error_class == "nothing_changed"
    with pytest.raises(DomainError), transaction.atomic():
        being_evolve(being=being, source="def run(:\n", actor=alice)
    assert list(Lesson.objects.values_list("error_class", flat=True)) == ["nothing_changed"]


def test_a_failed_validation_records_each_problem(
    root: User, root_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """A promoted genotype tampered with: validating through the API fails, and the problem is a lesson on its hash."""
    being = make_being("greeter")
    promotion = soul_promote(hash=being.hash, environment="staging", actor=root)
    # Behind the registry's back, as an intruder able to lift its append-only rule would.
    with pgtrigger.ignore(*append_only_uris("beings.Promotion")), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE soul_promotions SET genotype = jsonb_set(genotype, '{source}', '\"evil\"') WHERE id = %s",
            [promotion.pk],
        )
    response = post(root_client, "/api/environments/staging/validate")
    assert response.status_code == 200 and response.json()["ok"] is False
    lesson = Lesson.objects.get()
    assert (lesson.operation, lesson.error_class, lesson.hash, lesson.being_id) == (
        "validation",
        "genotype_mismatch",
        being.hash,
        being.soul,
    )
    assert "staging" in lesson.tags


def test_a_failed_restore_and_switch_through_the_api_are_recorded(
    root: User, root_client: Client, make_being: Callable[..., BaseBeing]
) -> None:
    """A restore refused for a promoted being (409) and a switch to the live timeline (409) are both lessons."""
    checkpoint = checkpoint_create(name="before-release", actor=root)
    released = make_being("released")
    soul_promote(hash=released.hash, environment="staging", actor=root)
    response = post(root_client, "/api/chronos/checkpoints/before-release/restore", {"force": False})
    assert response.status_code == 409 and response.json()["code"] == "promoted_being_affected"
    response = post(root_client, "/api/chronos/timelines/main/switch", {"force": False})
    assert response.status_code == 409
    restore = Lesson.objects.get(operation="restore")
    assert (restore.error_class, restore.checkpoint_id, restore.timeline_id) == (
        "promoted_being_affected",
        checkpoint.pk,
        checkpoint.timeline_id,
    )
    switch = Lesson.objects.get(operation="switch")
    assert switch.error_class == "timeline_protected" and switch.metadata["timeline"] == "main"


def test_no_restore_removes_a_lesson(root: User, make_being: Callable[..., BaseBeing]) -> None:
    """Lessons are outside the captured tables: a restore to before they existed leaves every one of them."""
    kept = lesson_add(situation="from before the checkpoint")
    checkpoint = checkpoint_create(name="early", actor=root)
    being = make_being("later")
    later = lesson_add(situation="from after the checkpoint", being=being)
    checkpoint_restore(checkpoint=checkpoint, actor=root)
    assert not BaseBeing.objects.filter(soul=being.soul).exists()
    assert set(Lesson.objects.values_list("pk", flat=True)) == {kept.pk, later.pk}


def test_a_queued_evolution_refused_on_the_worker_is_recorded_once(
    alice: User, make_being: Callable[..., BaseBeing]
) -> None:
    """The task's service rolls its transaction back and records the refusal once, not once per layer."""
    being = make_being("queued")
    with pytest.raises(DomainError):
        being_evolve_once(soul=being.soul, source=being.genesis["source"], reason="again", actor=alice, request="r-1")
    lesson = Lesson.objects.get()
    assert (lesson.error_class, lesson.count, lesson.hash) == ("nothing_changed", 1, being.hash)
    assert lesson.metadata["reason"] == "again"


def test_a_restore_refused_on_the_worker_is_recorded(
    celery_worker: Any, root: User, make_being: Callable[..., BaseBeing]
) -> None:
    """The restore task (as the restore page queues it) refuses on a real worker; the lesson is there after."""
    checkpoint = checkpoint_create(name="before-release", actor=root)
    released = make_being("released")
    soul_promote(hash=released.hash, environment="staging", actor=root)
    outcome = checkpoint_restore_task.delay(str(checkpoint.id), root.pk, False).get(timeout=WAIT_SECONDS)
    assert (outcome["status"], outcome["code"]) == ("refused", "promoted_being_affected")
    lesson = wait_for(lambda: Lesson.objects.filter(operation="restore").first())
    assert (lesson.error_class, lesson.checkpoint_id, lesson.actor_id) == (
        "promoted_being_affected",
        checkpoint.pk,
        root.pk,
    )
