"""`circuits vis` and `circuits attribute`: feature visualization and W ⊙ h attribution.

Example:
    $ circuits vis mixed3b:379 --weights random --steps 256 --size 128 --out vis.png
    $ circuits vis mixed3b:curves --neuron --out curves.png
    $ circuits attribute mixed3b:379 --image cat.png --weights random --out attr.png
"""

from __future__ import annotations

import argparse
import sys

from circuits.cli.options import (
    add_weights,
    check_outputs,
    load_network,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    require_live,
    resolve,
    unit_list,
    weights_name,
)
from circuits.cli.device import add_device
from circuits.cli.limits import BACKWARD_BYTES_PER_PIXEL, GRAD_SIDE, MEMORY_BYTES, bounded_int
from circuits.cli.paths import In, Out, declare_io

PNG = (".png",)
# An optimized image of S x S px (and an attributed one) runs forward and backward.
_BATCH = bounded_int(max(1, MEMORY_BYTES // (128 * 128 * BACKWARD_BYTES_PER_PIXEL)),
                     "128 px images optimized at once that fit this machine's memory; --size and --batch "
                     "are also checked together")


def register(sub) -> None:
    p = sub.add_parser("vis", help="render a feature visualization of a unit or family to a PNG")
    p.add_argument("target", metavar="UNIT_OR_FAMILY", nargs="+",
                   help="unit id (mixed3b:379), family id (mixed3b:curves), or several (comma-separated or repeated)")
    add_weights(p)
    p.add_argument("--steps", type=positive_int, default=512, help="Adam steps (default 512)")
    p.add_argument("--size", type=GRAD_SIDE, default=128,
                   help=f"image side in pixels (default 128, at most {GRAD_SIDE.maximum} on this machine's memory)")
    p.add_argument("--batch", type=_BATCH, default=1, help=f"images to render at once (default 1, at most {_BATCH.maximum})")
    p.add_argument("--diversity", type=nonnegative_float, default=0.0, metavar="W",
                   help="with --batch > 1, subtract W x Lucid's diversity term at the unit's layer (Lucid uses 100)")
    p.add_argument("--neuron", action="store_true", help="maximize the centre position, not the channel mean")
    p.add_argument("--param", choices=("fft", "pixel"), default="fft", help="image parameterization (default fft)")
    p.add_argument("--no-decorrelate", action="store_true", help="optimize raw RGB, not decorrelated colours")
    p.add_argument("--no-transforms", action="store_true", help="skip Lucid's standard random transforms")
    p.add_argument("--redirected-relu", action="store_true", help="Lucid's redirected ReLU gradient for the first 17 steps")
    p.add_argument("--lr", type=positive_float, default=0.05, help="Adam learning rate (default 0.05, Lucid's)")
    p.add_argument("--thresholds", type=positive_int, nargs="+", help="also keep the images after these steps (rows of the PNG)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="output PNG")
    add_device(p)
    p.set_defaults(func=cmd_vis)
    declare_io(p, outputs=[Out("--out", PNG)], inputs=[In("target", "units"), In("--weights", "weights")])

    p = sub.add_parser("attribute", help="attribute a unit's activation on an image to the layer before (W ⊙ h)")
    p.add_argument("unit", help="unit id, e.g. mixed3b:379")
    p.add_argument("--image", required=True, help="image file (PNG, JPEG, ...)")
    add_weights(p)
    p.add_argument("--source", help="tensor to attribute to (default: the layer before the unit's)")
    p.add_argument("--position", type=nonnegative_int, nargs=2, metavar=("Y", "X"), help="unit position (default the centre)")
    p.add_argument("--size", type=GRAD_SIDE, help=f"resize the image to SIZE x SIZE first (at most {GRAD_SIDE.maximum})")
    p.add_argument("--top", type=positive_int, default=10, help="how many source units to list (default 10)")
    p.add_argument("--vis-steps", type=nonnegative_int, default=0, metavar="N",
                   help="also render FeatureVisualization(abs(W ⊙ h)) with N steps (default 0: no)")
    p.add_argument("--out", required=True, help="output figure (PNG)")
    add_device(p)
    p.set_defaults(func=cmd_attribute)
    declare_io(p, outputs=[Out("--out", PNG)],
               inputs=[In("--image"), In("unit", "units"), In("--weights", "weights")])


def cmd_vis(args: argparse.Namespace) -> int:
    from circuits.optvis import objectives, param, render
    from circuits.optvis.render import NonFiniteObjectiveError, evaluate, zero_objective_message

    check_outputs([("--out", args.out, PNG)])
    if args.thresholds and max(args.thresholds) > args.steps:
        raise ValueError(f"--thresholds must be step counts up to --steps {args.steps}, got {args.thresholds}")
    if args.diversity and args.batch < 2:
        raise ValueError("--diversity needs --batch of at least 2")
    rows = len(set(args.thresholds or []) | {args.steps})
    need = args.size * args.size * (args.batch * BACKWARD_BYTES_PER_PIXEL + rows * args.batch * 12)
    if need > MEMORY_BYTES:
        raise ValueError(f"--size {args.size} with --batch {args.batch} needs about {need / 2**30:.3g} GiB "
                         f"(this machine has {MEMORY_BYTES / 2**30:.3g} GiB): lower --size or --batch")
    source = weights_name(args)
    specs = unit_list(args.target)
    units = resolve(specs, source)
    kind = "neuron" if args.neuron else "channel"
    g = units[0].network  # the units' network (a traced one's layers are in no global table)
    if len(units) == 1:
        u = units[0]
        obj = (objectives.neuron if args.neuron else objectives.channel)(u.layer, u.channel, model=g)
    else:
        obj = objectives.family(units, kind=kind, model=g)
    if args.diversity:
        obj = obj - args.diversity * objectives.diversity(units[0].layer, model=g)
    model = load_network(source, args.device)
    require_live(model, {u.layer for u in units}, "vis")
    image = param.image(args.size, batch=args.batch, fft=args.param == "fft",
                        decorrelate=not args.no_decorrelate, seed=args.seed)
    thresholds = sorted(set(args.thresholds or []) | {args.steps})
    try:
        result = render(
            model, obj, image, steps=args.steps, thresholds=thresholds, transforms=[] if args.no_transforms else None,
            lr=args.lr, seed=args.seed, redirected_relu=args.redirected_relu, progress=not args.quiet,
        )
    except NonFiniteObjectiveError as e:
        raise ValueError(str(e)) from None
    if result.interrupted_at is not None:
        # Ctrl-C: the images are unfinished; write nothing and exit as interrupted (130).
        print(f"circuits vis: interrupted at step {result.interrupted_at} of {args.steps}; {args.out} not written",
              file=sys.stderr)
        return 130
    final = evaluate(model, obj, result.final)
    if result.stayed_zero or (final == 0.0 and result.interrupted_at is None):
        # A flat image the unit does not respond to is no visualization: say why and
        # what to try, and write nothing.
        print(f"circuits vis: {zero_objective_message(result, image.size, args.redirected_relu, model.graph)}; "
              f"{args.out} not written")
        return 1
    result.save(args.out)
    print(f"objective  {obj.description}")
    print(f"weights    {source}")
    print(f"steps      {len(result.values)} (objective {result.values[0]:.4g} at the first step, "
          f"{final:.4g} on the final image without transforms)")
    print(f"wrote      {args.out} ({len(result.images)} row(s) x {args.batch} image(s) of {args.size} px)")
    return 0


def _read_image(path: str, size: int | None):
    from circuits.core.inputs import read_image

    return read_image(path, size)  # uint8 [3, H, W]


def _check_pixels(image, path: str) -> None:
    """An image attributed at its own size runs forward and backward: refuse one too large for memory."""
    h, w = image.shape[-2:]
    need = h * w * BACKWARD_BYTES_PER_PIXEL
    if need > MEMORY_BYTES:
        raise ValueError(f"--image {path} is {w}x{h} px: attributing it needs about {need / 2**30:.3g} GiB "
                         f"(this machine has {MEMORY_BYTES / 2**30:.3g} GiB); give --size up to {GRAD_SIDE.maximum}")


def cmd_attribute(args: argparse.Namespace) -> int:
    from circuits.analysis.attribution import attribute, visualize
    from circuits.plots.attribution import plot_attribution as plot

    check_outputs([("--out", args.out, PNG)])
    source = weights_name(args)
    (unit,) = _one_unit(args.unit, source)
    image = _read_image(args.image, args.size)  # used at its own size: the model checks it reaches the unit
    _check_pixels(image, args.image)
    model = load_network(source, args.device)
    require_live(model, [unit.layer], "attribute")
    a = attribute(model, unit, image, source=args.source, position=tuple(args.position) if args.position else None)
    vis = None
    if args.vis_steps:
        vis = visualize(model, a, size=max(128, model.graph.receptive_field(a.source).size), steps=args.vis_steps).final[0]
    plot(a, image, args.out, k=args.top, vis=vis, model=model)
    kind = "exact (direct connection)" if a.exact else f"expanded weights, residual {a.residual:.4g}"
    print(f"unit          {a.unit.id} at {a.position} of a {a.input_size[0]}x{a.input_size[1]} image")
    print(f"source        {a.source} ({kind})")
    print(f"pre-activation {a.preactivation:.6g} = sum of W ⊙ h {a.total - a.bias:.6g} + bias {a.bias:.6g}"
          + ("" if a.exact else f" + residual {a.residual:.4g}"))
    print(f"\n{'source unit':20} {'contribution':>12}")
    for u, v in a.top(args.top):
        print(f"{u.id:20} {v:12.5g}")
    fams = a.per_family(model=model)
    if fams:
        print(f"\n{'family of ' + a.source:40} {'contribution':>12}")
        for name, v in sorted(fams.items(), key=lambda kv: -abs(kv[1])):
            print(f"{name:40} {v:12.5g}")
    print(f"\nwrote {args.out}")
    return 0


def _one_unit(spec: str, source: str) -> list:
    units = resolve(spec, source)
    if len(units) != 1:
        raise ValueError(f"attribute takes one unit, got {len(units)} from {spec!r}; e.g. mixed3b:379")
    return units
