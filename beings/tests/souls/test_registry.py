"""The soul registry: promotion, supersession, demotion, point-in-time, manifests, validation, files, beat, admin."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta

import pgtrigger
import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from beings import genotype, services
from beings.evolution import being_evolve
from beings.models import BaseBeing, Promotion, SoulReportFailure, SoulValidation
from beings.souls import files as soul_files
from beings.souls import selectors as soul_selectors
from beings.souls import services as soul_services
from beings.souls.tasks import souls_validate_task
from luxsite.errors import DomainError
from luxsite.tests.fixtures import database_state, logged_in
from luxsite.triggers import append_only_uris

# Production asks for evidence before a promotion; these tests promote to set the scene, the gate is tested on its own.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("promotion_evidence_waived")]

SOURCE = "def run():\n    return 'hi'\n"
REGISTRY_TABLES = ("soul_promotions", "soul_validations", "soul_report_failures")


@pytest.fixture(autouse=True)
def soul_log_dir(settings, tmp_path):
    """Every test writes its soul files into a directory of its own."""
    settings.LUXOS_SOUL_LOG_DIR = tmp_path / "souls"
    return settings.LUXOS_SOUL_LOG_DIR


def grant_promote(user: User) -> User:
    """Give ``user`` the global promote permission; a fresh instance, as Django caches permissions."""
    user.user_permissions.add(Permission.objects.get(codename="promote_soul"))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def promoter(alice):
    """alice, who creates the beings of these tests, with the promote permission."""
    return grant_promote(alice)


def registry_state() -> dict[str, str]:
    """Every row of the registry's tables and of the tables a write to beings may touch."""
    state = database_state()
    with connection.cursor() as cursor:
        for table in REGISTRY_TABLES:
            cursor.execute(f"SELECT count(*), coalesce(string_agg(t::text, '|' ORDER BY t.id), '') FROM {table} t")
            count, rows = cursor.fetchone()
            state[table] = f"{count}:{hashlib.sha256(rows.encode()).hexdigest()}"
    return state


@pytest.fixture
def nothing_written() -> Callable[[], contextlib.AbstractContextManager[None]]:
    """``with nothing_written(): ...``: a refused registry operation leaves every table as it was."""

    @contextlib.contextmanager
    def block() -> Iterator[None]:
        before = registry_state()
        yield
        assert registry_state() == before, "a refused operation changed the database"

    return block


def evolve(being: BaseBeing, line: str, actor: User) -> BaseBeing:
    """Append one line to the being's source: an evolution (same soul, next version)."""
    source = being.genesis["source"] + line
    evolution = being_evolve(being=being, source=source, reason="test", actor=actor)
    assert evolution.kind == "evolution"
    return BaseBeing.objects.get(soul=evolution.being.soul)


def tamper(sql: str, params: list | None = None) -> None:
    """Write to soul_promotions behind the registry's back, as an intruder able to lift its rule would."""
    with pgtrigger.ignore(*append_only_uris("beings.Promotion")), connection.cursor() as cursor:
        cursor.execute(sql, params or [])


# --- promotion ---------------------------------------------------------------------------------------


def test_promote_keeps_an_immutable_copy_of_the_genotype(promoter, make_being):
    """A promotion stores the genotype, alias, version, soul, who, when and why; the hash is its genotype's."""
    being = make_being("greeter", genesis={"source": SOURCE, "description": "says hi"})
    before = timezone.now()
    promotion = soul_services.soul_promote(hash=being.hash, actor=promoter, note="first release")
    assert promotion.action == "promote"
    assert promotion.environment == "production"
    assert promotion.hash == being.hash
    assert promotion.alias == "greeter"
    assert promotion.version == 1
    assert promotion.soul == being.soul
    assert promotion.genotype == {
        "type": "function",
        "language": "python",
        "entrypoint": "run",
        "source": SOURCE,
        "workload": "cpu",
    }
    assert genotype.soul_hash(promotion.genotype) == promotion.hash
    assert promotion.actor_id == promoter.pk and promotion.actor_name == "alice"
    assert promotion.note == "first release"
    assert promotion.created_at >= before - timedelta(seconds=1)
    assert promotion.ends is None
    assert list(soul_selectors.promotions_active(environment="production")) == [promotion]
    assert list(soul_selectors.promotions_active(environment="staging")) == []


def test_promote_an_ancestor_by_prefix_stores_its_rebuilt_genotype(promoter, make_being):
    """A 12-character prefix of an old version's hash promotes that version, its source rebuilt from the lineage."""
    being = make_being("greeter", genesis={"source": SOURCE})
    first_hash = being.hash
    being = evolve(evolve(being, "A = 1\n", promoter), "B = 2\n", promoter)
    promotion = soul_services.soul_promote(hash=first_hash[:12], environment="staging", actor=promoter)
    assert promotion.hash == first_hash
    assert promotion.version == 1
    assert promotion.genotype["source"] == SOURCE
    assert being.version == 3


def test_promoting_another_hash_of_the_alias_supersedes_the_active_one(promoter, make_being):
    """The new promotion ends the old one; the old row stays as it was and the alias has one active hash."""
    being = make_being("greeter", genesis={"source": SOURCE})
    first = soul_services.soul_promote(hash=being.hash, actor=promoter)
    being = evolve(being, "A = 1\n", promoter)
    second = soul_services.soul_promote(hash=being.hash, actor=promoter, note="v2")
    assert second.ends == first
    assert list(soul_selectors.promotions_active(environment="production")) == [second]
    old = Promotion.objects.get(pk=first.pk)
    assert (old.hash, old.version, old.ends_id, old.ended_by) == (first.hash, 1, None, second)
    assert [p.pk for p in soul_selectors.promotion_history(environment="production", alias="greeter")] == [
        second.pk,
        first.pk,
    ]


def test_promotions_in_one_environment_leave_the_other_alone(promoter, make_being):
    """Each environment has its own active hash per alias."""
    being = make_being("greeter", genesis={"source": SOURCE})
    staging = soul_services.soul_promote(hash=being.hash, environment="staging", actor=promoter)
    being = evolve(being, "A = 1\n", promoter)
    production = soul_services.soul_promote(hash=being.hash, actor=promoter)
    assert production.ends is None
    assert soul_selectors.soul_resolve(alias="greeter", environment="staging") == staging
    assert soul_selectors.soul_resolve(alias="greeter", environment="production") == production


def test_promoting_the_active_hash_again_is_a_conflict(promoter, make_being, nothing_written):
    """Promoting the hash already active for the alias is 409 already_promoted, and writes nothing."""
    being = make_being("greeter", genesis={"source": SOURCE})
    soul_services.soul_promote(hash=being.hash, actor=promoter)
    with nothing_written(), pytest.raises(DomainError) as refused:
        soul_services.soul_promote(hash=being.hash[:20], actor=promoter)
    assert (refused.value.status, refused.value.code) == (409, "already_promoted")


def test_promote_under_another_alias(promoter, make_being, nothing_written):
    """``alias`` promotes a version under another name; one hash is active under one alias per environment."""
    being = make_being("greeter", genesis={"source": SOURCE})
    promotion = soul_services.soul_promote(hash=being.hash, actor=promoter, alias="  hello-service ")
    assert promotion.alias == "hello-service"
    assert soul_selectors.soul_resolve(alias="hello-service", environment="production") == promotion
    with nothing_written(), pytest.raises(DomainError) as refused:
        soul_services.soul_promote(hash=being.hash, actor=promoter)
    assert (refused.value.status, refused.value.code) == (409, "already_promoted")
    assert "hello-service" in refused.value.detail


# --- demotion ----------------------------------------------------------------------------------------


def test_demote_records_the_end_of_the_promotion(promoter, make_being):
    """A demotion is a new row ending the promotion, copying what it named; the alias then resolves to nothing."""
    being = make_being("greeter", genesis={"source": SOURCE})
    promotion = soul_services.soul_promote(hash=being.hash, actor=promoter)
    demotion = soul_services.soul_demote(hash=being.hash[:12], actor=promoter, note="rollback")
    assert demotion.action == "demote"
    assert demotion.ends == promotion
    assert (demotion.hash, demotion.alias, demotion.soul, demotion.version, demotion.genotype) == (
        promotion.hash,
        promotion.alias,
        promotion.soul,
        promotion.version,
        promotion.genotype,
    )
    assert demotion.note == "rollback" and demotion.actor_name == "alice"
    assert list(soul_selectors.promotions_active(environment="production")) == []
    assert Promotion.objects.count() == 2
    with pytest.raises(DomainError) as missing:
        soul_selectors.soul_resolve(alias="greeter", environment="production")
    assert (missing.value.status, missing.value.code) == (404, "not_promoted")


def test_demote_what_is_not_active_is_a_conflict(promoter, make_being, nothing_written):
    """Demoting a hash that is not active there (never promoted, demoted already, other environment) is 409."""
    being = make_being("greeter", genesis={"source": SOURCE})
    soul_services.soul_promote(hash=being.hash, actor=promoter)
    soul_services.soul_demote(hash=being.hash, actor=promoter)
    other = make_being("other", genesis={"source": "def run():\n    return 2\n"})
    soul_services.soul_promote(hash=other.hash, environment="staging", actor=promoter)
    for hash in (being.hash, other.hash, "ab" * 32):
        with nothing_written(), pytest.raises(DomainError) as refused:
            soul_services.soul_demote(hash=hash, actor=promoter)
        assert (refused.value.status, refused.value.code) == (409, "not_promoted")


def test_demote_works_when_the_being_is_gone(promoter, make_being):
    """The promotion's copy is enough to demote a hash whose being was deleted."""
    being = make_being("greeter", genesis={"source": SOURCE})
    soul_services.soul_promote(hash=being.hash, actor=promoter)
    services.being_delete(being=being, actor=promoter)
    demotion = soul_services.soul_demote(hash=being.hash, actor=promoter)
    assert demotion.genotype["source"] == SOURCE


# --- refusals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "status", "code"),
    [
        (lambda b, u: soul_services.soul_promote(hash=b.hash, environment="prod", actor=u), 422, "environment_unknown"),
        (lambda b, u: soul_services.soul_promote(hash=b.hash, environment="", actor=u), 422, "environment_unknown"),
        (lambda b, u: soul_services.soul_promote(hash="not-a-hash", actor=u), 422, "hash_invalid"),
        (lambda b, u: soul_services.soul_promote(hash=b.hash[:11], actor=u), 422, "hash_invalid"),
        (lambda b, u: soul_services.soul_promote(hash="0" * 64, actor=u), 404, "soul_not_found"),
        (lambda b, u: soul_services.soul_promote(hash=b.hash, actor=u, alias=" "), 422, "alias_invalid"),
        (lambda b, u: soul_services.soul_promote(hash=b.hash, actor=u, alias="x" * 201), 422, "alias_invalid"),
        (lambda b, u: soul_services.soul_promote(hash=b.hash, actor=u, note="x" * 2001), 422, "note_invalid"),
        (lambda b, u: soul_services.soul_demote(hash=b.hash, environment="qa", actor=u), 422, "environment_unknown"),
        (lambda b, u: soul_services.soul_demote(hash="zz" * 32, actor=u), 422, "hash_invalid"),
        (lambda b, u: soul_services.soul_demote(hash=b.hash, actor=u, note="x" * 2001), 422, "note_invalid"),
        (lambda b, u: soul_services.environment_validate(environment="moon", actor=u), 422, "environment_unknown"),
        (lambda b, u: soul_selectors.soul_resolve(alias="greeter", environment="moon"), 422, "environment_unknown"),
        (lambda b, u: soul_selectors.manifest_build(environment="moon"), 422, "environment_unknown"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(promoter, make_being, nothing_written, call, status, code):
    """Unknown environment, malformed or unknown hash, bad alias or note: the error, and nothing written."""
    being = make_being("greeter", genesis={"source": SOURCE})
    with nothing_written(), pytest.raises(DomainError) as refused:
        call(being, promoter)
    assert (refused.value.status, refused.value.code) == (status, code)


def test_promote_demote_validate_need_the_global_permission(alice, bob, make_being, nothing_written):
    """Without beings.promote_soul (an object permission is not enough) every registry write is 403."""
    being = make_being("greeter", genesis={"source": SOURCE})
    from guardian.shortcuts import assign_perm

    assign_perm("beings.promote_soul", alice, being)
    alice = User.objects.get(pk=alice.pk)
    calls = [
        lambda user: soul_services.soul_promote(hash=being.hash, actor=user),
        lambda user: soul_services.soul_demote(hash=being.hash, actor=user),
        lambda user: soul_services.environment_validate(environment="production", actor=user),
    ]
    from django.contrib.auth.models import AnonymousUser

    for user in (alice, bob, AnonymousUser()):
        for call in calls:
            with nothing_written(), pytest.raises(DomainError) as refused:
                call(user)
            assert (refused.value.status, refused.value.code) == (403, "permission_denied")


def test_promoter_must_see_the_being(alice, bob, make_being, nothing_written):
    """A promoter who may not view the being cannot promote its hash: it is not found for them."""
    being = make_being("greeter", genesis={"source": SOURCE})
    bob = grant_promote(bob)
    with nothing_written(), pytest.raises(DomainError) as refused:
        soul_services.soul_promote(hash=being.hash, actor=bob)
    assert (refused.value.status, refused.value.code) == (404, "soul_not_found")


def test_superuser_promotes_without_an_explicit_grant(root, make_being):
    """A superuser holds every permission, promote_soul included, and sees every being."""
    being = make_being("greeter", genesis={"source": SOURCE})
    assert soul_services.soul_promote(hash=being.hash, actor=root).actor_name == "root"


def fake_ancestors(being: BaseBeing, hashes: list[str]) -> None:
    """Give a being lineage entries with chosen hashes (the CHECK constraint covers only the current one)."""
    entries: list[dict[str, object]] = [
        {"version": 0, "hash": value, "created_at": None, "kind": "genesis", "diff": []} for value in hashes
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE base_beings SET genesis = jsonb_set(genesis, '{ancestors}', %s::jsonb) WHERE soul = %s",
            [json.dumps(entries), being.soul],
        )


def test_ambiguous_prefix_is_a_conflict_listing_the_candidates(promoter, make_being, nothing_written):
    """A prefix that names two hashes is 409 hash_ambiguous with both hashes in the detail."""
    being = make_being("greeter", genesis={"source": SOURCE})
    twins = ["abcdef012345" + "0" * 52, "abcdef012345" + "1" * 52]
    fake_ancestors(being, twins)
    with nothing_written(), pytest.raises(DomainError) as refused:
        soul_services.soul_promote(hash="abcdef012345", actor=promoter)
    assert (refused.value.status, refused.value.code) == (409, "hash_ambiguous")
    assert all(twin in refused.value.detail for twin in twins)


def test_a_version_whose_lineage_does_not_rebuild_cannot_be_promoted(promoter, make_being, nothing_written):
    """An ancestor entry whose diff no longer gives its hash is refused (409 lineage_broken), nothing stored."""
    being = make_being("greeter", genesis={"source": SOURCE})
    first_hash = being.hash
    evolve(being, "A = 1\n", promoter)
    lineage_tamper(being)
    with nothing_written(), pytest.raises(DomainError) as refused:
        soul_services.soul_promote(hash=first_hash, actor=promoter)
    assert (refused.value.status, refused.value.code) == (409, "lineage_broken")


def lineage_tamper(being: BaseBeing) -> None:
    """Change the reverse diff of the being's first ancestor in place, as a raw UPDATE would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE base_beings SET genesis = jsonb_set(genesis, '{ancestors,0,diff}', %s::jsonb) WHERE soul = %s",
            [json.dumps([[0, 0, ["import os\n"]]]), being.soul],
        )


# --- append-only ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE soul_promotions SET note = 'rewritten'",
        "UPDATE soul_promotions SET genotype = jsonb_set(genotype, '{source}', '\"evil\"')",
        "DELETE FROM soul_promotions",
        "TRUNCATE soul_promotions",
    ],
)
def test_the_database_refuses_to_change_or_delete_promotions(promoter, make_being, sql):
    """Promotions are append-only in PostgreSQL itself: a raw UPDATE, DELETE or TRUNCATE raises."""
    being = make_being("greeter", genesis={"source": SOURCE})
    promotion = soul_services.soul_promote(hash=being.hash, actor=promoter, note="kept")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE waits for no deferred foreign-key check
        cursor.execute(sql)
    kept = Promotion.objects.get(pk=promotion.pk)
    assert (kept.note, kept.genotype) == ("kept", promotion.genotype)


# --- point in time -----------------------------------------------------------------------------------


def test_soul_at_answers_which_hash_ran_at_any_time(promoter, make_being, django_assert_num_queries):
    """Through promotions, a supersession, a demotion and a new promotion, each moment has its answer, in one query."""
    being = make_being("greeter", genesis={"source": SOURCE})
    v1 = being.hash
    being = evolve(being, "A = 1\n", promoter)
    v2 = being.hash
    other = make_being("other", genesis={"source": "def run():\n    return 2\n"})
    first = soul_services.soul_promote(hash=v1, actor=promoter)
    soul_services.soul_promote(hash=other.hash, actor=promoter)
    second = soul_services.soul_promote(hash=v2, actor=promoter)
    soul_services.soul_promote(hash=v1, environment="staging", actor=promoter)
    demotion = soul_services.soul_demote(hash=v2, actor=promoter)
    third = soul_services.soul_promote(hash=v1, actor=promoter)
    moments = [first.created_at, second.created_at, demotion.created_at, third.created_at]
    assert moments == sorted(moments) and len(set(moments)) == 4

    def ran(at):
        with django_assert_num_queries(1):
            promotion = soul_selectors.soul_at(alias="greeter", environment="production", at=at)
        return promotion.hash if promotion else None

    tick = timedelta(microseconds=1)
    assert ran(first.created_at - tick) is None
    assert ran(first.created_at) == v1
    assert ran(second.created_at - tick) == v1
    assert ran(second.created_at) == v2
    assert ran(demotion.created_at - tick) == v2
    assert ran(demotion.created_at) is None
    assert ran(third.created_at) == v1
    assert ran(timezone.now() + timedelta(days=1)) == v1
    assert soul_selectors.soul_at(alias="greeter", environment="production", at=third.created_at) == third
    naive = third.created_at.astimezone(UTC).replace(tzinfo=None)
    assert soul_selectors.soul_at(alias="greeter", environment="production", at=naive) == third


# --- production runs pinned hashes ---------------------------------------------------------------------


def test_evolving_or_mutating_a_being_never_changes_what_production_resolves(promoter, make_being):
    """After promotion, an evolution and a mutation of the being leave the resolved hash and genotype as they were."""
    being = make_being("greeter", genesis={"source": SOURCE})
    promoted_hash = being.hash
    soul_services.soul_promote(hash=promoted_hash, actor=promoter)
    being = evolve(being, "A = 1\n", promoter)
    mutation = being_evolve(being=being, source="def run():\n    return 'bye'\n", reason="", actor=promoter)
    assert mutation.kind == "mutation"
    resolved = soul_selectors.soul_resolve(alias="greeter", environment="production")
    assert resolved.hash == promoted_hash
    assert resolved.genotype["source"] == SOURCE
    assert genotype.soul_hash(resolved.genotype) == promoted_hash


# --- manifests ---------------------------------------------------------------------------------------


def test_manifest_lists_the_environment_with_a_digest_of_its_souls(promoter, make_being):
    """The manifest's souls are sorted by alias and its digest is the sha256 of their canonical JSON."""
    zeta = make_being("zeta", genesis={"source": "def run():\n    return 'z'\n"})
    alpha = make_being("alpha", genesis={"source": SOURCE})
    soul_services.soul_promote(hash=zeta.hash, actor=promoter)
    alpha_promotion = soul_services.soul_promote(hash=alpha.hash, actor=promoter, note="x")
    staged = make_being("staged", genesis={"source": "def run():\n    return 's'\n"})
    soul_services.soul_promote(hash=staged.hash, environment="staging", actor=promoter)
    manifest = soul_selectors.manifest_build(environment="production")
    assert set(manifest) == {"environment", "generated_at", "souls_count", "souls", "digest"}
    assert manifest["environment"] == "production"
    assert manifest["souls_count"] == 2
    assert [soul["alias"] for soul in manifest["souls"]] == ["alpha", "zeta"]
    assert manifest["souls"][0] == {
        "hash": alpha.hash,
        "alias": "alpha",
        "version": 1,
        "soul": str(alpha.soul),
        "promoted_at": alpha_promotion.created_at.isoformat(),
        "promoted_by": "alice",
    }
    spelled = json.dumps(manifest["souls"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert manifest["digest"] == hashlib.sha256(spelled.encode("utf-8")).hexdigest()
    again = soul_selectors.manifest_build(environment="production")
    assert again["digest"] == manifest["digest"]
    soul_services.soul_demote(hash=zeta.hash, actor=promoter)
    assert soul_selectors.manifest_build(environment="production")["digest"] != manifest["digest"]


def test_manifest_of_an_empty_environment(db):
    """An environment with nothing promoted has an empty manifest whose digest is that of []."""
    manifest = soul_selectors.manifest_build(environment="staging")
    assert (manifest["souls_count"], manifest["souls"]) == (0, [])
    assert manifest["digest"] == hashlib.sha256(b"[]").hexdigest()


# --- validation --------------------------------------------------------------------------------------


def test_validate_recomputes_every_active_hash(promoter, make_being):
    """With intact genotypes and lineages the validation passes and is stored with who and through which door."""
    being = make_being("greeter", genesis={"source": SOURCE})
    first_hash = being.hash
    being = evolve(being, "A = 1\n", promoter)
    soul_services.soul_promote(hash=first_hash, actor=promoter)
    other = make_being("other", genesis={"source": "def run():\n    return 2\n"})
    soul_services.soul_promote(hash=other.hash, actor=promoter)
    validation = soul_services.environment_validate(environment="production", actor=promoter, door="api")
    assert (validation.ok, validation.checked, validation.problems) == (True, 2, [])
    assert (validation.environment, validation.door, validation.actor_name) == ("production", "api", "alice")
    assert SoulValidation.objects.get() == validation
    system = soul_services.environment_validate(environment="staging", door="task")
    assert (system.ok, system.checked, system.actor_name) == (True, 0, "(task)")


def test_validate_reports_a_tampered_stored_genotype(promoter, make_being):
    """A genotype copy changed in the database no longer hashes to its hash: the validation fails naming it."""
    being = make_being("greeter", genesis={"source": SOURCE})
    promotion = soul_services.soul_promote(hash=being.hash, actor=promoter)
    tamper(
        "UPDATE soul_promotions SET genotype = jsonb_set(genotype, '{source}', '\"evil\"') WHERE id = %s",
        [promotion.pk],
    )
    validation = soul_services.environment_validate(environment="production", actor=promoter)
    assert not validation.ok
    assert validation.checked == 1
    [problem] = validation.problems
    assert {key: problem[key] for key in ("hash", "alias", "soul", "version")} == {
        "hash": being.hash,
        "alias": "greeter",
        "soul": str(being.soul),
        "version": 1,
    }
    assert problem["reason"].startswith("stored genotype mismatch")


def test_validate_reports_a_tampered_lineage(promoter, make_being):
    """An ancestor's reverse diff changed by a raw UPDATE: the promoted old version no longer rebuilds."""
    being = make_being("greeter", genesis={"source": SOURCE})
    first_hash = being.hash
    evolve(being, "A = 1\n", promoter)
    soul_services.soul_promote(hash=first_hash, actor=promoter)
    lineage_tamper(being)
    validation = soul_services.environment_validate(environment="production", actor=promoter)
    assert not validation.ok
    [problem] = validation.problems
    assert problem["hash"] == first_hash
    assert problem["reason"].startswith("lineage mismatch")


def test_validate_reports_a_lineage_that_lost_the_version(promoter, make_being):
    """The owner's lineage no longer holds the promoted version (ancestors removed): missing lineage."""
    being = make_being("greeter", genesis={"source": SOURCE})
    first_hash = being.hash
    evolve(being, "A = 1\n", promoter)
    soul_services.soul_promote(hash=first_hash, actor=promoter)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE base_beings SET genesis = jsonb_set(genesis, '{ancestors}', '[]') WHERE soul = %s", [being.soul]
        )
    [problem] = soul_services.environment_validate(environment="production", actor=promoter).problems
    assert problem["reason"].startswith("missing lineage")


@pytest.mark.parametrize("entry", ['"junk"', '{"version": 1}', '{"version": 1, "hash": "a", "soul": "not-a-uuid"}'])
def test_validate_reports_a_malformed_lineage_entry(promoter, make_being, entry):
    """An ancestor entry replaced by a raw UPDATE with something that is no entry: reported, not a crash."""
    being = make_being("greeter", genesis={"source": SOURCE})
    first_hash = being.hash
    evolve(being, "A = 1\n", promoter)
    soul_services.soul_promote(hash=first_hash, actor=promoter)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE base_beings SET genesis = jsonb_set(genesis, '{ancestors,0}', %s::jsonb) WHERE soul = %s",
            [entry, being.soul],
        )
    validation = soul_services.environment_validate(environment="production", actor=promoter)
    [problem] = validation.problems
    assert (validation.ok, problem["hash"]) == (False, first_hash)
    assert problem["reason"].startswith("lineage broken")


def test_validate_reports_a_tampered_promoted_version(promoter, make_being):
    """A promotion whose version number was rewritten names a version its being does not hold with that hash."""
    being = make_being("greeter", genesis={"source": SOURCE})
    promotion = soul_services.soul_promote(hash=being.hash, actor=promoter)
    tamper("UPDATE soul_promotions SET version = 7 WHERE id = %s", [promotion.pk])
    [problem] = soul_services.environment_validate(environment="production", actor=promoter).problems
    assert (problem["hash"], problem["version"]) == (being.hash, 7)
    assert problem["reason"].startswith("missing lineage")


def test_validate_after_the_being_is_deleted(promoter, make_being):
    """A deleted being's promoted version is missing lineage, unless a mutant still carries it in its ancestors."""
    lonely = make_being("lonely", genesis={"source": SOURCE})
    soul_services.soul_promote(hash=lonely.hash, actor=promoter)
    parent = make_being("parent", genesis={"source": "def run():\n    return 'p'\n"})
    soul_services.soul_promote(hash=parent.hash, actor=promoter)
    child = being_evolve(being=parent, source="def run():\n    return 'c'\n", reason="", actor=promoter).being
    assert child.soul != parent.soul
    for being in (lonely, parent):
        with connection.cursor() as cursor:  # the mutation link would make being_delete refuse
            cursor.execute("DELETE FROM relationships WHERE source_soul = %s", [being.soul])
        services.being_delete(being=BaseBeing.objects.get(soul=being.soul), actor=promoter)
    validation = soul_services.environment_validate(environment="production", actor=promoter)
    assert validation.checked == 2
    assert [(problem["alias"], problem["reason"]) for problem in validation.problems] == [
        ("lonely", "missing lineage: any being holds no version with this hash")
    ]


def test_validation_reports_every_problem_in_one_row(promoter, make_being):
    """Two broken promotions: one failed validation listing both."""
    one = make_being("one", genesis={"source": SOURCE})
    two = make_being("two", genesis={"source": "def run():\n    return 2\n"})
    for being in (one, two):
        soul_services.soul_promote(hash=being.hash, actor=promoter)
    tamper('UPDATE soul_promotions SET genotype = genotype || \'{"workload": "io"}\'')
    validation = soul_services.environment_validate(environment="production", actor=promoter)
    assert sorted(problem["alias"] for problem in validation.problems) == ["one", "two"]


# --- files -------------------------------------------------------------------------------------------


def test_promote_and_demote_rewrite_the_environment_files(
    promoter, make_being, soul_log_dir, django_capture_on_commit_callbacks
):
    """After the commit, production_config.json and the manifest hold what production runs."""
    being = make_being("greeter", genesis={"source": SOURCE})
    with django_capture_on_commit_callbacks(execute=True):
        promotion = soul_services.soul_promote(hash=being.hash, actor=promoter)
    config = json.loads((soul_log_dir / "production_config.json").read_text())
    assert config == {
        "greeter": {
            "hash": being.hash,
            "version": 1,
            "soul": str(being.soul),
            "promoted_at": promotion.created_at.isoformat(),
        }
    }
    manifest = json.loads((soul_log_dir / "deployment_manifest_production.json").read_text())
    assert manifest["souls_count"] == 1
    assert manifest["digest"] == soul_selectors.manifest_build(environment="production")["digest"]
    assert not (soul_log_dir / "deployment_manifest_staging.json").exists()
    with django_capture_on_commit_callbacks(execute=True):
        soul_services.soul_demote(hash=being.hash, actor=promoter)
    assert json.loads((soul_log_dir / "production_config.json").read_text()) == {}
    assert json.loads((soul_log_dir / "deployment_manifest_production.json").read_text())["souls"] == []


def test_no_file_is_written_for_a_refused_or_rolled_back_promotion(
    promoter, make_being, soul_log_dir, django_capture_on_commit_callbacks
):
    """The files follow commits: a promotion rolled back with its transaction leaves no file."""
    being = make_being("greeter", genesis={"source": SOURCE})
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        contextlib.suppress(RuntimeError),
        transaction.atomic(),
    ):
        soul_services.soul_promote(hash=being.hash, actor=promoter)
        raise RuntimeError("the caller fails after promoting")
    assert callbacks == []
    assert not (soul_log_dir / "production_config.json").exists()
    assert not Promotion.objects.exists()


def test_a_file_that_cannot_be_written_never_fails_the_promotion(
    promoter, make_being, settings, tmp_path, caplog, django_capture_on_commit_callbacks
):
    """With the log directory unusable the promotion stands; the failure is logged and recorded."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the directory should be")
    settings.LUXOS_SOUL_LOG_DIR = blocker / "souls"
    being = make_being("greeter", genesis={"source": SOURCE})
    with django_capture_on_commit_callbacks(execute=True):
        promotion = soul_services.soul_promote(hash=being.hash, actor=promoter)
    assert Promotion.objects.get() == promotion
    failure = SoulReportFailure.objects.get(operation="environment_files")
    assert "NotADirectoryError" in failure.error or "FileExistsError" in failure.error
    assert "could not write the environment files" in caplog.text


def test_environment_files_for_every_environment(promoter, make_being, soul_log_dir):
    """Without an environment, every environment's manifest is written, and production's config."""
    being = make_being("greeter", genesis={"source": SOURCE})
    soul_services.soul_promote(hash=being.hash, environment="staging", actor=promoter)
    written = soul_files.environment_files_write()
    assert sorted(path.name for path in written) == [
        "deployment_manifest_production.json",
        "deployment_manifest_staging.json",
        "production_config.json",
    ]
    staging = json.loads((soul_log_dir / "deployment_manifest_staging.json").read_text())
    assert [soul["hash"] for soul in staging["souls"]] == [being.hash]
    assert not list(soul_log_dir.glob(".*.tmp"))


# --- concurrency -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_promotions_of_one_alias_leave_one_active_hash(promoter, make_being, settings, tmp_path):
    """Eight threads promote different versions of one alias at once: one active hash, a single chain of ends."""
    settings.LUXOS_SOUL_LOG_DIR = tmp_path / "concurrent"
    being = make_being("greeter", genesis={"source": SOURCE})
    hashes = [being.hash]
    for number in range(7):
        being = evolve(being, f"V{number} = {number}\n", promoter)
        hashes.append(being.hash)
    start = threading.Barrier(len(hashes))
    errors: list[BaseException] = []

    def promote(hash: str) -> None:
        try:
            start.wait()
            soul_services.soul_promote(hash=hash, actor=promoter)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=promote, args=(hash,)) for hash in hashes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    active = list(soul_selectors.promotions_active(environment="production"))
    assert len(active) == 1
    chain = list(Promotion.objects.order_by("created_at", "id"))
    assert len(chain) == 8
    assert [p.ends_id for p in chain] == [None, *[p.pk for p in chain[:-1]]]
    assert chain[-1] == active[0]
    written = json.loads((tmp_path / "concurrent" / "production_config.json").read_text())
    assert written["greeter"]["hash"] == active[0].hash


# --- beat --------------------------------------------------------------------------------------------


def test_daily_validation_is_scheduled():
    """Beat runs the production validation every day on the io queue."""
    entry = settings.CELERY_BEAT_SCHEDULE["souls-validate-daily"]
    assert entry["task"] == "beings.tasks.souls_validate"
    assert entry["options"] == {"queue": "io"}
    schedule = entry["schedule"]
    assert getattr(schedule, "hour", None) == {3} and getattr(schedule, "minute", None) == {0}


@pytest.mark.django_db(transaction=True)
def test_validation_task_runs_on_a_real_worker(celery_worker, promoter, make_being):
    """The beat task, sent to the worker, validates production and stores the result through the task door."""
    being = make_being("greeter", genesis={"source": SOURCE})
    promotion = soul_services.soul_promote(hash=being.hash, actor=promoter)
    result = souls_validate_task.delay().get(timeout=30)
    stored = SoulValidation.objects.get(pk=result["id"])
    assert result == {"id": stored.pk, "environment": "production", "ok": True, "checked": 1, "problems": 0}
    assert (stored.door, stored.actor_name) == ("task", "(task)")
    tamper(
        "UPDATE soul_promotions SET genotype = jsonb_set(genotype, '{source}', '\"evil\"') WHERE id = %s",
        [promotion.pk],
    )
    failed = souls_validate_task.delay("production").get(timeout=30)
    assert (failed["ok"], failed["problems"]) == (False, 1)
    refused = souls_validate_task.delay("moon").get(timeout=30)
    assert refused["status"] == "refused" and refused["code"] == "environment_unknown"


# --- admin -------------------------------------------------------------------------------------------


def test_admin_lists_promotions_read_only(root, promoter, make_being):
    """The promotion admin lists events with their supersessions; nothing may be added, changed or deleted there."""
    being = make_being("greeter", genesis={"source": SOURCE})
    first = soul_services.soul_promote(hash=being.hash, actor=promoter)
    being = evolve(being, "A = 1\n", promoter)
    second = soul_services.soul_promote(hash=being.hash, actor=promoter, note="v2")
    client = logged_in(root)
    page = client.get("/admin/beings/promotion/")
    assert page.status_code == 200
    html = page.content.decode()
    assert being.hash[:12] in html and first.hash[:12] in html
    assert "/admin/beings/promotion/add/" not in html
    assert client.get(f"/admin/beings/promotion/?environment={'production'}&action=promote").status_code == 200
    assert being.hash[:12] in client.get(f"/admin/beings/promotion/?q={being.hash[:14]}").content.decode()
    detail = client.get(f"/admin/beings/promotion/{second.pk}/change/")
    assert detail.status_code == 200
    assert "return" in detail.content.decode() and "v2" in detail.content.decode()
    assert client.get("/admin/beings/promotion/add/").status_code == 403
    assert client.post(f"/admin/beings/promotion/{second.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Promotion.objects.count() == 2


def test_admin_shows_the_last_validation_of_each_environment(root, promoter, make_being):
    """The validation list leads with the newest result per environment, problems spelled out."""
    being = make_being("greeter", genesis={"source": SOURCE})
    promotion = soul_services.soul_promote(hash=being.hash, actor=promoter)
    soul_services.environment_validate(environment="production", actor=promoter)
    tamper(
        "UPDATE soul_promotions SET genotype = jsonb_set(genotype, '{source}', '\"evil\"') WHERE id = %s",
        [promotion.pk],
    )
    failed = soul_services.environment_validate(environment="production", actor=promoter)
    client = logged_in(root)
    html = client.get("/admin/beings/soulvalidation/").content.decode()
    assert "Last validation per environment" in html
    assert "FAILED" in html and being.hash in html and "stored genotype mismatch" in html
    assert "staging" in html and "never validated" in html
    detail = client.get(f"/admin/beings/soulvalidation/{failed.pk}/change/")
    assert detail.status_code == 200 and "stored genotype mismatch" in detail.content.decode()
    assert client.get("/admin/beings/soulvalidation/add/").status_code == 403


def test_admin_validates_an_environment_on_request(root, bob, make_being):
    """The "validate now" button validates through the admin door; without the permission it is refused."""
    client = logged_in(root)
    response = client.post("/admin/beings/soulvalidation/validate/", {"environment": "staging"}, follow=True)
    assert response.status_code == 200
    validation = SoulValidation.objects.get()
    assert (validation.environment, validation.door, validation.actor_name, validation.ok) == (
        "staging",
        "admin",
        "root",
        True,
    )
    assert "Validated staging: OK, 0 hash(es) recomputed." in response.content.decode()
    bad = client.post("/admin/beings/soulvalidation/validate/", {"environment": "moon"}, follow=True)
    assert "is not an environment" in bad.content.decode()
    bob.is_staff = True
    bob.save()
    bob.user_permissions.add(Permission.objects.get(codename="view_soulvalidation"))
    refused = logged_in(bob).post("/admin/beings/soulvalidation/validate/", {"environment": "staging"}, follow=True)
    assert "that needs beings.promote_soul" in refused.content.decode()
    assert SoulValidation.objects.count() == 1


def test_admin_validation_that_fails_says_so(root, promoter, make_being):
    """A failing validation from the admin is an error message and a stored failed result."""
    being = make_being("greeter", genesis={"source": SOURCE})
    promotion = soul_services.soul_promote(hash=being.hash, actor=promoter)
    tamper("UPDATE soul_promotions SET genotype = '{}' WHERE id = %s", [promotion.pk])
    response = logged_in(root).post(
        "/admin/beings/soulvalidation/validate/", {"environment": "production"}, follow=True
    )
    assert "Validated production: FAILED, 1 problem(s)." in response.content.decode()
    assert SoulValidation.objects.get().ok is False
    assert logged_in(root).get("/admin/beings/soulvalidation/validate/").status_code == 405


def test_admin_lists_report_failures(root, promoter, make_being, settings, tmp_path):
    """A file that could not be written shows in the admin with its error."""
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    settings.LUXOS_SOUL_LOG_DIR = blocker / "souls"
    soul_files.environment_files_write(environment="production")
    html = logged_in(root).get("/admin/beings/soulreportfailure/").content.decode()
    assert "environment_files" in html and "blocker" in html
