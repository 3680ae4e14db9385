"""`circuits families [LAYER]` and `circuits weights SRC DST`: families and the weights between them.

Example:
    $ circuits families mixed3a
    $ circuits weights mixed3a:early_curves mixed3b:curves --weights random --plot w.png
    $ circuits weights mixed3a:hb_early_curve_bank mixed3b:curves
    $ circuits weights --verify inception5h.pth
"""

from __future__ import annotations

import json
import sys

from circuits import families as fam
from circuits.core.units import WrongNetworkError
from circuits.cli.options import (
    DEFAULT_WEIGHTS,
    add_weights,
    check_outputs,
    load_network,
    network_for,
    positive_int,
    require_live,
    resolve,
    weights_name,
)
from circuits.cli.device import add_device
from circuits.cli.paths import In, Out, declare_io
PLOT_SUFFIXES = (".png",)


def register(sub) -> None:
    p = sub.add_parser("families", help="list the neuron families of a layer (or of every layer)")
    p.add_argument("layer", nargs="?", help="layer name, e.g. mixed3b (default: all layers)")
    p.add_argument(
        "--source", metavar="SOURCE",
        help="only families from this source: early_vision, article, user, or the network's own (e.g. handbuilt)",
    )
    p.add_argument("--json", action="store_true", help="print JSON (id, name, aliases, source, channels)")
    p.add_argument("--load", metavar="FILE", action="append", default=[],
                   help="also list the family of a family file (.json from `circuits discover --json`); repeatable")
    add_weights(p, help="the network whose families are listed, with the ones it defines (default handbuilt: "
                "its hb_* banks; --weights lucid for the published ones only; nsfwjs-inception-v3 for InceptionV3's)")
    p.set_defaults(func=cmd_families)
    declare_io(p, inputs=[In("--load"), In("--weights", "weights")])

    p = sub.add_parser(
        "weights",
        help="weights between two units or families (direct slice or expanded weights): summary table; "
        "or --verify FILE",
    )
    p.add_argument("src", nargs="?", help="source units or family, e.g. mixed3a:early_curves or mixed3a:81,mixed3a:104")
    p.add_argument("dst", nargs="?", help="destination units or family, e.g. mixed3b:curves or mixed3b:379,mixed3b:406")
    p.add_argument("--verify", metavar="FILE",
                   help="instead: check an InceptionV1 weight file by what it computes (its ten mixed3b curve units "
                   "must prefer the published orientations within 10 degrees, as downloads are checked); exit 1 if not")
    add_weights(p)
    p.add_argument("--plot", metavar="FILE", help="also save the Distill-style tile grid to FILE (.png)")
    p.add_argument("--method", choices=("compose", "autograd"), default="compose")
    p.add_argument("--top", type=positive_int, default=None, metavar="K", help="only the K pairs with the largest |total|")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    add_device(p)
    p.set_defaults(func=cmd_weights)
    declare_io(p, outputs=[Out("--plot", PLOT_SUFFIXES)],
               inputs=[In("src", "units"), In("dst", "units"), In("--weights", "weights")])


def cmd_families(args) -> int:
    from circuits.families.files import load_family

    net = network_for(weights_name(args))  # the network's own families are listed too
    g = net.graph
    for path in args.load:
        try:
            load_family(path, net)
        except WrongNetworkError as e:
            raise ValueError(f"{e}; list it with the weights of that network") from None
    if args.source is not None and args.source not in fam.sources(net):
        raise ValueError(f"unknown family source {args.source!r}; use one of {', '.join(fam.sources(net))}")
    hint = ("" if g.name == "InceptionV1" else
            f"; {g.name}'s families come from `circuits discover LAYER --weights {weights_name(args)} --json F`, "
            "listed with --load F and usable as F wherever units are")
    if args.layer is not None:
        g.node(args.layer)  # unknown layer: one clear line with close matches
        fs = fam.families(net, args.layer, source=args.source)
        if not fs:
            mine = fam.layers_with_families(net)
            raise ValueError(
                f"layer {args.layer} has no registered families "
                f"(layers of {g.name} with families: {', '.join(mine) or 'none'}){hint}"
            )
    else:
        fs = fam.families(net, source=args.source)
        if not fs:
            raise ValueError(f"{g.name} has no registered families{hint}")
    if args.json:
        rows = [
            {"id": f.id, "layer": f.layer, "name": f.name, "aliases": list(f.aliases), "source": f.source, "channels": f.channels}
            for f in fs
        ]
        print(json.dumps(rows, indent=1))
        return 0
    wide = args.layer is None
    print(f"{'id':38} {'name':34} {'n':>4}  {'source':12} {'also':24} channels")
    for f in fs:
        chans = " ".join(map(str, f.channels))
        if wide and len(chans) > 40:
            chans = chans[:37].rsplit(" ", 1)[0] + " ..."
        # Every other name the family answers to, as layer:alias would be typed.
        also = ", ".join(f.aliases[1:])
        print(f"{f.id:38} {f.name[:34]:34} {len(f):4d}  {f.source:12} {also:24} {chans}")
    if args.layer in fam.COMPLETE_LAYERS and args.source in (None, "early_vision"):
        print(f"({args.layer}: the Early Vision families partition all {g.node(args.layer).channels} channels)")
    return 0


def cmd_verify(args) -> int:
    """`circuits weights --verify FILE`: the download check (weights.verify) on a local file."""
    from weights.verify import TOLERANCE_DEG, verify_file

    extra = {"SRC": args.src is not None, "DST": args.dst is not None, "--plot": args.plot is not None,
             "--top": args.top is not None, "--json": args.json, "--weights": args.weights != DEFAULT_WEIGHTS}
    if any(extra.values()):
        raise ValueError(f"--verify FILE checks that file alone and takes no {', '.join(k for k, v in extra.items() if v)}")
    report = verify_file(args.verify)
    print(f"{args.verify}: the mixed3b curve units against their published orientations "
          f"({report.n_angles} orientations, tolerance {TOLERANCE_DEG:g} degrees)")
    print(report.table())
    if report.passed:
        print(f"verified: all {len(report.units)} curve units within {report.worst_error_deg:g} degrees")
        return 0
    from weights.verify import VerificationError

    try:
        report.raise_if_failed(args.verify)
    except VerificationError as e:
        print(f"circuits weights: {e}", file=sys.stderr)
    return 1


def cmd_weights(args) -> int:
    if args.verify is not None:
        return cmd_verify(args)
    if args.src is None or args.dst is None:
        raise ValueError("weights needs SRC and DST (e.g. mixed3a:early_curves mixed3b:curves), or --verify FILE")
    from circuits.analysis.expanded import connection, summary_rows, weights_between
    source = weights_name(args)
    check_outputs([("--plot", args.plot, PLOT_SUFFIXES)])
    src, dst = resolve(args.src, source), resolve(args.dst, source)
    conn = connection(src, dst)  # validate before loading weights
    model = load_network(source, args.device)
    require_live(model, sorted({u.layer for u in dst}, key=model.graph.index), f"weights {args.src} {args.dst}")
    w = weights_between(model, conn.src_units, conn.dst_units, method=args.method)
    rows = summary_rows(w, conn.src_units, conn.dst_units)
    if args.top is not None:
        rows = sorted(rows, key=lambda r: -abs(r["total"]))[: args.top]
    if args.plot:
        from circuits.plots.weights import plot_weights

        kind = "direct" if conn.direct else "expanded"
        plot_weights(w, conn.src_units, conn.dst_units, args.plot, title=f"{args.src} -> {args.dst} ({kind}, {source})")
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    kind = "direct (parameter slice)" if conn.direct else f"expanded ({', '.join(conn.linearized)} linearized; biases dropped)"
    dst_tensors = ", ".join(r.dst_tensor for r in conn.routes)
    print(f"{args.src} -> {args.dst}: {kind}; weights {source}")
    print(f"source tensor {conn.src_tensor}, destination pre-activations {dst_tensors}, kernel {w.shape[-1]}x{w.shape[-1]}")
    head = f"{'dst':16} {'src':16} {'total':>11} {'max_pos':>11} {'max_neg':>11} {'pos_mass':>11} {'neg_mass':>11}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['dst']:16} {r['src']:16} {r['total']:11.4g} {r['max_positive']:11.4g} "
            f"{r['max_negative']:11.4g} {r['positive_mass']:11.4g} {r['negative_mass']:11.4g}"
        )
    if args.plot:
        print(f"plot saved to {args.plot}")
    return 0
