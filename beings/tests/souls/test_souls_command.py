"""``manage.py souls``: every subcommand, its output for people and for scripts, and exit 1 on every refusal."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError

from beings.evolution import being_evolve
from beings.models import BaseBeing, Promotion, SoulValidation
from beings.selectors import being_versions
from beings.souls import services as soul_services
from beings.tests.souls.test_registry import lineage_tamper, tamper
from luxsite.tests.helpers import command, command_refused

# Production asks for evidence before a promotion; these tests promote to set the scene, the gate is tested on its own.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("promotion_evidence_waived")]

SOURCE = "def run():\n    return 'hi'\n"


@pytest.fixture(autouse=True)
def soul_log_dir(settings, tmp_path):
    settings.LUXOS_SOUL_LOG_DIR = tmp_path / "souls"
    return settings.LUXOS_SOUL_LOG_DIR


@pytest.fixture
def admin_user(django_user_model):
    """The superuser commands act as by default."""
    return django_user_model.objects.create_superuser(settings.LUXOS_ADMIN_USER, password="admin-password-1")


@pytest.fixture
def greeter(alice, make_being):
    """alice's being at version 2."""
    being = make_being("greeter", genesis={"source": SOURCE})
    evolution = being_evolve(being=being, source=SOURCE + "A = 1\n", reason="more", actor=alice)
    return BaseBeing.objects.get(soul=evolution.being.soul)


def souls(*args: str) -> str:
    return command("souls", *args)


def refused(*args: str) -> str:
    return str(command_refused("souls", *args))


# --- list and show -------------------------------------------------------------------------------------


def test_list_shows_versions_newest_first(admin_user, greeter, make_being):
    """Every version of every being, newest first, the current ones marked; --alias narrows it."""
    other = make_being("other", genesis={"source": "def run():\n    return 2\n"})
    lines = souls("list").splitlines()
    old = greeter.genesis["ancestors"][0]["hash"]
    # The core beings, made by a migration, are the oldest.
    assert [line.split()[0] for line in lines[:3]] == [other.hash, greeter.hash, old]
    assert len(lines) == 3 + BaseBeing.objects.exclude(soul__in=[other.soul, greeter.soul]).count()
    assert lines[1].split() == [
        greeter.hash,
        "greeter",
        "v2",
        str(greeter.soul),
        greeter.genesis["origin"]["at"],
        "current",
    ]
    assert not lines[2].endswith("current")
    assert [line.split()[0] for line in souls("list", "--alias", "greeter").splitlines()] == [greeter.hash, old]
    assert len(souls("list", "--limit", "1").splitlines()) == 1


def test_list_as_json_and_as_another_user(admin_user, greeter, bob):
    """--json gives one document; --as lists only what that user may view."""
    rows = json.loads(souls("list", "--json"))
    assert [(row["version"], row["current"], row["kind"]) for row in rows if row["alias"] == "greeter"] == [
        (2, True, "evolution"),
        (1, False, "genesis"),
    ]
    assert souls("list", "--as", "bob").strip() == "no versions"
    assert json.loads(souls("list", "--json", "--as", "bob")) == []


@pytest.mark.parametrize("limit", ["0", "501"])
def test_list_limit_is_bounded(admin_user, limit):
    """--limit outside 1 to 500 exits 1 saying the bounds."""
    assert "--limit must be between 1 and 500" in refused("list", "--limit", limit)


def test_show_one_version_by_prefix(admin_user, greeter, alice):
    """show prints an ancestor's fields, where it runs and its rebuilt source; --json the same as a document."""
    old = greeter.genesis["ancestors"][0]["hash"]
    soul_services.soul_promote(hash=old, environment="staging", actor=admin_user)
    text = souls("show", old[:12])
    assert f"hash:       {old}" in text
    assert "version:    1" in text and "is_current: False" in text
    assert "promoted:   staging (greeter)" in text
    assert text.rstrip().endswith("return 'hi'")
    document = json.loads(souls("show", old, "--json"))
    assert document["genotype"]["source"] == SOURCE
    assert document["promotions"][0]["environment"] == "staging"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "0" * 64), "soul_not_found: no version you may view has hash"),
        (("show", "xyz"), "hash_invalid"),
        (("show", "abc"), "hash_invalid"),
        (("list", "--as", "ghost"), "no user named 'ghost'"),
    ],
)
def test_show_and_list_refusals_exit_1(admin_user, greeter, args, message):
    """An unknown or malformed hash, or an unknown --as user, exits 1 with the reason."""
    assert message in refused(*args)


def test_show_someone_elses_version_is_not_found(admin_user, greeter, bob):
    """show --as bob of alice's version is soul_not_found: to him it does not exist."""
    assert "soul_not_found" in refused("show", greeter.hash, "--as", "bob")


# --- promote, demote, production ------------------------------------------------------------------------


def test_promote_supersede_demote_from_the_command_line(admin_user, greeter):
    """promote prints what it did and what it superseded; demote ends it; production lists what runs."""
    old = greeter.genesis["ancestors"][0]["hash"]
    assert souls("promote", old, "--note", "first").strip() == f"promoted {old} (greeter v1) to production"
    out = souls("promote", greeter.hash[:12])
    assert out.strip() == f"promoted {greeter.hash} (greeter v2) to production; supersedes {old}"
    [line] = souls("production").splitlines()
    assert line.split()[:4] == ["greeter", greeter.hash, "v2", str(greeter.soul)]
    assert line.split()[-1] == settings.LUXOS_ADMIN_USER
    rows = json.loads(souls("production", "--json"))
    assert [(row["alias"], row["hash"], row["promoted_by"]) for row in rows] == [
        ("greeter", greeter.hash, settings.LUXOS_ADMIN_USER)
    ]
    assert souls("demote", greeter.hash, "--note", "rollback").strip() == (
        f"demoted {greeter.hash} (greeter v2) from production"
    )
    assert souls("production").strip() == "nothing is promoted to production"
    assert [p.note for p in Promotion.objects.order_by("id")] == ["first", "", "rollback"]


def test_promote_to_another_environment_and_alias(admin_user, greeter):
    """promote --env staging --alias hello runs the hash as hello in staging and leaves production empty."""
    souls("promote", greeter.hash, "--env", "staging", "--alias", "hello")
    assert json.loads(souls("production", "--env", "staging", "--json"))[0]["alias"] == "hello"
    assert json.loads(souls("production", "--json")) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("promote", "{hash}", "--env", "prod"), "environment_unknown: 'prod' is not an environment: use one of"),
        (("promote", "0" * 64), "soul_not_found"),
        (("promote", "not-hex"), "hash_invalid"),
        (("promote", "{hash}", "--as", "alice"), "permission_denied"),
        (("promote", "{hash}", "--as", "nobody"), "no user named 'nobody'"),
        (("promote", "{hash}", "--alias", " "), "alias_invalid"),
        (("demote", "{hash}"), "not_promoted"),
        (("demote", "{hash}", "--env", "moon"), "environment_unknown"),
        (("production", "--env", "moon"), "environment_unknown"),
        (("manifest", "--env", "moon"), "environment_unknown"),
        (("validate", "--env", "moon"), "environment_unknown"),
        (("validate", "--as", "bob"), "permission_denied"),
    ],
)
def test_refusals_exit_1_with_the_reason_and_write_nothing(admin_user, bob, greeter, unchanged, args, message):
    """Every refusal is a CommandError (exit 1) naming the code; the database is as it was."""
    args = tuple(arg.replace("{hash}", greeter.hash) for arg in args)
    with unchanged():
        assert message in refused(*args)
    assert not Promotion.objects.exists() and not SoulValidation.objects.exists()


def test_promote_the_active_hash_again_exits_1(admin_user, greeter):
    """Promoting the hash already active exits 1 with already_promoted, and only one promotion is stored."""
    souls("promote", greeter.hash)
    assert "already_promoted" in refused("promote", greeter.hash)
    assert Promotion.objects.count() == 1


# --- manifest ------------------------------------------------------------------------------------------


def test_manifest_printed_or_written(admin_user, greeter, tmp_path):
    """manifest prints the JSON document; --out writes it to a file; an unwritable path exits 1."""
    souls("promote", greeter.hash)
    printed = json.loads(souls("manifest"))
    assert printed["souls_count"] == 1 and printed["souls"][0]["hash"] == greeter.hash
    target = tmp_path / "manifest.json"
    assert souls("manifest", "--out", str(target)).strip() == f"wrote {target}"
    assert json.loads(target.read_text())["digest"] == printed["digest"]
    assert "cannot write" in refused("manifest", "--out", str(tmp_path / "missing" / "dir" / "m.json"))


# --- validate ------------------------------------------------------------------------------------------


def test_validate_passes_then_fails_naming_a_tampered_hash(admin_user, greeter):
    """A tampered genotype copy makes validate exit 1 with the hash and the reason; the result is stored."""
    promotion = soul_services.soul_promote(hash=greeter.hash, actor=admin_user)
    assert souls("validate").strip() == "production: OK, 1 promoted hash(es) recomputed"
    tamper(
        "UPDATE soul_promotions SET genotype = jsonb_set(genotype, '{source}', '\"evil\"') WHERE id = %s",
        [promotion.pk],
    )
    message = refused("validate")
    assert "validation of production failed: 1 problem(s)" in message
    assert greeter.hash in message and "stored genotype mismatch" in message
    assert [(v.ok, v.door) for v in SoulValidation.objects.order_by("id")] == [(True, "command"), (False, "command")]


def test_validate_json_prints_the_result_and_still_exits_1(admin_user, greeter):
    """--json prints the document for scripts; a failed validation still exits 1."""
    old = greeter.genesis["ancestors"][0]["hash"]
    soul_services.soul_promote(hash=old, actor=admin_user)
    lineage_tamper(greeter)
    out = io.StringIO()
    with pytest.raises(CommandError, match=old):
        call_command("souls", "validate", "--json", stdout=out)
    document = json.loads(out.getvalue())
    assert document["ok"] is False and document["checked"] == 1
    assert document["problems"][0]["hash"] == old
    assert document["problems"][0]["reason"].startswith("lineage mismatch")


def test_validate_as_a_promoter(admin_user, alice, greeter):
    """A user with the promote permission may validate with --as, and the stored result names her."""
    alice.user_permissions.add(Permission.objects.get(codename="promote_soul"))
    assert "OK, 0 promoted" in souls("validate", "--env", "staging", "--as", "alice")
    assert SoulValidation.objects.get().actor_name == "alice"


@pytest.mark.django_db(transaction=True)
def test_validate_exits_1_as_a_process(admin_user, greeter, subprocess_env, soul_log_dir):
    """Run as a real process, a failed validation exits with status 1 and names the hash on stderr."""
    promotion = soul_services.soul_promote(hash=greeter.hash, actor=admin_user)
    env = {**subprocess_env, "LUXOS_SOUL_LOG_DIR": str(soul_log_dir)}
    command = [sys.executable, "manage.py", "souls", "validate"]
    passed = subprocess.run(command, env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120)
    assert (passed.returncode, passed.stdout.strip()) == (0, "production: OK, 1 promoted hash(es) recomputed")
    tamper(
        "UPDATE soul_promotions SET genotype = jsonb_set(genotype, '{source}', '\"evil\"') WHERE id = %s",
        [promotion.pk],
    )
    failed = subprocess.run(command, env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1
    assert greeter.hash in failed.stderr and "stored genotype mismatch" in failed.stderr


# --- export-logs ---------------------------------------------------------------------------------------


def test_export_logs_rebuilds_the_files(admin_user, greeter, soul_log_dir):
    """export-logs writes every version's report, the hash index and the environment files, and says so."""
    soul_services.soul_promote(hash=greeter.hash, actor=admin_user)
    out = souls("export-logs")
    versions = [version for being in BaseBeing.objects.all() for version in being_versions(being)]
    aliases = {version.alias for version in versions}
    assert f"reports: {len(versions)} for {len({v.hash for v in versions})} souls and {len(aliases)} aliases" in out
    assert "environment files: 3" in out
    for name in ("production_config.json", "deployment_manifest_production.json", "deployment_manifest_staging.json"):
        assert (soul_log_dir / name).exists()
    assert json.loads((soul_log_dir / "production_config.json").read_text())["greeter"]["hash"] == greeter.hash
    index = json.loads((soul_log_dir / "hash_index.json").read_text())
    assert set(index["souls"]) >= {greeter.hash, greeter.genesis["ancestors"][0]["hash"]}


def test_export_logs_exits_1_when_files_cannot_be_written(admin_user, greeter, settings, tmp_path):
    """An unusable log directory makes export-logs exit 1 pointing at the recorded failures."""
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    settings.LUXOS_SOUL_LOG_DIR = blocker / "souls"
    assert "cannot write into" in refused("export-logs")


def test_commands_act_as_the_admin_user_by_default(admin_user, greeter):
    """Without --as the command acts as LUXOS_ADMIN_USER; without that user it exits 1."""
    souls("promote", greeter.hash)
    assert Promotion.objects.get().actor_name == settings.LUXOS_ADMIN_USER
    User.objects.filter(username=settings.LUXOS_ADMIN_USER).delete()
    assert f"no user named {settings.LUXOS_ADMIN_USER!r}" in refused("production")
