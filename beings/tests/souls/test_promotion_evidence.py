"""Promotion gated by evidence: production asks for successful runs, no recent failure, no open lesson on the hash
or the versions it came from, and a risk below critical; a promotion without it is a 409 naming what is missing,
unless a user allowed to override gives a reason, which is kept on the promotion."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from beings.evolution import being_evolve
from beings.models import BaseBeing, Execution, Promotion
from beings.souls.evidence import evidence_rules, promotion_evidence
from chronos.lessons.services import lesson_add, lesson_resolve
from luxsite.tests.fixtures import BeingMaker, logged_in
from luxsite.tests.helpers import command, command_refused, post

pytestmark = pytest.mark.django_db

SOURCE = "def run():\n    return 'hi'\n"
STATUS = Execution.Status
NO_RUNS = "0 successful runs of the 3 needed"


@pytest.fixture(autouse=True)
def soul_log_dir(settings: Any, tmp_path: Any) -> None:
    settings.LUXOS_SOUL_LOG_DIR = tmp_path / "souls"


def allowed(user: User, *codenames: str) -> User:
    """``user`` with the global permissions named, fetched afresh (Django caches permissions on the instance)."""
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def promoter(alice: User) -> User:
    """Alice, who may promote souls but not go past missing evidence."""
    return allowed(alice, "promote_soul")


@pytest.fixture
def overrider(alice: User) -> User:
    """Alice, who may promote souls and override missing evidence with a reason."""
    return allowed(alice, "promote_soul", "promote_soul_override")


@pytest.fixture
def greeter(make_being: BeingMaker) -> BaseBeing:
    return make_being("greeter", genesis={"source": SOURCE})


def runs(being: BaseBeing, *statuses: str, hash: str | None = None) -> None:
    """Finished runs of ``hash`` (the being's current one by default), oldest first, a minute apart."""
    start = timezone.now() - timedelta(hours=1)
    Execution.objects.bulk_create(
        Execution(
            being=being,
            hash=hash or being.hash,
            alias=being.name,
            status=status,
            started_at=start + timedelta(minutes=index),
            finished_at=start + timedelta(minutes=index, seconds=1),
        )
        for index, status in enumerate(statuses)
    )


def promote(client: Client, hash: str, **body: Any) -> Any:
    return post(client, f"/api/souls/{hash}/promote", body)


def refusal(response: Any) -> str:
    """The detail of a 409 promotion_evidence_missing, the body being exactly {code, detail}."""
    assert response.status_code == 409, response.content
    body = response.json()
    assert set(body) == {"code", "detail"} and body["code"] == "promotion_evidence_missing", body
    return str(body["detail"])


def test_the_default_gates_production_as_the_issue_says_and_not_staging() -> None:
    """Production asks for 3 successes, no failure in the last 10, no open lesson, risk at most high; staging: none."""
    rules = evidence_rules(environment="production")
    assert rules is not None and rules.as_dict() == {
        "min_successes": 3,
        "last_runs": 10,
        "max_failures_in_last": 0,
        "no_open_lessons": True,
        "max_risk": "high",
    }
    assert evidence_rules(environment="staging") is None


def test_a_hash_never_run_is_refused_with_a_409_that_says_what_is_missing(promoter: User, greeter: BaseBeing) -> None:
    """No runs: 409 promotion_evidence_missing naming the successes needed and the way past it; nothing written."""
    detail = refusal(promote(logged_in(promoter), greeter.hash))
    assert detail == (
        f"production asks for evidence that {greeter.hash[:12]} lacks: {NO_RUNS}. Run it until it has, resolve "
        "its lessons, or promote with an override reason (that needs beings.promote_soul_override)"
    )
    assert not Promotion.objects.exists()


@pytest.mark.parametrize(
    ("statuses", "missing"),
    [
        ([STATUS.SUCCEEDED] * 2, ["2 successful runs of the 3 needed"]),
        (
            [STATUS.SUCCEEDED] * 3 + [STATUS.FAILED],
            ["1 of its last 4 runs failed, timed out or were killed (at most 0 of the last 10 may)"],
        ),
        (
            [STATUS.TIMEOUT, STATUS.SUCCEEDED, STATUS.KILLED, STATUS.SUCCEEDED],
            [
                "2 successful runs of the 3 needed",
                "2 of its last 4 runs failed, timed out or were killed (at most 0 of the last 10 may)",
            ],
        ),
        # A rejected run never ran the code: neither a success nor a failure.
        ([STATUS.SUCCEEDED] * 2 + [STATUS.REJECTED] * 3, ["2 successful runs of the 3 needed"]),
    ],
    ids=["too-few-successes", "a-recent-failure", "both", "rejected-runs-count-for-nothing"],
)
def test_runs_that_do_not_make_the_evidence_are_refused(
    promoter: User, greeter: BaseBeing, statuses: list[str], missing: list[str]
) -> None:
    """Too few successes, or a failure, timeout or kill among the last 10 runs: 409 listing each missing rule."""
    runs(greeter, *statuses)
    detail = refusal(promote(logged_in(promoter), greeter.hash))
    assert detail.split(" lacks: ")[1].split(". Run it")[0] == "; ".join(missing)
    assert not Promotion.objects.exists()


@pytest.mark.parametrize(
    "statuses",
    [
        [STATUS.SUCCEEDED] * 3,
        # The failure is older than the last 10 runs: it no longer counts.
        [STATUS.FAILED] + [STATUS.SUCCEEDED] * 10,
        [STATUS.SUCCEEDED] * 3 + [STATUS.REJECTED, STATUS.QUEUED, STATUS.RUNNING],
    ],
    ids=["three-successes", "an-old-failure", "unfinished-and-rejected-runs-aside"],
)
def test_a_hash_with_the_evidence_is_promoted_and_the_evidence_is_kept(
    promoter: User, greeter: BaseBeing, statuses: list[str]
) -> None:
    """Enough successes and no failure in the last 10: 201, and the evidence weighed is kept on the promotion."""
    runs(greeter, *statuses)
    response = promote(logged_in(promoter), greeter.hash)
    assert response.status_code == 201, response.content
    body = response.json()
    successes = statuses.count(STATUS.SUCCEEDED)
    finished = len([status for status in statuses if status in (STATUS.SUCCEEDED, STATUS.FAILED)])
    assert body["override_reason"] == ""
    assert body["evidence"] == {
        "environment": "production",
        "met": True,
        "missing": [],
        "figures": {
            "successes": successes,
            "last_runs": min(10, finished),
            "failures_in_last": 0,
            "open_lessons": 0,
            "open_lesson_ids": [],
            "risk": "high",
        },
        "rules": evidence_rules(environment="production").as_dict(),  # type: ignore[union-attr]
    }
    assert Promotion.objects.get().evidence == body["evidence"]


def test_runs_of_another_hash_are_not_evidence(promoter: User, alice: User, greeter: BaseBeing) -> None:
    """Runs of the being's first version do not count for its second: the evidence is the hash's own."""
    runs(greeter, *[STATUS.SUCCEEDED] * 5)
    evolved = being_evolve(being=greeter, source=SOURCE + "A = 1\n", reason="more", actor=alice).being
    assert refusal(promote(logged_in(promoter), evolved.hash)).count(NO_RUNS) == 1


def test_an_open_lesson_on_the_hash_or_a_version_it_came_from_refuses_until_resolved(
    promoter: User, root: User, alice: User, greeter: BaseBeing
) -> None:
    """A lesson left open on v1 refuses v2 (its ancestor), naming the lesson; once resolved, v2 is promoted."""
    first = greeter.hash
    evolved = being_evolve(being=greeter, source=SOURCE + "A = 1\n", reason="more", actor=alice).being
    runs(evolved, *[STATUS.SUCCEEDED] * 3)
    lesson = lesson_add(situation="v1 divided by zero on empty input", being=greeter, hash=first)
    detail = refusal(promote(logged_in(promoter), evolved.hash))
    assert f"1 open lesson on it or a version it came from (#{lesson.pk})" in detail
    lesson_resolve(lesson=lesson, actor=root)
    assert promote(logged_in(promoter), evolved.hash).status_code == 201


def test_a_lesson_on_a_later_version_does_not_refuse_an_earlier_one(
    promoter: User, alice: User, greeter: BaseBeing
) -> None:
    """Lessons are inherited forward only: a lesson on v2 says nothing about v1, which came before it."""
    first = greeter.hash
    evolved = being_evolve(being=greeter, source=SOURCE + "A = 1\n", reason="more", actor=alice).being
    lesson_add(situation="v2 is slow", being=evolved, hash=evolved.hash)
    runs(greeter, *[STATUS.SUCCEEDED] * 3, hash=first)
    assert promote(logged_in(promoter), first).status_code == 201


def test_a_risk_above_the_allowed_level_is_refused(settings: Any, promoter: User, greeter: BaseBeing) -> None:
    """With max_risk medium, promoting to production (assessed high) is refused naming the risk; with high it goes."""
    runs(greeter, *[STATUS.SUCCEEDED] * 3)
    settings.LUXOS_PROMOTION_EVIDENCE = {"production": {"max_risk": "medium"}}
    assert refusal(promote(logged_in(promoter), greeter.hash)).count("its risk is high, above the medium allowed") == 1
    settings.LUXOS_PROMOTION_EVIDENCE = {"production": {"max_risk": "high"}}
    assert promote(logged_in(promoter), greeter.hash).status_code == 201


def test_staging_asks_for_no_evidence(promoter: User, greeter: BaseBeing) -> None:
    """An environment LUXOS_PROMOTION_EVIDENCE does not name is not gated: promoted, no evidence kept."""
    response = promote(logged_in(promoter), greeter.hash, environment="staging")
    assert response.status_code == 201
    assert (response.json()["evidence"], Promotion.objects.get().evidence) == (None, None)


def test_without_the_override_permission_an_override_is_403(promoter: User, greeter: BaseBeing) -> None:
    """A promoter without beings.promote_soul_override gives a reason: 403 naming the permission; nothing written."""
    response = promote(logged_in(promoter), greeter.hash, override_reason="hotfix, runs later")
    assert response.status_code == 403
    assert response.json() == {
        "code": "permission_denied",
        "detail": "you may not promote without the evidence production asks for: that needs "
        f"beings.promote_soul_override (missing: {NO_RUNS})",
    }
    assert not Promotion.objects.exists()


def test_an_override_with_a_reason_is_promoted_and_the_reason_recorded(overrider: User, greeter: BaseBeing) -> None:
    """With the permission and a reason: 201; the reason and the evidence that was missing are kept and listed."""
    client = logged_in(overrider)
    response = promote(client, greeter.hash, override_reason="  security hotfix: runs come after  ", note="urgent")
    assert response.status_code == 201, response.content
    body = response.json()
    promotion = Promotion.objects.get()
    assert (body["override_reason"], promotion.override_reason) == ("security hotfix: runs come after",) * 2
    assert promotion.evidence is not None
    assert (promotion.evidence["met"], promotion.evidence["missing"]) == (False, [NO_RUNS])
    history = client.get("/api/environments/production/history").json()["items"]
    assert [(item["override_reason"], item["evidence"]["met"]) for item in history] == [
        ("security hotfix: runs come after", False)
    ]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 409, "promotion_evidence_missing"),
        ({"override_reason": "   "}, 409, "promotion_evidence_missing"),
        ({"override_reason": "x" * 2001}, 422, "override_reason_invalid"),
        ({"override_reason": 7}, 422, "invalid"),
    ],
    ids=["no-reason", "a-blank-reason", "too-long", "not-text"],
)
def test_an_override_needs_a_reason(
    overrider: User, greeter: BaseBeing, body: dict[str, Any], status: int, code: str
) -> None:
    """Even a user allowed to override must say why: no reason, a blank one or a bad one is refused, nothing written."""
    response = promote(logged_in(overrider), greeter.hash, **body)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert not Promotion.objects.exists()


def test_an_override_reason_is_not_kept_when_the_evidence_is_met(promoter: User, greeter: BaseBeing) -> None:
    """With the evidence met nothing is overridden: the promotion keeps no reason, and needs no override permission."""
    runs(greeter, *[STATUS.SUCCEEDED] * 3)
    response = promote(logged_in(promoter), greeter.hash, override_reason="just in case")
    assert response.status_code == 201
    assert Promotion.objects.get().override_reason == ""


def test_the_evidence_endpoint_says_what_a_promotion_would_meet(api: Client, greeter: BaseBeing) -> None:
    """GET /api/souls/{hash}/evidence: the figures and what is missing, per environment, without promoting."""
    runs(greeter, STATUS.SUCCEEDED, STATUS.FAILED)
    production = api.get(f"/api/souls/{greeter.hash[:16]}/evidence").json()
    assert {key: production[key] for key in ("hash", "environment", "gated", "met", "missing")} == {
        "hash": greeter.hash,
        "environment": "production",
        "gated": True,
        "met": False,
        "missing": [
            "1 successful run of the 3 needed",
            "1 of its last 2 runs failed, timed out or were killed (at most 0 of the last 10 may)",
        ],
    }
    assert production["figures"]["successes"] == 1 and production["figures"]["failures_in_last"] == 1
    staging = api.get(f"/api/souls/{greeter.hash}/evidence", {"environment": "staging"}).json()
    assert (staging["gated"], staging["met"], staging["missing"], staging["figures"]) == (False, True, [], None)
    assert api.get(f"/api/souls/{greeter.hash}/evidence", {"environment": "prod"}).status_code == 422


def test_the_command_refuses_then_overrides_with_a_reason(root: User, greeter: BaseBeing) -> None:
    """`souls promote` exits 1 with the 409's code and detail; --override-reason promotes and says so."""
    error = command_refused("souls", "promote", greeter.hash, "--as", "root")
    assert str(error).startswith("promotion_evidence_missing: production asks for evidence") and NO_RUNS in str(error)
    printed = command("souls", "promote", greeter.hash, "--as", "root", "--override-reason", "release train")
    assert printed.strip().endswith("; without the evidence: release train")
    assert Promotion.objects.get().override_reason == "release train"


def test_the_confirm_page_shows_the_evidence_and_takes_an_override_reason(overrider: User, greeter: BaseBeing) -> None:
    """The page lists what is missing and a reason field; a POST without one is shown again as 409, with one it goes."""
    client = logged_in(overrider)
    url = f"/souls/production/{greeter.hash}/promote/"
    shown = client.get(url)
    content = shown.content.decode()
    assert shown.status_code == 200 and NO_RUNS in content and 'name="override_reason"' in content
    refused = client.post(url, {"confirm": "yes", "note": "kept"})
    assert refused.status_code == 409 and "promotion_evidence_missing" in refused.content.decode()
    assert not Promotion.objects.exists()
    promoted = client.post(url, {"confirm": "yes", "override_reason": "demo for the board"})
    assert promoted.status_code == 302
    assert Promotion.objects.get().override_reason == "demo for the board"


def test_the_confirm_page_offers_no_override_to_a_promoter_without_the_permission(
    promoter: User, greeter: BaseBeing
) -> None:
    """Without the right to override the page says what it needs, offers no reason field, and a forced POST is 403."""
    client = logged_in(promoter)
    url = f"/souls/production/{greeter.hash}/promote/"
    content = client.get(url).content.decode()
    assert NO_RUNS in content and "beings.promote_soul_override" in content and 'name="override_reason"' not in content
    forced = client.post(url, {"confirm": "yes", "override_reason": "let me"})
    assert forced.status_code == 403 and not Promotion.objects.exists()


def board_evidence(client: Client) -> dict[tuple[str, str], Any]:
    """The evidence the board shows for each (environment, being name)."""
    boards = client.get("/souls/").context["boards"]
    return {
        (board.environment, candidate.being.name): candidate.evidence
        for board in boards
        for row in board.rows
        for candidate in row.candidates
    }


def test_the_board_shows_each_hash_evidence(promoter: User, make_being: BeingMaker) -> None:
    """Per candidate: met or what is missing in production, nothing in staging; on the page as badges."""
    ready = make_being("ready")
    make_being("fresh", genesis={"source": "def run():\n    return 2\n"})
    runs(ready, *[STATUS.SUCCEEDED] * 3)
    client = logged_in(promoter)
    evidence = board_evidence(client)
    assert evidence[("production", "ready")].met and evidence[("staging", "ready")] is None
    assert evidence[("production", "fresh")].missing == [NO_RUNS]
    content = client.get("/souls/").content.decode()
    assert content.count("evidence met") == 1 and content.count("evidence missing") == 1 and NO_RUNS in content


def queries_of_board(client: Client) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/souls/").status_code == 200
    return [query["sql"] for query in captured.captured_queries]


def evidence_queries(queries: Iterable[str]) -> list[str]:
    return [sql for sql in queries if "executions" in sql or "chronos_lesson" in sql]


def test_the_board_reads_the_evidence_of_many_hashes_in_two_queries(promoter: User, make_being: BeingMaker) -> None:
    """One grouped query over runs and one over open lessons, whether the board lists one being or six."""
    first = make_being("alpha")
    runs(first, STATUS.SUCCEEDED)
    client = logged_in(promoter)
    assert len(evidence_queries(queries_of_board(client))) == 2
    for index in range(5):
        being = make_being(f"many-{index}", genesis={"source": f"def run():\n    return {index}\n"})
        runs(being, STATUS.SUCCEEDED, STATUS.FAILED)
    assert len(evidence_queries(queries_of_board(client))) == 2


@pytest.mark.parametrize(
    "configured",
    [
        [],
        {"production": []},
        {"production": {"min_success": 3}},
        {"production": {"min_successes": -1}},
        {"production": {"min_successes": True}},
        {"production": {"max_risk": "extreme"}},
        {"production": {"no_open_lessons": "yes"}},
    ],
    ids=["not-an-object", "rules-not-an-object", "unknown-rule", "negative", "a-boolean-count", "a-risk", "a-flag"],
)
def test_a_misconfigured_setting_is_refused_plainly(settings: Any, configured: Any, greeter: BaseBeing) -> None:
    """A setting that cannot mean anything is an ImproperlyConfigured naming the setting, never a silent pass."""
    settings.LUXOS_PROMOTION_EVIDENCE = configured
    with pytest.raises(ImproperlyConfigured, match="LUXOS_PROMOTION_EVIDENCE"):
        promotion_evidence(hash=greeter.hash, environment="production")


@pytest.mark.django_db(transaction=True)
def test_runs_made_by_the_worker_are_the_evidence(celery_worker: Any, promoter: User, make_being: BeingMaker) -> None:
    """Three runs through the real worker make the evidence; a fourth that divides by zero refuses the same hash."""
    divider = make_being("divider", genesis={"source": "def run(x=1):\n    return 1 / x\n"})
    client = logged_in(promoter)
    for x in (1, 2, 4):
        ran = post(client, f"/api/beings/{divider.soul}/execute", {"kwargs": {"x": x}, "wait": 20}).json()
        assert ran["status"] == "succeeded", ran
    failed = post(client, f"/api/beings/{divider.soul}/execute", {"kwargs": {"x": 0}, "wait": 20}).json()
    assert failed["status"] == "failed", failed
    assert "1 of its last 4 runs failed" in refusal(promote(client, divider.hash))
    figures = client.get(f"/api/souls/{divider.hash}/evidence").json()["figures"]
    assert (figures["successes"], figures["last_runs"], figures["failures_in_last"]) == (3, 4, 1)


def test_the_admin_shows_the_override_reason_and_the_evidence(root: User, overrider: User, greeter: BaseBeing) -> None:
    """The list filters promotions made without the evidence; a promotion's page shows its reason and what lacked."""
    promote(logged_in(overrider), greeter.hash, environment="staging")
    promote(logged_in(overrider), greeter.hash, override_reason="weekend hotfix")
    staging, promotion = Promotion.objects.order_by("id")
    client = logged_in(root)
    listing = client.get("/admin/beings/promotion/", {"override_reason__isempty": "0"}).content.decode()
    assert f"/admin/beings/promotion/{promotion.pk}/change/" in listing and "Without evidence" in listing
    assert f"/admin/beings/promotion/{staging.pk}/change/" not in listing
    page = client.get(f"/admin/beings/promotion/{promotion.pk}/change/").content.decode()
    assert "weekend hotfix" in page and NO_RUNS in page
