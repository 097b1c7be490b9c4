"""A being's lineage, aliases and promotions belong to its owner; what you may not view does not exist for you.

Each test plays what two ordinary users (alice and bob, or carol) and a promoter can do through the
real doors, and checks that nothing of one owner's can be taken, shown or run by another.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from guardian.shortcuts import assign_perm

from beings import genotype, services
from beings.evolution import being_evolve
from beings.exceptions import AliasNotPromotedError, LineageForeignError
from beings.executions.selectors import target_resolve
from beings.executions.services import execution_start
from beings.models import BaseBeing, Execution, Promotion
from beings.souls import services as soul_services
from luxsite.tests.fixtures import logged_in
from luxsite.tests.helpers import post

# Production asks for evidence before a promotion; these tests promote to set the scene, the gate is tested on its own.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("promotion_evidence_waived")]

ALICE_CODE = "def run():\n    return 'alice'\n"
BOB_CODE = "def run():\n    return 'bob was here'\n"
HARMLESS = "def run():\n    return 'harmless'\n"


def bob_hash() -> str:
    return genotype.soul_hash(genotype.with_source({"type": "function"}, BOB_CODE))


@pytest.fixture
def carol(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("carol", password="carol-password-1")


@pytest.fixture
def promoter(django_user_model: type[User]) -> User:
    user = django_user_model.objects.create_user("pat", password="pat-password-1")
    user.user_permissions.add(Permission.objects.get(codename="promote_soul"))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def alice_job(make_being: Callable[..., BaseBeing]) -> BaseBeing:
    return make_being("alice-job", genesis={"source": ALICE_CODE})


def forged_genesis(victim: Any, **extra: Any) -> dict[str, Any]:
    """Bob's harmless being whose lineage claims a first version of alice's being holding bob's code."""
    return {
        "name": victim.name,
        "type": "function",
        "source": HARMLESS,
        "version": 2,
        "ancestors": [{"version": 1, "hash": bob_hash(), "soul": str(victim.soul), "source": BOB_CODE}],
        **extra,
    }


# --- forged lineage -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "genesis",
    [
        lambda victim: forged_genesis(victim),
        lambda victim: forged_genesis(victim, parent={"soul": str(victim.soul)}),
        lambda victim: {
            "name": victim.name,
            "type": "function",
            "source": BOB_CODE,
            "parent": {"soul": str(victim.soul), "version": 1, "hash": victim.hash},
        },
    ],
    ids=["ancestor", "ancestor-and-parent", "parent"],
)
def test_a_lineage_naming_someone_elses_being_is_refused(
    bob_api: Client, alice_job: BaseBeing, unchanged: Callable[..., Any], genesis: Callable[[Any], Any]
) -> None:
    """Bob cannot present his code as a version of alice's being: 403 lineage_foreign, nothing stored."""
    with unchanged():
        response = post(bob_api, "/api/beings/", {"genesis": genesis(alice_job)})
    assert (response.status_code, response.json()["code"]) == (403, "lineage_foreign")
    assert "you may not change" in response.json()["detail"]
    # A soul nobody has gets the very same words: the refusal does not tell that alice's being exists.
    nobody = SimpleNamespace(soul=uuid.uuid4(), name=alice_job.name, hash=alice_job.hash)
    with unchanged():
        unknown = post(bob_api, "/api/beings/", {"genesis": genesis(nobody)})
    assert unknown.json()["code"] == "lineage_foreign"
    assert response.json()["detail"].replace(str(alice_job.soul), "S") == unknown.json()["detail"].replace(
        str(nobody.soul), "S"
    )


def test_a_forged_lineage_in_an_import_is_refused(
    bob: User, alice_job: BaseBeing, unchanged: Callable[..., Any]
) -> None:
    """The JSON Lines import holds the same rule, line by line; nothing of the file is stored."""
    lines = [
        json.dumps({"genesis": {"name": "fine", "type": "data"}}),
        json.dumps({"genesis": forged_genesis(alice_job)}),
    ]
    with unchanged(), pytest.raises(LineageForeignError, match=r"line 2: genesis\.ancestors\[0\] names being"):
        services.beings_import(lines=lines, actor=bob)


def test_the_hash_of_a_refused_forgery_finds_nothing(bob_api: Client, api: Client, alice_job: BaseBeing) -> None:
    """After the refusal, GET /api/souls/H answers 404 for everyone: no being holds bob's code under alice's soul."""
    post(bob_api, "/api/beings/", {"genesis": forged_genesis(alice_job)})
    for client in (bob_api, api):
        response = client.get(f"/api/souls/{bob_hash()}")
        assert (response.status_code, response.json()["code"]) == (404, "soul_not_found")


def test_who_may_change_every_named_being_may_import_its_lineage(alice: User, bob: User, alice_job: BaseBeing) -> None:
    """Given change on alice's being, bob may carry its lineage on (an import of a mutant, say)."""
    assign_perm("beings.view_basebeing", bob, alice_job)
    assign_perm("beings.change_basebeing", bob, alice_job)
    being = services.being_create(data={"genesis": forged_genesis(alice_job)}, actor=bob)
    assert being.genesis["ancestors"][0]["soul"] == str(alice_job.soul)


def test_origin_is_the_servers(bob: User, root: User) -> None:
    """Who made a being is stamped by the service: a client's origin is dropped; a superuser's import keeps it."""
    claimed = {"kind": "genesis", "at": "2001-01-01T00:00:00+00:00", "actor": "alice", "reason": "trust me"}
    made = services.being_create(data={"genesis": {"name": "mine", "type": "data", "origin": claimed}}, actor=bob)
    assert made.genesis["origin"]["actor"] == "bob"
    assert made.genesis["origin"]["at"] != claimed["at"]
    assert "reason" not in made.genesis["origin"]
    imported = services.being_create(data={"genesis": {"name": "old", "type": "data", "origin": claimed}}, actor=root)
    assert imported.genesis["origin"] == {**claimed, "imported": True}


def old_forgery(victim: BaseBeing, owner: User) -> BaseBeing:
    """A forged row written before the rule held: stored behind the services, as an old database may hold it."""
    genesis = forged_genesis(victim)
    genesis["hash"] = genotype.genesis_hash(genesis)
    being = BaseBeing.objects.create(genesis=genesis, attributes={}, memories=[], self_awareness={})
    for action in ("view", "change"):
        assign_perm(f"beings.{action}_basebeing", owner, being)
    return being


def test_a_promotion_records_the_being_that_holds_the_hash(bob: User, root: User, alice_job: BaseBeing) -> None:
    """Promoting an old forgery's hash records bob's being (where the hash really is), never alice's soul."""
    forgery = old_forgery(alice_job, bob)
    promotion = soul_services.soul_promote(hash=bob_hash(), actor=root)
    assert promotion.soul == forgery.soul


def test_a_promotion_whose_being_lacks_the_hash_is_not_run(
    api: Client, alice: User, alice_job: BaseBeing, unchanged: Callable[..., Any]
) -> None:
    """A promotion recorded on alice's soul for a hash her lineage never held (an old forgery) runs nothing: 409."""
    Promotion.objects.create(
        environment="production",
        action=Promotion.Action.PROMOTE,
        hash=bob_hash(),
        alias=alice_job.name,
        soul=alice_job.soul,
        version=1,
        genotype=genotype.with_source({"type": "function"}, BOB_CODE),
        actor_name="someone",
    )
    with unchanged():
        response = post(api, f"/api/aliases/{alice_job.name}/execute?environment=production", {})
    assert (response.status_code, response.json()["code"]) == (409, "promotion_lineage_mismatch")
    assert "not in the lineage" in response.json()["detail"]
    assert not Execution.objects.exists()


# --- one hash, several beings; one alias, several owners --------------------------------------------------------


@pytest.fixture
def twins(alice: User, bob: User, make_being: Callable[..., BaseBeing]) -> tuple[BaseBeing, BaseBeing]:
    """alice's and bob's beings with one alias and one source: one hash, two holders."""
    return (
        make_being("alice-common", genesis={"source": ALICE_CODE}),
        make_being("alice-common", actor=bob, genesis={"source": ALICE_CODE}),
    )


def test_promoting_a_hash_two_beings_hold_must_name_the_being(
    root: User, twins: tuple[BaseBeing, BaseBeing], unchanged: Callable[..., Any]
) -> None:
    """A promotion of a shared hash is a 409 listing the holders with their owners until it names one."""
    mine, bobs = twins
    client = logged_in(root)
    with unchanged():
        response = post(client, f"/api/souls/{mine.hash}/promote", {})
    assert (response.status_code, response.json()["code"]) == (409, "hash_held_by_many")
    detail = response.json()["detail"]
    assert str(mine.soul) in detail and str(bobs.soul) in detail
    assert "owned by alice" in detail and "owned by bob" in detail

    named = post(client, f"/api/souls/{mine.hash}/promote", {"soul": str(mine.soul)})
    assert named.status_code == 201
    assert named.json()["soul"] == str(mine.soul)


def test_alices_production_run_is_hers(
    api: Client, bob_api: Client, root: User, twins: tuple[BaseBeing, BaseBeing]
) -> None:
    """Promoted by naming alice's being, her alias runs in production for her; for bob nothing of it is promoted."""
    mine, _bobs = twins
    soul_services.soul_promote(hash=mine.hash, actor=root, soul=mine.soul)
    assert post(api, "/api/aliases/alice-common/execute?environment=production", {}).status_code == 202
    hidden = post(bob_api, "/api/aliases/alice-common/execute?environment=production", {})
    assert (hidden.status_code, hidden.json()["code"]) == (404, "not_promoted")
    assert str(mine.soul) not in hidden.json()["detail"]


def test_a_being_run_by_soul_in_an_environment_runs_only_its_own_promotion(
    bob: User, root: User, twins: tuple[BaseBeing, BaseBeing]
) -> None:
    """Bob's being run by its soul in production does not run alice's promoted being of the same alias."""
    mine, bobs = twins
    soul_services.soul_promote(hash=mine.hash, actor=root, soul=mine.soul)
    with pytest.raises(AliasNotPromotedError) as refused:
        target_resolve(ref=str(bobs.soul), user=bob, environment="production")
    assert str(mine.soul) not in refused.value.detail  # bob may not see alice's promotion: it is not named to him
    with pytest.raises(AliasNotPromotedError, match="no version of being"):
        target_resolve(ref=str(bobs.soul), user=root, environment="production")


def test_the_souls_command_names_the_being(
    root: User, twins: tuple[BaseBeing, BaseBeing], capsys: pytest.CaptureFixture[str]
) -> None:
    """`souls promote` refuses a shared hash (exit non-zero, the holders listed) and takes --soul."""
    mine, bobs = twins
    with pytest.raises(CommandError, match="2 beings hold hash"):
        call_command("souls", "promote", mine.hash, "--as", "root")
    call_command("souls", "promote", mine.hash, "--soul", str(bobs.soul), "--as", "root")
    assert Promotion.objects.get().soul == bobs.soul


def test_replacing_another_owners_being_under_an_alias_needs_confirmation(
    root: User, carol: User, alice_job: BaseBeing, make_being: Callable[..., BaseBeing], unchanged: Callable[..., Any]
) -> None:
    """carol's being named alice-job does not replace alice's in production unless the promoter says so."""
    soul_services.soul_promote(hash=alice_job.hash, actor=root)
    carols = make_being("alice-job", actor=carol, genesis={"source": HARMLESS})
    client = logged_in(root)
    with unchanged():
        refused = post(client, f"/api/souls/{carols.hash}/promote", {})
    assert (refused.status_code, refused.json()["code"]) == (409, "owner_change_unconfirmed")
    assert "alice's being" in refused.json()["detail"] and "carol's being" in refused.json()["detail"]

    confirmed = post(client, f"/api/souls/{carols.hash}/promote", {"replace_owner": True})
    assert (confirmed.status_code, confirmed.json()["soul"]) == (201, str(carols.soul))
    # alice's own next version needs no confirmation: the owners are the same.
    evolved = being_evolve(being=alice_job, source=ALICE_CODE + "X = 1\n", actor=None).being
    assert post(client, f"/api/souls/{evolved.hash}/promote", {"replace_owner": True}).status_code == 201
    later = being_evolve(being=evolved, source=ALICE_CODE + "X = 1\nY = 2\n", actor=None).being
    assert post(client, f"/api/souls/{later.hash}/promote", {}).status_code == 201


# --- what promotions reveal --------------------------------------------------------------------------------------


def test_promotions_are_seen_by_promoters_and_by_who_may_view_the_being(
    api: Client,
    carol: User,
    promoter: User,
    root: User,
    alice_job: BaseBeing,
    make_being: Callable[..., BaseBeing],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """carol, who may not view alice's being, sees nothing of its promotion at any door, even naming its alias."""
    soul_services.soul_promote(hash=alice_job.hash, actor=root, note="alice's secret plan")
    make_being("alice-job", actor=carol, genesis={"source": HARMLESS})  # her own being with alice's alias
    as_carol, as_promoter = logged_in(carol), logged_in(promoter)
    at = "2999-01-01T00:00:00Z"
    for client, sees in ((as_carol, False), (api, True), (as_promoter, True)):
        souls = client.get("/api/environments/production/souls").json()
        manifest = client.get("/api/environments/production/manifest").json()
        history = client.get("/api/environments/production/history").json()
        at_response = client.get("/api/environments/production/at", {"alias": "alice-job", "at": at})
        assert [item["hash"] for item in souls] == ([alice_job.hash] if sees else [])
        assert [soul["hash"] for soul in manifest["souls"]] == ([alice_job.hash] if sees else [])
        assert [item["hash"] for item in history["items"]] == ([alice_job.hash] if sees else [])
        assert at_response.status_code == (200 if sees else 404)
    alias = as_carol.get("/api/aliases/alice-job").json()  # carol's own being, under alice's alias
    assert alias["production"] == {"production": None, "staging": None}
    assert "secret plan" not in as_carol.get("/api/environments/production/history").content.decode()

    call_command("souls", "production", "--as", "carol")
    assert alice_job.hash not in capsys.readouterr().out
    call_command("souls", "manifest", "--as", "carol")
    assert json.loads(capsys.readouterr().out)["souls"] == []


# --- existence ---------------------------------------------------------------------------------------------------


def test_someone_elses_run_does_not_exist_for_you(
    api: Client, bob_api: Client, alice: User, alice_job: BaseBeing
) -> None:
    """bob reading or cancelling alice's run gets exactly what an unknown id gets."""
    execution = execution_start(target=target_resolve(ref=str(alice_job.soul), user=alice), actor=alice)
    unknown = uuid.uuid4()
    for read in (bob_api.get, lambda url: post(bob_api, f"{url}/cancel", {})):
        hidden, missing = read(f"/api/executions/{execution.pk}"), read(f"/api/executions/{unknown}")
        assert (hidden.status_code, hidden.json()["code"]) == (404, "execution_not_found")
        assert hidden.json()["detail"].replace(str(execution.pk), "X") == missing.json()["detail"].replace(
            str(unknown), "X"
        )
    assert Execution.objects.get(pk=execution.pk).status == "queued"


def test_alias_execute_of_someone_elses_promoted_being_is_not_found(
    bob_api: Client, root: User, alice_job: BaseBeing, unchanged: Callable[..., Any]
) -> None:
    """With or without an environment, bob running alice's alias gets a 404 that names nothing of hers."""
    soul_services.soul_promote(hash=alice_job.hash, actor=root)
    with unchanged():
        plain = post(bob_api, "/api/aliases/alice-job/execute", {})
        production = post(bob_api, "/api/aliases/alice-job/execute?environment=production", {})
    assert (plain.status_code, plain.json()["code"]) == (404, "alias_not_found")
    assert (production.status_code, production.json()["code"]) == (404, "not_promoted")
    assert str(alice_job.soul) not in production.json()["detail"]


# --- smaller -----------------------------------------------------------------------------------------------------


def test_a_flood_of_one_users_runs_sinks_to_the_common_priority(
    alice: User, bob: User, root: User, alice_job: BaseBeing, make_being: Callable[..., BaseBeing]
) -> None:
    """Energy lifts a user's first runs; each run they already have waiting takes a step off, down to 0."""
    services.being_update(being=alice_job, data={"energy_level": 90}, actor=root)
    target = target_resolve(ref=str(alice_job.soul), user=alice)
    priorities = [execution_start(target=target, actor=alice).priority for _ in range(12)]
    assert priorities == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0]
    bobs = make_being("bob-job", actor=bob)
    assert execution_start(target=target_resolve(ref=str(bobs.soul), user=bob), actor=bob).priority == 0


@pytest.mark.parametrize(
    "path", ["/api/beings/", "/api/relationships/", "/api/environments/production/history", "/api/executions"]
)
@pytest.mark.parametrize(
    "cursor",
    [
        ["2024-01-01T00:00:00+00:00", "not-a-uuid"],
        ["not a time", str(uuid.uuid4())],
        [None, str(uuid.uuid4())],
        [{"a": 1}, 5],
        ["2024-01-01T00:00:00+00:00", 1.5],
        ["2024-01-01T00:00:00+00:00", -(10**30)],
        ["2024-01-01T00:00:00", str(uuid.uuid4())],
    ],
)
def test_a_tampered_cursor_is_a_400(api: Client, path: str, cursor: list[Any]) -> None:
    """A cursor the API did not give out is a 400 invalid_cursor, never a 500."""
    import base64

    token = base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode().rstrip("=")
    response = api.get(path, {"after": token})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_cursor")
