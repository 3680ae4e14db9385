"""`circuits dataset`, `dataset-sheet`, `dataset-labels`, `extract-curves`, `trace-curve`:
dataset analysis on real images.

Example:
    $ circuits dataset mixed3b:379 --images skimage --json scan.json --plots figs/
    $ torchrun --standalone --nproc_per_node 2 -m circuits.cli.dataset mixed3b:379 --images ~/imagenet/val --json scan.json
    $ circuits dataset-sheet --scan scan.json --out sheet/
    $ circuits dataset-labels --scan scan.json --labels sheet/labels.csv --plot labels.png
    $ circuits extract-curves mixed3b:curves --image skimage:retina --out retina.png
    $ circuits trace-curve mixed3b:curves --image skimage:coffee --out trace.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from circuits.cli.options import (
    add_weights,
    family_ids,
    load_network,
    network_graph,
    nonnegative_int,
    positive_float,
    positive_int,
)
from circuits.cli.device import add_device
from circuits.cli.limits import (
    BACKWARD_BYTES_PER_PIXEL,
    GRAD_SIDE,
    KEPT,
    MEMORY_BYTES,
    SCAN_SIDE,
    bounded_int,
    nonnegative,
)
from circuits.cli.paths import In, Out, declare_io
from circuits.core.files import read_text, write_json

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")  # sources.IMAGE_SUFFIXES
PLOT_SUFFIXES = (".png", ".svg", ".pdf")
# Images of a scan run forward only; extract-curves and trace-curve run forward and backward.
# The histogram is written densely over the activations' span: pre-ReLU activations of
# these networks on photographs stay within +-1e4 (InceptionV1's reach a few hundred),
# and 1e7 bins (16 bytes each, plus the figure's arrays) is the most a result may hold.
MAX_BINS = 10**7
ACTIVATION_SPAN = 2e4
MIN_BIN_WIDTH = ACTIVATION_SPAN / MAX_BINS


def _bin_width(text: str) -> float:
    v = positive_float(text)
    if v < MIN_BIN_WIDTH:
        raise argparse.ArgumentTypeError(
            f"must be at least {MIN_BIN_WIDTH:g}: activations spanning {ACTIVATION_SPAN:g} at width w make "
            f"{ACTIVATION_SPAN:g}/w histogram bins, and at most {MAX_BINS:.0e} fit in a result; got {text}")
    return v


def _scan_images(args) -> list:
    """The image folder a scan file records (an input of dataset-sheet: its pages must not land there)."""
    scan = json.loads(Path(args.scan).read_text())
    root = scan["source"].get("root")
    return [("the scan's images", root, "folder", IMAGE_SUFFIXES)] if root else []


def register(sub) -> None:
    p = sub.add_parser("dataset", help="scan receptive-field crops of real images: histogram, tails, top-k, quilts")
    p.add_argument("units", metavar="UNITS", nargs="+", help="unit or family ids (mixed3b:379, mixed3b:curves)")
    p.add_argument("--images", required=True, help="a folder of images, or 'skimage' (scikit-image's photographs)")
    add_weights(p)
    p.add_argument("--json", help="write the results here (JSON)")
    p.add_argument("--plots", metavar="DIR", default="dataset-figures",
                   help="write the histogram, quilts and top-k sheet per unit here (default ./dataset-figures)")
    p.add_argument("--no-plots", dest="plots", action="store_const", const=None, help="write no figures")
    p.add_argument("--image-size", type=SCAN_SIDE, default=None,
                   help="resize each image's shorter side to this (default: the network's size, 224 or InceptionV3's 299)")
    p.add_argument("--sampling", choices=("grid", "random"), default="grid",
                   help="every valid position on a stride (default) or N random ones per image")
    p.add_argument("--stride", type=positive_int, default=1, help="grid stride in map cells (default 1: every position)")
    p.add_argument("--per-image", type=KEPT, default=64, help="random crops per image (default 64)")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--bin-width", type=_bin_width,
                   help=f"histogram bin width, at least {MIN_BIN_WIDTH:g} (default: calibrated per unit)")
    p.add_argument("--quilt-factor", type=positive_int, default=10, help="histogram bins per quilt bin (default 10)")
    p.add_argument("--per-bin", type=nonnegative(KEPT), default=16, help="crops kept per quilt bin (default 16)")
    p.add_argument("--top-k", type=KEPT, default=36, help="strongest / weakest crops kept (default 36)")
    p.add_argument("--checkpoint", help="checkpoint file: written as the scan goes, resumed from if present")
    p.add_argument("--checkpoint-every", type=positive_int, default=10, help="images between checkpoints (default 10)")
    p.add_argument("--workers", type=nonnegative(bounded_int(64, "processes decoding images")), default=0,
                   help="DataLoader workers decoding images (default 0, at most 64)")
    p.add_argument("--limit", type=positive_int, help="scan only the first N images")
    p.add_argument("--attribution-steps", type=nonnegative_int, default=32, metavar="N",
                   help="render each crop of the attribution quilt for N steps (default 32; 0: no attribution quilt)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_device(p)  # under torchrun, cuda is each process's local GPU
    p.set_defaults(func=cmd_dataset)
    # --plots is a folder of <unit>_histogram.png, _quilt.png, _topk.png, _attribution_quilt.png.
    declare_io(p, outputs=[Out("--json", (".json",)), Out("--checkpoint"),
                           Out("--plots", folder=True, writes=("*_histogram.png", "*_quilt.png", "*_topk.png"))],
               inputs=[In("units", "units"), In("--images", "folder", IMAGE_SUFFIXES), In("--weights", "weights")])

    p = sub.add_parser("dataset-sheet", help="write a blind labelling sheet of a scan's sampled crops")
    p.add_argument("--scan", required=True, help="the JSON written by `circuits dataset --json`")
    p.add_argument("--unit", help="which unit of the scan (default: its only one)")
    p.add_argument("--per-bin", type=nonnegative(KEPT), help="crops per quilt bin (default all the scan kept)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="shuffle seed")
    p.add_argument("--out", required=True, help="folder for sheet-NN.png and labels.csv")
    p.set_defaults(func=cmd_sheet)
    declare_io(p, outputs=[Out("--out", folder=True, writes=("sheet-*.png", "labels.csv"))], inputs=[In("--scan")],
               extra_inputs=_scan_images)

    p = sub.add_parser("dataset-labels", help="hand labels against activation: the three views of 'Curve Detectors'")
    p.add_argument("--scan", required=True, help="the JSON written by `circuits dataset --json`")
    p.add_argument("--labels", required=True, help="CSV with columns crop_id,label (e.g. the filled-in sheet)")
    p.add_argument("--unit", help="which unit of the scan (default: its only one)")
    p.add_argument("--plot", required=True, help="output figure (PNG)")
    p.add_argument("--json", help="also write the numbers here")
    p.set_defaults(func=cmd_labels)
    declare_io(p, outputs=[Out("--plot", PLOT_SUFFIXES), Out("--json")], inputs=[In("--scan"), In("--labels")])

    for name, helptext in (("extract-curves", "image-space attribution map of a family beside Canny edges"),
                           ("trace-curve", "fit a spline to a curve in an image by maximizing a family's attribution")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("family", metavar="FAMILY", nargs="?", help="family or unit ids, e.g. mixed3b:curves")
        p.add_argument("--factor", metavar="F.json:K", help="instead of FAMILY: factor K of `circuits factorize --json F`")
        p.add_argument("--image", required=True, help="an image file or skimage:NAME (e.g. skimage:retina)")
        add_weights(p)
        p.add_argument("--size", type=GRAD_SIDE, default=None,
                       help=f"resize the shorter side to this first (at most {GRAD_SIDE.maximum})")
        p.add_argument("--out", required=True, help="output figure (PNG)")
        add_device(p)
        if name == "extract-curves":
            p.add_argument("--sigma", type=positive_float, default=2.0, help="Canny's Gaussian sigma (default 2)")
            p.set_defaults(func=cmd_extract, size=512)
        else:
            p.add_argument("--box", type=nonnegative_int, nargs=4, metavar=("TOP", "LEFT", "H", "W"),
                           help="trace inside this box only (default the whole image)")
            p.add_argument("--steps", type=positive_int, default=300, help="optimizer steps (default 300)")
            p.add_argument("--json", help="also write the control points here")
            p.set_defaults(func=cmd_trace, size=224)
        declare_io(p, outputs=[Out("--out", PLOT_SUFFIXES), *([Out("--json")] if name == "trace-curve" else [])],
                   inputs=[In("family", "units"), In("--image"), In("--weights", "weights")])


def _positive(name: str, v) -> None:
    if v is not None and v < 1:
        raise ValueError(f"{name} must be >= 1, got {v}")


def _write_json(path: str, obj) -> None:
    write_json(path, obj)  # strict JSON: an undefined number (NaN) is null


def _fmt_fit(f: dict) -> str:
    if not f.get("rate"):
        return f"no fit ({f.get('reason', '?')})"
    return (f"rate {f['rate']:.4g} per unit (scale {f['scale']:.3g}), R² {f['r2']:.3f}, "
            f"{f['n_bins']} bins over [{f['range'][0]:g}, {f['range'][1]:g}]")


def cmd_dataset(args: argparse.Namespace) -> int:
    import weights
    from circuits.dataset import distributed
    from circuits.dataset.scan import scan
    from circuits.dataset.sources import open_source

    if args.image_size is None:
        args.image_size = network_graph(args.weights).default_input_size
    for name in ("--image-size", "--stride", "--per-image", "--quilt-factor", "--checkpoint-every", "--limit"):
        _positive(name, getattr(args, name[2:].replace("-", "_")))
    for name in ("--per-bin", "--top-k", "--workers", "--attribution-steps"):
        if getattr(args, name[2:].replace("-", "_")) < 0:
            raise ValueError(f"{name} must be >= 0")
    if args.json and Path(args.json).suffix.lower() != ".json":
        raise ValueError(f"--json must be a .json file, got {args.json!r}")
    source = open_source(args.images, args.image_size)
    # "cuda" under torchrun: each process its local GPU (LOCAL_RANK).
    device = distributed.device_for_rank(None if args.device == "cuda" else args.device)
    distributed.init_from_env(device)
    rank, world = distributed.world()
    try:
        model = weights.model(args.weights).to(device).eval()
        state = scan(model, family_ids(args.units, model), source, sampling=args.sampling, stride=args.stride, per_image=args.per_image,
                     seed=args.seed, bin_width=args.bin_width, quilt_factor=args.quilt_factor,
                     reservoir=args.per_bin, top_k=args.top_k, checkpoint=args.checkpoint,
                     checkpoint_every=args.checkpoint_every, num_workers=args.workers, limit=args.limit,
                     device=device, progress=not args.quiet)
    finally:
        distributed.shutdown()
    if rank != 0:
        return 0
    result = state.to_json(source.names)
    result["weights"] = args.weights
    if args.json:
        _write_json(args.json, result)
    print(f"images     {source.description}: {result['n_scanned']} scanned, {result['skipped_files']} unreadable "
          f"(skipped), {result['too_small']} too small; {world} process(es)")
    for uid, s in result["units"].items():
        print(f"{uid}  ({s['n_crops']} crops of {s['crop_size']} px, read at {s['tensor']} channel {s['channel']})")
        print(f"  firing rate     {100 * s['firing_rate']:.2f}%")
        print(f"  mean pre-ReLU   {s['mean_pre_relu']:.4g} (std {s['std_pre_relu']:.4g})")
        print(f"  positive tail   {_fmt_fit(s['tail_fits']['positive'])}")
        print(f"  negative tail   {_fmt_fit(s['tail_fits']['negative'])}")
    for r in result["skipped"]:
        print(f"skipped    {_printable(r['image'])}: {_printable(r['reason'])}")
    if args.plots is not None:
        _plots(args, model, source, result)
    if args.json:
        print(f"wrote      {args.json}")
    return 0


def _printable(name) -> str:
    """A file name as it can be printed: bytes that are not UTF-8 shown as U+FFFD."""
    return str(name).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _safe(uid: str) -> str:
    return uid.replace(":", "_").replace("/", "_")


def _plots(args, model, source, result) -> None:
    from circuits.dataset.scan import load_crops
    from circuits.plots import dataset as plots

    out = Path(args.plots)
    for uid, s in result["units"].items():
        sample_ids = [c["crop_id"] for b in s["samples"]["bins"] for c in b["crops"][:8]]
        ids = list(dict.fromkeys(sample_ids + [c["crop_id"] for c in s["top_k"][:12] + s["bottom_k"][:12]]))
        crops = load_crops(source, ids)
        written = [plots.histogram(s, out / f"{_safe(uid)}_histogram.png"),
                   plots.quilt(s, crops, out / f"{_safe(uid)}_quilt.png"),
                   plots.topk_sheet(s, crops, out / f"{_safe(uid)}_topk.png")]
        if args.attribution_steps:
            from circuits.dataset.attribution_vis import attribution_images

            few = [c["crop_id"] for b in s["samples"]["bins"] for c in b["crops"][:4]]
            vis = attribution_images(model, source, uid, few, steps=args.attribution_steps, progress=not args.quiet)
            written.append(plots.quilt(s, vis, out / f"{_safe(uid)}_attribution_quilt.png", per_bin=4,
                                       title=f"{uid}: FeatureVis(abs(W ⊙ h)) of random crops by bin"))
        for p in written:
            print(f"wrote      {p}")


def _scan_unit(scan: dict, unit: str | None) -> tuple[str, dict]:
    units = scan.get("units", {})
    if unit is None:
        if len(units) != 1:
            raise ValueError(f"the scan holds {len(units)} units ({', '.join(units)}): choose one with --unit")
        unit = next(iter(units))
    if unit not in units:
        raise ValueError(f"unit {unit!r} is not in the scan; it holds {', '.join(units)}")
    return unit, units[unit]


def _read_scan(path: str) -> dict:
    from circuits.dataset.scan import FORMAT

    try:
        s = json.loads(read_text(path, "--scan"))
    except json.JSONDecodeError as e:
        raise ValueError(f"--scan {path} is not JSON: {e}") from None
    if not isinstance(s, dict) or s.get("format") != FORMAT:
        what = s.get("format") if isinstance(s, dict) else type(s).__name__
        raise ValueError(f"--scan {path} is not a `circuits dataset --json` result (format {what!r})")
    return s


def cmd_sheet(args: argparse.Namespace) -> int:
    from circuits.plots.dataset import write_sheet
    from circuits.dataset.sources import source_from_state

    _positive("--per-bin", args.per_bin)
    scan = _read_scan(args.scan)
    unit, s = _scan_unit(scan, args.unit)
    files = write_sheet(s, source_from_state(scan["source"]), args.out, per_bin=args.per_bin, seed=args.seed)
    print(f"{unit}: {files['n_crops']} crops, shuffled, without their activations")
    for p in files["files"]:
        print(f"wrote      {p}")
    print(f"fill in the label column of {files['csv']} with one of: {', '.join(files['labels'])}")
    return 0


def cmd_labels(args: argparse.Namespace) -> int:
    from circuits.dataset.labels import label_views, read_labels
    from circuits.plots import dataset as plots

    scan = _read_scan(args.scan)
    unit, s = _scan_unit(scan, args.unit)
    views = label_views(s, read_labels(args.labels))
    plots.label_views(views, args.plot)
    if args.json:
        _write_json(args.json, views)
    print(f"{unit}: {views['n_labelled']} labelled crops in {len(views['bins'])} bins")
    for lab, share in views["expected_share"].items():
        print(f"  {lab:<10} share of the expected post-ReLU activation {100 * share:.1f}%")
    print(f"wrote      {args.plot}")
    return 0


def _image(spec: str, size: int | None, args=None):
    """The image of --image, its shorter side resized to `size`; refused (not enlarged) when its own
    shorter side is below the receptive field of the family's layer (given `args`)."""
    from circuits.dataset.sources import resize_short, to_rgb_uint8

    if spec.startswith("skimage:"):
        import skimage.data

        name = spec.split(":", 1)[1]
        from circuits.dataset.sources import SKIMAGE_PHOTOS

        if name not in SKIMAGE_PHOTOS:
            raise ValueError(f"unknown skimage image {name!r}; use one of {', '.join(SKIMAGE_PHOTOS)}")
        img = to_rgb_uint8(getattr(skimage.data, name)(), name)
    else:
        from circuits.core.inputs import read_image

        img = read_image(spec)
    if args is not None:
        rf = _receptive_field(args)
        if min(img.shape[-2:]) < rf:
            h, w = img.shape[-2:]
            raise ValueError(f"--image {spec} is {w}x{h} px, smaller than the {rf} px receptive field of "
                             f"{_what(args)}; give an image of at least {rf}x{rf} (it is not enlarged)")
    img = resize_short(img, size)
    h, w = img.shape[-2:]
    if h * w * BACKWARD_BYTES_PER_PIXEL > MEMORY_BYTES:
        raise ValueError(f"--image {spec} at {w}x{h} px needs about {h * w * BACKWARD_BYTES_PER_PIXEL / 2**30:.3g} GiB "
                         f"(this machine has {MEMORY_BYTES / 2**30:.3g} GiB): give a smaller --size")
    return img


def _receptive_field(args) -> int:
    from circuits.cli.options import resolve

    g = network_graph(args.weights)
    if args.family is None:  # a factor: the receptive field of its layer
        from circuits.analysis.factorization import load_factor

        return g.receptive_field(load_factor(args.factor)[0].layer).size
    return max(g.receptive_field(u.layer).size for u in resolve(args.family, args.weights))


def _check_target(args) -> None:
    """Exactly one of FAMILY and --factor; a factor file is read (and its K checked) before any work."""
    if (args.family is None) == (args.factor is None):
        raise ValueError("give a FAMILY (e.g. mixed3b:curves) or --factor F.json:K, not both or neither")
    if args.factor:
        from circuits.analysis.factorization import load_factor

        fact, _ = load_factor(args.factor)
        g = network_graph(args.weights)
        if fact.network != g.name:
            raise ValueError(f"--factor {args.factor} is a factor of {fact.network}'s {fact.layer}; the model "
                             f"(--weights {args.weights}) is {g.name}")


def _target(args, model):
    """The attribution target: the family's summed response, or the factor's channel direction."""
    if args.family:
        return family_ids(args.family, model)[0]
    from circuits.analysis.factorization import load_factor

    fact, k = load_factor(args.factor)
    if fact.network != model.graph.name:
        raise ValueError(f"--factor {args.factor} is a factor of {fact.network}'s {fact.layer}; the model "
                         f"(--weights {args.weights}) is {model.graph.name}")
    return fact.objective(k, model)


def _what(args) -> str:
    """The target as a figure title names it (a factor by its file's name, not its path)."""
    if args.family:
        return args.family
    path, _, k = args.factor.rpartition(":")
    return f"factor {k} of {Path(path).name}"


def cmd_extract(args: argparse.Namespace) -> int:
    from circuits.dataset.extraction import compare_with_canny
    from circuits.plots import dataset as plots

    _check_target(args)
    _positive("--size", args.size)
    img = _image(args.image, args.size, args)
    model = load_network(args.weights, args.device).eval()
    res = compare_with_canny(model, _target(args, model), img, sigma=args.sigma)
    plots.extraction_figure(img, res, args.out, title=f"{_what(args)} attribution vs Canny on {args.image}")
    rp, rr = res["ridge_precision"], res["ridge_recall"]
    print(f"against Sato ridges, {res['n_pixels']} pixels each (as many as Canny marks): precision "
          f"attribution {rp['attribution']:.3f}, canny {rp['canny']:.3f} (chance {rp['chance']:.3f}); recall "
          f"attribution {rr['attribution']:.3f}, canny {rr['canny']:.3f}")
    print(f"wrote      {args.out}")
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from circuits.dataset.spline import trace
    from circuits.dataset.extraction import attribution_map
    from circuits.plots import dataset as plots

    _check_target(args)
    _positive("--size", args.size)
    _positive("--steps", args.steps)
    img = _image(args.image, args.size, args)
    model = load_network(args.weights, args.device).eval()
    amap = attribution_map(model, _target(args, model), img)
    t, l = 0, 0
    amap[:8], amap[-8:], amap[:, :8], amap[:, -8:] = 0, 0, 0, 0  # padding makes edges of its own there
    region = amap
    if args.box:
        t, l, h, w = args.box
        H, W = amap.shape
        if not (0 <= t < t + h <= H and 0 <= l < l + w <= W):
            raise ValueError(f"--box {args.box} is outside the {H}x{W} image")
        region = amap[t : t + h, l : l + w]  # trace in the box only (and render only its pixels)
    fit = trace(region, steps=args.steps, margin=0)
    fit.control_points += fit.control_points.new_tensor([t, l])
    shown = amap.new_zeros(amap.shape)
    shown[t : t + region.shape[0], l : l + region.shape[1]] = region
    amap = shown
    plots.spline_figure(img, amap, fit, args.out, title=f"spline traced by {_what(args)} attribution")
    if args.json:
        _write_json(args.json, {"control_points_yx": fit.control_points.tolist(), "objective": fit.objective})
    print(f"control points (y, x): {[[round(v, 1) for v in p] for p in fit.control_points.tolist()]}")
    print(f"wrote      {args.out}")
    return 0


if __name__ == "__main__":  # torchrun -m circuits.cli.dataset UNITS ... runs `circuits dataset UNITS ...`
    from circuits.cli import main

    sys.exit(main(["dataset", *sys.argv[1:]]))
