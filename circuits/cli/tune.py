"""`circuits stimuli` (render synthetic stimuli) and `circuits tune` (radial tuning curves).

Example:
    $ circuits stimuli --kind curve --orientation 0,90,180,270 --curvature 1 --out curves.png
    $ circuits tune mixed3b:curves --weights random --plot radial.png --json tuning.json
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import math
from pathlib import Path

from circuits.cli.options import (
    add_weights,
    check_outputs,
    load_network,
    positive_float,
    positive_int,
    require_live,
    resolve,
    unit_list,
    weights_name,
)
from circuits.cli.device import add_device
from circuits.cli.limits import FORWARD_BYTES_PER_PIXEL, MEMORY_BYTES, bounded_int, bounded_side
from circuits.cli.paths import In, Out, declare_io
from circuits.core.files import atomic_path

# The stimulus kinds of circuits.tuning.stimuli.KINDS (kept equal by a test), listed
# here so that building the parser does not import torch.
KINDS = ("curve", "line", "edge", "angle", "rounded-angle", "combing")
PLOT_SUFFIXES = (".png", ".svg", ".pdf")
# A tuning curve's width and echo need at least 4 samples over 360 degrees.
MIN_ANGLES = 4
# 0.01 degree steps: every unit's curve holds one number per orientation, and every
# orientation is len(curvatures) stimuli.
MAX_ANGLES = 36000
# A rendered stimulus keeps about 64 bytes per pixel while it is drawn (float64 geometry).
STIMULUS_BYTES_PER_PIXEL = 64
_STIMULUS_SIDE = bounded_side(STIMULUS_BYTES_PER_PIXEL, "a stimulus")
# Stimuli per forward pass: each is at most a 128 px square run forward.
BATCH_SIZE = bounded_int(max(1, MEMORY_BYTES // (128 * 128 * FORWARD_BYTES_PER_PIXEL)),
                         "stimuli per forward pass that fit this machine's memory at 128 px each")


def _angles(text: str) -> int:
    n = positive_int(text)
    if n > MAX_ANGLES:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_ANGLES} orientations (0.01 degree steps), got {n}")
    if n < MIN_ANGLES:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_ANGLES} orientations over 360 degrees, got {n}")
    return n


_angles.maximum = MAX_ANGLES  # type: ignore[attr-defined]


def _floats(text: str) -> list[float]:
    try:
        vals = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or a comma-separated list of numbers, got {text!r}")
    if not vals:
        raise argparse.ArgumentTypeError("expected at least one number")
    bad = [v for v in vals if not math.isfinite(v)]
    if bad:
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return vals


def _curvatures(text: str) -> list[float]:
    vals = _floats(text)
    bad = [v for v in vals if not 0 <= v <= 1]
    if bad:
        raise argparse.ArgumentTypeError(
            f"curvatures are fractions of a half circle in 0..1, got {', '.join(f'{v:g}' for v in bad)}"
        )
    return vals


def _colour(text: str):
    parts = text.split(",")
    if len(parts) == 3:
        try:
            return tuple(float(p) for p in parts)
        except ValueError:
            pass
    return text


# Command-line option -> the stimulus functions' keyword.
_GEOMETRY = {
    "orientation": "orientation",
    "curvature": "curvature",
    "radius": "radius",
    "arc_length": "arc_length",
    "width": "width",
    "length": "length",
    "opening": "opening",
    "arm_length": "arm_length",
    "corner_radius": "corner_radius",
    "tooth_length": "tooth_length",
    "tooth_spacing": "tooth_spacing",
}


def register(sub) -> None:
    p = sub.add_parser(
        "stimuli",
        help="render synthetic stimuli (curves, lines, edges, angles, rounded angles, combing) to an image",
        description="Render stimuli. Lengths in pixels, angles in degrees (clockwise from +x; a curve at 0 is ')', "
        "at 90 '∪'). Numeric options take comma-separated lists: every combination is drawn on one sheet.",
    )
    p.add_argument("--kind", required=True, choices=list(KINDS), help="what to draw")
    p.add_argument("--orientation", type=_floats, default=[0.0], help="degrees (default 0)")
    p.add_argument("--curvature", type=_floats, help="curve/combing: fraction of a half circle, 0..1 (default 0.5)")
    p.add_argument("--radius", type=_floats, help="curve: radius in pixels instead of --curvature")
    p.add_argument("--arc-length", type=_floats, help="curve/combing: pixels along the arc (default 40)")
    p.add_argument("--width", type=_floats, help="stroke width in pixels (default 3)")
    p.add_argument("--length", type=_floats, help="line: pixels (default: across the image)")
    p.add_argument("--opening", type=_floats, help="angle: degrees between the arms, (0, 180] (default 90)")
    p.add_argument("--arm-length", type=_floats, help="angle: pixels from the vertex (default 20)")
    p.add_argument("--corner-radius", type=_floats, help="angle/rounded-angle: pixels of the rounded corner")
    p.add_argument("--tooth-length", type=_floats, help="combing: pixels (default 8)")
    p.add_argument("--tooth-spacing", type=_floats, help="combing: pixels of arc between teeth (default 6)")
    p.add_argument("--side", choices=["both", "outer", "inner"], help="combing: where the teeth are")
    p.add_argument("--filled", action="store_true", help="curve: fill between the arc and its chord")
    p.add_argument("--fg", type=_colour, default="black", help="colour name or R,G,B in 0..255 (default black)")
    p.add_argument("--bg", type=_colour, default="white", help="colour name or R,G,B in 0..255 (default white)")
    p.add_argument("--size", type=_STIMULUS_SIDE, default=96,
                   help=f"image side in pixels (default 96, at most {_STIMULUS_SIDE.maximum})")
    p.add_argument("--scale", type=positive_float, default=1.0, help="image pixels per stimulus pixel (default 1)")
    p.add_argument("--out", required=True, help="output image (.png/.svg/.pdf); several stimuli make a sheet")
    p.set_defaults(func=cmd_stimuli)
    declare_io(p, outputs=[Out("--out", PLOT_SUFFIXES)])

    p = sub.add_parser(
        "tune",
        help="radial tuning curves of a unit or family (curves at 0.5 degree steps, mean over curvature)",
        description="Measure radial tuning curves (post-ReLU response to curves, averaged over curvature) and "
        "print preferred orientation, FWHM and echo; against the published curves when ../shared/reference exists.",
    )
    p.add_argument("units", nargs="+",
                   help="unit id (mixed3b:379), family id (mixed3b:curves), comma-separated or repeated ids")
    add_weights(p)
    p.add_argument("--angles", type=_angles, default=720, help="orientations over 360 degrees, at least 4 (default 720)")
    p.add_argument("--curvatures", type=_curvatures, default=None,
                   help="curvatures in 0..1 (fraction of a half circle), default 8 from 0.125 to 1")
    p.add_argument("--arc-length", type=positive_float, help="pixels (default: half the layer's receptive field)")
    p.add_argument("--width", type=positive_float, help="pixels (default: receptive field / 30)")
    p.add_argument("--fg", type=_colour, help="stroke colour (default black)")
    p.add_argument("--bg", type=_colour, help="background colour (default white)")
    p.add_argument("--batch-size", type=BATCH_SIZE, help="stimuli per forward pass (default: sized to memory)")
    p.add_argument("--plot", help="write the radial tuning plot here (.png/.svg/.pdf)")
    p.add_argument("--overlay", help="write measured-vs-published overlays here (.png/.svg/.pdf)")
    p.add_argument("--json", help="write curves, metrics and n_stimuli here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device(p)
    p.set_defaults(func=cmd_tune)
    declare_io(p, outputs=[Out("--plot", PLOT_SUFFIXES), Out("--overlay", PLOT_SUFFIXES), Out("--json")],
               inputs=[In("units", "units"), In("--weights", "weights")])


# --- stimuli ------------------------------------------------------------------------


def cmd_stimuli(args) -> int:
    check_outputs([("--out", args.out, PLOT_SUFFIXES)])
    from circuits.plots.tuning import _check_path, plot_stimuli
    from circuits.tuning.stimuli import KINDS, render

    accepted = set(inspect.signature(KINDS[args.kind]).parameters)
    if args.kind == "rounded-angle":
        accepted |= set(inspect.signature(KINDS["angle"]).parameters)
    given = {opt: getattr(args, opt) for opt in _GEOMETRY if getattr(args, opt) is not None}
    for opt, flag in (("filled", args.filled), ("side", args.side)):
        if flag:
            given[opt] = [flag]
    wrong = [o for o in given if _GEOMETRY.get(o, o) not in accepted]
    if wrong:
        flags = ", ".join("--" + o.replace("_", "-") for o in wrong)
        raise ValueError(f"{flags} does not apply to {args.kind} stimuli")
    if args.curvature is not None and args.radius is not None:
        raise ValueError("give --curvature or --radius, not both")
    out = _check_path(args.out)
    # Every combination of the list-valued options, one stimulus each.
    keys = [k for k in given if k not in ("filled", "side")]
    combos = list(itertools.product(*(given[k] for k in keys)))
    if len(combos) > 256:
        raise ValueError(f"{len(combos)} stimuli requested; a sheet holds at most 256")
    need = len(combos) * args.size * args.size * STIMULUS_BYTES_PER_PIXEL
    if need > MEMORY_BYTES:
        raise ValueError(f"{len(combos)} stimuli of {args.size} px need about {need / 2**30:.3g} GiB "
                         f"(this machine has {MEMORY_BYTES / 2**30:.3g} GiB): lower --size or the number of values")
    batched = {k: [c[i] for c in combos] for i, k in enumerate(keys)}
    fixed = {"fg": args.fg, "bg": args.bg, "size": args.size, "scale": args.scale}
    if args.filled:
        fixed["filled"] = True
    if args.side:
        fixed["side"] = args.side
    images = render(args.kind, **{_GEOMETRY[k]: v for k, v in batched.items()}, **fixed)
    if images.shape[0] == 1:
        from circuits.core.inputs import from_model_input

        _save_image(from_model_input(images)[0].permute(1, 2, 0).numpy(), out)
    else:
        varying = [k for k in keys if len(set(given[k])) > 1]
        titles = [" ".join(f"{_SHORT.get(k, k)}={_fmt(batched[k][i])}" for k in varying) for i in range(len(combos))]
        plot_stimuli(images, out, titles=titles)
    print(f"wrote {out} ({images.shape[0]} {args.kind} stimul{'us' if images.shape[0] == 1 else 'i'}, "
          f"{images.shape[-2]}x{images.shape[-1]} px)")
    return 0


_SHORT = {"orientation": "θ", "curvature": "curv", "radius": "r", "arc_length": "L", "width": "w",
          "length": "len", "opening": "open", "arm_length": "arm", "corner_radius": "corner",
          "tooth_length": "tooth", "tooth_spacing": "gap"}


def _fmt(v: float) -> str:
    return f"{v:g}"


def _save_image(rgb, path: Path) -> None:
    """The stimulus pixels themselves (no axes), written atomically."""
    import numpy as np

    from circuits.plots.setup import pyplot

    plt = pyplot()
    with atomic_path(path) as tmp:
        plt.imsave(tmp, np.clip(rgb, 0, 1), format=path.suffix[1:])


# --- tune -----------------------------------------------------------------------------


def cmd_tune(args) -> int:
    from circuits.tuning import reference
    from circuits.tuning.measure import DEFAULT_CURVATURES, radial_tuning
    from circuits.tuning.metrics import curve_metrics

    # Everything that can be checked is checked before the sweep.
    check_outputs([("--plot", args.plot, PLOT_SUFFIXES), ("--overlay", args.overlay, PLOT_SUFFIXES),
                   ("--json", args.json, ())])
    source = weights_name(args)
    specs = unit_list(args.units)
    units = resolve(specs, source)
    if args.overlay:
        if not reference.available():
            raise ValueError(f"--overlay needs the published curves, which are not here ({reference.reference_dir()})")
        missing = [u.id for u in units if reference.published_curve(u) is None]
        if missing:
            raise ValueError(f"--overlay: no published curve for {', '.join(missing)}; drop --overlay or those units")
    model = load_network(source, args.device)
    require_live(model, {u.layer for u in units}, "tune")
    stimulus = {k: v for k, v in (("arc_length", args.arc_length), ("width", args.width), ("fg", args.fg),
                                  ("bg", args.bg)) if v is not None}
    rt = radial_tuning(
        model,
        units,
        n_angles=args.angles,
        curvatures=args.curvatures if args.curvatures is not None else DEFAULT_CURVATURES,
        stimulus=stimulus,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    published, versus = {}, {}
    if reference.available():
        versus = reference.compare_to_published(rt)
        published = {u: reference.published_curve(u) for u in versus}
    rows = []
    for u, c in zip(rt.units, rt.curves):
        row = {"unit": u, **curve_metrics(c).as_dict()}
        if u in versus:
            row.update({k: versus[u][k] for k in ("published_pref_deg", "angle_error", "correlation")})
        rows.append(row)
    _print_table(rows, bool(published), source, rt)
    label = ", ".join(specs)
    if args.plot:
        from circuits.plots.tuning import plot_radial

        plot_radial(rt.angles_deg, dict(zip(rt.units, rt.curves)), args.plot,
                    title=f"{label} ({Path(str(source)).name} weights)")
        print(f"wrote {args.plot}")
    if args.overlay:
        _overlay_sheet(rt, published, args.overlay, str(source))
        print(f"wrote {args.overlay}")
    if args.json:
        data = rt.to_json()
        data["weights"] = str(source)
        data["table"] = rows
        if published:
            data["published"] = {u: [float(v) for v in c] for u, c in published.items()}
        _write_json(data, args.json)
        print(f"wrote {args.json}")
    return 0


def _print_table(rows, with_published: bool, source, rt) -> None:
    print(f"radial tuning, {Path(str(source)).name} weights: {rt.n_stimuli} stimuli "
          f"({len(rt.angles_deg)} orientations x {len(rt.curvatures)} curvatures per layer)")
    head = f"{'unit':14} {'pref':>6} {'fwhm':>6} {'echo':>6} {'peak':>9}"
    if with_published:
        head += f" {'pub pref':>8} {'ang err':>7} {'corr':>6}"
    print(head)
    print("-" * len(head))
    for r in rows:
        line = f"{r['unit']:14} {_num(r['pref_deg'], 1):>6} {_num(r['fwhm_deg'], 1):>6} {_num(r['echo'], 3):>6} {_num(r['peak'], 2):>9}"
        if with_published:
            if "angle_error" in r:
                line += f" {_num(r['published_pref_deg'], 1):>8} {_num(r['angle_error'], 1):>7} {_num(r['correlation'], 3):>6}"
            else:
                line += f" {'-':>8} {'-':>7} {'-':>6}"
        print(line)
    if not with_published:
        print("(no published curves for these units here: ../shared/reference is absent or does not list them)")


def _num(v: float, digits: int) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _overlay_sheet(rt, published, path, source) -> None:
    """One polar panel per unit: measured and published curves, each scaled to a peak of 1."""
    import numpy as np

    from circuits.plots.setup import pyplot
    from circuits.plots.tuning import _closed, _polar, save_figure
    from circuits.tuning.reference import published_angles

    plt = pyplot()
    units = [u for u in rt.units if u in published]
    ncols = min(5, len(units))
    nrows = -(-len(units) // ncols)
    fig = plt.figure(figsize=(3.2 * ncols, 3.4 * nrows))
    pa = published_angles()
    for i, u in enumerate(units):
        ax = fig.add_subplot(nrows, ncols, i + 1, projection="polar")
        _polar(ax)
        for label, a, c, style in ((Path(source).name, rt.angles_deg, rt.curve(u), "-"),
                                   ("published", pa, published[u], "--")):
            c = np.asarray(c, dtype=float)
            c = c / c.max() if c.max() > 0 else c
            ta, r = _closed(a, c)
            ax.plot(ta, r, style, lw=1.3, label=label)
        ax.set_title(u, fontsize=9)
        ax.set_ylim(bottom=0)
        if i == 0:
            ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(-0.1, -0.25))
    fig.tight_layout()
    save_figure(fig, path)


def _json_safe(v):
    """NaN (an undefined metric, e.g. the width of a curve that never fires) -> null."""
    from circuits.core.files import json_safe

    return json_safe(v)


def _write_json(data, path) -> None:
    from circuits.core.files import write_json

    write_json(path, data)
