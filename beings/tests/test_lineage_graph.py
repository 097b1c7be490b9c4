"""The lineage graph: which versions and edges it draws, DOT escaping, and Graphviz's SVG."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from guardian.shortcuts import assign_perm

from beings import lineage_graph as graph
from beings import services
from beings.evolution import being_evolve
from beings.models import BaseBeing

pytestmark = pytest.mark.django_db

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"

SOURCE = '''\
def run(x):
    """Double a number, then add one."""
    doubled = x * 2
    result = doubled + 1
    return result
'''


def evolved(source: str, line: str) -> str:
    """``source`` with one line added: a small change, an evolution."""
    return source + line + "\n"


def edges_by_version(lineage: graph.LineageGraph) -> set[tuple[uuid.UUID, int, uuid.UUID, int, str]]:
    """Every edge as (from soul, from version, to soul, to version, kind)."""
    nodes = {node.key: node for cluster in lineage.clusters for node in cluster.nodes}
    return {
        (
            nodes[edge.source].soul,
            nodes[edge.source].version,
            nodes[edge.target].soul,
            nodes[edge.target].version,
            edge.kind,
        )
        for edge in lineage.edges
    }


@pytest.fixture
def family(alice: User, make_being) -> dict[str, BaseBeing]:
    """A parent evolved twice with a mutant made at v2; the mutant evolved once and mutated in turn."""
    parent = make_being("family", genesis={"source": SOURCE})
    being_evolve(being=parent, source=evolved(SOURCE, "TWO = 2"), actor=alice)
    child = being_evolve(being=parent, source=SOURCE.replace("* 2", "* 3"), actor=alice).being
    being_evolve(being=parent, source=evolved(evolved(SOURCE, "TWO = 2"), "THREE = 3"), actor=alice)
    being_evolve(being=child, source=evolved(child.genesis["source"], "CHILD = 2"), actor=alice)
    child.refresh_from_db()
    grandchild = being_evolve(being=child, source=SOURCE.replace("+ 1", "- 1"), actor=alice).being
    parent.refresh_from_db()
    child.refresh_from_db()
    return {"parent": parent, "child": child, "grandchild": grandchild}


def test_lineage_draws_every_version_with_evolution_and_mutation_edges(alice: User, family) -> None:
    """From the middle being, the graph holds its parent's versions, its own and its mutant's, rightly joined."""
    parent, child, grandchild = family["parent"], family["child"], family["grandchild"]

    lineage = graph.lineage_collect(being=child, user=alice)

    drawn = {cluster.soul: [node.version for node in cluster.nodes] for cluster in lineage.clusters}
    assert drawn == {parent.soul: [1, 2, 3], child.soul: [1, 2], grandchild.soul: [1]}
    assert edges_by_version(lineage) == {
        (parent.soul, 1, parent.soul, 2, "evolution"),
        (parent.soul, 2, parent.soul, 3, "evolution"),
        (parent.soul, 2, child.soul, 1, "mutation"),
        (child.soul, 1, child.soul, 2, "evolution"),
        (child.soul, 2, grandchild.soul, 1, "mutation"),
    }
    current = {(node.soul, node.version) for cluster in lineage.clusters for node in cluster.nodes if node.current}
    assert current == {(parent.soul, 3), (child.soul, 2), (grandchild.soul, 1)}
    hashes = {node.version: node.hash for node in lineage.clusters[0].nodes if node.soul == parent.soul}
    assert hashes[3] == parent.hash


def test_lineage_of_a_being_without_family_is_its_versions(alice: User, make_being) -> None:
    """A being that never mutated is one cluster of its versions joined by evolutions."""
    being = make_being("alone", genesis={"source": SOURCE})
    being_evolve(being=being, source=evolved(SOURCE, "TWO = 2"), actor=alice)
    being.refresh_from_db()

    lineage = graph.lineage_collect(being=being, user=alice)

    assert [(cluster.soul, [node.version for node in cluster.nodes]) for cluster in lineage.clusters] == [
        (being.soul, [1, 2])
    ]
    assert edges_by_version(lineage) == {(being.soul, 1, being.soul, 2, "evolution")}


def test_lineage_ignores_a_mutation_link_to_a_being_that_is_no_mutant(alice: User, make_being, make_link) -> None:
    """A relationship tagged mutation to an unrelated being does not make it part of the lineage."""
    being = make_being("real", genesis={"source": SOURCE})
    stranger = make_being("stranger", genesis={"source": "def run():\n    return 0\n"})
    make_link(being, stranger, tags=["mutation"])

    lineage = graph.lineage_collect(being=being, user=alice)

    assert [cluster.soul for cluster in lineage.clusters] == [being.soul]


def test_lineage_hides_the_name_and_page_of_a_parent_the_user_may_not_view(alice: User, bob: User, family) -> None:
    """Bob, who may view only the mutant, sees the parent's versions it inherited but not the parent's alias or link."""
    parent, child = family["parent"], family["child"]
    services.being_update(being=parent, data={"genesis": {**parent.genesis, "name": "secret-parent"}}, actor=alice)
    assign_perm("view_basebeing", bob, child)

    lineage = graph.lineage_collect(being=child, user=bob)
    dot = graph.lineage_dot(lineage)

    clusters = {cluster.soul: cluster for cluster in lineage.clusters}
    assert clusters[parent.soul].visible is False
    # Only the versions the mutant inherited: the parent's later v3 is the parent's own business.
    assert [node.version for node in clusters[parent.soul].nodes] == [1, 2]
    assert family["grandchild"].soul not in clusters  # bob may not view it either
    assert "secret-parent" not in dot
    assert f"/beings/{parent.soul}/" not in dot
    assert f"/beings/{child.soul}/#v1" in dot


def test_long_lineage_draws_the_first_and_newest_versions(alice: User, make_being) -> None:
    """A being with more versions than the drawing holds shows v1, the newest ones, and how many were left out."""
    being = make_being("long", genesis={"source": SOURCE})
    source = SOURCE
    for number in range(2, graph.MAX_VERSIONS_PER_BEING + 7):
        source = evolved(source, f"LINE_{number} = {number}")
        being_evolve(being=being, source=source, actor=alice)
    being.refresh_from_db()
    newest = being.version

    lineage = graph.lineage_collect(being=being, user=alice)

    versions = [node.version for node in lineage.clusters[0].nodes]
    assert versions == [1, *range(newest - graph.MAX_VERSIONS_PER_BEING + 2, newest + 1)]
    elided = [edge for edge in lineage.edges if edge.kind == "elided"]
    assert [edge.label for edge in elided] == [f"{versions[1] - 2} more"]


@pytest.mark.parametrize(
    ("lines", "quoted"),
    [
        (("plain",), '"plain"'),
        (("v1", "abc"), '"v1\\nabc"'),
        (('say "hi"',), '"say \\"hi\\""'),
        (("back\\slash \\N \\G",), '"back\\\\slash \\\\N \\\\G"'),
        (("two\nlines\r\nhere",), '"two lines here"'),
        (("&lt; & <b>",), '"&amp;lt; &amp; <b>"'),
        (("trailing\\",), '"trailing\\\\"'),
        (("",), '""'),
    ],
)
def test_dot_quote_escapes_what_graphviz_would_interpret(lines: tuple[str, ...], quoted: str) -> None:
    """Quotes, backslashes, ampersands and stray line breaks cannot change what a DOT string shows."""
    assert graph.dot_quote(*lines) == quoted


def test_svg_shows_a_hostile_alias_as_plain_text(alice: User, make_being) -> None:
    """An alias full of DOT and markup syntax is drawn as exactly that text and adds no element to the SVG."""
    alias = '"]\\N</text><script>x()</script>&lt;'
    being = make_being(alias, genesis={"source": SOURCE})

    _lineage, svg = graph.lineage_svg(being=being, user=alice)

    assert svg.startswith("<svg")
    root = ET.fromstring(svg)
    texts = [element.text for element in root.iter(f"{SVG}text")]
    assert len(alias) <= graph.MAX_LABEL  # shown whole
    assert f"{alias} · {str(being.soul)[:8]}" in texts
    assert f"{being.hash[:12]}" in texts
    assert not list(root.iter(f"{SVG}script"))
    links = {element.get(f"{XLINK}href") for element in root.iter(f"{SVG}a")}
    assert f"/beings/{being.soul}/#v1" in links
    titles = {element.get(f"{XLINK}title") for element in root.iter(f"{SVG}a")}
    assert f"{alias} ({being.soul})" in titles


def test_svg_without_graphviz_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With no dot program on the PATH, drawing fails with a message naming the install script."""
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(graph.GraphUnavailableError, match=r"Graphviz is not installed.*bin/ensure-system-packages"):
        graph.svg_render("digraph { a }")


def test_svg_of_a_slow_graphviz_gives_up_at_the_timeout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A dot that never finishes is killed at the timeout and reported, not waited for."""
    dot = tmp_path / "dot"
    dot.write_text("#!/bin/sh\nexec /bin/sleep 30\n")
    dot.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(graph.GraphUnavailableError, match=r"took more than 0\.5 s"):
        graph.svg_render("digraph { a }", timeout=0.5)


def test_svg_of_invalid_dot_reports_graphviz_error() -> None:
    """Text Graphviz cannot parse is reported with its own message."""
    with pytest.raises(graph.GraphUnavailableError, match=r"Graphviz could not draw the lineage: .*syntax error"):
        graph.svg_render("digraph { a -> }")
