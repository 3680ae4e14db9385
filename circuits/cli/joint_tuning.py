"""`circuits joint-tuning`: a family's responses to its units' rotated dataset examples.

Example:
    $ circuits joint-tuning mixed3b:curves --images skimage --json joint.json --plot joint.png
    $ circuits joint-tuning docs/inceptionv3_mixed2_curves.json --weights nsfwjs-inception-v3 --images skimage
"""

from __future__ import annotations

import argparse
import math

from circuits.cli.options import (
    add_weights,
    check_outputs,
    family_ids,
    network_for,
    network_graph,
    positive_int,
    resolve,
    weights_name,
)
from circuits.cli.dataset import IMAGE_SUFFIXES
from circuits.cli.device import add_device
from circuits.cli.limits import SCAN_SIDE, bounded_int
from circuits.cli.paths import In, Out, declare_io
from circuits.core.files import write_json

PLOT_SUFFIXES = (".png", ".svg", ".pdf")
# Each example is rotated 360 / step times and every rotation kept until averaged.
_TOP_K = bounded_int(1000, "examples rotated per unit")


def _step(text: str) -> int:
    n = positive_int(text)
    if 360 % n:
        raise argparse.ArgumentTypeError(f"must divide 360 (1, 2, 3, 4, 5, 6, 8, 9, 10, ...), got {n}")
    return n


def register(sub) -> None:
    p = sub.add_parser(
        "joint-tuning",
        help="rotate each unit's top dataset crops 0..359 degrees and record every unit of the family",
        description="Joint tuning curves ('Curve Detectors'): for each unit of the family, its strongest "
        "receptive-field crops of the images (a dataset scan), masked to a disc and rotated about the "
        "receptive-field centre (clockwise on screen, the stimuli's convention); every unit of the family "
        "is read at each rotation. Prints how often a neighbour peaks at the rotation equal to the "
        "difference of preferred orientations.",
    )
    p.add_argument("units", metavar="FAMILY", nargs="+",
                   help="a family id (mixed3b:curves), a family file (.json), or two or more unit ids of one layer")
    p.add_argument("--images", required=True, help="a folder of images, or 'skimage' (scikit-image's photographs)")
    add_weights(p)
    p.add_argument("--top-k", type=_TOP_K, default=8, help="examples per unit (default 8)")
    p.add_argument("--step", type=_step, default=1, help="degrees between rotations, a divisor of 360 (default 1)")
    p.add_argument("--pre-relu", action="store_true", help="record pre-ReLU responses (default post-ReLU)")
    p.add_argument("--image-size", type=SCAN_SIDE, default=None,
                   help="resize each image's shorter side to this (default: the network's size, 224 or 299)")
    p.add_argument("--source", help="the unit whose examples the figure's first panel shows (default the first)")
    p.add_argument("--json", help="write the curves here (JSON; under 'joint': source -> unit -> 360 values)")
    p.add_argument("--plot", help="write the figure here (.png/.svg/.pdf)")
    add_device(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_joint_tuning)
    declare_io(p, outputs=[Out("--json", (".json",)), Out("--plot", PLOT_SUFFIXES)],
               inputs=[In("units", "units"), In("--images", "folder", IMAGE_SUFFIXES), In("--weights", "weights")])


def cmd_joint_tuning(args) -> int:
    check_outputs([("--json", args.json, (".json",)), ("--plot", args.plot, PLOT_SUFFIXES)])
    source_name = weights_name(args)
    net = network_for(source_name)
    specs = family_ids(args.units, net)  # a family file stands for its family id
    units = resolve(specs, net)
    layers = sorted({u.layer for u in units})
    if len(layers) != 1:
        raise ValueError(f"the units must share one layer, got {', '.join(layers)}")
    if len(units) < 2:
        raise ValueError(f"a joint tuning curve needs a family (two or more units), got {units[0].id}")
    ids = [u.id for u in units]
    if args.source is not None and args.source not in ids:
        raise ValueError(f"--source {args.source} is not one of the units ({', '.join(ids)})")
    if args.image_size is None:
        args.image_size = network_graph(source_name).default_input_size
    from circuits.dataset.sources import open_source

    images = open_source(args.images, args.image_size)
    from circuits.cli.options import load_network
    from circuits.dataset.joint_tuning import joint_tuning

    model = load_network(net, args.device).eval()
    jt = joint_tuning(model, units, images, top_k=args.top_k, step=args.step, pre_relu=args.pre_relu,
                      progress=not args.quiet)
    a = jt.agreement()
    print(f"joint tuning of {len(ids)} units ({jt.network}, {source_name} weights) on {images.description}: "
          f"top {args.top_k} crops each, rotations every {args.step} degrees")
    print(f"{'source':14} {'pref':>6} {'self peak':>9}  neighbours at the predicted rotation (±{a['tolerance_deg']:g}°)")
    for i, s in enumerate(ids):
        mine = [p for p in a["pair_list"] if p["source"] == s]
        ok = sum(abs(p["error_deg"]) <= a["tolerance_deg"] for p in mine)
        print(f"{s:14} {jt.preferred_deg[i]:6.1f} {a['self_peak_rotation_deg'][s] + 0.0:9.1f}  {ok}/{len(mine)}")
    frac = a["fraction"]
    print(f"substantial pairs: {a['pairs']}; peak rotation = preferred(unit) - preferred(source) within "
          f"{a['tolerance_deg']:g} degrees for {a['within_tolerance']} "
          f"({_pct(frac)}; opposite sign convention: {_pct(a['fraction_opposite_sign'])})")
    if args.json:
        data = jt.to_json()
        data["weights"] = source_name
        write_json(args.json, data)  # strict JSON: an undefined fraction (no substantial pair) is null
        print(f"wrote {args.json}")
    if args.plot:
        from circuits.plots.joint_tuning import plot_joint_tuning

        plot_joint_tuning(jt, args.plot, source=args.source,
                          title=f"joint tuning curves: {', '.join(specs)} ({source_name} weights, {images.description})")
        print(f"wrote {args.plot}")
    return 0


def _pct(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}%"
