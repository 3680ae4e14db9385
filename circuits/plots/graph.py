"""Drawing a circuit graph: one column per layer, edges coloured by sign.

Columns are the graph's layers from left (upstream) to right; inside a column the
nodes are spread evenly top to bottom in their `position` order (family, then
published order). An edge is red when its kernel sums to a positive value and blue
when negative (the Distill convention); its width and opacity grow with its
`strength` relative to the strongest edge between the same two columns (expanded
weights through several layers are on another scale than direct ones).

Example:
    >>> import weights
    >>> from circuits.analysis.circuit_graph import circuit_graph
    >>> g = circuit_graph(weights.model("random"), ("mixed3a", "mixed3b"), "mixed3b:curves", top_k=3)  # doctest: +SKIP
    >>> plot_graph(g, "circuit.png")                                                                  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import networkx as nx
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from circuits.plots.style import DPI, FONT_PT

__all__ = ["layout", "plot_graph", "POSITIVE", "NEGATIVE"]

POSITIVE = "#d6604d"  # red
NEGATIVE = "#4393c3"  # blue


def layout(G: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """(x, y) of every node: x = column, y in [0, 1] by position inside the column (top = 0 first).

    >>> g = nx.DiGraph(); g.add_node("a", column=0, position=3); g.add_node("b", column=0, position=1)
    >>> layout(g)
    {'b': (0.0, 1.0), 'a': (0.0, 0.0)}
    """
    by_col: dict[int, list[str]] = {}
    for n, a in G.nodes(data=True):
        if "column" not in a:
            raise ValueError(f"node {n!r} has no 'column' attribute: draw graphs made by circuit_graph()")
        by_col.setdefault(int(a["column"]), []).append(n)
    pos: dict[str, tuple[float, float]] = {}
    for col, nodes in sorted(by_col.items()):
        nodes.sort(key=lambda n: (G.nodes[n].get("position", 0), str(n)))
        k = len(nodes)
        for i, n in enumerate(nodes):
            pos[n] = (float(col), 1.0 - i / (k - 1) if k > 1 else 0.5)
    return pos


def _label(n: str, a: dict) -> str:
    if a.get("kind") == "family":
        return a.get("family_name") or n
    return str(a.get("channel", n))


def plot_graph(
    G: nx.DiGraph,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    labels: bool | None = None,
    dpi: int = DPI,
) -> Path:
    """Draw `G` (from `circuit_graph`) laid out by layer and save it (PNG, PDF or SVG).

    labels: write node labels (channel, or family name); by default in the columns
    of at most 60 nodes.
    """
    from circuits.core.files import atomic_path

    path = Path(path)
    if path.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ValueError(f"cannot save a plot to {path}: use .png, .pdf or .svg")
    if G.number_of_nodes() == 0:
        raise ValueError("the graph has no nodes to draw (filters too strict?)")
    pos = layout(G)
    cols = sorted({int(a["column"]) for _, a in G.nodes(data=True)})
    col_layer = {int(a["column"]): a.get("layer", "") for _, a in G.nodes(data=True)}
    per_col = max(sum(1 for _, a in G.nodes(data=True) if int(a["column"]) == c) for c in cols)
    col_size = {c: sum(1 for _, a in G.nodes(data=True) if int(a["column"]) == c) for c in cols}
    fig = Figure(figsize=(2.8 * max(len(cols), 2), max(4.0, min(0.18 * per_col, 30.0))))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    strengths = [abs(float(a.get("strength", a.get("sum", 0.0)))) for _, _, a in G.edges(data=True)]
    top: dict[tuple, float] = {}
    for (u, v, _), s in zip(G.edges(data=True), strengths):
        key = (G.nodes[u]["column"], G.nodes[v]["column"])
        top[key] = max(top.get(key, 0.0), s)
    segs, colours, widths = [], [], []
    for (u, v, a), s in sorted(zip(G.edges(data=True), strengths), key=lambda t: t[1]):
        segs.append([pos[u], pos[v]])
        rel = s / (top[(G.nodes[u]["column"], G.nodes[v]["column"])] or 1.0)
        colour = POSITIVE if float(a.get("sum", 0.0)) >= 0 else NEGATIVE
        colours.append((*_rgb(colour), 0.15 + 0.85 * rel))
        widths.append(0.3 + 2.7 * rel)
    if segs:
        ax.add_collection(LineCollection(segs, colors=colours, linewidths=widths, zorder=1))
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.scatter(xs, ys, s=18, c="k", zorder=2)
    for n, (x, y) in pos.items():
        if labels or (labels is None and col_size[int(G.nodes[n]["column"])] <= 60):
            ax.text(x + 0.04, y, _label(n, G.nodes[n]), fontsize=FONT_PT, va="center", zorder=3)
    ax.set_xticks(cols, [col_layer[c] for c in cols])
    ax.set_xlabel("layer (upstream to downstream); units top to bottom in family order")
    ax.set_yticks([])
    ax.set_xlim(min(cols) - 0.3, max(cols) + 0.6)
    ax.set_ylim(-0.05, 1.05)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    if title is None:
        layers = G.graph.get("layers")
        title = " -> ".join(json.loads(layers)) if isinstance(layers, str) else ""
        title += f"  ({G.number_of_nodes()} nodes, {G.number_of_edges()} edges; red +, blue -)"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    return path


def _rgb(hex_colour: str) -> tuple[float, float, float]:
    h = hex_colour.lstrip("#")
    return tuple(int(h[i : i + 2], 16) / 255 for i in (0, 2, 4))
