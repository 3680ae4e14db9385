"""Design loop for the hand-built curve network: measure it the way `circuits compare` does.

For the mixed3b curves and the mixed3a early curves: the radial tuning (post-ReLU centre
response to curves, `circuits.tuning.measure.radial_tuning` with its default stimuli, averaged
over 8 curvatures) compared with the published curve of each unit -- preferred angle,
its error, Pearson correlation, FWHM ratio (built / published), echo ratio, peak -- and
`circuits.tuning.compare.stimulus_checks`: polarity, colour pair and filled curves relative to
black on white, and curves vs rounded angles vs sharp angles vs straight lines.

Rule parameters can be overridden without editing the spec, to explore a change:
``--set curves.bias=-5 curves.tuning.floor=0.05`` (a rule is named by its first
destination bank; nested fields with dots).

Run (quick: 72 orientations):
    python experiments/tune_handbuilt.py --n-angles 72
Full (720 orientations x 8 curvatures, the published resolution; ~2 min on 2 cores),
with the editing experiments:
    python experiments/tune_handbuilt.py --n-angles 720 --edits
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
import torch

import handbuilt
import handbuilt.spec
from circuits.tuning.compare import compare_tuning, stimulus_checks


def override(spec, assignments: list[str]):
    """A copy of `spec` with rule fields replaced: ``curves.bias=-2``, ``curves.tuning.width=20``."""
    rules = list(spec.rules)
    for a in assignments:
        key, _, value = a.partition("=")
        name, *path = key.split(".")
        idx = [i for i, r in enumerate(rules)
               if (r.dst if isinstance(r.dst, str) else (tuple(r.dst) or ("",))[0]) == name]
        if not idx or not path or not value:
            raise SystemExit(f"bad override {a!r}: expected <bank computed by a rule>.<field>[.<field>]=<number>")

        def put(obj, path, val):
            if len(path) == 1:
                return dataclasses.replace(obj, **{path[0]: val})
            return dataclasses.replace(obj, **{path[0]: put(getattr(obj, path[0]), path[1:], val)})

        rules[idx[0]] = put(rules[idx[0]], path, float(value))
    return dataclasses.replace(spec, rules=tuple(rules))


def measure(model, family: str, n_angles: int, checks: bool = True) -> None:
    t0 = time.perf_counter()
    cmp = compare_tuning({"hand-built": model}, family, n_angles=n_angles, progress=False)
    rows = cmp.rows_of("hand-built")
    print(f"\n{family}: {n_angles} orientations x 8 curvatures ({time.perf_counter() - t0:.1f} s)")
    print(f"{'unit':13} {'pub':>6} {'built':>6} {'err':>5} {'corr':>6} {'fwhm':>6} {'w/pub':>6} {'echo':>6} {'peak':>7}")
    for r in rows:
        pub = "-" if r.published_pref_deg is None else f"{r.published_pref_deg:6.1f}"
        err = "-" if r.angle_error is None else f"{r.angle_error:5.1f}"
        corr = "-" if r.correlation is None else f"{r.correlation:6.3f}"
        wr = "-" if r.width_ratio is None else f"{r.width_ratio:6.2f}"
        print(f"{r.unit:13} {pub:>6} {r.pref_deg:6.1f} {err:>5} {corr:>6} {r.fwhm_deg:6.1f} {wr:>6} {r.echo:6.3f} {r.peak:7.1f}")
    if rows and rows[0].correlation is not None:
        c = [r.correlation for r in rows]
        print(f"min corr {min(c):.3f}, mean {np.mean(c):.3f}; max angle error {max(r.angle_error for r in rows):.1f}; "
              f"max echo {max(r.echo for r in rows):.3f}; targets missed: {len(cmp.failures('hand-built'))}")
    if checks:
        sc = stimulus_checks(model, family, [r.pref_deg for r in rows])
        for k, v in sc.variants.items():
            print(f"  {k:15s} / black on white: {v.min():.2f} .. {v.max():.2f}")
        for k in ("rounded angle", "sharp angle", "line"):
            rel = sc.shapes[k] / sc.shapes["curve"]
            print(f"  {k:15s} / curve:          {rel.min():.2f} .. {rel.max():.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-angles", type=int, default=72)
    ap.add_argument("--families", default="mixed3b:curves,mixed3a:curves")
    ap.add_argument("--set", nargs="*", default=[], help="rule overrides, e.g. curves.bias=-2 curves.tuning.width=8")
    ap.add_argument("--no-checks", action="store_true", help="skip the polarity/colour/fill and shape checks")
    ap.add_argument("--edits", action="store_true",
                    help="also the Curve Circuits editing experiments (circuits.editing.experiment, direct route)")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    model = handbuilt.build(override(handbuilt.spec.SPEC, args.set))
    print(f"built in {time.perf_counter() - t0:.3f} s" + (f" with {' '.join(args.set)}" if args.set else ""))
    for family in args.families.split(","):
        measure(model, family, args.n_angles, checks=not args.no_checks)
    if args.edits:
        from circuits.editing.experiment import edit_experiment

        t0 = time.perf_counter()
        exp = edit_experiment(model, "mixed3b:curves", "mixed3b_5x5_bottleneck:hb_curve_relay",
                              n_angles=args.n_angles, progress=False)
        print(f"\nediting experiments ({time.perf_counter() - t0:.1f} s)")
        print(exp.table())
        for cond, sm in exp.summary().items():
            print(f"  {cond:35} median peak {sm['median_peak']:6.1f}, echo median {sm['median_echo']:.3f} "
                  f"({sm['min_echo']:.3f}..{sm['max_echo']:.3f}), median FWHM {sm['median_fwhm']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
