"""The hand-built curve network measured: its tuning, the settings the network itself gives, and how
the issue-22 bars move with each shared setting. Nothing here searches for settings that match the
published curves.

Three modes:

``--n-angles N`` (default): measure it the way `circuits compare` does -- for the mixed3b curves and
the mixed3a early curves the radial tuning (post-ReLU centre response, averaged over 8 curvatures)
against each published curve (preferred angle, error, correlation, FWHM ratio, echo, peak) and
`circuits.tuning.compare.stimulus_checks` (polarity, colour pair, filled curves; curves vs rounded
angles vs sharp angles vs lines). ``--edits`` adds the "Curve Circuits" editing experiments.

``--derive``: the three settings of `handbuilt/spec.py` that are measured on the network's own
activations with the project's own stimuli (no published curve is read):
  - CURVE_REFERENCE_FWHM: the median FWHM of the curves with no unit stretched (the line
    tolerance at the middle of its range);
  - LINE_TO_CURVE_GAIN: at each curve's own orientation (pre-ReLU, the radial tuning's 8
    curvatures) the 3a lines give as much as the early curves' positive weights (median over units);
  - CURVE_OPPONENT: "these negative weights are the reason curve neurons in 3b have no echoes" --
    the weakest opposite band, in quarter steps from 1 (the plain mirror), that keeps every
    curve's echo within the project's target (0.05) on the project's arcs (180 orientations x 8
    curvatures), the line gain re-balanced at each step.
It prints each step, so the values in the spec can be checked.

``--sensitivity``: the issue-22 bars (second renderer: correlation, angle error, echo; editing
experiments: peaks and echoes) with each shared setting changed on its own to the alternatives
listed in SENSITIVITY, the others as in the spec -- how much each bar depends on each setting.
It reports; it picks nothing.

Run:
    python experiments/tune_handbuilt.py --n-angles 720 --edits   # the README's numbers (~2 min)
    python experiments/tune_handbuilt.py --derive                  # ~1 min
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
    idx = [i for i, r in enumerate(spec.rules) if getattr(r, "dst", None) == ("curves",)]
    srcs = [spec.rules[i].src for i in idx]
    return idx[srcs.index("curve_relay")], idx[srcs.index("line_relay_3b")]


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


# --- --derive: the settings measured on the network's own activations ------------------------


def drive(model) -> tuple[np.ndarray, np.ndarray]:
    """(early curves' positive weights, 3a lines): pre-ReLU drive of each curve at its own
    orientation, mean over the radial tuning's curvatures, project's arcs. Because the path 3a ->
    3b curves is linear, the lines' part is unedited minus "early curves only"."""
    from circuits.editing.edits import editing
    from circuits.editing.experiment import CONDITIONS, condition_edits
    from circuits.tuning.measure import DEFAULT_CURVATURES, default_curve_params, responses
    from circuits.tuning.stimuli import curve_sweep

    ori = np.array(list(S.MIXED3B_CURVES.values()))
    params = default_curve_params("mixed3b", model)
    out = {}
    for cond in CONDITIONS:
        with editing(model, *condition_edits(cond, UNITS, RELAY, "direct", model)):
            vals = [np.diag(responses(model, UNITS, curve_sweep(ori, [c], **params), pre_relu=True).numpy())
                    for c in DEFAULT_CURVATURES]
        out[cond] = np.mean(vals, 0)
    return out[CONDITIONS[2]], out["unedited"] - out[CONDITIONS[1]]


def radial(model, n_angles: int = 180):
    from circuits.tuning.measure import radial_tuning
    from circuits.tuning.metrics import curve_metrics

    return [curve_metrics(c) for c in radial_tuning(model, UNITS, n_angles=n_angles, progress=False).curves]


def derive(echo_target: float = 0.05) -> dict:
    ref, gain, opp = S.CURVE_REFERENCE_FWHM, S.LINE_TO_CURVE_GAIN, 1.0
    ie, il = curve_rules()
    for rnd in range(4):
        for opp in np.arange(1.0, 4.01, 0.25):
            spec = variant(early_tuning={"opponent": float(opp)}, line={"gain": gain}, both={"reference_fwhm": ref})
            pos, lines = drive(handbuilt.build(spec))
            gain *= float(np.median(pos / lines))  # the lines' drive is proportional to their gain
            spec = variant(early_tuning={"opponent": float(opp)}, line={"gain": gain}, both={"reference_fwhm": ref})
            echo = max(m.echo for m in radial(handbuilt.build(spec)))
            print(f"  reference {ref:.1f}: opponent {opp:.2f}, line gain {gain:.1f} -> largest echo {echo:.3f}", flush=True)
            if echo <= echo_target:
                break
        mid = 0.5 * sum(t for _, t in S.LINE_TOLERANCE.by_width)
        flat = variant(early_tuning={"opponent": float(opp)}, line={"gain": gain, "reference_fwhm": None},
                       early={"reference_fwhm": None}, line_tuning={"by_width": None, "tolerance": mid})
        new_ref = round(float(np.median([m.fwhm_deg for m in radial(handbuilt.build(flat))])), 1)
        print(f"round {rnd}: opponent {opp:.2f}, line gain {gain:.1f}; unstretched median FWHM {new_ref:.1f}", flush=True)
        if abs(new_ref - ref) < 0.5:
            break
        ref = new_ref
    print(f"\nCURVE_OPPONENT = {opp:.2f}\nLINE_TO_CURVE_GAIN = {gain:.0f}\nCURVE_REFERENCE_FWHM = {ref:.1f}")
    return {"opponent": float(opp), "line_gain": gain, "reference_fwhm": ref}


# --- --sensitivity: the bars against each setting --------------------------------------------

# Each shared setting and the alternatives tried, one at a time (the spec's value is the row "spec").
SENSITIVITY = {
    "opponent 1 (plain mirror)": dict(early_tuning={"opponent": 1.0}),
    "opponent 3": dict(early_tuning={"opponent": 3.0}),
    "band width 10": dict(early_tuning={"width": 10.0}),
    "band width 20": dict(early_tuning={"width": 20.0}),
    "surround width 30": dict(early_tuning={"surround_width": 30.0}),
    "surround width 60": dict(early_tuning={"surround_width": 60.0}),
    "tolerance 20-35": dict(line_tuning={"by_width": ((min(S.MIXED3B_FWHM.values()), 20.0), (max(S.MIXED3B_FWHM.values()), 35.0))}),
    "tolerance 5-22.5 (half)": dict(line_tuning={"by_width": ((min(S.MIXED3B_FWHM.values()), 5.0), (max(S.MIXED3B_FWHM.values()), 22.5))}),
    "flank 11.25": dict(line_tuning={"flank": 11.25}),
    "flank 45": dict(line_tuning={"flank": 45.0}),
    "line inhibition 0.5": dict(line_tuning={"inhibition": 0.5}),
    "symmetric tolerance": dict(line_tuning={"curve_share": 0.5}),
    "only 406's left side leans": dict(line_tuning={"curve_share": 0.5, "leans": ((406, -1, 1.0),)}),
    "cliff lines 5 of 16 lines (406's left side leans)": dict(line_tuning={"curve_share": 0.5, "cliff": 5 / 16,
                                                                       "leans": ((406, -1, 1.0),)}),
    "line gain x0.5": dict(line={"gain": 0.5 * S.LINE_TO_CURVE_GAIN}),
    "line gain x2": dict(line={"gain": 2.0 * S.LINE_TO_CURVE_GAIN}),
    "radius, spread not stretched": dict(both={"radius_stretch": 0.0, "spread_stretch": 0.0}),
    "radius, spread stretched f^2": dict(both={"radius_stretch": 2.0, "spread_stretch": 2.0}),
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
    ap.add_argument("--derive", action="store_true", help="measure the three network-derived settings of the spec")
    ap.add_argument("--sensitivity", action="store_true", help="the issue-22 bars against each shared setting")
    args = ap.parse_args(argv)
    if args.n_angles < 1:
        ap.error(f"--n-angles must be a positive integer, got {args.n_angles}")
    torch.set_num_threads(2)
    if args.derive:
        derive()
        return 0
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
