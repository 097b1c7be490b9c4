"""A being's lineage drawn as a graph: its versions, their evolutions and the mutations between beings.

The graph holds the being, the parents it descends from (``genesis.parent``, up the chain) and
the mutants made from it (``mutation`` relationships, down the tree). Each being is a cluster of
its versions; evolution edges join consecutive versions, mutation edges join the parent's version
to the mutant's first. The DOT text is built here with every label escaped, and Graphviz's
``dot`` lays it out as SVG, which the being page embeds inline.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from django.urls import reverse

from beings.models import BaseBeing
from beings.selectors import SoulVersion, being_versions
from luxsite.permissions import User, visible
from relations.models import Relationship

# Bounds that keep one page's graph readable and its layout fast, whatever the family's size.
MAX_BEINGS: Final = 40
MAX_VERSIONS_PER_BEING: Final = 24
MAX_LABEL: Final = 40
DOT_TIMEOUT: Final = 10.0

ACCENT: Final = "#4f46e5"
LINE: Final = "#c7cad1"
INK: Final = "#1f2430"
MUTED: Final = "#6b7280"
CURRENT_FILL: Final = "#eef2ff"


class GraphUnavailableError(Exception):
    """The graph could not be drawn: Graphviz is missing, too slow, or refused the input."""


@dataclass(frozen=True)
class LineageNode:
    """One version of one being in the graph."""

    key: str
    soul: uuid.UUID
    version: int
    hash: str
    kind: str
    current: bool


@dataclass(frozen=True)
class LineageEdge:
    source: str
    target: str
    kind: str  # evolution, cosmetic, mutation, or "elided" for versions left out
    label: str


@dataclass(frozen=True)
class LineageCluster:
    """One being: its versions, and whether the user may open its page."""

    soul: uuid.UUID
    alias: str
    visible: bool
    nodes: list[LineageNode] = field(default_factory=list)


@dataclass(frozen=True)
class LineageGraph:
    focus: uuid.UUID
    clusters: list[LineageCluster]
    edges: list[LineageEdge]
    truncated: bool  # more beings belong to the family than MAX_BEINGS

    def node(self, *, soul: uuid.UUID, version: int) -> LineageNode | None:
        """The node of one version, when it is drawn."""
        nodes = (node for cluster in self.clusters if cluster.soul == soul for node in cluster.nodes)
        return next((node for node in nodes if node.version == version), None)


def _family_collect(*, being: BaseBeing, user: User) -> tuple[dict[uuid.UUID, BaseBeing], bool]:
    """The being, its parents up the chain and its mutants down the tree, among the beings the user may view."""
    family: dict[uuid.UUID, BaseBeing] = {being.soul: being}
    # Up: every parent is named in its child's genesis; a parent the user may not view ends the walk,
    # and the entries its child inherited still draw its versions up to the mutation.
    child = being
    while len(family) < MAX_BEINGS:
        parent_soul = _parent_soul(child)
        if parent_soul is None or parent_soul in family:
            break
        parent = visible(user=user, queryset=BaseBeing.objects.filter(soul=parent_soul)).first()
        if parent is None:
            break
        family[parent.soul] = child = parent
    # Down: one query per generation of mutants.
    frontier = deque([being.soul])
    truncated = False
    while frontier:
        generation = list(frontier)
        frontier.clear()
        mutants = visible(
            user=user,
            queryset=BaseBeing.objects.filter(
                soul__in=Relationship.objects.tagged("mutation").filter(source_id__in=generation).values("target_id")
            ),
        ).order_by("created_at", "soul")
        for mutant in mutants:
            # A link anyone may tag "mutation" is only a lead: the mutant's own genesis must name the parent.
            if mutant.soul in family or _parent_soul(mutant) not in generation:
                continue
            if len(family) >= MAX_BEINGS:
                truncated = True
                break
            family[mutant.soul] = mutant
            frontier.append(mutant.soul)
    return family, truncated


def _parent_soul(being: BaseBeing) -> uuid.UUID | None:
    parent = being.genesis.get("parent")
    try:
        return uuid.UUID(str(parent["soul"])) if isinstance(parent, dict) else None
    except (KeyError, ValueError):
        return None


def lineage_collect(*, being: BaseBeing, user: User) -> LineageGraph:
    """The lineage graph around ``being``: the versions of every being of its family the user may view.

    Edges come from the lineages themselves: consecutive versions of one soul are an evolution,
    consecutive versions of two souls (a mutant's first version after the parent's version it
    inherited last) a mutation, even when a being in between may not be viewed.
    """
    family, truncated = _family_collect(being=being, user=user)
    versions: dict[uuid.UUID, dict[int, SoulVersion]] = {}
    mutations: set[tuple[tuple[uuid.UUID, int], tuple[uuid.UUID, int]]] = set()
    for member in family.values():
        sequence = being_versions(member)
        for version in sequence:
            held = versions.setdefault(version.soul, {})
            # A being's own entry wins over the copy its mutants inherited: only it knows it is current.
            if version.owned or version.version not in held:
                held[version.version] = version
        for older, newer in itertools.pairwise(sequence):
            if older.soul != newer.soul:
                mutations.add(((older.soul, older.version), (newer.soul, newer.version)))
    pinned = {end for mutation in mutations for end in mutation}
    clusters: list[LineageCluster] = []
    edges: list[LineageEdge] = []
    keys: dict[tuple[uuid.UUID, int], str] = {}
    for soul, held in versions.items():
        owner = family.get(soul)
        cluster = LineageCluster(soul=soul, alias=owner.name if owner else "", visible=owner is not None)
        previous: LineageNode | None = None
        for number in _versions_kept(sorted(held), pinned={number for end, number in pinned if end == soul}):
            version = held[number]
            node = LineageNode(
                key=f"n{len(keys)}",
                soul=soul,
                version=number,
                hash=version.hash,
                kind=version.kind,
                current=version.is_current and version.owned,
            )
            keys[(soul, number)] = node.key
            cluster.nodes.append(node)
            if previous is not None:
                skipped = number - previous.version - 1
                if skipped:
                    edges.append(LineageEdge(previous.key, node.key, "elided", f"{skipped} more"))
                else:
                    edges.append(LineageEdge(previous.key, node.key, node.kind, node.kind))
            previous = node
        clusters.append(cluster)
    for start, end in sorted(mutations, key=lambda pair: (keys[pair[0]], keys[pair[1]])):
        edges.append(LineageEdge(keys[start], keys[end], "mutation", "mutation"))
    return LineageGraph(focus=being.soul, clusters=clusters, edges=edges, truncated=truncated)


def _versions_kept(numbers: list[int], *, pinned: set[int]) -> list[int]:
    """The versions drawn: all of them when few; else the first, the newest and every mutation end."""
    if len(numbers) <= MAX_VERSIONS_PER_BEING:
        return numbers
    newest = numbers[-(MAX_VERSIONS_PER_BEING - 1) :]
    return sorted({numbers[0], *newest, *(number for number in numbers if number in pinned)})


def dot_quote(*lines: str) -> str:
    """A DOT double-quoted string showing ``lines`` one under the other, exactly, whatever characters they hold.

    Graphviz reads backslash sequences in labels, URLs and tooltips (``\\N`` is the node's name,
    ``\\n`` a line break) and HTML entities (``&lt;`` shows as ``<``), so a backslash is doubled,
    a quote and an ampersand escaped; line breaks inside a line become spaces, so that only ours
    break lines. Graphviz escapes the text again for the SVG it writes.
    """
    escaped = (
        " ".join(line.splitlines()).replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;") for line in lines
    )
    return '"' + "\\n".join(escaped) + '"'


def _short(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def lineage_dot(graph: LineageGraph) -> str:
    """The DOT text of a lineage graph: one cluster per being, nodes linking to the being pages."""
    lines = [
        "digraph lineage {",
        '  graph [rankdir=LR, bgcolor="transparent", fontname="Helvetica", fontsize=11, nodesep=0.25, ranksep=0.35];',
        f'  node [shape=box, style="rounded,filled", fillcolor="#ffffff", color="{LINE}", fontcolor="{INK}",'
        ' fontname="Helvetica", fontsize=10];',
        f'  edge [color="{MUTED}", fontcolor="{MUTED}", fontname="Helvetica", fontsize=9, arrowsize=0.7];',
    ]
    for index, cluster in enumerate(graph.clusters):
        page = reverse("being_detail", args=[cluster.soul]) if cluster.visible else ""
        alias = _short(cluster.alias) if cluster.visible else "(a being you may not view)"
        focus = cluster.soul == graph.focus
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f"    label={dot_quote(f'{alias} · {str(cluster.soul)[:8]}')};")
        lines.append(f'    style="rounded{",bold" if focus else ""}"; color="{ACCENT if focus else LINE}";')
        lines.append(f'    fontcolor="{INK if cluster.visible else MUTED}";')
        if page:
            lines.append(f"    URL={dot_quote(page)}; tooltip={dot_quote(f'{cluster.alias} ({cluster.soul})')};")
        for node in cluster.nodes:
            attributes = [
                f"label={dot_quote(f'v{node.version}', node.hash[:12])}",
                f"tooltip={dot_quote(f'v{node.version} {node.kind}: {node.hash}')}",
            ]
            if page:
                attributes.append(f"URL={dot_quote(f'{page}#v{node.version}')}")
            if node.current:
                attributes.append(f'fillcolor="{CURRENT_FILL}", color="{ACCENT}", penwidth=1.5')
            lines.append(f"    {node.key} [{', '.join(attributes)}];")
        lines.append("  }")
    for edge in graph.edges:
        style = {
            "mutation": f', color="{ACCENT}", fontcolor="{ACCENT}", penwidth=1.6',
            "elided": ", style=dashed",
            "cosmetic": ", style=dotted",
        }.get(edge.kind, "")
        lines.append(f"  {edge.source} -> {edge.target} [label={dot_quote(edge.label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def svg_render(dot_text: str, *, timeout: float = DOT_TIMEOUT) -> str:
    """The SVG element Graphviz draws for ``dot_text``, without the XML prolog, ready to embed in HTML."""
    executable = shutil.which("dot")
    if executable is None:
        raise GraphUnavailableError(
            "Graphviz is not installed (no dot program on the PATH), so the lineage graph cannot be drawn: "
            "run bin/ensure-system-packages"
        )
    try:
        completed = subprocess.run(
            [executable, "-Tsvg"], input=dot_text.encode("utf-8"), capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise GraphUnavailableError(f"Graphviz took more than {timeout:g} s to lay the lineage out") from None
    if completed.returncode != 0:
        error = completed.stderr.decode("utf-8", "replace").strip()[:300]
        raise GraphUnavailableError(f"Graphviz could not draw the lineage: {error or f'exit {completed.returncode}'}")
    svg = completed.stdout.decode("utf-8")
    start = svg.find("<svg")
    if start < 0:
        raise GraphUnavailableError("Graphviz returned no SVG")
    return svg[start:]


def lineage_svg(*, being: BaseBeing, user: User) -> tuple[LineageGraph, str]:
    """The lineage graph around ``being`` and its SVG drawing."""
    graph = lineage_collect(being=being, user=user)
    return graph, svg_render(lineage_dot(graph))
