"""Who sees what of a run (issue 13, reliability 7): alice owns a being, bob may run it. Of bob's run alice
sees that it happened (status, timings, error type) but not bob's inputs, result or output, in the API
(list and detail), on the run's page, in the admin and in the run form's "run again"; bob and a superuser
see everything. Runs go through a real worker."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from guardian.shortcuts import assign_perm

from beings.executions.queue import execution_wait
from beings.executions.selectors import target_resolve
from beings.executions.services import execution_start
from beings.models import BaseBeing, Execution
from luxsite.tests.fixtures import logged_in

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "bobs-private-input-7f3a"
SOURCE = (
    "def run(secret='none'):\n"
    "    print('printed', secret)\n"
    "    if secret.startswith('fail'):\n"
    "        raise ValueError('refused ' + secret)\n"
    "    return {'echo': secret}\n"
)
WAIT_SECONDS = 60.0


@pytest.fixture
def shared(make_being: Callable[..., BaseBeing], alice: User, bob: User) -> BaseBeing:
    """alice's being, which bob may run (and so view)."""
    being = make_being("shared", genesis={"source": SOURCE})
    assign_perm("beings.execute_being", bob, being)
    assign_perm("beings.view_basebeing", bob, being)
    return being


def bobs_run(being: BaseBeing, bob: User, secret: str = SECRET) -> Execution:
    """A run of ``being`` started by bob with ``secret`` as its input, finished on the worker."""
    execution = execution_start(
        target=target_resolve(ref=str(being.soul), user=bob), args=[], kwargs={"secret": secret}, actor=bob
    )
    done = execution_wait(execution=execution, timeout=WAIT_SECONDS)
    assert done.finished, f"execution {done.pk} still {done.status}"
    return done


def test_the_owner_sees_that_bob_ran_it_but_not_what_went_in_or_came_out(celery_worker, shared, alice, bob):
    """API list and detail: alice gets bob's run with status and timings, args/kwargs/result/output withheld."""
    done = bobs_run(shared, bob)
    assert (done.status, done.result) == ("succeeded", {"echo": SECRET})
    owner = logged_in(alice)

    detail = owner.get(f"/api/executions/{done.pk}")
    assert detail.status_code == 200
    body = detail.json()
    assert (body["status"], body["actor"], body["contents_hidden"]) == ("succeeded", "bob", True)
    assert body["duration_ms"] == done.duration_ms and body["started_at"] and body["finished_at"]
    assert (body["args"], body["kwargs"], body["result"], body["output"]) == (None, None, None, "")
    assert SECRET not in detail.content.decode()

    listing = owner.get(f"/api/executions?being={shared.soul}")
    assert listing.status_code == 200
    [item] = listing.json()["items"]
    assert (item["id"], item["status"], item["contents_hidden"]) == (str(done.pk), "succeeded", True)
    assert SECRET not in listing.content.decode()


def test_the_starter_and_a_superuser_see_everything(celery_worker, shared, bob, root):
    """bob (who started the run) and a superuser get its inputs, result and output in the list and the detail."""
    done = bobs_run(shared, bob)
    for user in (bob, root):
        client = logged_in(user)
        body = client.get(f"/api/executions/{done.pk}").json()
        assert body["contents_hidden"] is False
        assert (body["kwargs"], body["result"], body["output"]) == (
            {"secret": SECRET},
            {"echo": SECRET},
            f"printed {SECRET}\n",
        )
        [item] = client.get(f"/api/executions?being={shared.soul}").json()["items"]
        assert (item["kwargs"], item["result"]) == ({"secret": SECRET}, {"echo": SECRET})


def test_the_owner_sees_the_error_type_of_a_failed_run_but_not_its_message(celery_worker, shared, alice, bob):
    """A failed run of bob's: alice learns it failed with a ValueError; the message (with bob's input) is bob's."""
    secret = f"fail-{SECRET}"
    done = bobs_run(shared, bob, secret=secret)
    assert done.status == "failed" and done.error is not None and secret in done.error["message"]
    owner = logged_in(alice)
    response = owner.get(f"/api/executions/{done.pk}")
    assert response.json()["error"] == {"type": "ValueError", "message": "", "traceback": ""}
    assert SECRET not in response.content.decode()
    page = owner.get(reverse("execution_detail", args=[done.pk])).content.decode()
    assert "ValueError" in page and SECRET not in page
    assert logged_in(bob).get(f"/api/executions/{done.pk}").json()["error"]["message"] == f"refused {secret}"


def test_the_run_page_shows_the_owner_the_run_without_its_contents(celery_worker, shared, alice, bob, root):
    """The run page (and its live panel): alice sees status and that the contents are hidden; bob and root see them.

    Its "Run again" (the being page's form filled with the run's inputs) is not offered to alice, and
    the form opened with ``?again=`` of bob's run starts afresh rather than with bob's inputs.
    """
    done = bobs_run(shared, bob)
    owner = logged_in(alice)
    page = owner.get(reverse("execution_detail", args=[done.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "succeeded" in html and 'id="execution-hidden"' in html and "?again=" not in html
    assert SECRET not in html
    assert SECRET not in owner.get(reverse("execution_panel", args=[done.pk])).content.decode()
    again = owner.get(reverse("being_detail", args=[shared.soul]) + f"?again={done.pk}")
    assert again.status_code == 200 and SECRET not in again.content.decode()
    for user in (bob, root):
        shown = logged_in(user).get(reverse("execution_detail", args=[done.pk])).content.decode()
        assert SECRET in shown and 'id="execution-hidden"' not in shown
    assert (
        SECRET in logged_in(bob).get(reverse("being_detail", args=[shared.soul]) + f"?again={done.pk}").content.decode()
    )


def test_the_admin_shows_the_owner_the_run_without_its_contents(celery_worker, shared, alice, bob, root):
    """In the admin, staff alice opens bob's run of her being: status shown, inputs, result and output hidden."""
    done = bobs_run(shared, bob)
    User.objects.filter(pk=alice.pk).update(is_staff=True)
    owner = logged_in(User.objects.get(pk=alice.pk))
    listing = owner.get(reverse("admin:beings_execution_changelist"))
    assert listing.status_code == 200 and str(done.pk)[:8] in listing.content.decode()
    change = owner.get(reverse("admin:beings_execution_change", args=[done.pk]))
    assert change.status_code == 200
    html = change.content.decode()
    assert "succeeded" in html and "hidden: the inputs, result and output" in html
    assert SECRET not in html
    superuser = logged_in(root).get(reverse("admin:beings_execution_change", args=[done.pk])).content.decode()
    assert SECRET in superuser and "hidden: the inputs, result and output" not in superuser
