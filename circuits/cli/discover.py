"""`circuits discover`: find the curve detectors of a layer by sweeps, or read a saved family back.

Example:
    $ circuits discover mixed3b --weights handbuilt --json found.json --plot radial.png --sheet vis.png
    $ circuits discover --load found.json
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from circuits.cli.options import add_weights, nonnegative_float, nonnegative_int, positive_int
from circuits.cli.device import add_device
from circuits.cli.paths import In, Out, declare_io
from circuits.cli.tune import BATCH_SIZE, PLOT_SUFFIXES, _angles


def _floats(text: str) -> list[float]:
    try:
        vals = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of numbers, got {text!r}") from None
    if not vals:
        raise argparse.ArgumentTypeError("expected at least one number")
    return vals


# Criteria field -> command-line option.
_CRITERIA_OPTIONS = {
    "min_peak": "--min-peak",
    "min_fwhm_deg": "--min-fwhm",
    "max_fwhm_deg": "--max-fwhm",
    "max_line_ratio": "--max-line-ratio",
    "max_sharp_angle_ratio": "--max-angle-ratio",
    "max_edge_ratio": "--max-edge-ratio",
    "min_curvature_tolerance": "--min-curvature-tolerance",
    "max_echo": "--max-echo",
    "min_polarity": "--min-polarity",
}


def register(sub) -> None:
    from circuits.tuning.criteria import DEFAULT_CURVATURES, DEFAULT_ORIENTATIONS, Criteria

    d = Criteria()
    p = sub.add_parser(
        "discover",
        help="find a layer's curve detectors by sweeping every channel with curves and controls",
        description="Sweep every channel of LAYER with curves (orientations x curvatures, both polarities) and "
        "controls (lines, sharp and rounded angles, edges), score each unit by the Curve Detectors criteria, "
        "print the ranked table and register the accepted units as LAYER:curves_found. "
        "With --load FILE, read a saved family back instead.",
    )
    p.add_argument("layer", nargs="?", help="layer to sweep, e.g. mixed3b")
    p.add_argument("--load", "--families", dest="load", metavar="FILE",
                   help="read a family file (written by --json) back, register it and print it")
    add_weights(p)
    p.add_argument("--orientations", type=_angles, default=DEFAULT_ORIENTATIONS,
                   help=f"orientations over 360 degrees (default {DEFAULT_ORIENTATIONS})")
    p.add_argument("--curvatures", type=_floats, default=list(DEFAULT_CURVATURES),
                   help="curvatures in (0, 1], fractions of a half circle (default "
                   f"{','.join(format(c, 'g') for c in DEFAULT_CURVATURES)})")
    for f in fields(Criteria):
        if f.name in _CRITERIA_OPTIONS:
            p.add_argument(_CRITERIA_OPTIONS[f.name], dest=f.name, type=nonnegative_float, default=getattr(d, f.name),
                           help=f"criterion (default {getattr(d, f.name):g}; see Criteria)")
    p.add_argument("--allow-gaps", action="store_true",
                   help="do not require one contiguous orientation range above half max")
    p.add_argument("--top", type=nonnegative_int, default=30, help="rows of the ranked table to print (default 30; 0: all)")
    p.add_argument("--json", metavar="FILE", help="write the family and every unit's scores (a family file)")
    p.add_argument("--plot", metavar="FILE", help="the family's normalised radial tuning curves (.png/.svg/.pdf)")
    p.add_argument("--sheet", metavar="FILE", help="contact sheet of the family's feature visualizations")
    p.add_argument("--vis-steps", type=positive_int, default=256, help="optimization steps per visualization (default 256)")
    p.add_argument("--batch-size", type=BATCH_SIZE, help="stimuli per forward pass (default: sized to memory)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_device(p)
    p.set_defaults(func=cmd_discover)
    declare_io(p, outputs=[Out("--json"), Out("--plot", PLOT_SUFFIXES), Out("--sheet", PLOT_SUFFIXES)],
               inputs=[In("--load"), In("--weights", "weights")])


def cmd_discover(args) -> int:
    if args.load:
        if args.layer:
            raise ValueError(f"give either a LAYER to sweep or --load FILE, not both (got {args.layer!r})")
        from circuits.cli.options import DEFAULT_WEIGHTS

        return _load(args.load, args.weights or DEFAULT_WEIGHTS)
    if not args.layer:
        raise ValueError("give a LAYER to sweep (e.g. mixed3b) or --load FILE")
    import weights
    from circuits.plots.tuning import _check_path
    from circuits.tuning.discover import Criteria, discover

    if args.top < 0:
        raise ValueError(f"--top must be >= 0, got {args.top}")
    if args.vis_steps < 1:
        raise ValueError(f"--vis-steps must be >= 1, got {args.vis_steps}")
    for path in (args.plot, args.sheet):
        if path:
            _check_path(path)  # fail before the sweep, not after it
    crit = Criteria(contiguous=not args.allow_gaps,
                    **{f: getattr(args, f) for f in _CRITERIA_OPTIONS})
    from circuits.cli.options import load_network

    model = load_network(args.weights or weights.DEFAULT, args.device)
    d = discover(model, args.layer, n_orientations=args.orientations, curvatures=args.curvatures, criteria=crit,
                 batch_size=args.batch_size, progress=not args.no_progress)
    print(d.table(limit=args.top or None))
    print()
    print(d.summary())
    if args.json:
        d.save(args.json)
        print(f"wrote {args.json}")
    if args.plot or args.sheet:
        from circuits.plots.discover import plot_discovery

        if not d.family:
            print("no family found: no plots written")
        else:
            for p in plot_discovery(d, args.plot, args.sheet, model=model, steps=args.vis_steps,
                                    progress=not args.no_progress):
                print(f"wrote {p}")
    return 0


def _load(path: str, source: str) -> int:
    from circuits.cli.options import network_for
    from circuits.families.files import load_family, read_family_file

    net = network_for(source)
    rec = read_family_file(path, net)
    fam = load_family(path, net)
    print(f"registered {fam.id} ({fam.name!r}, {len(fam)} units) from {path}")
    units = rec.get("units", {})
    for u in rec["family"]:
        s = units.get(u, {})
        pref = s.get("pref_deg")
        fw = s.get("fwhm_deg")
        extra = "" if pref is None else f"  pref {pref:g} deg, fwhm {fw:.1f} deg"
        print(f"  {u}{extra}")
    if "coverage_deg" in rec:
        gaps = ", ".join(f"{a:g}-{b:g}" for a, b in rec.get("gaps_deg", [])) or "none"
        print(f"orientation coverage {rec['coverage_deg']:g} deg; gaps: {gaps}")
    return 0
