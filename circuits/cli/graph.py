"""`circuits graph` (export a circuit graph) and `circuits ablate` (what an ablation changes).

Example:
    $ circuits graph --from mixed3a --to mixed3b --family mixed3b:curves --top-k 5 \\
          --weights random --out curves.graphml --plot curves.png
    $ circuits ablate mixed3b:curves --image cat.png --weights random --layer mixed4a --top 5
    $ circuits ablate mixed3b:curves --inputs mixed3a:early_curves --image cat.png
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from circuits.core import graph

IMAGE_SIZE = 224


def register(sub) -> None:
    p = sub.add_parser(
        "graph",
        help="circuit graph between two layers (units or families, weights on the edges) -> GraphML / JSON",
    )
    p.add_argument("--from", dest="src", required=True, metavar="LAYER", help="first layer, e.g. mixed3a")
    p.add_argument("--to", dest="dst", required=True, metavar="LAYER", help="last layer, e.g. mixed3b")
    p.add_argument(
        "--family", metavar="NAME",
        help="focus: a family or unit id (e.g. mixed3b:curves); the graph keeps it and what links to it",
    )
    p.add_argument("--top-k", type=int, default=None, metavar="K", help="keep each node's K strongest edges")
    p.add_argument("--threshold", type=float, default=None, metavar="T", help="drop edges weaker than T")
    p.add_argument("--granularity", choices=("unit", "family"), default="unit", help="nodes are units or families")
    p.add_argument(
        "--rank-by", choices=("max_abs", "l1", "abs_sum"), default="max_abs",
        help="edge strength for --top-k/--threshold (default max_abs: the largest |weight|)",
    )
    p.add_argument("--weights", dest="source", default=None, help="weight source (default: weights.DEFAULT)")
    p.add_argument("--out", required=True, metavar="FILE", help="output file, .graphml or .json (node-link)")
    p.add_argument("--plot", metavar="FILE", help="also draw the graph to FILE (.png, .pdf, .svg)")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser(
        "ablate",
        help="how an ablation changes the top classes and a layer's strongest units on one image",
    )
    p.add_argument("units", metavar="UNIT_OR_FAMILY", help="unit or family id, e.g. mixed3b:curves or mixed3b:379")
    p.add_argument("--image", required=True, metavar="FILE", help="image file (PNG or JPEG), resized and cropped to 224")
    p.add_argument("--weights", dest="source", default=None, help="weight source (default: weights.DEFAULT)")
    p.add_argument(
        "--layer", default=None,
        help="layer whose strongest units are shown (default: the next layer after the ablated units)",
    )
    p.add_argument("--top", type=int, default=5, metavar="N", help="how many classes and units to show (default 5)")
    p.add_argument(
        "--inputs", metavar="SRC", default=None,
        help="ablate the weights from SRC (units or family) into the units instead of the units themselves",
    )
    p.set_defaults(func=cmd_ablate)


# --- shared ------------------------------------------------------------------


def load_model(source: str | None):
    """The model of a weight source, or of an edited .safetensors (with its edits re-applied)."""
    import weights as weight_sources

    from weights.edited import is_edited_file, load_edited

    source = source or weight_sources.DEFAULT
    if str(source).endswith(".safetensors") and os.path.isfile(source) and is_edited_file(source):
        return load_edited(source), source
    return weight_sources.model(source), source


def load_image(path: str | os.PathLike, size: int = IMAGE_SIZE) -> torch.Tensor:
    """An image file as model input [1, 3, size, size] (see `circuits.core.inputs.load_image`)."""
    from circuits.core.inputs import load_image as _load

    return _load(path, size)


# --- graph ---------------------------------------------------------------------


def cmd_graph(args) -> int:
    from circuits.analysis.circuit_graph import FORMATS, circuit_graph, write_graph

    out = Path(args.out)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"--out must end in .graphml or .json, got {args.out}")
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ValueError(f"--plot must end in .png, .pdf or .svg, got {args.plot}")
    model, source = load_model(args.source)
    g = circuit_graph(
        model, (args.src, args.dst), units=args.family, top_k=args.top_k, threshold=args.threshold,
        granularity=args.granularity, rank_by=args.rank_by,
    )
    write_graph(g, out)
    print(f"circuit graph {args.src} -> {args.dst} ({args.granularity}s, weights {source}): "
          f"{g.number_of_nodes()} nodes, {g.number_of_edges()} edges -> {out}")
    if args.plot:
        from circuits.plots.graph import plot_graph

        plot_graph(g, args.plot)
        print(f"plot saved to {args.plot}")
    return 0


# --- ablate ----------------------------------------------------------------------


def _default_layer(layer: str) -> str:
    from circuits.analysis.circuit_graph import trunk_layers

    trunk = trunk_layers()
    later = [t for t in trunk if graph.index(t) > graph.index(layer)]
    return later[0] if later else layer


def _ranks(values: torch.Tensor) -> dict[int, int]:
    order = torch.argsort(values, descending=True, stable=True).tolist()
    return {c: r + 1 for r, c in enumerate(order)}


def _table(title: str, key: str, before: torch.Tensor, after: torch.Tensor, n: int, fmt) -> list[str]:
    rb, ra = _ranks(before), _ranks(after)
    shown = sorted({c for c, r in rb.items() if r <= n} | {c for c, r in ra.items() if r <= n}, key=lambda c: rb[c])
    lines = [title, f"  {key:>14} {'before':>10} {'rank':>5} {'after':>10} {'rank':>5} {'change':>10}"]
    for c in shown:
        b, a = float(before[c]), float(after[c])
        lines.append(f"  {fmt(c):>14} {b:10.4g} {rb[c]:5d} {a:10.4g} {ra[c]:5d} {a - b:+10.3g}")
    return lines


def cmd_ablate(args) -> int:
    from circuits.analysis.ablation import ablate
    from circuits.editing.edits import ablate_connections
    from circuits.core.units import resolve_units

    if args.top < 1:
        raise ValueError(f"--top must be a positive number, got {args.top}")
    units = resolve_units(args.units)
    layers = sorted({u.layer for u in units}, key=graph.index)
    layer = args.layer or _default_layer(layers[-1])
    graph.node(layer)
    edit = ablate_connections(args.inputs, args.units) if args.inputs else None
    x = load_image(args.image)
    model, source = load_model(args.source)
    names = [layer, "softmax2"]
    with torch.no_grad():
        before = model.run_with_cache(x, names)
        if edit is not None:
            with edit.applied(model):
                after = model.run_with_cache(x, names)
            what = f"the weights {args.inputs} -> {args.units} ({edit.kinds()}; set to 0)"
        else:
            with model.hooks(ablate(units, "zero")):
                after = model.run_with_cache(x, names)
            what = f"{args.units} ({len(units)} units set to 0)"
    print(f"ablate {what}; image {args.image} ({IMAGE_SIZE}x{IMAGE_SIZE}); weights {source}")
    print()
    lines = _table(
        f"top {args.top} classes of softmax2 (class indices: the 1008 Inception labels are not available offline)",
        "class", before["softmax2"][0], after["softmax2"][0], args.top, str,
    )
    act_b, act_a = before[layer][0].flatten(1).amax(1), after[layer][0].flatten(1).amax(1)
    lines += [""] + _table(
        f"strongest {args.top} units of {layer} (max over positions)", "unit", act_b, act_a, args.top,
        lambda c: f"{layer}:{c}",
    )
    print("\n".join(lines))
    return 0
