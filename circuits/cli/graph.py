"""`circuits graph` (export a circuit graph) and `circuits ablate` (what an ablation changes).

Example:
    $ circuits graph --from mixed3a --to mixed3b --family mixed3b:curves --top-k 5 \\
          --weights random --out curves.graphml --plot curves.png
    $ circuits ablate mixed3b:curves --image cat.png --weights random --layer mixed4a --top 5
    $ circuits ablate mixed3b:curves --inputs mixed3a:early_curves --image cat.png
    $ circuits ablate mixed3b:hb_curves --inputs mixed3b_5x5_bottleneck:hb_curve_relay --image cat.png
"""

from __future__ import annotations

import os
from pathlib import Path

from circuits.cli.options import (
    add_weights,
    check_outputs,
    load_network,
    network_graph,
    nonnegative_float,
    positive_int,
    require_live,
    resolve,
    unit_list,
    weights_name,
)
from circuits.cli.device import add_device
from circuits.cli.paths import In, Out, declare_io
GRAPH_SUFFIXES = (".graphml", ".json")
PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def register(sub) -> None:
    p = sub.add_parser(
        "graph",
        help="circuit graph between two layers (units or families, weights on the edges) -> GraphML / JSON",
    )
    p.add_argument("--from", dest="src", required=True, metavar="LAYER", help="first layer, e.g. mixed3a")
    p.add_argument("--to", dest="dst", required=True, metavar="LAYER", help="last layer, e.g. mixed3b")
    p.add_argument(
        "--family", metavar="NAME", action="append",
        help="focus: family or unit ids (e.g. mixed3b:curves, or mixed3b:379,mixed3b:406; repeatable); "
        "the graph keeps them and what links to them",
    )
    p.add_argument("--top-k", type=positive_int, default=None, metavar="K", help="keep each node's K strongest edges")
    p.add_argument("--threshold", type=nonnegative_float, default=None, metavar="T", help="drop edges weaker than T")
    p.add_argument("--keep-zero", action="store_true",
                   help="keep edges whose kernel is exactly zero (dropped by default: they carry nothing)")
    p.add_argument("--granularity", choices=("unit", "family"), default="unit", help="nodes are units or families")
    p.add_argument(
        "--rank-by", choices=("max_abs", "l1", "abs_sum"), default="max_abs",
        help="edge strength for --top-k/--threshold (default max_abs: the largest |weight|)",
    )
    add_weights(p)
    p.add_argument("--out", required=True, metavar="FILE", help="output file, .graphml or .json (node-link)")
    p.add_argument("--plot", metavar="FILE", help="also draw the graph to FILE (.png, .pdf, .svg)")
    add_device(p)
    p.set_defaults(func=cmd_graph)
    declare_io(p, outputs=[Out("--out", GRAPH_SUFFIXES), Out("--plot", PLOT_SUFFIXES)],
               inputs=[In("--family", "units"), In("--weights", "weights")])

    p = sub.add_parser(
        "ablate",
        help="how an ablation changes the top classes and a layer's strongest units on one image",
    )
    p.add_argument("units", metavar="UNIT_OR_FAMILY", nargs="+",
                   help="unit or family ids, e.g. mixed3b:curves, mixed3b:379 or mixed3b:379,mixed3b:406")
    p.add_argument("--image", required=True, metavar="FILE",
                   help="image file (PNG or JPEG), resized and cropped to the network's size (224, InceptionV3 299); "
                   "at least the receptive field of the layers read")
    add_weights(p)
    p.add_argument(
        "--layer", default=None,
        help="layer whose strongest units are shown (default: the next layer after the ablated units)",
    )
    p.add_argument("--top", type=positive_int, default=5, metavar="N", help="how many classes and units to show (default 5)")
    p.add_argument(
        "--inputs", metavar="SRC", default=None,
        help="ablate the weights from SRC (units or family) into the units instead of the units themselves",
    )
    add_device(p)
    p.set_defaults(func=cmd_ablate)
    declare_io(p, inputs=[In("units", "units"), In("--inputs", "units"), In("--image"), In("--weights", "weights")])


# --- shared ------------------------------------------------------------------


def load_model(source: str | None, device: str | None = None):
    """The model of a weight source, or of an edited .safetensors (with its edits re-applied), on `device`."""
    source = source or weights_name(None)
    return load_network(source, device), source


def load_image(path: str | os.PathLike, network, min_size: int | None = None):
    """An image file as `network`'s input [1, 3, S, S] at the size it was trained at
    (see `circuits.core.inputs.load_image`)."""
    from circuits.core.inputs import load_image as _load

    return _load(path, network.default_input_size, min_size=min_size, input_range=network.input_range)


# --- graph ---------------------------------------------------------------------


def _drop_zero_edges(g) -> int:
    """Remove edges whose kernel is exactly 0 everywhere; return how many."""
    zero = [(u, v) for u, v, a in g.edges(data=True) if a.get("max_abs", 1.0) == 0.0]
    g.remove_edges_from(zero)
    return len(zero)


def cmd_graph(args) -> int:
    from circuits.analysis.circuit_graph import circuit_graph, write_graph

    check_outputs([("--out", args.out, GRAPH_SUFFIXES), ("--plot", args.plot, PLOT_SUFFIXES)])
    out = Path(args.out)
    source = weights_name(args)
    focus = resolve(args.family, source) if args.family else None
    model, source = load_model(source, args.device)
    require_live(model, [args.dst], f"graph --to {args.dst}")
    g = circuit_graph(
        model, (args.src, args.dst), units=focus, top_k=args.top_k, threshold=args.threshold,
        granularity=args.granularity, rank_by=args.rank_by,
    )
    dropped = 0 if args.keep_zero else _drop_zero_edges(g)
    write_graph(g, out)
    print(f"circuit graph {args.src} -> {args.dst} ({args.granularity}s, weights {source}): "
          f"{g.number_of_nodes()} nodes, {g.number_of_edges()} edges -> {out}")
    if dropped:
        print(f"({dropped} edges with an all-zero kernel dropped; --keep-zero keeps them)")
    if args.plot:
        from circuits.plots.graph import plot_graph

        plot_graph(g, args.plot)
        print(f"plot saved to {args.plot}")
    return 0


# --- ablate ----------------------------------------------------------------------


def _default_layer(g, layer: str) -> str:
    later = [t for t in g.trunk_layers if g.index(t) > g.index(layer)]
    return later[0] if later else layer


def _ranks(values) -> dict[int, int]:
    import torch

    order = torch.argsort(values, descending=True, stable=True).tolist()
    return {c: r + 1 for r, c in enumerate(order)}


def _table(title: str, key: str, before, after, n: int, fmt) -> list[str]:
    rb, ra = _ranks(before), _ranks(after)
    shown = sorted({c for c, r in rb.items() if r <= n} | {c for c, r in ra.items() if r <= n}, key=lambda c: rb[c])
    lines = [title, f"  {key:>14} {'before':>10} {'rank':>5} {'after':>10} {'rank':>5} {'change':>10}"]
    for c in shown:
        b, a = float(before[c]), float(after[c])
        lines.append(f"  {fmt(c):>14} {b:10.4g} {rb[c]:5d} {a:10.4g} {ra[c]:5d} {a - b:+10.3g}")
    return lines


def cmd_ablate(args) -> int:
    import torch

    from circuits.analysis.ablation import ablate
    from circuits.core.extent import last_live_layer
    from circuits.editing.edits import ablate_connections

    source = weights_name(args)
    specs = unit_list(args.units)
    g = network_graph(source)
    units = resolve(specs, source)
    sources = resolve(args.inputs, source) if args.inputs else None
    layers = sorted({u.layer for u in units}, key=g.index)
    if args.layer is not None:
        g.node(args.layer)
    edit = ablate_connections(sources, units) if sources else None
    # Read (and size-check) the image before any weights are built.
    x = load_image(args.image, g, min_size=g.receptive_field(layers[-1]).size)
    model, source = load_model(source, args.device)
    x = x.to(next(model.parameters()).device)
    end = last_live_layer(model)
    layer = args.layer or _default_layer(g, layers[-1])
    notes = []
    if args.layer is None and end is not None and g.index(layer) > g.index(end):
        notes.append(f"(the network {source} has nothing past {end}: showing {end} instead of {layer})")
        layer = end
    require_live(model, [layer, *layers], "ablate")
    classes = g.classes
    read_classes = classes is not None and end is not None and g.index(classes) <= g.index(end)
    if classes is None:
        notes.append(f"(no class table: {g.name} here is a trunk without its classifier; it ends at {g.output})")
    elif not read_classes:
        notes.append(f"(no class table: the network {source} has nothing past {end}, so {classes} is uniform)")
    names = [layer] + ([classes] if read_classes else [])
    with torch.no_grad():
        before = model.run_with_cache(x, names)
        if edit is not None:
            with edit.applied(model):
                after = model.run_with_cache(x, names)
            what = f"the weights {args.inputs} -> {', '.join(specs)} ({edit.kinds()}; set to 0)"
        else:
            with model.hooks(ablate(units, "zero")):
                after = model.run_with_cache(x, names)
            what = f"{', '.join(specs)} ({len(units)} units set to 0)"
    side = g.default_input_size
    print(f"ablate {what}; image {args.image} ({side}x{side}); weights {source}")
    for n in notes:
        print(n)
    print()
    lines = []
    if read_classes:
        lines += _table(
            f"top {args.top} classes of {classes} (class indices: the 1008 Inception labels are not available offline)",
            "class", before[classes][0], after[classes][0], args.top, str,
        ) + [""]
    act_b, act_a = before[layer][0].flatten(1).amax(1), after[layer][0].flatten(1).amax(1)
    lines += _table(
        f"strongest {args.top} units of {layer} (max over positions)", "unit", act_b, act_a, args.top,
        lambda c: f"{layer}:{c}",
    )
    print("\n".join(lines))
    return 0
