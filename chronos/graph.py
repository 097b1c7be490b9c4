"""The timelines drawn as a graph: each timeline a row of its checkpoints, forks joining them, the live head marked.

Every timeline starts at a node carrying its name (for ``main``, at the beginning of history; for a
fork, after the checkpoint it forked from), runs through its checkpoints oldest first, and ends at
its head; the live timeline's head is the one marked "live". The DOT text escapes every label
(``beings.lineage_graph.dot_quote``) and Graphviz's ``dot`` lays it out as SVG, embedded inline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from django.urls import reverse

from beings.lineage_graph import GraphUnavailableError, dot_quote, svg_render
from chronos.models import Checkpoint, Dream, Timeline
from chronos.selectors import timeline_list

__all__ = ["GraphUnavailableError", "TimelineGraph", "timelines_collect", "timelines_dot", "timelines_svg"]

# The newest checkpoints drawn per timeline (fork points are always drawn); the list below the graph has them all.
CHECKPOINTS_PER_TIMELINE: Final = 12
MAX_LABEL: Final = 32

ACCENT: Final = "#4f46e5"
LIVE_FILL: Final = "#ecfdf5"
LIVE: Final = "#047857"
LINE: Final = "#c7cad1"
INK: Final = "#1f2430"
MUTED: Final = "#6b7280"
KIND_FILL: Final = {"manual": "#ffffff", "safety": "#fffbeb", "fork": "#eef2ff", "import": "#f0f9ff"}
# A dream's timeline starts at a node coloured by how the dream ended, linking to its page.
DREAM_FILL: Final = {"kept": "#ecfdf5", "merged": "#e0e7ff", "discarded": "#f3f4f6", "failed": "#fef2f2"}


@dataclass(frozen=True)
class TimelineRow:
    timeline: Timeline
    checkpoints: list[Checkpoint]
    elided: int  # older checkpoints left out of the drawing
    dream: Dream | None = None  # the dream whose changes the timeline holds


@dataclass(frozen=True)
class TimelineGraph:
    rows: list[TimelineRow]


def timelines_collect() -> TimelineGraph:
    """Every timeline with its newest checkpoints (and those others fork from) and its dream, oldest first."""
    timelines = list(timeline_list())
    dreams = {dream.timeline_id: dream for dream in Dream.objects.filter(timeline__in=timelines)}
    forks = {timeline.fork_id for timeline in timelines if timeline.fork_id}
    checkpoints: dict[int, list[Checkpoint]] = {}
    for checkpoint in Checkpoint.objects.filter(timeline__in=timelines).order_by("created_at", "id"):
        checkpoints.setdefault(checkpoint.timeline_id, []).append(checkpoint)
    rows = []
    for timeline in timelines:
        held = checkpoints.get(timeline.id, [])
        newest = {checkpoint.id for checkpoint in held[-CHECKPOINTS_PER_TIMELINE:]}
        kept = [checkpoint for checkpoint in held if checkpoint.id in newest or checkpoint.id in forks]
        rows.append(TimelineRow(timeline, kept, elided=len(held) - len(kept), dream=dreams.get(timeline.id)))
    return TimelineGraph(rows)


def _short(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def timelines_dot(graph: TimelineGraph) -> str:
    """The DOT text: one row per timeline, checkpoints linking to their pages, fork edges between rows."""
    lines = [
        "digraph timelines {",
        '  graph [rankdir=LR, bgcolor="transparent", fontname="Helvetica", fontsize=11, nodesep=0.3, ranksep=0.3];',
        f'  node [shape=box, style="rounded,filled", fillcolor="#ffffff", color="{LINE}", fontcolor="{INK}",'
        ' fontname="Helvetica", fontsize=10];',
        f'  edge [color="{MUTED}", arrowsize=0.6];',
    ]
    drawn = {checkpoint.id for row in graph.rows for checkpoint in row.checkpoints}
    for row in graph.rows:
        timeline = row.timeline
        start, head = f"t{timeline.id}", f"t{timeline.id}_head"
        dashboard = reverse("chronos_dashboard")
        if row.dream is not None:
            dream = row.dream
            lines.append(
                f"  {start} [label={dot_quote(_short(f'dream {dream.name}'), dream.status)}, shape=cds,"
                f' id={dot_quote(f"tl-{timeline.id}")}, fillcolor="{DREAM_FILL.get(dream.status, "#f9fafb")}",'
                f" URL={dot_quote(reverse('chronos_dream', args=[dream.id]))},"
                f" tooltip={dot_quote(f'dream {dream.name}: {dream.status} ({timeline.name})')}];"
            )
        else:
            lines.append(
                f"  {start} [label={dot_quote(_short(timeline.name))}, shape=cds, id={dot_quote(f'tl-{timeline.id}')},"
                f' fillcolor="#f9fafb", URL={dot_quote(f"{dashboard}#timeline-{timeline.name}")},'
                f" tooltip={dot_quote(f'timeline {timeline.name}')}];"
            )
        chain = [start]
        if row.elided:
            lines.append(
                f'  {start}_elided [label={dot_quote(f"{row.elided} older")}, shape=plaintext, fontcolor="{MUTED}"];'
            )
            chain.append(f"{start}_elided")
        for checkpoint in row.checkpoints:
            key = f"c{checkpoint.id.hex}"
            label = dot_quote(_short(checkpoint.name), f"{checkpoint.kind}{' · pinned' if checkpoint.pinned else ''}")
            url = reverse("chronos_checkpoint", args=[checkpoint.id])
            tooltip = dot_quote(f"{checkpoint.name} ({checkpoint.kind}) {checkpoint.created_at:%Y-%m-%d %H:%M:%S}")
            fill = KIND_FILL.get(checkpoint.kind, "#ffffff")
            pen = ", penwidth=1.6" if checkpoint.pinned else ""
            lines.append(f'  {key} [label={label}, URL={dot_quote(url)}, tooltip={tooltip}, fillcolor="{fill}"{pen}];')
            chain.append(key)
        if timeline.live:
            lines.append(
                f'  {head} [label="● live", id="live-head", shape=ellipse, fillcolor="{LIVE_FILL}", color="{LIVE}",'
                f' fontcolor="{LIVE}", penwidth=1.8, tooltip={dot_quote(f"{timeline.name} is live")}];'
            )
        else:
            lines.append(
                f'  {head} [label="head", shape=ellipse, fontcolor="{MUTED}",'
                f" tooltip={dot_quote(f'the head of {timeline.name}')}];"
            )
        chain.append(head)
        lines.append("  " + " -> ".join(chain) + ";")
        if timeline.fork_id is not None and timeline.fork_id in drawn:
            lines.append(
                f'  c{timeline.fork_id.hex} -> {start} [style=dashed, color="{ACCENT}", label="fork",'
                f' fontcolor="{ACCENT}", fontsize=9];'
            )
    lines.append("}")
    return "\n".join(lines) + "\n"


def timelines_svg() -> tuple[TimelineGraph, str]:
    """The timelines and their SVG drawing."""
    graph = timelines_collect()
    return graph, svg_render(timelines_dot(graph))
