"""Sources that nest too deeply for the parser or the AST walks are a 422 ``source_syntax_error`` at every door.

CPython's parser answers such a source with a RecursionError or a MemoryError (not a SyntaxError), and
a source it does parse may still be too deep for the walks after it (analysis, lineage, RestrictedPython):
each was a 500. A source at the depth the check admits is stored, analysed and runs.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from beings import services
from beings.evolution import being_evolve
from beings.exceptions import SourceSyntaxError
from beings.models import BaseBeing
from beings.runtime.jobs import RunStatus, SandboxLimits
from beings.runtime.sandbox import Sandbox
from beings.source_analysis import source_analyse
from beings.validation import MAX_SOURCE_DEPTH, source_parse
from luxsite.tests.fixtures import BeingMaker, logged_in

pytestmark = pytest.mark.django_db

RUN = "def run():\n    return 1\n"


def nested_ifs(depth: int) -> str:
    return "".join("    " * level + "if True:\n" for level in range(depth)) + "    " * depth + "pass\n"


DEEP = {
    "sum of ten thousand ones": "X = " + "+".join(["1"] * 10_000) + "\n",
    "three hundred brackets": "X = " + "[" * 300 + "]" * 300 + "\n",
    "three hundred parentheses": "X = " + "(" * 300 + "1" + ")" * 300 + "\n",
    "thirty thousand minus signs": "X = " + "-" * 30_000 + "1\n",
    "ten thousand powers": "X = " + "**".join(["2"] * 10_000) + "\n",
    "a long attribute chain": "X = a" + ".b" * 20_000 + "\n",
    "a thousand nested lambdas": "X = " + "lambda: " * 1_000 + "1\n",
    "three hundred unary nots": "X = " + "not " * 300 + "True\n",
    "a hundred nested ifs": nested_ifs(100),
}
SHAPES = pytest.mark.parametrize("source", [RUN + body for body in DEEP.values()], ids=list(DEEP))


@SHAPES
def test_the_service_refuses_a_deep_source_as_a_syntax_error(
    alice: User, unchanged: Callable[..., Any], source: str
) -> None:
    """The refusal names the cause: too deep for the parser or the walks, or Python's own nesting limits."""
    with unchanged(), pytest.raises(SourceSyntaxError, match=r"^genesis\.source ") as refused:
        services.being_create(data={"genesis": {"name": "deep", "type": "function", "source": source}}, actor=alice)
    assert any(cause in str(refused.value) for cause in ("nests too deeply", "nested", "indentation"))


@SHAPES
def test_api_create_answers_422_source_syntax_error(api: Client, unchanged: Callable[..., Any], source: str) -> None:
    """Creating a being from a deep source through the API is a 422 ``source_syntax_error`` on genesis.source."""
    body = {"genesis": {"name": "deep", "type": "function", "source": source}}
    with unchanged():
        response = api.post("/api/beings/", body, content_type="application/json")
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "source_syntax_error"
    assert response.json()["detail"].startswith("genesis.source ")


@SHAPES
@pytest.mark.parametrize("run_async", [False, True], ids=["evolve", "evolve-async"])
def test_api_evolve_answers_422_source_syntax_error(
    api: Client, make_being: BeingMaker, unchanged: Callable[..., Any], source: str, run_async: bool
) -> None:
    """Evolving to a deep source, at once or in the background, is a 422 ``source_syntax_error`` and changes nothing."""
    being = make_being("shallow", genesis={"source": RUN})
    with unchanged():
        response = api.post(
            f"/api/beings/{being.soul}/evolve", {"source": source, "async": run_async}, content_type="application/json"
        )
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "source_syntax_error"


@SHAPES
def test_the_analysis_of_a_deep_source_answers_and_says_what_it_could_not_read(source: str) -> None:
    """The analysis of a deep source still answers: it counts the lines and finds run or says what it could not read."""
    analysis = source_analyse(source)
    assert analysis["lines"] == len(source.splitlines())
    assert analysis.get("error") or analysis["functions"][0]["name"] == "run"


@pytest.fixture
def deep_lines() -> bytes:
    """JSON Lines whose second being nests too deeply."""
    lines = [
        {"genesis": {"name": "fine", "type": "function", "source": RUN}},
        {"genesis": {"name": "deep", "type": "function", "source": RUN + DEEP["sum of ten thousand ones"]}},
    ]
    return "\n".join(json.dumps(line) for line in lines).encode()


def test_api_import_answers_422_and_stores_nothing(
    api: Client, unchanged: Callable[..., Any], deep_lines: bytes
) -> None:
    """An import whose second being nests too deeply is a 422 ``source_syntax_error`` and stores neither being."""
    with unchanged():
        response = api.post("/api/beings/import", deep_lines, content_type="application/x-ndjson")
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "source_syntax_error"


def test_the_import_command_fails_and_stores_nothing(
    alice: User, tmp_path: Any, unchanged: Callable[..., Any], deep_lines: bytes
) -> None:
    """The ``beings import`` command on the same lines fails naming the nesting, and stores nothing."""
    path = tmp_path / "deep.jsonl"
    path.write_bytes(deep_lines)
    with unchanged(), pytest.raises(CommandError, match="nests"):
        call_command("beings", "--user", "alice", "import", str(path), stdout=io.StringIO(), stderr=io.StringIO())


@pytest.mark.parametrize(
    "body", [DEEP["sum of ten thousand ones"], DEEP["a thousand nested lambdas"]], ids=["parse", "walk"]
)
def test_the_admin_form_shows_the_cause_on_the_source_field(
    root: User, unchanged: Callable[..., Any], body: str
) -> None:
    """The admin add form, given a source too deep to parse or to walk, shows the nesting error on the source field."""
    form = {
        "name": "deep",
        "kind": "function",
        "source": RUN + body,
        "description": "",
        "tags": "",
        "energy_level": "0",
        "attributes": "{}",
        "memories": "",
        "self_awareness": "",
    }
    form.update(
        {
            f"{prefix}-{field}": "0"
            for prefix in ("outgoing", "incoming")
            for field in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS", "MAX_NUM_FORMS")
        }
    )
    with unchanged():
        response = logged_in(root).post(reverse("admin:beings_basebeing_add"), form)
    assert response.status_code == 200
    assert "nests" in " ".join(response.context["adminform"].form.errors["source"])


SIGNS = MAX_SOURCE_DEPTH - 4


def at_the_limit() -> str:
    """A source exactly as deep as the check admits: minus signs before a constant, in run's return."""
    # Module > FunctionDef > Return > one UnaryOp per sign > Constant.
    return "def run():\n    return " + "-" * SIGNS + "7\n"


def test_a_source_at_the_admitted_depth_parses_and_is_analysed() -> None:
    """A source exactly as deep as the limit parses and is analysed; one level deeper is refused, naming the limit."""
    source_parse(at_the_limit())
    assert "error" not in source_analyse(at_the_limit())
    with pytest.raises(SourceSyntaxError, match=f"the limit is {MAX_SOURCE_DEPTH}"):
        source_parse(at_the_limit().replace("-", "--", 1))


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    sandbox = Sandbox()
    yield sandbox
    sandbox.close()


def test_a_source_at_the_admitted_depth_is_stored_evolved_and_runs(
    alice: User, make_being: BeingMaker, sandbox: Sandbox
) -> None:
    """What the check admits, every later step handles: storing, the evolve's comparison, RestrictedPython."""
    being = make_being("deepest", genesis={"source": RUN})
    being_evolve(being=being, source=at_the_limit(), reason="as deep as allowed", actor=alice)
    stored = BaseBeing.objects.get(genesis__name="deepest", genesis__source=at_the_limit())
    result = sandbox.run({"source": stored.genesis["source"]}, SandboxLimits(cpu_seconds=2, wall_seconds=10), None)
    assert result.status == RunStatus.SUCCEEDED, result.error
    assert result.result == (7 if SIGNS % 2 == 0 else -7)
