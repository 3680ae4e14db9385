"""`circuits report FAMILY --out DIR`: the family's article and a page per unit, as an offline web site.

Example:
    $ circuits report mixed3b:curves --out site/
    $ circuits report docs/inceptionv3_mixed2_curves.json --weights nsfwjs-inception-v3 \\
          --early docs/inceptionv3_mixed1_early_curves.json --out site/
"""

from __future__ import annotations

import time
from pathlib import Path

from circuits.cli.dataset import IMAGE_SUFFIXES
from circuits.cli.device import add_device
from circuits.cli.joint_tuning import _TOP_K as _JOINT_TOP_K
from circuits.cli.limits import GRAD_SIDE, KEPT, SCAN_SIDE, bounded_int, nonnegative
from circuits.cli.options import (
    add_weights,
    family_ids,
    load_network,
    network_for,
    positive_int,
    require_live,
    resolve,
    weights_name,
)
from circuits.cli.paths import In, Out, declare_io
from circuits.cli.tune import _angles

# The hand-built 3b curves read this bank of early curves (see the README's hand-built network).
HANDBUILT_EARLY = {"mixed3b": "mixed3a:hb_early_curve_bank"}
# What the command writes under --out (see circuits.report.site).
WRITES = ("index.html", "site.json", "assets/*", "*/index.html", "*/units/*.html", "*/img/*/*.png", "_cache/*")
_STEPS = bounded_int(100_000, "feature visualization steps")


def register(sub) -> None:
    p = sub.add_parser(
        "report",
        help="write a family's article (tuning, heat maps, dataset examples, weights, editing) and a page per unit "
             "as an offline web site",
        description="Build a static site that works offline: an index of the network's layers and families, the "
                    "family's page (feature visualizations, interactive radial tuning, orientation x curvature heat "
                    "maps in dataset standard deviations, dataset histogram, tails, top crops and quilts, weights "
                    "from the family below by orientation difference, the editing experiment) and a page per unit. "
                    "Computations are cached under --out; a rerun with nothing changed only redraws. Open "
                    "DIR/index.html in a browser.",
    )
    p.add_argument("family", help="family id (mixed3b:curves), family file (.json), or unit ids of one layer")
    add_weights(p)
    p.add_argument("--out", required=True, help="output folder (created; a previous report's folder is updated)")
    p.add_argument("--early", help="the family below, for the weights by orientation difference and the editing "
                   "experiment (default on the hand-built network: mixed3a:hb_early_curve_bank for mixed3b; "
                   "otherwise none); 'none' leaves them out")
    p.add_argument("--images", default="skimage",
                   help="a folder of images, 'skimage' (default: scikit-image's 17 photographs), or 'none'")
    p.add_argument("--image-size", type=SCAN_SIDE, default=224, help="images' shorter side in px (default 224)")
    p.add_argument("--max-images", type=positive_int, help="scan at most this many images (default all)")
    p.add_argument("--steps", type=_STEPS, default=128, help="feature visualization steps (default 128)")
    p.add_argument("--vis-size", type=GRAD_SIDE, help="feature visualization side in px (default: the receptive field)")
    p.add_argument("--angles", type=_angles, default=180, help="radial tuning orientations (default 180)")
    p.add_argument("--top-k", type=nonnegative(KEPT), default=24,
                   help="strongest / most negative crops kept (default 24)")
    p.add_argument("--per-bin", type=nonnegative(KEPT), default=8, help="random crops per activation bin (default 8)")
    p.add_argument("--heat-kinds", default="curves,angles",
                   help="heat maps to draw, comma-separated: curves, angles, series, fill, colour (default curves,angles)")
    p.add_argument("--joint-top-k", type=_JOINT_TOP_K, default=4,
                   help="rotated dataset examples per unit for the joint tuning (default 4)")
    p.add_argument("--joint-step", type=positive_int, default=10,
                   help="degrees between rotations of the joint tuning, a divisor of 360 (default 10)")
    add_device(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_report)
    declare_io(p, outputs=[Out("--out", folder=True, writes=WRITES)],
               inputs=[In("family", "units"), In("--early", "units"), In("--images", "folder", IMAGE_SUFFIXES),
                       In("--weights", "weights")])


def cmd_report(args) -> int:
    from circuits.report import ReportSettings, build_report
    from circuits.report.site import check_out_folder

    # Everything that can be checked is checked before any computation.
    source = weights_name(args)
    out = check_out_folder(args.out)
    images = None if args.images.lower() == "none" else args.images
    if images not in (None, "skimage") and not Path(images).is_dir():
        raise FileNotFoundError(f"--images {images}: no such folder (give a folder of images, 'skimage' or 'none')")
    settings = ReportSettings(vis_steps=args.steps, vis_size=args.vis_size, n_angles=args.angles, images=images,
                              image_size=args.image_size, max_images=args.max_images, top_k=args.top_k,
                              per_bin=args.per_bin, joint_top_k=args.joint_top_k, joint_step=args.joint_step,
                              heat_kinds=tuple(k.strip() for k in args.heat_kinds.split(",") if k.strip()))
    settings.check()
    net = network_for(source)
    fam = family_ids(args.family, net)
    units = resolve(fam, net)
    spec = fam[0] if len(fam) == 1 else [u.id for u in units]
    early = args.early
    if early is None and source == "handbuilt":
        early = HANDBUILT_EARLY.get(units[0].layer)
    if early is not None and early.lower() == "none":
        early = None
    early_spec = None
    if early is not None:
        e = family_ids(early, net)
        resolve(e, net)
        early_spec = e[0] if len(e) == 1 else e
    t0 = time.perf_counter()
    model = load_network(net, args.device)  # every computation runs where the model is
    require_live(model, {units[0].layer}, "report")
    r = build_report(model, spec, out, settings=settings, early=early_spec, weights_label=Path(str(source)).name,
                     progress=not args.no_progress)
    took = time.perf_counter() - t0
    if early_spec is None:
        print("no early family (--early): the weights by orientation difference and the editing experiment are left out")
    print(f"computed: {', '.join(r.computed) or 'nothing (all from the cache)'}; "
          f"reused: {', '.join(r.reused) or 'nothing'}")
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in r.seconds.items()))
    print(f"wrote {r.family_page} and {len(r.unit_pages)} unit pages in {took:.1f} s; open {r.index}")
    return 0
