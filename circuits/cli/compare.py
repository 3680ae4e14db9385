"""`circuits compare`: hand-built (and trained) curve detectors against the published curves."""

from __future__ import annotations

import json

import weights

from circuits.tuning import reference
from circuits.tuning.compare import compare_tuning, stimulus_checks
from circuits.tuning.measure import DEFAULT_CURVATURES


def register(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="radial tuning of a family in the hand-built (and a trained) network vs the published curves",
        description="Measure each unit's radial tuning curve (720 orientations x 8 curvatures) and compare it "
        "with the published curve of the same unit: preferred-angle error, correlation, width ratio, echo.",
    )
    p.add_argument("units", nargs="?", default="mixed3b:curves", help="unit or family (default mixed3b:curves)")
    p.add_argument("--weights", default=weights.DEFAULT, help=f"the model to check (default {weights.DEFAULT})")
    p.add_argument("--trained", metavar="NAME|FILE", help="also measure trained weights, e.g. lucid or inception5h.pth")
    p.add_argument("--n-angles", type=int, default=720, help="orientations (default 720: 0.5 degree steps)")
    p.add_argument("--plot", metavar="FILE", help="radial plot of the family, measured vs published (.png/.svg)")
    p.add_argument("--multiples", metavar="FILE", help="small multiples, one panel per unit, all models and published")
    p.add_argument("--json", metavar="FILE", help="write the curves, the metrics and the checks as JSON")
    p.add_argument("--no-checks", action="store_true", help="skip the polarity/colour/filled and angle/line checks")
    p.add_argument("--strict", action="store_true", help="exit with status 1 if a unit misses its target")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    models = {"hand-built" if args.weights == "handbuilt" else str(args.weights): weights.model(args.weights)}
    if args.trained:
        models["trained"] = weights.model(args.trained)
    cmp = compare_tuning(models, args.units, n_angles=args.n_angles, curvatures=DEFAULT_CURVATURES)
    print(cmp.table())
    if not reference.available():
        print(f"\npublished curves not found ({reference.reference_dir()}): no published columns, no targets judged")
    for label in models:
        miss = cmp.failures(label)
        judged = [r for r in cmp.rows_of(label) if r.meets_targets is not None]
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
    from circuits.plots.compare import plot_comparison

    for f in plot_comparison(cmp, args.plot, args.multiples):
        print(f"wrote {f}")
    if args.json:
        from circuits.core.files import atomic_path

        with atomic_path(args.json) as tmp, open(tmp, "w") as f:
            json.dump({**cmp.to_json(), "checks": checks}, f)
        print(f"wrote {args.json}")
    if args.strict and any(cmp.failures(label) for label in models):
        return 1
    return 0
