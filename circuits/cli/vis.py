"""`circuits vis` and `circuits attribute`: feature visualization and W ⊙ h attribution.

Example:
    $ circuits vis mixed3b:379 --weights random --steps 256 --size 128 --out vis.png
    $ circuits vis mixed3b:curves --neuron --out curves.png
    $ circuits attribute mixed3b:379 --image cat.png --weights random --out attr.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from circuits.core import graph


def register(sub) -> None:
    import weights

    p = sub.add_parser("vis", help="render a feature visualization of a unit or family to a PNG")
    p.add_argument("target", metavar="UNIT_OR_FAMILY", help="unit id (mixed3b:379) or family id (mixed3b:curves)")
    p.add_argument("--weights", default=weights.DEFAULT, help=f"weight source name or file (default {weights.DEFAULT})")
    p.add_argument("--steps", type=int, default=512, help="Adam steps (default 512)")
    p.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    p.add_argument("--batch", type=int, default=1, help="images to render at once (default 1)")
    p.add_argument("--diversity", type=float, default=0.0, metavar="W",
                   help="with --batch > 1, subtract W x Lucid's diversity term at the unit's layer (Lucid uses 100)")
    p.add_argument("--neuron", action="store_true", help="maximize the centre position, not the channel mean")
    p.add_argument("--param", choices=("fft", "pixel"), default="fft", help="image parameterization (default fft)")
    p.add_argument("--no-decorrelate", action="store_true", help="optimize raw RGB, not decorrelated colours")
    p.add_argument("--no-transforms", action="store_true", help="skip Lucid's standard random transforms")
    p.add_argument("--redirected-relu", action="store_true", help="Lucid's redirected ReLU gradient for the first 17 steps")
    p.add_argument("--lr", type=float, default=0.05, help="Adam learning rate (default 0.05, Lucid's)")
    p.add_argument("--thresholds", type=int, nargs="+", help="also keep the images after these steps (rows of the PNG)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="output PNG")
    p.set_defaults(func=cmd_vis)

    p = sub.add_parser("attribute", help="attribute a unit's activation on an image to the layer before (W ⊙ h)")
    p.add_argument("unit", help="unit id, e.g. mixed3b:379")
    p.add_argument("--image", required=True, help="image file (PNG, JPEG, ...)")
    p.add_argument("--weights", default=weights.DEFAULT, help=f"weight source name or file (default {weights.DEFAULT})")
    p.add_argument("--source", help="tensor to attribute to (default: the layer before the unit's)")
    p.add_argument("--position", type=int, nargs=2, metavar=("Y", "X"), help="unit position (default the centre)")
    p.add_argument("--size", type=int, help="resize the image to SIZE x SIZE first")
    p.add_argument("--top", type=int, default=10, help="how many source units to list (default 10)")
    p.add_argument("--vis-steps", type=int, default=0, metavar="N",
                   help="also render FeatureVisualization(abs(W ⊙ h)) with N steps (default 0: no)")
    p.add_argument("--out", required=True, help="output figure (PNG)")
    p.set_defaults(func=cmd_attribute)


def _check_png(path: str) -> None:
    if Path(path).suffix.lower() != ".png":
        raise ValueError(f"--out must be a .png file, got {path!r}")


def _check_positive(name: str, v: int | None) -> None:
    if v is not None and v < 1:
        raise ValueError(f"{name} must be >= 1, got {v}")


def cmd_vis(args: argparse.Namespace) -> int:
    import weights
    from circuits.optvis import objectives, param, render
    from circuits.optvis.render import NonFiniteObjectiveError, evaluate
    from circuits.core.units import resolve_units

    _check_png(args.out)
    for name in ("--steps", "--size", "--batch"):
        _check_positive(name, getattr(args, name[2:]))
    units = resolve_units(args.target)
    if len(units) == 1:
        u = units[0]
        obj = (objectives.neuron if args.neuron else objectives.channel)(u.layer, u.channel)
    else:
        obj = objectives.family(args.target, kind="neuron" if args.neuron else "channel")
    if args.diversity:
        if args.batch < 2:
            raise ValueError("--diversity needs --batch of at least 2")
        obj = obj - args.diversity * objectives.diversity(units[0].layer)
    model = weights.model(args.weights)
    image = param.image(args.size, batch=args.batch, fft=args.param == "fft",
                        decorrelate=not args.no_decorrelate, seed=args.seed)
    thresholds = sorted(set(args.thresholds or []) | {args.steps})
    try:
        result = render(
            model, obj, image, steps=args.steps, thresholds=thresholds, transforms=[] if args.no_transforms else None,
            lr=args.lr, seed=args.seed, redirected_relu=args.redirected_relu, progress=not args.quiet, out=args.out,
        )
    except NonFiniteObjectiveError as e:
        raise ValueError(str(e)) from None
    final = evaluate(model, obj, result.final)
    if result.interrupted_at is not None:
        print(f"interrupted at step {result.interrupted_at}")
    print(f"objective  {obj.description}")
    print(f"weights    {args.weights}")
    print(f"steps      {len(result.values)} (objective {result.values[0]:.4g} at the first step, "
          f"{final:.4g} on the final image without transforms)")
    print(f"wrote      {args.out} ({len(result.images)} row(s) x {args.batch} image(s) of {args.size} px)")
    return 0


def _read_image(path: str, size: int | None) -> torch.Tensor:
    from circuits.core.inputs import read_image

    return read_image(path, size)  # uint8 [3, H, W]


def cmd_attribute(args: argparse.Namespace) -> int:
    import weights
    from circuits.analysis.attribution import attribute, plot, visualize

    _check_png(args.out)
    _check_positive("--size", args.size)
    _check_positive("--top", args.top)
    if args.vis_steps < 0:
        raise ValueError(f"--vis-steps must be >= 0, got {args.vis_steps}")
    image = _read_image(args.image, args.size)
    model = weights.model(args.weights)
    a = attribute(model, args.unit, image, source=args.source, position=tuple(args.position) if args.position else None)
    vis = None
    if args.vis_steps:
        vis = visualize(model, a, size=max(128, graph.receptive_field(a.source).size), steps=args.vis_steps).final[0]
    plot(a, image, args.out, k=args.top, vis=vis)
    kind = "exact (direct connection)" if a.exact else f"expanded weights, residual {a.residual:.4g}"
    print(f"unit          {a.unit.id} at {a.position} of a {a.input_size[0]}x{a.input_size[1]} image")
    print(f"source        {a.source} ({kind})")
    print(f"pre-activation {a.preactivation:.6g} = sum of W ⊙ h {a.total - a.bias:.6g} + bias {a.bias:.6g}"
          + ("" if a.exact else f" + residual {a.residual:.4g}"))
    print(f"\n{'source unit':20} {'contribution':>12}")
    for u, v in a.top(args.top):
        print(f"{u.id:20} {v:12.5g}")
    fams = a.per_family()
    if fams:
        print(f"\n{'family of ' + a.source:40} {'contribution':>12}")
        for name, v in sorted(fams.items(), key=lambda kv: -abs(kv[1])):
            print(f"{name:40} {v:12.5g}")
    print(f"\nwrote {args.out}")
    return 0
