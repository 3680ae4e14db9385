"""The hand-built curve network measured: its tuning, and how the issue-22 bars move with each shared
setting. (How the shared settings were chosen: `search_handbuilt.py`.)

Two modes:

``--n-angles N`` (default): measure it the way `circuits compare` does -- for the mixed3b curves and
the mixed3a early curves the radial tuning (post-ReLU centre response, averaged over 8 curvatures)
against each published curve (preferred angle, error, correlation, FWHM ratio, echo, peak) and
`circuits.tuning.compare.stimulus_checks` (polarity, colour pair, filled curves; curves vs rounded
angles vs sharp angles vs lines). ``--edits`` adds the "Curve Circuits" editing experiments.

``--sensitivity``: the issue-22 bars (second renderer: correlation, angle error, echo; editing
experiments: peaks and echoes) with each shared setting changed on its own to the alternatives
listed in SENSITIVITY, the others as in the spec -- how much each bar depends on each setting.
It reports; it picks nothing.

Run:
    python experiments/tune_handbuilt.py --n-angles 720 --edits   # the README's numbers (~2 min)
    python experiments/tune_handbuilt.py --sensitivity             # ~2 min
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import pathlib
import sys
import time

import numpy as np
import torch

import handbuilt
import handbuilt.spec as S
from circuits.tuning.compare import compare_tuning, stimulus_checks

UNITS, RELAY = "mixed3b:curves", "mixed3b_5x5_bottleneck:hb_curve_relay"


def curve_rules(spec=S.SPEC):
    """Indices of the two Tile rules that compute the 3b curves: (from early curves, from 3a lines)."""
    return spec.rule_index("curve_relay", "curves"), spec.rule_index("line_relay_3b", "curves")


def variant(spec=S.SPEC, *, early_tuning: dict | None = None, line_tuning: dict | None = None,
            early: dict | None = None, line: dict | None = None, both: dict | None = None):
    """A copy of `spec` with fields of the curves' two rules (and of their tunings) replaced.

    >>> v = variant(early_tuning={"opponent": 1.0})
    >>> v.rules[curve_rules(v)[0]].tuning.opponent
    1.0
    """
    rules = list(spec.rules)
    ie, il = curve_rules(spec)
    for i, tun, fields in ((ie, early_tuning, early), (il, line_tuning, line)):
        r = rules[i]
        if tun:
            r = dataclasses.replace(r, tuning=dataclasses.replace(r.tuning, **tun))
        r = dataclasses.replace(r, **{**(both or {}), **(fields or {})})
        rules[i] = r
    return dataclasses.replace(spec, rules=tuple(rules))


# --- the default mode: the README's measurements ---------------------------------------------


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
            print(f"  {k:15s} / curve:          {np.array2string(rel, precision=2)}")


def edits(model, n_angles: int) -> None:
    from circuits.editing.experiment import edit_experiment

    t0 = time.perf_counter()
    exp = edit_experiment(model, UNITS, RELAY, n_angles=n_angles, progress=False)
    print(f"\nediting experiments ({time.perf_counter() - t0:.1f} s)")
    print(exp.table())
    for cond, sm in exp.summary().items():
        print(f"  {cond:35} median peak {sm['median_peak']:6.1f}, echo median {sm['median_echo']:.3f} "
              f"({sm['min_echo']:.3f}..{sm['max_echo']:.3f}), median FWHM {sm['median_fwhm']:.1f}")


# --- --sensitivity: the bars against each setting --------------------------------------------

# Each shared setting changed on its own (the spec's values are the row "spec"), mostly to the values the
# unfitted attempt derived from the articles' wording alone (docs/handbuilt.md's attempts table).
_W = (min(S.MIXED3B_FWHM.values()), max(S.MIXED3B_FWHM.values()))
SENSITIVITY = {
    "opponent 1 (plain mirror)": dict(early_tuning={"opponent": 1.0}),
    "opponent 2.5": dict(early_tuning={"opponent": 2.5}),
    "band width 15 (one bank step)": dict(early_tuning={"width": 15.0}),
    "surround width 45": dict(early_tuning={"surround_width": 45.0}),
    "tolerance 10-45 (the article's whole range)": dict(line_tuning={"by_width": ((_W[0], 10.0), (_W[1], 45.0))}),
    "flank 22.5 (one 3a line step)": dict(line_tuning={"flank": 22.5}),
    "one-sided tolerance": dict(line_tuning={"curve_share": 1.0}),
    "symmetric tolerance": dict(line_tuning={"curve_share": 0.5}),
    "line gain x0.5": dict(line={"gain": 0.5 * S.LINE_TO_CURVE_GAIN}),
    "line gain x1.5": dict(line={"gain": 1.5 * S.LINE_TO_CURVE_GAIN}),
    "radius, spread stretched f^1": dict(both={"radius_stretch": 1.0, "spread_stretch": 1.0}),
    "radius, spread not stretched": dict(both={"radius_stretch": 0.0, "spread_stretch": 0.0}),
}


def _arcs_module():
    path = pathlib.Path(__file__).with_name("independent_arcs.py")
    spec = importlib.util.spec_from_file_location("independent_arcs", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def bars(model, arcs, n_angles: int = 36) -> dict:
    """Issue 22's bars at a small size: the second renderer (2 lengths x 3 curvatures) and the
    editing conditions on it, plus the shape order on the project's stimuli."""
    from circuits.tuning import reference

    res = arcs.measure(model, n_angles, lengths=(28.0, 64.0), curvatures=(0.3, 0.75, 1.2))
    out = arcs.summary(res, reference.available())
    sc = stimulus_checks(model, UNITS, list(S.MIXED3B_CURVES.values()))
    c = sc.shapes["curve"]
    out["order"] = bool(np.all((c > sc.shapes["rounded angle"]) & (sc.shapes["rounded angle"] > sc.shapes["sharp angle"])
                               & (sc.shapes["sharp angle"] >= sc.shapes["line"])))
    return out


def sensitivity(n_angles: int = 36) -> None:
    arcs = _arcs_module()
    cols = ("corr_min", "corr_median", "angle_error_max", "echo_max", "early_peak_ratio_median",
            "positive_peak_ratio_max", "positive_echo_median", "positive_echo_std", "order")
    print("| setting | r min | r median | angle error max | echo max | early only: peak ratio (median) "
          "| positive only: peak ratio (max) | echo median | echo std | curves > rounded > sharp >= lines |")
    print("|---|" + "---:|" * len(cols))
    for name, change in [("spec", {})] + list(SENSITIVITY.items()):
        b = bars(handbuilt.build(variant(**change)), arcs, n_angles)
        print(f"| {name} | " + " | ".join(f"{b[k]:.3f}" if isinstance(b[k], float) else str(b[k]) for k in cols) + " |",
              flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-angles", type=int, default=72)
    ap.add_argument("--families", default="mixed3b:curves,mixed3a:curves")
    ap.add_argument("--no-checks", action="store_true", help="skip the polarity/colour/fill and shape checks")
    ap.add_argument("--edits", action="store_true",
                    help="also the Curve Circuits editing experiments (circuits.editing.experiment, direct route)")
    ap.add_argument("--sensitivity", action="store_true", help="the issue-22 bars against each shared setting")
    args = ap.parse_args(argv)
    if args.n_angles < 1:
        ap.error(f"--n-angles must be a positive integer, got {args.n_angles}")
    torch.set_num_threads(2)
    if args.sensitivity:
        sensitivity()
        return 0
    model = handbuilt.build()
    for family in args.families.split(","):
        measure(model, family, args.n_angles, checks=not args.no_checks)
    if args.edits:
        edits(model, args.n_angles)
    return 0


if __name__ == "__main__":
    sys.exit(main())
