"""`circuits compare`: hand-built (and trained) curve detectors against the published curves.

Example:
    $ circuits compare mixed3b:curves --trained inception5h.pth --plot family.png --strict
    $ circuits compare mixed3b:curves --early mixed3a:hb_early_curve_bank \
          --family-of nsfwjs-inception-v3=docs/families/inceptionv3_mixed2_curves.json \
          --early-of nsfwjs-inception-v3=docs/families/inceptionv3_mixed1_early_curves.json \
          --families-plot three_way.png --json three_way.json

With ``--family-of`` the families are also compared as families (each network's own
units, no one-to-one correspondence): the hand-built family, every other network's,
and the published InceptionV1 curves, criterion by criterion; ``--early``/``--early-of``
add the expanded weights from the layer below by orientation difference.
"""

from __future__ import annotations


from circuits.cli.options import (
    add_weights,
    check_outputs,
    load_network,
    require_live,
    resolve,
    unit_list,
    weights_name,
)
from circuits.cli.device import add_device
from circuits.cli.paths import In, Out, declare_io
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
    p.add_argument("--family-of", metavar="WEIGHTS=FAMILY", action="append", default=[],
                   help="also compare, family to family, another network's family: a weight source and a family id "
                   "or family file (.json from `circuits discover`), e.g. nsfwjs-inception-v3=mixed2_curves.json; repeatable")
    p.add_argument("--early", metavar="FAMILY", help="the early-curve family below the units (e.g. mixed3a:hb_early_curve_bank): "
                   "adds its expanded weights into the units by orientation difference")
    p.add_argument("--early-of", metavar="WEIGHTS=FAMILY", action="append", default=[],
                   help="the same for a --family-of network, e.g. nsfwjs-inception-v3=mixed1_early.json; repeatable")
    p.add_argument("--families-plot", metavar="FILE",
                   help="polar panels of every family (and the weights by orientation difference) (.png/.svg)")
    p.add_argument("--family-orientations", type=_angles, default=72,
                   help="orientations of the family-to-family sweep (default 72)")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 1 if a unit misses its target, or if no unit could be judged")
    add_device(p)
    p.set_defaults(func=cmd_compare)
    declare_io(p, outputs=[Out("--plot", PLOT_SUFFIXES), Out("--multiples", PLOT_SUFFIXES),
                           Out("--families-plot", PLOT_SUFFIXES), Out("--json")],
               inputs=[In("units", "units"), In("--weights", "weights"), In("--trained", "weights"),
                       In("--family-of", "pairs"), In("--early", "units"), In("--early-of", "pairs")])


def cmd_compare(args) -> int:
    from circuits.tuning import reference
    from circuits.tuning.compare import compare_tuning, stimulus_checks
    from circuits.tuning.measure import DEFAULT_CURVATURES

    check_outputs([("--plot", args.plot, PLOT_SUFFIXES), ("--multiples", args.multiples, PLOT_SUFFIXES),
                   ("--families-plot", args.families_plot, PLOT_SUFFIXES), ("--json", args.json, ())])
    others = [_pair(v, "--family-of") for v in args.family_of]
    earlies = dict(_pair(v, "--early-of") for v in args.early_of)
    unknown = sorted(set(earlies) - {w for w, _ in others})
    if unknown:
        raise ValueError(f"--early-of {unknown[0]}=...: that network has no --family-of; give --family-of {unknown[0]}=FAMILY")
    source = weights_name(args)
    specs = unit_list(args.units)
    units = resolve(specs, source)
    if args.trained:
        units = resolve(specs, args.trained)
    # Every family the comparison will read is resolved now, before the sweep (not after it).
    resolved = {"early": resolve(args.early, source) if args.early else None,
                "others": [resolve(spec, w) for w, spec in others],
                "earlies": {w: resolve(spec, w) for w, spec in earlies.items()}}
    if args.strict and not reference.available():
        raise ValueError(
            f"--strict needs the published curves to judge the units against, and they are not here "
            f"({reference.reference_dir()})"
        )
    models = {"hand-built" if source == "handbuilt" else source: load_network(source, args.device)}
    if args.trained:
        models["trained"] = load_network(args.trained, args.device)
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
    families = None
    if others or args.families_plot or args.early:
        families = _families(args, models, units, others, resolved)
    if args.plot:
        from circuits.plots.compare import plot_family_comparison

        # Every model measured is drawn, not only the first.
        print(f"wrote {plot_family_comparison(cmp.tunings, cmp.published, args.plot)}")
    if args.multiples:
        from circuits.plots.compare import plot_unit_multiples

        print(f"wrote {plot_unit_multiples(cmp.tunings, cmp.published, args.multiples)}")
    if args.json:
        from circuits.core.files import write_json

        write_json(args.json, {**cmp.to_json(), "checks": checks,
                               **({"families": families.to_json()} if families else {})}, indent=None)
        print(f"wrote {args.json}")
    if args.strict:
        if not n_judged:
            print(f"\n--strict: nothing judged (none of {', '.join(specs)} has a published curve); failing", flush=True)
            return 1
        if any(cmp.failures(label) for label in models):
            return 1
    return 0


def _pair(value: str, option: str) -> tuple[str, str]:
    if "=" not in value:
        raise ValueError(f"{option} takes WEIGHTS=FAMILY (e.g. nsfwjs-inception-v3=mixed2_curves.json), got {value!r}")
    w, f = value.split("=", 1)
    if not w.strip() or not f.strip():
        raise ValueError(f"{option} takes WEIGHTS=FAMILY with both parts, got {value!r}")
    return w.strip(), f.strip()


def _families(args, models: dict, units: list, others: list, resolved: dict):
    """The family-to-family comparison: the main family, the --family-of ones and the published."""
    from circuits.tuning import reference
    from circuits.tuning.family_compare import compare_families, measure_family, orientation_weights, published_family

    n = args.family_orientations
    label, model = next(iter(models.items()))
    profiles = [measure_family(model, units, label=label, n_orientations=n)]
    weights = []
    if args.early:
        early = measure_family(model, resolved["early"], label=f"{label} early", n_orientations=n, colour=False)
        weights.append(orientation_weights(model, early, profiles[0]))
    for (source, _), fam_units in zip(others, resolved["others"]):
        m = load_network(source, args.device)
        require_live(m, {u.layer for u in fam_units}, "compare --family-of")
        prof = measure_family(m, fam_units, label=source, n_orientations=n)
        profiles.append(prof)
        if source in resolved["earlies"]:
            early = measure_family(m, resolved["earlies"][source], label=f"{source} early",
                                   n_orientations=n, colour=False)
            weights.append(orientation_weights(m, early, prof))
    if reference.available():
        layer = units[0].layer if units[0].layer in ("mixed3a", "mixed3b") else "mixed3b"
        profiles.append(published_family(layer))
    cmp = compare_families(profiles)
    cmp.weights = {f"{w['network']} {w['early']} -> {w['curves']}": w for w in weights}
    print("\nfamilies side by side (each network's own units)")
    print(cmp.table())
    for w in weights:
        cells = ", ".join(f"{c:+.0f}°: {v:+.2f}" for c, v in zip(w["centres_deg"], w["normalised"]))
        print(f"\n{w['network']} {w['early']} -> {w['curves']}, mean expanded weight by orientation difference "
              f"(normalised): {cells}")
    if args.families_plot:
        from circuits.plots.family_compare import plot_families

        print(f"wrote {plot_families(profiles, args.families_plot, weights=weights)}")
    return cmp
