"""`circuits heatmaps`: the article's synthetic heat maps, in standard deviations of a dataset scan.

Example:
    $ circuits dataset mixed3b:379 --images skimage --json scan.json --no-plots
    $ circuits heatmaps mixed3b:379 --baseline scan.json --plot heatmaps.png --json heatmaps.json
    $ circuits heatmaps mixed2:104 --weights nsfwjs-inception-v3 --images skimage --kinds curves,angles
"""

from __future__ import annotations

import argparse
from pathlib import Path

from circuits.cli.dataset import IMAGE_SUFFIXES
from circuits.cli.device import add_device
from circuits.cli.limits import SCAN_SIDE, bounded_int
from circuits.cli.paths import In, Out, declare_io
from circuits.cli.options import add_weights, check_outputs, network_for, network_graph, resolve, weights_name
from circuits.core.files import write_json

PLOT_SUFFIXES = (".png", ".svg", ".pdf")
# circuits.tuning.heatmaps.KINDS, listed here so that building the parser does not import torch
# (tests/test_heatmaps.py keeps them equal).
KINDS = ("curves", "angles", "series", "fill", "colour")


def _kinds(text: str) -> list[str]:
    ks = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in ks if k not in KINDS]
    if bad or not ks:
        raise argparse.ArgumentTypeError(f"unknown map kind(s) {', '.join(bad) or repr(text)}: use any of "
                                         f"{', '.join(KINDS)}, comma-separated")
    return ks


_MAX_ORIENTATIONS = 3600  # 0.1 degree apart; each orientation is a column of every map


def _orientations(text: str) -> int:
    n = bounded_int(_MAX_ORIENTATIONS, "orientations over 360 degrees")(text)
    if n < 4:
        raise argparse.ArgumentTypeError(f"must be at least 4 orientations over 360 degrees, got {n}")
    return n


_orientations.maximum = _MAX_ORIENTATIONS  # type: ignore[attr-defined]


def register(sub) -> None:
    p = sub.add_parser(
        "heatmaps",
        help="synthetic heat maps (curves, angles, angles to curves, fill, colour) in dataset standard deviations",
        description="The synthetic heat maps of 'Curve Detectors': pre-ReLU responses to curves (orientation x "
        "curvature), angles (orientation x radius), angles rounded step by step into curves, filled and coloured "
        "curves; expressed in standard deviations from the unit's mean over a dataset scan (--baseline, the JSON "
        "of `circuits dataset`, or --images to scan now). Prints the largest value of each map.",
    )
    p.add_argument("units", metavar="UNITS", nargs="+", help="unit or family ids of one layer (mixed3b:379)")
    add_weights(p)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--baseline", metavar="SCAN", help="the JSON `circuits dataset --json` wrote for these units")
    src.add_argument("--images", help="scan this folder (or 'skimage') for the baseline first")
    p.add_argument("--image-size", type=SCAN_SIDE, default=None,
                   help="with --images: resize the shorter side to this (default: the network's size)")
    p.add_argument("--kinds", type=_kinds, default=list(KINDS), help=f"maps to draw (default all: {','.join(KINDS)})")
    p.add_argument("--angles", type=_orientations, default=72, help="orientations over 360 degrees (default 72)")
    p.add_argument("--json", help="write the maps here (JSON)")
    p.add_argument("--plot", help="write the sheet here (.png/.svg/.pdf); several units: one file per unit, "
                   "named FILE_UNIT.png")
    add_device(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_heatmaps)
    declare_io(p, outputs=[Out("--json", (".json",)), Out("--plot", PLOT_SUFFIXES)],
               inputs=[In("units", "units"), In("--baseline"), In("--images", "folder", IMAGE_SUFFIXES),
                       In("--weights", "weights")])


def _plot_paths(path: str | None, units: list[str]) -> dict[str, Path]:
    if path is None:
        return {}
    p = Path(path)
    if len(units) == 1:
        return {units[0]: p}
    return {u: p.with_name(f"{p.stem}_{u.replace(':', '_')}{p.suffix}") for u in units}


def cmd_heatmaps(args) -> int:
    source_name = weights_name(args)
    net = network_for(source_name)
    units = resolve(args.units, net)
    ids = [u.id for u in units]
    plots = _plot_paths(args.plot, ids)
    check_outputs([("--json", args.json, (".json",))] + [("--plot", p, PLOT_SUFFIXES) for p in plots.values()])
    if len({u.layer for u in units}) != 1:
        raise ValueError(f"the units must share one layer, got {', '.join(sorted({u.layer for u in units}))}")
    from circuits.tuning.heatmaps import Baseline

    graph = network_graph(source_name)
    baseline = None
    if args.baseline:
        baseline = Baseline.from_scan(args.baseline)
        baseline.check(ids, graph.name)
    images = None
    if args.images:
        from circuits.dataset.sources import open_source

        images = open_source(args.images, args.image_size or graph.default_input_size)
    from circuits.cli.options import load_network
    from circuits.tuning.heatmaps import heatmaps

    model = load_network(net, args.device).eval()
    if images is not None:
        from circuits.dataset.scan import scan

        state = scan(model, units, images, top_k=0, reservoir=0, bin_width=1.0, progress=not args.quiet)
        baseline = Baseline.from_scan(state.to_json(images.names))
        baseline = Baseline(baseline.mean, baseline.std, baseline.n, baseline.network, f"scan of {images.description}")
    hm = heatmaps(model, units, baseline=baseline, kinds=args.kinds, orientations=[i * 360 / args.angles
                                                                                 for i in range(args.angles)],
                  progress=not args.quiet)
    unit_word = "standard deviations from the dataset mean" if baseline else "pre-ReLU activation (no baseline)"
    print(f"heat maps ({unit_word}; {source_name} weights)")
    if baseline:
        for u in ids:
            print(f"  baseline {u}: mean {baseline.mean[u]:.4g}, std {baseline.std[u]:.4g} over {baseline.n.get(u, '?')} "
                  f"crops ({baseline.source})")
    for u in ids:
        best = hm.largest(u)
        print(f"{u}: " + ", ".join(f"{k} {v:.2f}" for k, v in best.items()))
        v, where = hm.up_to(u)
        print(f"{u}: up to {v:.1f} {'standard deviations' if baseline else ''} ({where})")
    if args.json:
        data = hm.to_json()
        data["weights"] = source_name
        write_json(args.json, data)
        print(f"wrote {args.json}")
    if plots:
        from circuits.plots.heatmaps import plot_heatmaps

        for u, p in plots.items():
            plot_heatmaps(hm, u, p)
            print(f"wrote {p}")
    return 0
