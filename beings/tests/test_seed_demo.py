"""The demo seed: a small graph made through the services, idempotent."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from guardian.shortcuts import get_user_perms

from beings.management.commands.seed_demo import DEMO_BEINGS, DEMO_RELATIONSHIPS, demo_soul
from beings.models import BaseBeing
from chronos.models import Change
from relations.models import Relationship

pytestmark = pytest.mark.django_db


def test_seed_demo_twice_creates_the_graph_once(root: User, capsys: pytest.CaptureFixture[str]) -> None:
    """Running the seed twice leaves the same beings and relationships as running it once."""
    call_command("seed_demo", user="root")
    first = capsys.readouterr().out
    counts = (BaseBeing.objects.count(), Relationship.objects.count())

    call_command("seed_demo", user="root")
    second = capsys.readouterr().out

    assert (BaseBeing.objects.count(), Relationship.objects.count()) == counts
    assert BaseBeing.objects.filter(soul__in=[demo_soul(name) for name in DEMO_BEINGS]).count() == len(DEMO_BEINGS)
    assert Relationship.objects.count() == len(DEMO_RELATIONSHIPS)
    assert "created being greet" in first
    assert "created relationship fibonacci -[invokes]-> add" in first
    assert "nothing to create" in second


def test_seed_demo_writes_as_the_user_through_the_command_door(root: User) -> None:
    """Every seeded row is logged as coming from the command door with the seeding user as actor."""
    call_command("seed_demo", user="root")

    contexts = list(Change.objects.filter(row_id=demo_soul("greet")).values_list("context", flat=True))
    assert [(context["door"], context["actor"]) for context in contexts] == [("command", "root")]
    greet = BaseBeing.objects.get(soul=demo_soul("greet"))
    assert greet.genesis["author"] == "root"
    assert "def run(" in greet.genesis["source"]
    assert set(get_user_perms(root, greet)) == {"view_basebeing", "change_basebeing", "delete_basebeing"}


def test_seed_demo_refuses_an_unknown_user(unchanged: Callable[[], AbstractContextManager[None]]) -> None:
    """Naming a user who does not exist fails with a CommandError and creates nothing."""
    with unchanged(), pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("seed_demo", user="nobody")


def test_seed_demo_defaults_to_the_admin_user_from_the_environment(django_user_model: type[User], settings) -> None:
    """Without --user the seed runs as LUXOS_ADMIN_USER."""
    django_user_model.objects.create_superuser("operator", password="operator-password-1")
    settings.LUXOS_ADMIN_USER = "operator"

    call_command("seed_demo")

    assert Change.objects.filter(row_id=demo_soul("add")).get().context["actor"] == "operator"
