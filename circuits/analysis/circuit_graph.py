"""Circuit graphs: units (or families) as nodes, the weights between them as edges.

`circuit_graph(model, layers=("mixed3a", "mixed3b"), ...)` builds a networkx DiGraph
whose columns are the unit layers between two layers (the layers every path of the
network goes through, within its range of expanded weights: for InceptionV1 conv2d0,
conv2d1, conv2d2, mixed3a, mixed3b, mixed4a; for InceptionV3 activation_1 ...
activation_5, mixed0 ... mixed7) and whose edges join consecutive columns with the
weights of `circuits.analysis.expanded.weights_between` (the parameter slice for a
direct connection, the expanded weights otherwise). Layers and units are those of the
model's network (``model.graph``).

Nodes (unit granularity), keyed by unit id ``"mixed3b:379"``: kind="unit", layer,
channel, branch, branch_channel, family (Early Vision family id, "" if none),
family_name, column (0 = first layer), position (rank inside the column: by family,
then published order, then channel).

Nodes (family granularity), keyed by family id ``"mixed3b:curves"``: kind="family",
layer, family, family_name, channels (list), n_units, column, position. Units of
no published family are grouped as ``"<layer>:unassigned"``.

Edges (src -> dst): kernel ([kh][kw] nested list, the layout of `circuits.analysis.expanded`),
kernel_size, sum, positive (sum of positive weights), negative (sum of negative
weights, <= 0; sum = positive + negative), max_positive, max_negative, max_abs,
strength (the ranking value, see `rank_by`), direct (bool). A family edge
A -> B aggregates unit kernels as the average total input a unit of B receives from
A: ``K = mean_{b in B} sum_{a in A} W[b, a]``; its sum/positive/negative are the same
mean of per-unit totals (so positive and negative are not cancelled by averaging).

Filters: `threshold` drops edges whose strength is below it; `top_k` keeps each
node's k strongest edges towards the neighbouring column (see `circuit_graph`).

Export: `write_graph(G, "g.graphml" | "g.json")` (GraphML needs scalars, so list
attributes are stored as JSON strings and listed in the graph attribute
``json_attributes``; `read_graph` decodes them), `compare_graphs(a, b)` for two
weight sets, `circuits.plots.graph.plot_graph` for a drawing.

Example:
    >>> import weights
    >>> m = weights.model("random")
    >>> g = circuit_graph(m, ("mixed3a", "mixed3b"), units="mixed3b:curves", top_k=3)
    >>> g.number_of_nodes() <= 10 + 30, g.nodes["mixed3b:379"]["family"]
    (True, 'mixed3b:curves')
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import networkx as nx
import torch

from circuits import families as fam
from circuits.analysis.networks import network_of, resolve, units_in
from circuits.core import graph

__all__ = [
    "trunk_layers",
    "unit_layers",
    "circuit_graph",
    "write_graph",
    "read_graph",
    "GraphComparison",
    "compare_graphs",
    "RANK_BY",
    "GRANULARITIES",
]

RANK_BY = ("max_abs", "l1", "abs_sum")
GRANULARITIES = ("unit", "family")
UNASSIGNED = "unassigned"


def trunk_layers(network) -> tuple[str, ...]:
    """The unit layers every path of the whole network goes through, in order
    (`circuits.core.graph.Graph.trunk_layers`); network: a model or Graph.

    >>> v1 = graph.INCEPTION_V1
    >>> trunk_layers(v1)[:4], trunk_layers(v1)[-1]
    (('conv2d0', 'conv2d1', 'conv2d2', 'mixed3a'), 'mixed5b')
    """
    return network_of(network).trunk_layers


def unit_layers(network) -> tuple[str, ...]:
    """The trunk layers where weights between units are defined (the graph's `expanded_span`);
    network: a model or Graph.

    >>> unit_layers(graph.INCEPTION_V1)
    ('conv2d0', 'conv2d1', 'conv2d2', 'mixed3a', 'mixed3b', 'mixed4a')
    >>> from circuits.core.inception_v3 import INCEPTION_V3
    >>> unit_layers(INCEPTION_V3)[-3:]
    ('mixed5', 'mixed6', 'mixed7')
    """
    return _unit_layers(network_of(network))


@functools.lru_cache(maxsize=None)
def _unit_layers(g: graph.Graph) -> tuple[str, ...]:
    return tuple(n for n in g.trunk_layers if g.in_expanded_span(n))


def _columns(layers, g: graph.Graph) -> list[str]:
    known = unit_layers(g)
    if isinstance(layers, str) or not isinstance(layers, Sequence) or len(layers) < 2:
        raise ValueError(f"layers must be (from, to) or a list of layers, got {layers!r}")
    for name in layers:
        if name not in known:
            try:
                g.node(name)  # unknown name: close matches
            except KeyError:
                from circuits.core.networks import DECLARED

                owner = next((o for o in DECLARED.values() if o is not g and name in o.names()), None)
                if owner is None:
                    raise
                raise ValueError(
                    f"{name} is a layer of {owner.name}, but the model is an {g.name}; "
                    f"use layers of {g.name}: {', '.join(known)}"
                ) from None
            raise ValueError(f"{name} is not a unit layer of circuit graphs of {g.name}; use one of {', '.join(known)}")
    idx = [known.index(n) for n in layers]
    if any(b <= a for a, b in zip(idx, idx[1:])):
        raise ValueError(f"layers must go downstream (from before to), got {' -> '.join(layers)}")
    if len(layers) == 2:
        return list(known[idx[0] : idx[1] + 1])
    return list(layers)


def _family_table(layer: str, model) -> tuple[dict[int, tuple[str, str, int, int]], list[tuple[str, str, list[int]]]]:
    """channel -> (family id, name, family rank, rank in family); and the groups in order.

    Channels are labelled by the families `model`'s network defines first (e.g. the
    hand-built banks), then by the published partition (`circuits.families.labels`).
    """
    table: dict[int, tuple[str, str, int, int]] = {}
    groups: list[tuple[str, str, list[int]]] = []
    for f in fam.labels(layer, model):
        chans = [c for c in f.channels if c not in table]
        for r, c in enumerate(chans):
            table[c] = (f.id, f.name, len(groups), r)
        if chans:
            groups.append((f.id, f.name, chans))
    g = network_of(model)
    rest = [c for c in range(g.node(layer).channels) if c not in table]
    if rest:
        for r, c in enumerate(rest):
            table[c] = ("", "", len(groups), r)
        groups.append((f"{layer}:{UNASSIGNED}", "(no published family)", rest))
    return table, groups


def _strength(w: torch.Tensor, rank_by: str) -> torch.Tensor:
    flat = w.flatten(2)
    if rank_by == "max_abs":
        return flat.abs().amax(-1)
    if rank_by == "l1":
        return flat.abs().sum(-1)
    return flat.sum(-1).abs()


def _edge_attrs(k: torch.Tensor, total, pos, neg, strength: float, direct: bool) -> dict:
    k = k.detach().to(torch.float64)
    return {
        "kernel": k.tolist(),
        "kernel_size": int(k.shape[-1]),
        "sum": float(total),
        "positive": float(pos),
        "negative": float(neg),
        "max_positive": float(k.clamp(min=0).max()),
        "max_negative": float(k.clamp(max=0).min()),
        "max_abs": float(k.abs().max()),
        "strength": float(strength),
        "direct": bool(direct),
    }


def _select(strength: torch.Tensor, threshold: float | None, top_k: int | None, per: str) -> torch.Tensor:
    """Boolean [D, S] mask of kept edges: above threshold, then top-k per row (dst) or column (src)."""
    keep = torch.ones_like(strength, dtype=torch.bool)
    if threshold is not None:
        keep &= strength >= threshold
    if top_k is not None:
        s = torch.where(keep, strength, torch.full_like(strength, -math.inf))
        dim = 1 if per == "dst" else 0
        k = min(top_k, s.shape[dim])
        idx = s.topk(k, dim=dim).indices
        top = torch.zeros_like(keep).scatter_(dim, idx, True)
        keep &= top
    return keep


def circuit_graph(
    model,
    layers: Sequence[str] = ("mixed3a", "mixed3b"),
    units=None,
    *,
    top_k: int | None = None,
    threshold: float | None = None,
    granularity: str = "unit",
    rank_by: str = "max_abs",
    weights_kwargs: dict | None = None,
) -> nx.DiGraph:
    """The circuit between `layers` as a DiGraph (nodes and edges: see the module docstring).

    layers: (from, to), two unit layers (see `unit_layers`); the columns are every
        unit layer from `from` to `to`. A longer list gives the columns explicitly.
    units: None for every unit of every column; otherwise unit ids, family ids or a
        list, all in one column: the focus. The graph then holds the focus and,
        column by column away from it, the units linked to the previous column's
        kept units by a kept edge (upstream: their inputs; downstream: their outputs).
        With family granularity, the focus is the families holding those units.
    top_k: keep each node's k strongest edges to the next column away from the
        focus: a destination's k strongest inputs (upstream of the focus, and
        everywhere when there is no focus), a source's k strongest outputs
        (downstream of the focus).
    threshold: drop edges whose strength is below it.
    rank_by: edge strength: "max_abs" (largest |weight| in the kernel, default),
        "l1" (sum of |weight|) or "abs_sum" (|sum of the kernel|).
    weights_kwargs: passed to `weights_between` (e.g. {"lrn": "identity"}).

    >>> import weights
    >>> g = circuit_graph(weights.model("random"), ("conv2d1", "conv2d2"), top_k=2)
    >>> g.number_of_edges() == 192 * 2
    True
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}; use one of {', '.join(GRANULARITIES)}")
    if rank_by not in RANK_BY:
        raise ValueError(f"unknown rank_by {rank_by!r}; use one of {', '.join(RANK_BY)}")
    if top_k is not None and (isinstance(top_k, bool) or int(top_k) != top_k or top_k < 1):
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    if threshold is not None and not (isinstance(threshold, (int, float)) and threshold >= 0):
        raise ValueError(f"threshold must be a non-negative number, got {threshold!r}")
    g = network_of(model)
    cols = _columns(layers, g)
    tables = {layer: _family_table(layer, model) for layer in cols}

    # The groups (one per node) of each column: lists of channels.
    def groups_of(layer: str) -> list[tuple[str, list[int]]]:
        if granularity == "unit":
            return [(f"{layer}:{c}", [c]) for c in range(g.node(layer).channels)]
        return [(gid, chans) for gid, _, chans in tables[layer][1]]

    all_groups = {layer: groups_of(layer) for layer in cols}
    focus_col = None
    kept: dict[str, set[str]] = {layer: {g for g, _ in all_groups[layer]} for layer in cols}
    if units is not None:
        fu = resolve(units, model)
        layers_in = sorted({u.layer for u in fu}, key=g.index)
        if len(layers_in) != 1 or layers_in[0] not in cols:
            raise ValueError(
                f"the focus units must lie in one of the graph's layers ({', '.join(cols)}), "
                f"got units of {', '.join(layers_in)}"
            )
        focus_col = cols.index(layers_in[0])
        chans = {u.channel for u in fu}
        kept[cols[focus_col]] = {g for g, cs in all_groups[cols[focus_col]] if chans & set(cs)}

    G = nx.DiGraph(
        layers=json.dumps(cols),
        granularity=granularity,
        rank_by=rank_by,
        top_k=-1 if top_k is None else int(top_k),
        threshold=-1.0 if threshold is None else float(threshold),
        focus=json.dumps(None if units is None else sorted({u.id for u in fu})),
        network=g.name,
        source=str(getattr(model, "source", "")),
    )
    edges: dict[int, list[tuple[str, str, dict]]] = {}

    def link(i: int, direction: str) -> None:
        """Edges between columns i and i+1. "up": the destinations are fixed and the
        sources chosen (per-destination top-k); "down": the reverse."""
        src_layer, dst_layer = cols[i], cols[i + 1]
        sg = [(g, cs) for g, cs in all_groups[src_layer] if direction == "up" or g in kept[src_layer]]
        dg = [(g, cs) for g, cs in all_groups[dst_layer] if direction == "down" or g in kept[dst_layer]]
        out = []
        if sg and dg:
            strength, attrs = _group_edges(model, src_layer, sg, dst_layer, dg, rank_by, weights_kwargs or {})
            mask = _select(strength, threshold, top_k, "dst" if direction == "up" else "src")
            out = [(sg[s][0], dg[d][0], attrs(d, s)) for d, s in mask.nonzero().tolist()]
        edges[i] = out
        if focus_col is not None:  # the next column away from the focus keeps what is linked
            if direction == "up":
                kept[src_layer] = {u for u, _, _ in out}
            else:
                kept[dst_layer] = {v for _, v, _ in out}

    if focus_col is None:
        for i in range(len(cols) - 1):
            link(i, "up")
    else:
        for i in range(focus_col - 1, -1, -1):
            link(i, "up")
        for i in range(focus_col, len(cols) - 1):
            link(i, "down")

    for ci, layer in enumerate(cols):
        table, groups = tables[layer]
        if granularity == "unit":
            order = sorted(range(g.node(layer).channels), key=lambda c: (table[c][2], table[c][3], c))
            rank = {f"{layer}:{c}": r for r, c in enumerate(order)}
            for gid, (c,) in all_groups[layer]:
                if gid not in kept[layer]:
                    continue
                (u,) = units_in(g, layer, [c])
                fid, fname, _, _ = table[c]
                G.add_node(
                    gid, kind="unit", layer=layer, channel=c, branch=u.branch, branch_channel=u.branch_channel,
                    family=fid, family_name=fname, column=ci, position=rank[gid],
                )
        else:
            for r, (gid, fname, chans) in enumerate(groups):
                if gid not in kept[layer]:
                    continue
                G.add_node(
                    gid, kind="family", layer=layer, family=gid, family_name=fname, channels=list(chans),
                    n_units=len(chans), column=ci, position=r,
                )
    for i in sorted(edges):
        for u, v, a in edges[i]:
            if u in G and v in G:
                G.add_edge(u, v, src_layer=cols[i], dst_layer=cols[i + 1], **a)
    return G


def _group_edges(model, src_layer, sg, dst_layer, dg, rank_by, wkw):
    """(strength [D, S], attrs(d, s) -> dict) for groups of source and destination channels."""
    from circuits.analysis.expanded import connection, weights_between

    s_ch = [c for _, cs in sg for c in cs]
    d_ch = [c for _, cs in dg for c in cs]
    g = network_of(model)
    s_units = units_in(g, src_layer, s_ch)
    d_units = units_in(g, dst_layer, d_ch)
    conn = connection(s_units, d_units, g)
    direct_rows = torch.zeros(len(d_ch), dtype=torch.bool)
    for r in conn.routes:
        direct_rows[list(r.dst_index)] = r.direct
    with torch.no_grad():
        w = weights_between(model, s_units, d_units, **wkw).to(torch.float64)
    singleton = all(len(cs) == 1 for _, cs in sg) and all(len(cs) == 1 for _, cs in dg)
    if singleton:
        flat = w.flatten(2)
        total, pos, neg = flat.sum(-1), flat.clamp(min=0).sum(-1), flat.clamp(max=0).sum(-1)
        strength = _strength(w, rank_by)

        def attrs(d, s):
            return _edge_attrs(w[d, s], total[d, s], pos[d, s], neg[d, s], strength[d, s], bool(direct_rows[d]))

        return strength, attrs
    # Family edges: K[B, A] = mean over b in B of the sum over a in A of W[b, a].
    s_bounds, d_bounds, o = [], [], 0
    for _, cs in sg:
        s_bounds.append((o, o + len(cs)))
        o += len(cs)
    o = 0
    for _, cs in dg:
        d_bounds.append((o, o + len(cs)))
        o += len(cs)
    flat = w.flatten(2)
    per_total, per_pos, per_neg = flat.sum(-1), flat.clamp(min=0).sum(-1), flat.clamp(max=0).sum(-1)
    D, S = len(dg), len(sg)
    K = torch.zeros(D, S, *w.shape[-2:], dtype=w.dtype)
    tot, pos, neg = (torch.zeros(D, S, dtype=w.dtype) for _ in range(3))
    direct = torch.zeros(D, dtype=torch.bool)
    for d, (d0, d1) in enumerate(d_bounds):
        direct[d] = bool(direct_rows[d0:d1].all())
        for s, (s0, s1) in enumerate(s_bounds):
            K[d, s] = w[d0:d1, s0:s1].sum(1).mean(0)
            tot[d, s] = per_total[d0:d1, s0:s1].sum(1).mean(0)
            pos[d, s] = per_pos[d0:d1, s0:s1].sum(1).mean(0)
            neg[d, s] = per_neg[d0:d1, s0:s1].sum(1).mean(0)
    strength = _strength(K, rank_by)

    def fattrs(d, s):
        return _edge_attrs(K[d, s], tot[d, s], pos[d, s], neg[d, s], strength[d, s], bool(direct[d]))

    return strength, fattrs


# --- export ----------------------------------------------------------------

FORMATS = (".graphml", ".json")


def _list_keys(G: nx.DiGraph) -> tuple[list[str], list[str]]:
    nk = sorted({k for _, a in G.nodes(data=True) for k, v in a.items() if isinstance(v, (list, tuple, dict))})
    ek = sorted({k for _, _, a in G.edges(data=True) for k, v in a.items() if isinstance(v, (list, tuple, dict))})
    return nk, ek


def write_graph(G: nx.DiGraph, path: str | os.PathLike) -> Path:
    """Write `G` as GraphML (.graphml) or node-link JSON (.json), via a temp file and rename.

    >>> write_graph(g, "circuit.graphml")      # doctest: +SKIP
    """
    from circuits.core.files import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"cannot write a graph to {path}: use a .graphml or .json file name")
    with atomic_path(path) as tmp:
        if suffix == ".graphml":
            H = G.copy()
            nk, ek = _list_keys(H)
            for _, a in H.nodes(data=True):
                for k in nk:
                    if k in a:
                        a[k] = json.dumps(a[k])
            for _, _, a in H.edges(data=True):
                for k in ek:
                    if k in a:
                        a[k] = json.dumps(a[k])
            H.graph["json_attributes"] = json.dumps({"node": nk, "edge": ek})
            nx.write_graphml(H, tmp)
        else:
            data = nx.node_link_data(G, edges="edges")
            tmp.write_text(json.dumps(data))
    return path


def read_graph(path: str | os.PathLike) -> nx.DiGraph:
    """Read a graph written by `write_graph` (JSON-string attributes decoded again)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such graph file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".graphml":
        G = nx.read_graphml(path)
        keys = json.loads(G.graph.pop("json_attributes", '{"node": [], "edge": []}'))
        for _, a in G.nodes(data=True):
            for k in keys["node"]:
                if k in a:
                    a[k] = json.loads(a[k])
        for _, _, a in G.edges(data=True):
            for k in keys["edge"]:
                if k in a:
                    a[k] = json.loads(a[k])
        return G
    if suffix == ".json":
        return nx.node_link_graph(json.loads(path.read_text()), edges="edges")
    raise ValueError(f"cannot read a graph from {path}: use a .graphml or .json file")


# --- comparing two graphs --------------------------------------------------


@dataclass(frozen=True)
class GraphComparison:
    """Edges in one graph but not the other, and how shared edges' weights agree.

    correlation: Pearson correlation of `attr` over the shared edges (nan if fewer
    than two or constant); sign_agreement: fraction of shared edges whose `attr` has
    the same sign in both.
    """

    only_a: list[tuple[str, str]]
    only_b: list[tuple[str, str]]
    shared: list[tuple[str, str]]
    nodes_only_a: list[str]
    nodes_only_b: list[str]
    attr: str
    correlation: float
    sign_agreement: float

    def summary(self) -> str:
        return (
            f"{len(self.shared)} shared edges, {len(self.only_a)} only in a, {len(self.only_b)} only in b; "
            f"{self.attr} correlation {self.correlation:.3f}, same sign {self.sign_agreement:.1%}"
        )


def compare_graphs(a: nx.DiGraph, b: nx.DiGraph, attr: str = "sum") -> GraphComparison:
    """Compare two circuit graphs (e.g. trained vs hand-built weights) edge by edge.

    >>> c = compare_graphs(g_trained, g_handbuilt)    # doctest: +SKIP
    >>> c.only_a[:3], c.correlation                   # doctest: +SKIP
    """
    ea, eb = set(a.edges), set(b.edges)
    shared = sorted(ea & eb)
    for u, v in shared:
        for g, name in ((a, "a"), (b, "b")):
            if attr not in g.edges[u, v]:
                raise KeyError(f"edge {u} -> {v} of graph {name} has no attribute {attr!r}")
    xa = torch.tensor([float(a.edges[e][attr]) for e in shared], dtype=torch.float64)
    xb = torch.tensor([float(b.edges[e][attr]) for e in shared], dtype=torch.float64)
    corr = float("nan")
    if len(shared) >= 2 and xa.std() > 0 and xb.std() > 0:
        corr = float(torch.corrcoef(torch.stack([xa, xb]))[0, 1])
    agree = float((torch.sign(xa) == torch.sign(xb)).double().mean()) if shared else float("nan")
    return GraphComparison(
        only_a=sorted(ea - eb),
        only_b=sorted(eb - ea),
        shared=shared,
        nodes_only_a=sorted(set(a.nodes) - set(b.nodes)),
        nodes_only_b=sorted(set(b.nodes) - set(a.nodes)),
        attr=attr,
        correlation=corr,
        sign_agreement=agree,
    )
