"""Risk through its doors: POST /api/chronos/risk, ``manage.py chronos risk``, the safety checkpoint named in a
response, and the risk shown on the confirm pages."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from beings.models import BaseBeing
from chronos.models import Checkpoint
from chronos.services import checkpoint_create
from luxsite.tests.helpers import command, command_refused, post
from luxsite.tokens import token_create
from relations.services import relationship_link

pytestmark = pytest.mark.django_db(transaction=True)

BeingMaker = Callable[..., BaseBeing]
RISK = "/api/chronos/risk"


def bearer_of(user: User) -> dict[str, str]:
    _token, secret = token_create(user=user, name="tests")
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def root_bearer(root: User) -> dict[str, str]:
    return bearer_of(root)


def test_the_api_assesses_an_operation_on_a_being(root_bearer: dict[str, str], make_being: BeingMaker) -> None:
    """{operation, target} comes back as level, score and reasons heaviest first; nothing is written."""
    being = make_being("doomed")
    before = Checkpoint.objects.count()
    response = post(Client(), RISK, {"operation": "delete", "target": str(being.soul)}, **root_bearer)
    assert response.status_code == 200, response.content
    body = response.json()
    assert {key: body[key] for key in ("operation", "target", "level", "score")} == {
        "operation": "delete",
        "target": "being doomed",
        "level": "high",
        "score": 50,
    }
    assert body["reasons"][0] == {"name": "operation", "weight": 50, "detail": "delete: deletes a being"}
    assert {reason["name"] for reason in body["reasons"]} == {"operation", "blast_radius", "recent_runs"}
    assert Checkpoint.objects.count() == before


def test_the_api_assesses_a_text_in_polish(root_bearer: dict[str, str]) -> None:
    """{text} reads Polish inflections: deleting a migration in production is critical."""
    response = post(Client(), RISK, {"text": "Usuń migrację na produkcji"}, **root_bearer)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["operation"], body["level"], body["score"]) == ("text", "critical", 100)
    assert [reason["name"] for reason in body["reasons"]] == ["migration", "deletion", "production"]


def test_the_api_takes_a_checkpoint_target_and_an_evolution_source(
    root: User, root_bearer: dict[str, str], make_being: BeingMaker
) -> None:
    """A restore names its checkpoint; an evolution its new source, whose removed lines are weighed."""
    checkpoint_create(name="mark", actor=root)
    make_being("after")
    restore = post(Client(), RISK, {"operation": "restore", "target": "mark"}, **root_bearer).json()
    assert restore["target"] == "checkpoint mark"
    assert {"name": "rows", "weight": 2, "detail": "rewrites 1 row(s)"} in restore["reasons"]
    being = make_being("coded")
    body = {"operation": "evolve", "target": f"being:{being.soul}", "source": "def run():\n    return 0\n"}
    evolve = post(Client(), RISK, body, **root_bearer).json()
    assert [r["detail"] for r in evolve["reasons"] if r["name"] == "lines_removed"] == [
        "removes 0 and changes 1 of 2 line(s) (a mutation), adds 0"
    ]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "invalid"),
        ({"operation": "delete"}, 422, "risk_target_invalid"),
        ({"operation": "explode", "target": "x"}, 422, "risk_operation_unknown"),
        ({"operation": "delete", "text": "delete it"}, 422, "invalid"),
        ({"text": "delete it", "target": "x"}, 422, "invalid"),
        ({"text": "   "}, 422, "risk_text_invalid"),
        ({"text": "x" * 10_001}, 422, "invalid"),
        ({"operation": "delete", "target": "not-a-soul"}, 422, "risk_target_invalid"),
        ({"operation": "bulk_import", "target": "rows:many"}, 422, "risk_target_invalid"),
        ({"operation": "delete", "target": "00000000-0000-0000-0000-000000000000"}, 404, "being_not_found"),
        ({"operation": "restore", "target": "no-such-checkpoint"}, 404, "checkpoint_not_found"),
        ({"operation": "switch", "target": "no-such-timeline"}, 404, "timeline_not_found"),
        ({"operation": "delete", "target": "x", "color": "red"}, 422, "invalid"),
    ],
)
def test_bad_input_is_a_4xx_with_its_code(
    root_bearer: dict[str, str], body: dict[str, Any], status: int, code: str
) -> None:
    """Each bad request is refused with its status and code, and writes nothing."""
    before = Checkpoint.objects.count()
    response = post(Client(), RISK, body, **root_bearer)
    assert (response.status_code, response.json()["code"]) == (status, code), response.content
    assert Checkpoint.objects.count() == before


def test_who_may_not_see_chronos_is_refused_and_a_hidden_being_is_unknown(
    alice: User, bob: User, make_being: BeingMaker
) -> None:
    """Alice, without chronos' view permission, gets a 403; a viewer who may not see alice's being a 404."""
    being = make_being("private")
    refused = post(Client(), RISK, {"text": "delete"}, **bearer_of(alice))
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    bob.user_permissions.add(Permission.objects.get(codename="view_checkpoint"))
    hidden = post(Client(), RISK, {"operation": "delete", "target": str(being.soul)}, **bearer_of(bob))
    assert hidden.status_code == 404


def test_the_route_is_in_the_openapi_document() -> None:
    """POST /api/chronos/risk is documented with its body and its 200 and 422 answers."""
    document = Client().get("/api/openapi.json").json()
    operation = document["paths"]["/api/chronos/risk"]["post"]
    assert {"200", "422"} <= set(operation["responses"])
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    name = schema["$ref"].rsplit("/", 1)[-1]
    assert set(document["components"]["schemas"][name]["properties"]) == {
        "operation",
        "target",
        "source",
        "environment",
        "text",
    }


def test_the_command_assesses_as_json_and_as_a_table(root: User, make_being: BeingMaker) -> None:
    """``chronos risk delete SOUL --json`` prints the API's document; ``--text`` a level line and its reasons."""
    being = make_being("doomed")
    document = json.loads(command("chronos", "risk", "delete", str(being.soul), "--as", "root", "--json"))
    assert (document["level"], document["score"], document["target"]) == ("high", 50, "being doomed")
    lines = command("chronos", "risk", "--text", "Wykonaj hot_patch na module core", "--as", "root").splitlines()
    assert lines[0] == "high (55/100): text Wykonaj hot_patch na module core"
    assert lines[1].split()[:2] == ["55", "hot_patch"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("risk",), "give either OPERATION TARGET or --text TEXT"),
        (("risk", "delete", "--text", "x"), "give either OPERATION TARGET or --text TEXT"),
        (("risk", "explode", "x"), "risk_operation_unknown"),
        (("risk", "restore", "nowhere"), "checkpoint_not_found"),
    ],
)
def test_the_command_refuses_bad_usage(root: User, args: tuple[str, ...], message: str) -> None:
    """Bad usage and unknown targets exit non-zero with the reason."""
    error = command_refused("chronos", *args, "--as", "root")
    assert message in str(error)


def test_a_delete_through_the_api_names_its_safety_checkpoint(
    root_bearer: dict[str, str], make_being: BeingMaker
) -> None:
    """DELETE /api/beings/{soul} answers 204 with ``LuxOS-Safety-Checkpoint: ID NAME`` of the checkpoint taken first."""
    being = make_being("doomed")
    response = Client().delete(f"/api/beings/{being.soul}", headers=root_bearer)
    assert response.status_code == 204
    safety = Checkpoint.objects.get(name="before-delete-doomed")
    assert safety.kind == "safety"
    assert response.headers["LuxOS-Safety-Checkpoint"] == f"{safety.id} before-delete-doomed"
    dashboard = Client()
    dashboard.force_login(User.objects.get(username="root"))
    page = dashboard.get(reverse("chronos_dashboard")).content.decode()
    assert 'class="badge safety"' in page and "before-delete-doomed" in page


def test_a_refused_or_low_operation_names_none(root_bearer: dict[str, str], make_being: BeingMaker) -> None:
    """A low update has no header; a refused delete (the being has links) leaves no checkpoint and no header."""
    being = make_being("kept")
    updated = Client().patch(
        f"/api/beings/{being.soul}", json.dumps({"tags": ["x"]}), content_type="application/json", headers=root_bearer
    )
    assert updated.status_code == 200 and "LuxOS-Safety-Checkpoint" not in updated.headers
    relationship_link(source=make_being("caller"), target=being, actor=None)
    refused = Client().delete(f"/api/beings/{being.soul}", headers=root_bearer)
    assert refused.status_code == 409 and "LuxOS-Safety-Checkpoint" not in refused.headers
    assert not Checkpoint.objects.filter(kind="safety").exists()


def test_a_restore_through_the_api_names_its_safety_checkpoint(
    root: User, root_bearer: dict[str, str], make_being: BeingMaker
) -> None:
    """The restore's own ``before-restore-<name>`` is in its body and in the header."""
    checkpoint_create(name="mark", actor=root)
    make_being("after")
    response = post(Client(), "/api/chronos/checkpoints/mark/restore", {}, **root_bearer)
    assert response.status_code == 200, response.content
    safety = Checkpoint.objects.get(name="before-restore-mark")
    assert response.headers["LuxOS-Safety-Checkpoint"] == f"{safety.id} before-restore-mark"


def test_the_confirm_pages_show_the_risk_and_its_reasons(root: User, make_being: BeingMaker) -> None:
    """The restore, switch, promote and admin delete pages each show the level and the reasons."""
    client = Client()
    client.force_login(root)
    mark = checkpoint_create(name="mark", actor=root)
    client.post(reverse("chronos_timeline_create"), {"name": "side"})
    being = make_being("served")
    restore = client.get(reverse("chronos_checkpoint_restore", args=[mark.id])).content.decode()
    assert 'id="risk"' in restore and 'data-level="high"' in restore and "rewrites 1 row(s)" in restore
    switch = client.get(reverse("chronos_timeline_switch", args=["side"])).content.decode()
    assert 'id="risk"' in switch and "rewrites 1 row(s)" in switch
    promote = client.get(reverse("soul_promote", args=["production", being.hash])).content.decode()
    assert 'data-level="high"' in promote and "promotes in production" in promote
    delete = client.get(reverse("admin:beings_basebeing_delete", args=[being.soul])).content.decode()
    assert 'data-level="high"' in delete and "delete: deletes a being" in delete


def test_a_delete_confirmed_in_the_admin_takes_its_safety_checkpoint(root: User, make_being: BeingMaker) -> None:
    """Confirmed on the admin's page, the deletion takes ``before-delete-<name>`` first, then deletes."""
    client = Client()
    client.force_login(root)
    being = make_being("doomed")
    response = client.post(reverse("admin:beings_basebeing_delete", args=[being.soul]), {"post": "yes"})
    assert response.status_code == 302
    assert not BaseBeing.objects.filter(soul=being.soul).exists()
    safety = Checkpoint.objects.get(name="before-delete-doomed")
    assert response.headers["LuxOS-Safety-Checkpoint"] == f"{safety.id} before-delete-doomed"


def test_a_risky_evolution_names_its_safety_checkpoint(root_bearer: dict[str, str], make_being: BeingMaker) -> None:
    """Rewriting most of a being's code is high: the 201 of the mutation names ``before-evolve-<name>``."""
    source = "def run():\n    a = 1\n    b = 2\n    c = 3\n    return a + b + c\n"
    being = make_being("rewritten", genesis={"source": source})
    response = post(
        Client(), f"/api/beings/{being.soul}/evolve", {"source": "def run():\n    return 2\n"}, **root_bearer
    )
    assert response.status_code == 201, response.content
    safety = Checkpoint.objects.get(name="before-evolve-rewritten")
    assert response.headers["LuxOS-Safety-Checkpoint"] == f"{safety.id} before-evolve-rewritten"
    assert safety.description == "Taken automatically before a high evolve (score 50)."
