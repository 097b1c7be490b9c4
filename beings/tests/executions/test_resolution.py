"""What a run names in an environment: a soul runs that being's own promoted hash, an alias the hash promoted
under it, a hash itself if promoted there; never another being's version of the same alias."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from beings.evolution import being_evolve
from beings.executions.queue import execution_wait
from beings.executions.selectors import Target, target_resolve
from beings.executions.services import execution_start
from beings.models import BaseBeing, Execution
from beings.souls import services as soul_services
from luxsite.tests.helpers import WAIT_SECONDS, refused

# Production asks for evidence before a promotion; these tests promote to set the scene, the gate is tested on its own.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("promotion_evidence_waived")]

OLDER = "def run():\n    return 'older'\n"
NEWER = "def run():\n    return 'newer'\n"
COUNT = "VERSION = 1\n\ndef run():\n    return VERSION\n"  # evolved by adding "VERSION = 2\n": one being
ATTEMPTS = (
    "def attempt(ref):\n"
    "    try:\n"
    "        return execution(ref)\n"
    "    except BeingCallError as error:\n"
    "        return str(error)\n"
    "def run(refs):\n"
    "    return [attempt(ref) for ref in refs]\n"
)


@pytest.fixture
def promoter(alice: User) -> User:
    """Alice, who may also promote souls (fetched afresh: Django caches permissions on the instance)."""
    alice.user_permissions.add(Permission.objects.get(codename="promote_soul"))
    return User.objects.get(pk=alice.pk)


@pytest.fixture
def namesakes(make_being: Callable[..., BaseBeing], promoter: User) -> tuple[BaseBeing, BaseBeing]:
    """Two beings named 'greet': the older one's hash promoted to production as 'greet', the newer one's not."""
    older = make_being("greet", genesis={"source": OLDER})
    newer = make_being("greet", genesis={"source": NEWER})
    soul_services.soul_promote(hash=older.hash, actor=promoter)
    return older, newer


def production(ref: str | BaseBeing, user: User) -> Target:
    return target_resolve(ref=ref, user=user, environment="production")


def pinned(target: Target) -> tuple[Any, str, str]:
    return target.being.soul, target.hash, target.environment


def test_a_soul_never_runs_another_beings_hash_of_its_alias(namesakes, promoter):
    """The newer 'greet' has nothing promoted: by soul (or as a fetched being) it is refused, naming itself,
    while 'greet' and the older being's soul run the older being's promoted hash."""
    older, newer = namesakes
    for ref in (str(newer.soul), newer):
        error = refused("not_promoted", functools.partial(production, ref, promoter))
        assert str(newer.soul) in error.detail and "production" in error.detail
    for ref in ("greet", str(older.soul), older):
        assert pinned(production(ref, promoter)) == (older.soul, older.hash, "production")


def test_a_soul_runs_its_own_promoted_hash_whatever_alias_it_is_promoted_under(namesakes, promoter):
    """Once the newer being's hash is promoted as 'greet-next', its soul runs that hash; 'greet' still runs the
    older being's, and 'greet-next' the newer's."""
    older, newer = namesakes
    soul_services.soul_promote(hash=newer.hash, alias="greet-next", actor=promoter)
    assert pinned(production(str(newer.soul), promoter)) == (newer.soul, newer.hash, "production")
    assert pinned(production("greet", promoter)) == (older.soul, older.hash, "production")
    assert pinned(production("greet-next", promoter)) == (newer.soul, newer.hash, "production")


def test_a_soul_with_several_promoted_hashes_runs_the_one_under_its_own_alias(make_being, promoter):
    """Two versions promoted under other aliases are ambiguous by soul and refused, naming both; once a version
    is promoted under the being's own alias, the soul runs that one."""
    being = make_being("adder", genesis={"source": COUNT})
    first = being.hash
    second = being_evolve(being=being, source=COUNT + "VERSION = 2\n", actor=promoter).being.hash
    soul_services.soul_promote(hash=first, alias="sum", actor=promoter)
    soul_services.soul_promote(hash=second, alias="plus", actor=promoter)
    error = refused("target_invalid", lambda: production(str(being.soul), promoter))
    assert "'sum'" in error.detail and "'plus'" in error.detail
    third = being_evolve(being=being, source=COUNT + "VERSION = 2\nVERSION = 3\n", actor=promoter).being
    assert third.soul == being.soul
    soul_services.soul_promote(hash=third.hash, actor=promoter)
    target = production(str(being.soul), promoter)
    assert (target.being.soul, target.hash, target.version) == (being.soul, third.hash, 3)


def test_a_hash_runs_in_an_environment_only_if_promoted_there(make_being, promoter):
    """The promoted version runs by its hash or a prefix; the being's newer, unpromoted hash is refused in
    production and runs in development."""
    being = make_being("greet", genesis={"source": COUNT})
    promoted = being.hash
    soul_services.soul_promote(hash=promoted, actor=promoter)
    evolved = being_evolve(being=being, source=COUNT + "VERSION = 2\n", actor=promoter).being
    assert evolved.soul == being.soul
    for ref in (promoted, promoted[:12]):
        assert pinned(production(ref, promoter)) == (being.soul, promoted, "production")
    for ref in (evolved.hash, evolved.hash[:12]):
        error = refused("not_promoted", functools.partial(production, ref, promoter))
        assert evolved.hash[:12] in error.detail
    assert target_resolve(ref=evolved.hash, user=promoter).version == 2


def test_a_hex_looking_alias_runs_its_promoted_hash_not_its_newest_being(make_being, promoter):
    """An alias that looks like a hash prefix, held by two beings, runs the hash promoted under it in production
    (the older being's), and the newest being of the alias in development."""
    alias = "cafe0123beef"
    older = make_being(alias, genesis={"source": OLDER})
    newer = make_being(alias, genesis={"source": NEWER})
    soul_services.soul_promote(hash=older.hash, actor=promoter)
    assert pinned(production(alias, promoter)) == (older.soul, older.hash, "production")
    assert pinned(target_resolve(ref=alias, user=promoter)) == (newer.soul, newer.hash, "")


def test_another_users_promotion_is_not_run_by_soul_nor_named(make_being, promoter, bob):
    """Bob's being named 'greet' has nothing promoted; alice's 'greet' is: bob's soul is refused without naming
    alice's being, and bob cannot run alice's promoted alias he may not see."""
    mine = make_being("greet", genesis={"source": OLDER})
    soul_services.soul_promote(hash=mine.hash, actor=promoter)
    his = make_being("greet", genesis={"source": NEWER}, actor=bob)
    error = refused("not_promoted", lambda: production(str(his.soul), bob))
    assert str(mine.soul) not in error.detail and mine.hash[:12] not in error.detail
    refused("not_promoted", lambda: production("greet", bob))


@pytest.mark.django_db(transaction=True)
def test_nested_execution_in_production_resolves_the_same_way(celery_worker, namesakes, make_being, promoter):
    """execution() inside a production run, on a real worker: the older being's soul and 'greet' run the older
    being's promoted hash; the newer being's soul and its unpromoted hash are refused, never run as 'greet'."""
    older, newer = namesakes
    caller = make_being("caller", genesis={"source": ATTEMPTS})
    soul_services.soul_promote(hash=caller.hash, actor=promoter)
    refs = [str(older.soul), "greet", str(newer.soul), newer.hash]
    run = execution_start(target=production("caller", promoter), kwargs={"refs": refs}, actor=promoter)
    done = execution_wait(execution=run, timeout=WAIT_SECONDS)
    assert done.status == Execution.Status.SUCCEEDED, done.error
    assert done.result == [
        "older",
        "older",
        f"not_promoted: no version of being {newer.soul} ('greet') is promoted to production",
        f"not_promoted: hash {newer.hash[:12]} is not promoted to production",
    ]
    children = Execution.objects.filter(parent=done)
    assert {(child.being_id, child.hash, child.environment) for child in children} == {
        (older.soul, older.hash, "production")
    }
