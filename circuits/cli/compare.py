"""`circuits compare`: hand-built (and trained) curve detectors against the published curves.

Example:
    $ circuits compare mixed3b:curves --trained inception5h.pth --plot family.png --strict
"""

from __future__ import annotations

import json

from circuits.cli.options import (
    add_weights,
    check_outputs,
    load_network,
    require_live,
    resolve,
    unit_list,
    weights_name,
)
from circuits.cli.tune import PLOT_SUFFIXES, _angles


def register(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="radial tuning of a family in the hand-built (and a trained) network vs the published curves",
        description="Measure each unit's radial tuning curve (720 orientations x 8 curvatures) and compare it "
        "with the published curve of the same unit: preferred-angle error, correlation, width ratio, echo.",
    )
    p.add_argument("units", nargs="*", default=["mixed3b:curves"],
                   help="units or family, comma-separated or repeated (default mixed3b:curves)")
    add_weights(p, help="the model to check (default handbuilt)")
    p.add_argument("--trained", metavar="NAME|FILE", help="also measure trained weights, e.g. lucid or inception5h.pth")
    p.add_argument("--n-angles", type=_angles, default=720, help="orientations (default 720: 0.5 degree steps)")
    p.add_argument("--plot", metavar="FILE", help="radial plot of the family, every model vs published (.png/.svg)")
    p.add_argument("--multiples", metavar="FILE", help="small multiples, one panel per unit, all models and published")
    p.add_argument("--json", metavar="FILE", help="write the curves, the metrics and the checks as JSON")
    p.add_argument("--no-checks", action="store_true", help="skip the polarity/colour/filled and angle/line checks")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 1 if a unit misses its target, or if no unit could be judged")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    from circuits.tuning import reference
    from circuits.tuning.compare import compare_tuning, stimulus_checks
    from circuits.tuning.measure import DEFAULT_CURVATURES

    check_outputs([("--plot", args.plot, PLOT_SUFFIXES), ("--multiples", args.multiples, PLOT_SUFFIXES),
                   ("--json", args.json, ())])
    source = weights_name(args)
    specs = unit_list(args.units)
    units = resolve(specs, source)
    if args.trained:
        units = resolve(specs, args.trained)
    if args.strict and not reference.available():
        raise ValueError(
            f"--strict needs the published curves to judge the units against, and they are not here "
            f"({reference.reference_dir()})"
        )
    models = {"hand-built" if source == "handbuilt" else source: load_network(source)}
    if args.trained:
        models["trained"] = load_network(args.trained)
    for model in models.values():
        require_live(model, {u.layer for u in units}, "compare")
    cmp = compare_tuning(models, units, n_angles=args.n_angles, curvatures=DEFAULT_CURVATURES)
    print(cmp.table())
    if not reference.available():
        print(f"\npublished curves not found ({reference.reference_dir()}): no published columns, no targets judged")
    n_judged = 0
    for label in models:
        miss = cmp.failures(label)
        judged = [r for r in cmp.rows_of(label) if r.meets_targets is not None]
        n_judged += len(judged)
        if judged:
            met = sum(bool(r.meets_targets) for r in judged)
            print(f"\n{label}: {met}/{len(judged)} units meet their targets")
            for m in miss:
                print(f"  {m}")
    checks = {}
    if not args.no_checks:
        for label, model in models.items():
            prefs = [r.pref_deg for r in cmp.rows_of(label)]
            layers = {u.split(":")[0] for u in cmp.units}
            if len(layers) != 1:
                print("\n(stimulus checks need the units of one layer; skipped)")
                break
            c = stimulus_checks(model, cmp.units, prefs)
            checks[label] = c.to_json()
            print(f"\n{label}: responses at each unit's preferred orientation")
            print(c.table())
    if args.plot:
        from circuits.plots.compare import plot_family_comparison

        # Every model measured is drawn, not only the first.
        print(f"wrote {plot_family_comparison(cmp.tunings, cmp.published, args.plot)}")
    if args.multiples:
        from circuits.plots.compare import plot_unit_multiples

        print(f"wrote {plot_unit_multiples(cmp.tunings, cmp.published, args.multiples)}")
    if args.json:
        from circuits.core.files import atomic_path

        with atomic_path(args.json) as tmp, open(tmp, "w") as f:
            json.dump({**cmp.to_json(), "checks": checks}, f)
        print(f"wrote {args.json}")
    if args.strict:
        if not n_judged:
            print(f"\n--strict: nothing judged (none of {', '.join(specs)} has a published curve); failing", flush=True)
            return 1
        if any(cmp.failures(label) for label in models):
            return 1
    return 0
