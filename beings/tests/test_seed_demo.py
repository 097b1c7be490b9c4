"""The demo seed: a small graph made through the services, idempotent."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from guardian.shortcuts import get_user_perms

from beings.evolution import being_evolve
from beings.genotype import genesis_hash
from beings.management.commands.seed_demo import (
    DEMO_BEINGS,
    DEMO_RELATIONSHIPS,
    GREET_MUTANT,
    GREET_V2,
    GREET_V3,
    demo_soul,
)
from beings.models import BaseBeing, Promotion
from beings.selectors import alias_get
from beings.souls import selectors as soul_selectors
from beings.souls import services as soul_services
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
    # The demo links, and the mutation link from greet to its mutant.
    assert Relationship.objects.count() == len(DEMO_RELATIONSHIPS) + 1
    assert "created being greet" in first
    assert "created relationship fibonacci -[invokes]-> add" in first
    assert first.count("created evolution of greet") == 2
    assert first.count("created mutation of greet") == 1
    assert "created promotion of greet v2" in first
    assert Promotion.objects.count() == 1
    assert "nothing to create" in second


def test_seed_demo_gives_greet_two_evolutions_and_a_mutant(root: User) -> None:
    """greet ends at v3 through two evolutions; its mutant, also named greet, carries that lineage on."""
    call_command("seed_demo", user="root")

    greet = BaseBeing.objects.get(soul=demo_soul("greet"))
    assert greet.version == 3
    assert greet.genesis["source"] == GREET_V3
    assert [entry["kind"] for entry in greet.genesis["ancestors"]] == ["genesis", "evolution"]
    assert greet.genesis["ancestors"][1]["hash"] == genesis_hash({**greet.genesis, "source": GREET_V2})
    mutant = BaseBeing.objects.get(genesis__contains={"parent": {"soul": str(greet.soul)}})
    assert (mutant.name, mutant.version, mutant.genesis["source"]) == ("greet", 1, GREET_MUTANT)
    assert mutant.genesis["parent"] == {"soul": str(greet.soul), "version": 3, "hash": greet.hash}
    assert Relationship.objects.filter(source=greet, target=mutant, tags__contains=["mutation"]).exists()
    assert alias_get(alias="greet", user=root) == mutant


def test_seed_demo_promotes_greet_v2_to_production_as_the_user(root: User) -> None:
    """Production runs greet v2, promoted by the seeding user; the newest greet (the mutant) is two versions on."""
    call_command("seed_demo", user="root")

    promotion = soul_selectors.soul_resolve(alias="greet", environment="production")
    greet = BaseBeing.objects.get(soul=demo_soul("greet"))
    assert (promotion.soul, promotion.version, promotion.actor_name) == (greet.soul, 2, "root")
    assert promotion.hash == greet.genesis["ancestors"][1]["hash"]
    assert promotion.genotype["source"] == GREET_V2
    assert soul_selectors.promotions_active(environment="staging").count() == 0


def test_seed_demo_does_not_promote_again_after_a_demotion(root: User) -> None:
    """Once greet was demoted, running the seed again leaves production empty: it only seeds once."""
    call_command("seed_demo", user="root")
    promotion = soul_selectors.soul_resolve(alias="greet", environment="production")
    soul_services.soul_demote(hash=promotion.hash, actor=root)

    call_command("seed_demo", user="root")

    assert soul_selectors.promotions_active(environment="production").count() == 0
    assert Promotion.objects.count() == 2


def test_seed_demo_does_not_redo_a_step_of_greets_lineage(root: User) -> None:
    """A second run after someone evolved greet further leaves greet and its mutant as they are."""
    call_command("seed_demo", user="root")
    greet = BaseBeing.objects.get(soul=demo_soul("greet"))
    being_evolve(being=greet, source=GREET_V3 + "LANGUAGES = 5\n", actor=root)
    greet.refresh_from_db()
    counts = (BaseBeing.objects.count(), Relationship.objects.count(), greet.version)

    call_command("seed_demo", user="root")

    greet.refresh_from_db()
    assert (BaseBeing.objects.count(), Relationship.objects.count(), greet.version) == counts


def test_seed_demo_writes_as_the_user_through_the_command_door(root: User) -> None:
    """Every seeded row is logged as coming from the command door with the seeding user as actor."""
    call_command("seed_demo", user="root")

    contexts = list(Change.objects.filter(row_id=demo_soul("greet")).values_list("transaction__context", flat=True))
    # Created, then evolved twice.
    assert [(context["door"], context["actor"]) for context in contexts] == [("command", "root")] * 3
    greet = BaseBeing.objects.get(soul=demo_soul("greet"))
    assert greet.genesis["author"] == "root"
    assert "def run(" in greet.genesis["source"]
    owner = {"view_basebeing", "change_basebeing", "delete_basebeing", "execute_being"}
    assert set(get_user_perms(root, greet)) == owner


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
