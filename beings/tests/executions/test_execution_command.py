"""``manage.py beings execute``: runs a being on a worker, prints how it ended, exits 1 when it did not succeed."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from guardian.shortcuts import assign_perm

from beings.models import BaseBeing, Execution
from beings.souls import services as soul_services
from luxsite.tests.helpers import command, command_refused

SOURCE = 'def run(x=1, y=2):\n    print("adding", x, y)\n    return {"sum": x + y}\n'
FAILING = "def run(x=0):\n    return 1 / x\n"


@pytest.fixture
def admin_user(django_user_model: type[User]) -> User:
    """The superuser the command acts as by default."""
    return django_user_model.objects.create_superuser(settings.LUXOS_ADMIN_USER, password="admin-password-1")


@pytest.fixture
def adder(admin_user: User, make_being: Callable[..., BaseBeing]) -> BaseBeing:
    return make_being("adder", genesis={"source": SOURCE}, actor=admin_user)


def execute(*args: str) -> str:
    return command("beings", "execute", *args)


def refused(*args: str) -> CommandError:
    return command_refused("beings", "execute", *args)


# Bad input: nothing is queued


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kwargs", '{"x": '], "--kwargs is not valid JSON"),
        (["--kwargs", "[1]"], "--kwargs must be a JSON object, not array"),
        (["--kwargs", "null"], "--kwargs must be a JSON object, not null"),
        (["--args", '{"x": 1}'], "--args must be a JSON array, not object"),
        (["--wait", "-1"], "--wait must be between 0 and 3600"),
        (["--hash", "0" * 64], "soul_not_found: being "),
        (["--hash", "xyz"], "hash_invalid"),
        (["--hash", "0" * 64, "--env", "production"], "target_invalid"),
        (["--env", "nowhere"], "environment_unknown"),
    ],
)
def test_bad_input_exits_1_and_queues_nothing(adder: BaseBeing, args: list[str], message: str) -> None:
    """Malformed JSON, the wrong kind of JSON, a bad wait or an unknown version: exit 1 with the reason."""
    error = refused("adder", *args)

    assert error.returncode == 1
    assert message in str(error)
    assert not Execution.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("ref", "code"),
    [
        ("nobody", "alias_not_found"),
        ("00000000-0000-4000-8000-000000000000", "being_not_found"),
        ("ab" * 8, "soul_not_found"),
    ],
)
def test_unknown_ref_exits_1(admin_user: User, ref: str, code: str) -> None:
    """An alias, a soul or a hash prefix that names no being: exit 1 with the reference in the message."""
    error = refused(ref)

    assert error.returncode == 1
    assert str(error).startswith(f"{code}: ") and ref in str(error)
    assert not Execution.objects.exists()


@pytest.mark.django_db
def test_an_environment_with_nothing_promoted_exits_1(adder: BaseBeing) -> None:
    """--env production when adder was never promoted there: exit 1, nothing queued."""
    error = refused("adder", "--env", "production")

    assert error.returncode == 1
    assert str(error) == "not_promoted: no hash of 'adder' is promoted to production"
    assert not Execution.objects.exists()


@pytest.mark.django_db
def test_a_user_who_may_not_execute_exits_1(adder: BaseBeing, bob: User) -> None:
    """--user bob, who may view adder but not execute it: refused."""
    assign_perm("beings.view_basebeing", bob, adder)

    error = refused("adder", "--user", "bob")

    assert error.returncode == 1
    assert "permission_denied" in str(error)
    assert not Execution.objects.exists()


@pytest.mark.django_db
def test_an_unknown_user_exits_1(adder: BaseBeing) -> None:
    """--user naming nobody exits 1 saying there is no such user."""
    assert "no user named 'nobody'" in str(refused("adder", "--user", "nobody"))


@pytest.mark.django_db
def test_wait_0_only_queues_the_run(adder: BaseBeing, admin_user: User) -> None:
    """--wait 0 prints the queued run and exits 0 without waiting for a worker."""
    output = execute("adder", "--kwargs", '{"x": 5}', "--wait", "0", "--json")

    document = json.loads(output)
    execution = Execution.objects.get()
    assert document["id"] == str(execution.id)
    assert (document["status"], document["hash"], document["alias"]) == ("queued", adder.hash, "adder")
    assert execution.kwargs == {"x": 5} and execution.actor_id == admin_user.pk


@pytest.mark.django_db
def test_a_run_unfinished_after_wait_exits_3(adder: BaseBeing) -> None:
    """No worker takes the run here: after --wait the command says it is still queued and exits 3, not 0 or 1."""
    out = io.StringIO()

    with pytest.raises(CommandError) as error:
        call_command("beings", "execute", "adder", "--wait", "0.2", stdout=out, stderr=io.StringIO())

    execution = Execution.objects.get()
    assert error.value.returncode == 3
    assert str(error.value) == (
        f"execution {execution.id} is still queued after 0.2 s; follow it at /executions/{execution.id}/"
    )
    assert out.getvalue().startswith(f"execution {execution.id}: queued")


# Through a real worker


@pytest.mark.usefixtures("transactional_db")
def test_a_run_that_succeeds_prints_its_result_and_exits_0(celery_worker: Any, adder: BaseBeing) -> None:
    """The run is named by its alias; the command prints succeeded, the JSON result and the output."""
    output = execute("adder", "--kwargs", '{"x": 40, "y": 2}')

    assert "succeeded" in output.splitlines()[0]
    assert 'result:    {"sum": 42}' in output
    assert "adding 40 2" in output
    assert Execution.objects.get().status == Execution.Status.SUCCEEDED


@pytest.mark.usefixtures("transactional_db")
def test_a_promoted_hash_runs_by_soul_hash_and_environment(
    celery_worker: Any, adder: BaseBeing, admin_user: User
) -> None:
    """--json, by hash prefix and by alias in production (the promoted hash): both succeed with the same result."""
    soul_services.soul_promote(
        hash=adder.hash, environment="production", actor=admin_user, note="release", override_reason="no runs yet"
    )

    by_hash = json.loads(execute(adder.hash[:12], "--args", "[1, 2]", "--json"))
    in_production = json.loads(execute("adder", "--env", "production", "--kwargs", '{"x": 1}', "--json"))

    assert by_hash["status"] == in_production["status"] == "succeeded"
    assert by_hash["result"] == in_production["result"] == {"sum": 3}
    assert (in_production["environment"], in_production["hash"]) == ("production", adder.hash)


@pytest.mark.usefixtures("transactional_db")
def test_a_failing_run_exits_1_with_its_error(
    celery_worker: Any, admin_user: User, make_being: Callable[..., BaseBeing]
) -> None:
    """A being that raises: the output shows the error and traceback, the exit status is 1."""
    being = make_being("divider", genesis={"source": FAILING}, actor=admin_user)
    out = io.StringIO()

    with pytest.raises(CommandError) as error:
        call_command("beings", "execute", str(being.soul), stdout=out, stderr=io.StringIO())

    assert error.value.returncode == 1
    assert "failed" in str(error.value) and "ZeroDivisionError" in str(error.value)
    assert "error:     ZeroDivisionError" in out.getvalue()
    assert "line 2" in out.getvalue()
    assert Execution.objects.get().status == Execution.Status.FAILED


@pytest.mark.usefixtures("transactional_db")
def test_exit_status_of_manage_py(
    celery_worker: Any,
    subprocess_env: dict[str, str],
    adder: BaseBeing,
    make_being: Callable[..., BaseBeing],
    admin_user: User,
) -> None:
    """As an operator's script sees it: 0 and the result on stdout, or 1 and the error on stderr."""
    failing = make_being("divider", genesis={"source": FAILING}, actor=admin_user)
    command = [sys.executable, "manage.py", "beings", "execute"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], env=subprocess_env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120
        )

    passed = run("adder", "--kwargs", '{"x": 2}')
    failed = run(str(failing.soul), "--kwargs", '{"x": 0}')
    bad = run("adder", "--kwargs", "{x: 1}")

    assert passed.returncode == 0, passed.stderr
    assert 'result:    {"sum": 4}' in passed.stdout
    assert failed.returncode == 1
    assert "ZeroDivisionError" in failed.stderr and "failed" in failed.stderr
    assert bad.returncode == 1
    assert "--kwargs is not valid JSON" in bad.stderr


@pytest.mark.usefixtures("transactional_db")
def test_a_run_that_times_out_exits_1(
    celery_worker: Any, settings: Any, admin_user: User, make_being: Callable[..., BaseBeing]
) -> None:
    """A being that loops forever is stopped by the wall clock the run was queued with; the command exits 1."""
    settings.LUXOS_SANDBOX_WALL_SECONDS = 1.0  # the run keeps the limits of the settings it was queued under
    looper = make_being("looper", genesis={"source": "def run():\n    while True:\n        pass\n"}, actor=admin_user)

    error = refused(str(looper.soul))

    assert error.returncode == 1
    assert str(error).startswith(f"execution {Execution.objects.get().id} timeout: ")
    assert Execution.objects.get().status == Execution.Status.TIMEOUT
