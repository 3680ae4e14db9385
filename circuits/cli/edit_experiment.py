"""`circuits edit-experiment`: the "Curve Circuits" editing experiments on a model.

Example:
    $ circuits edit-experiment --plot edits.png --json edits.json              # the hand-built network
    $ circuits edit-experiment --weights inception5h.pth --early-curves mixed3a:early_curves
"""

from __future__ import annotations

from pathlib import Path

from circuits.cli.options import add_weights, family_ids, load_network, network_for
from circuits.cli.device import add_device
from circuits.cli.paths import In, Out, declare_io
from circuits.cli.tune import PLOT_SUFFIXES, _angles

# The early curves the hand-built 3b curves read directly: their copies in the 3b 5x5
# bottleneck (the input of the curves' own convolution), so the edits rewrite real weights.
HANDBUILT_EARLY_CURVES = "mixed3b_5x5_bottleneck:hb_curve_relay"
TRAINED_EARLY_CURVES = "mixed3a:early_curves"


def register(sub) -> None:
    p = sub.add_parser(
        "edit-experiment",
        help="radial tuning of curve units unedited, with early-curve inputs only, and with their positive weights only",
        description="The circuit-editing experiments of Curve Circuits: the curves' radial tuning (post-ReLU, mean "
        "over curvature) unedited, keeping only the early-curve inputs, and also dropping the negative early-curve "
        "weights. Prints peak, preferred angle, echo and FWHM per unit and condition, and which route the edits took: "
        "'direct' (the real weights of the curves' convolution) or 'reexpress' (the curves re-expressed through "
        "their linearized path from the early curves' layer, edits on its expanded weights).",
    )
    add_weights(p)
    p.add_argument("--curves", default="mixed3b:curves", help="the curve units or family (default mixed3b:curves)")
    p.add_argument("--early-curves", default=None,
                   help=f"the early-curve family (default: {HANDBUILT_EARLY_CURVES} on the hand-built network, "
                   f"{TRAINED_EARLY_CURVES} otherwise)")
    p.add_argument("--route", choices=["direct", "reexpress"], default=None,
                   help="how the edits are carried out (default: direct when the early curves feed the curves' "
                   "convolution, else reexpress)")
    p.add_argument("--n-angles", type=_angles, default=72, help="orientations over 360 degrees (default 72)")
    p.add_argument("--plot", metavar="FILE", help="three radial panels, one per condition (.png/.svg/.pdf)")
    p.add_argument("--json", metavar="FILE", help="write curves, table and summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device(p)
    p.set_defaults(func=cmd_edit_experiment)
    declare_io(p, outputs=[Out("--plot", PLOT_SUFFIXES), Out("--json")],
               inputs=[In("--weights", "weights"), In("--curves", "units"), In("--early-curves", "units")])


def cmd_edit_experiment(args) -> int:
    import weights

    from circuits.editing.experiment import edit_experiment
    from circuits.plots.tuning import _check_path

    if args.plot:
        _check_path(args.plot)
    if args.json and not Path(args.json).parent.exists():
        raise FileNotFoundError(f"cannot write {args.json}: folder {Path(args.json).parent} does not exist")
    if args.n_angles < 4:
        raise ValueError(f"--n-angles must be at least 4 (a tuning curve needs 4 samples), got {args.n_angles}")
    source = args.weights if args.weights is not None else weights.DEFAULT
    early = args.early_curves or (HANDBUILT_EARLY_CURVES if source == "handbuilt" else TRAINED_EARLY_CURVES)
    # A family file (from `circuits discover --json`) stands for its family, read before any weights.
    net = network_for(source)
    curves, early_spec = (ids[0] if len(ids) == 1 else ids
                          for ids in (family_ids(args.curves, net), family_ids(early, net)))
    model = load_network(net, args.device)
    exp = edit_experiment(model, curves, early_spec, route=args.route, n_angles=args.n_angles,
                          progress=not args.no_progress)
    print(f"edit experiment, {Path(str(source)).name} weights: {args.curves} from {early}, "
          f"{exp.n_stimuli} stimuli ({args.n_angles} orientations x 8 curvatures per run)")
    print(exp.table())
    print()
    for cond, s in exp.summary().items():
        print(f"{cond:35} median peak {s['median_peak']:7.1f}  echo median {s['median_echo']:.3f} "
              f"(range {s['min_echo']:.3f}..{s['max_echo']:.3f})  median FWHM {s['median_fwhm']:.1f}")
    if args.plot:
        from circuits.plots.edit_experiment import plot_edit_experiment

        plot_edit_experiment(exp, args.plot, title=f"{args.curves} from {early} ({Path(str(source)).name}, "
                             f"route {exp.route})")
        print(f"wrote {args.plot}")
    if args.json:
        from circuits.core.files import write_json

        write_json(args.json, {**exp.to_json(), "weights": str(source)})
        print(f"wrote {args.json}")
    return 0
