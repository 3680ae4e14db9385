"""How the shared settings of the hand-built 3b curves were chosen: a seeded search whose objective is
what the articles say the network does, measured on the project's own stimuli. No published tuning curve
is read (the published widths enter only as facts about units, as in `handbuilt/spec.py`), so the
correlation with the published curves stays an independent check (`independent_arcs.py`, the tests).

The objective (`score`, 0 when every criterion holds with its margin) -- each line a statement of
"Curve Detectors" / "Curve Circuits" or a property the project keeps:
  - no echo ("curve neurons in 3b have no echoes"): every unit's echo <= 0.03;
  - "early curves only" (the 3a lines removed) lowers the peaks substantially: median <= 0.4 of
    unedited, still no echo (<= 0.01);
  - "positive early-curve weights only" (the negative ones removed too): the echoes come back ("these
    negative weights are the reason ... no echoes"), median 0.2-0.4, differing from unit to unit
    (standard deviation >= 0.065, weight `--spread-weight`), and no peak above 0.9 of unedited;
  - curves > rounded angles > sharp angles >= lines, at each unit's own orientation: rounded / curve
    <= 0.85, sharp / rounded <= 0.85, line / curve <= 0.1, lines never above sharp angles;
  - cosmetic invariance (issue 5): filled curves (weight `--filled-weight`), white on black and a
    colour pair within 15% of a black curve on white;
  - each unit built within 25% of its published width (weight `--width-weight`): the width is a fact
    about the unit, like its angle, and the spec stretches each unit to its own.
The margins keep the chosen settings inside the issue's bars (echo 0.05, peak ratios 0.5 and 1, echo
median 0.15-0.45, spread 0.05, invariance 20%) on other stimuli. The published tuning curves are not
read, so their correlation with the built ones is an independent check.

Each candidate is built from `handbuilt.spec` with the ten settings of `SPACE` replaced; the rest of
the spec (every other family, and the curves' reference width, 39.2) is fixed. Stage 1 draws
`--samples` settings uniformly from `SPACE` (seeded); stage 2 refines the best two by Gaussian steps
(8%, then 3% of each range), keeping a step when it lowers the score.

The spec's values are this run's best (2 processes, ~12 min on 2 cores). It ends at score 0.612, every
criterion met with its margin but four: the width (log ratio 0.40: within a factor 1.49, where the margin
asks 25%), filled curves (0.80, margin 0.85), the echo (0.0302, margin 0.03; the bar is 0.05) and the
echo spread (0.0647, margin 0.065; the bar is 0.05):
    python experiments/search_handbuilt.py --samples 700 --seed 11 --refine 50 --out search.jsonl
`--check` prints the objective's terms for the spec as it is.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import pathlib
import sys

import numpy as np
import torch
from tqdm import tqdm

import handbuilt
import handbuilt.spec as S
from circuits.editing.experiment import CONDITIONS, edit_experiment
from circuits.tuning.compare import stimulus_checks
from circuits.tuning.metrics import curve_metrics

UNITS, RELAY = "mixed3b:curves", "mixed3b_5x5_bottleneck:hb_curve_relay"
LO, HI = min(S.MIXED3B_FWHM.values()), max(S.MIXED3B_FWHM.values())

# The settings searched and their ranges (each range inside what the article allows where it says).
SPACE = {
    "opponent": (1.0, 4.0),  # the opposite band, times the band (>= 1: at least the band's mirror)
    "width": (8.0, 20.0),  # the early-curve band's sigma, degrees
    "surround_width": (25.0, 70.0),  # the zero-sum surround's width over the tangent difference
    "tol_lo": (10.0, 25.0),  # line tolerance of the narrowest unit ("between about 10 to 45 degrees")
    "tol_hi": (30.0, 45.0),  # ... of the broadest unit
    "flank": (8.0, 30.0),  # how far beyond the tolerance a line still inhibits ("rotated a little")
    "curve_share": (0.5, 1.0),  # part of the tolerance towards a tighter curve (0.5 symmetric, 1 one-sided)
    "line_gain": (250.0, 1200.0),  # the 3a lines' kernel sum (the early curves' is 300)
    "radius_stretch": (0.0, 3.0),  # arc radius times f ** this (f = published width / median width)
    "spread_stretch": (0.0, 3.0),  # position tolerance times f ** this
}


def spec_of(p: dict):
    """The spec with the ten settings of `p` (keys of SPACE) in place.

    >>> spec_of(current()).rules == S.SPEC.rules
    True
    """
    ie, il = _curve_rules(S.SPEC)
    rules = list(S.SPEC.rules)
    stretch = dict(radius_stretch=p["radius_stretch"], spread_stretch=p["spread_stretch"])
    e = rules[ie]
    rules[ie] = dataclasses.replace(e, tuning=dataclasses.replace(e.tuning, opponent=p["opponent"], width=p["width"],
                                            surround_width=p["surround_width"]), **stretch)
    ln = rules[il]
    rules[il] = dataclasses.replace(ln, gain=p["line_gain"], tuning=dataclasses.replace(
        ln.tuning, by_width=((LO, p["tol_lo"]), (HI, p["tol_hi"])), flank=p["flank"], curve_share=p["curve_share"]),
        **stretch)
    return dataclasses.replace(S.SPEC, rules=tuple(rules))


def current() -> dict:
    """The spec's own values of the searched settings."""
    ie, il = _curve_rules(S.SPEC)
    e, ln = S.SPEC.rules[ie], S.SPEC.rules[il]
    (_, lo), (_, hi) = ln.tuning.by_width
    return dict(opponent=e.tuning.opponent, width=e.tuning.width, surround_width=e.tuning.surround_width,
                tol_lo=lo, tol_hi=hi, flank=ln.tuning.flank, curve_share=ln.tuning.curve_share,
                line_gain=ln.gain, radius_stretch=e.radius_stretch, spread_stretch=e.spread_stretch)


def _curve_rules(spec):
    return spec.rule_index("curve_relay", "curves"), spec.rule_index("line_relay_3b", "curves")


def measures(p: dict, n_angles: int = 36, discovered: bool = True) -> dict:
    """The objective's quantities for settings `p`, on the project's stimuli (no published curve).

    discovered: also `circuits discover`'s terms (a further sweep; a search skips it when their
    weight is 0, where `score` does not read them)."""
    m = handbuilt.build(spec_of(p))
    exp = edit_experiment(m, UNITS, RELAY, n_angles=n_angles, progress=False)
    un, early, pos = ([curve_metrics(c) for c in exp.curves[c]] for c in CONDITIONS)
    sc = stimulus_checks(m, UNITS, list(S.MIXED3B_CURVES.values()))
    c = sc.shapes["curve"]

    def ratio(a, b):
        return a.peak / b.peak if b.peak > 0 else float("inf")

    return dict(
        echo_max=max(u.echo for u in un),
        early_ratio_median=float(np.median([ratio(e, u) for e, u in zip(early, un)])),
        early_echo_max=max(e.echo for e in early),
        pos_ratio_max=max(ratio(q, u) for q, u in zip(pos, un)),
        pos_echo_median=float(np.median([q.echo for q in pos])),
        pos_echo_std=float(np.std([q.echo for q in pos])),
        rounded_max=float(np.max(sc.shapes["rounded angle"] / c)),
        sharp_over_rounded_max=float(np.max(sc.shapes["sharp angle"] / np.maximum(sc.shapes["rounded angle"], 1e-9))),
        line_max=float(np.max(sc.shapes["line"] / c)),
        line_over_sharp_max=float(np.max((sc.shapes["line"] - sc.shapes["sharp angle"]) / c)),
        # the published widths are facts about the units (the spec stretches each unit to its own);
        # how far the built width is from it, as a log ratio (0.22 = 25%)
        width_log_err_max=float(max(abs(np.log(u.fwhm_deg / S.MIXED3B_FWHM[ch]))
                                    for u, ch in zip(un, S.MIXED3B_CURVES))),
        # ... and their order (Spearman rank correlation of built and published widths)
        width_rank=_rank_correlation([u.fwhm_deg for u in un], list(S.MIXED3B_FWHM.values())),
        # `circuits discover`'s criteria (its controls at every orientation, not only the preferred one):
        # how many built curves it would not find, and the strongest straight line relative to the curve
        **(_discovered(m) if discovered else {}),
        filled_min=float(np.min(sc.variants["filled"])),
        filled_max=float(np.max(sc.variants["filled"])),
        colour_dev=float(np.max(np.abs(sc.variants["colour pair"] - 1))),
        polarity_dev=float(np.max(np.abs(sc.variants["white on black"] - 1))),
    )


def _rank_correlation(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def _discovered(m) -> dict:
    from circuits.tuning.discover import discover

    d = discover(m, "mixed3b", n_orientations=36, channels=list(S.MIXED3B_CURVES), register=False, progress=False)
    return dict(not_discovered=float(sum(not s.accepted for s in d.scores)),
                best_line_max=float(max(s.line_ratio for s in d.scores if s.peak > 0)))


def score(q: dict, filled_weight: float = 5.0, spread_weight: float = 20.0, width_weight: float = 2.0,
          discover_weight: float = 0.0) -> float:
    """0 when every criterion of the module docstring holds with its margin; else the weighted shortfall.

    >>> score(dict(echo_max=0, early_ratio_median=0.3, early_echo_max=0, pos_ratio_max=0.9, pos_echo_median=0.3,
    ...            pos_echo_std=0.07, rounded_max=0.5, sharp_over_rounded_max=0.5, line_max=0, filled_min=0.9,
    ...            filled_max=1.0, colour_dev=0.01, polarity_dev=0))
    0.0
    """
    h = lambda x: max(0.0, x)  # noqa: E731
    return (10 * h(q["echo_max"] - 0.03) + h(q["early_ratio_median"] - 0.4) + 10 * h(q["early_echo_max"] - 0.01)
            + h(q["pos_ratio_max"] - 0.9) + h(0.2 - q["pos_echo_median"]) + h(q["pos_echo_median"] - 0.4)
            + spread_weight * h(0.065 - q["pos_echo_std"]) + h(q["rounded_max"] - 0.85) + h(q["sharp_over_rounded_max"] - 0.85)
            + h(q["line_max"] - 0.1) + filled_weight * h(0.85 - q["filled_min"]) + h(q["filled_max"] - 1.15)
            + h(q["colour_dev"] - 0.15) + h(q["polarity_dev"] - 0.15)
            + width_weight * (h(q.get("width_log_err_max", 0.0) - np.log(1.25)) + 5 * h(q.get("line_over_sharp_max", 0.0)))
            + discover_weight * (0.5 * q.get("not_discovered", 0.0) + 2 * h(q.get("best_line_max", 0.0) - 0.3)
                                 + 2 * h(0.8 - q.get("width_rank", 1.0))))


def _evaluate(args):
    p, weights = args
    torch.set_num_threads(1)
    try:
        q = measures(p, discovered=weights[3] > 0)
    except Exception as e:  # a candidate the compiler refuses (a dead unit): recorded, never chosen
        return p, {"error": repr(e)}, float("inf")
    return p, q, score(q, *weights)


def _clip(p: dict) -> dict:
    return {k: float(np.clip(v, *SPACE[k])) for k, v in p.items()}


def search(samples: int, refine: int, seed: int, weights: tuple[float, ...], out: str, resume: str | None = None,
           processes: int = 2) -> dict:
    """Stage 1 (unless resuming) then stage 2; every evaluation appended to `out` as JSON lines."""
    rng = np.random.default_rng(seed)
    rows = []
    with mp.get_context("fork").Pool(processes) as pool, open(out, "a") as f:
        def record(res, stage):
            for p, q, s in res:
                rows.append((p, q, s))
                f.write(json.dumps(dict(stage=stage, p=p, q=q, score=s)) + "\n")
            f.flush()

        if resume:
            old = [json.loads(line) for line in open(resume)]
            old = [r for r in old if "error" not in r["q"]]
            rows += [(r["p"], r["q"], score(r["q"], *weights)) for r in old]  # rescored with this run's weights
        else:
            cands = [_clip({k: float(rng.uniform(*SPACE[k])) for k in SPACE}) for _ in range(samples)]
            record(list(tqdm(pool.imap(_evaluate, [(c, weights) for c in cands]), total=samples,
                             desc="stage 1: random")), "random")
        chains = [(p, s) for p, _, s in sorted(rows, key=lambda r: r[2])[:2]]
        for it in tqdm(range(refine), desc="stage 2: refine"):
            scale = 0.08 if it < refine // 2 else 0.03
            steps = [_clip({k: v + rng.normal(0, scale * (SPACE[k][1] - SPACE[k][0])) for k, v in p.items()})
                     for p, _ in chains for _ in range(2)]
            res = pool.map(_evaluate, [(c, weights) for c in steps])
            record(res, "refine")
            for c in range(len(chains)):
                best = min(res[2 * c:2 * c + 2], key=lambda r: r[2])
                if best[2] < chains[c][1]:
                    chains[c] = (best[0], best[2])
    best = min(chains, key=lambda c: c[1])
    print(f"best score {best[1]:.4f}: " + json.dumps({k: round(v, 3) for k, v in best[0].items()}))
    return best[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=700)
    ap.add_argument("--refine", type=int, default=50)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--filled-weight", type=float, default=5.0, help="weight of the filled-curve criterion")
    ap.add_argument("--spread-weight", type=float, default=20.0, help="weight of the echo-spread criterion")
    ap.add_argument("--discover-weight", type=float, default=0.0,
                    help="weight of `circuits discover` finding every built curve (lines at every orientation "
                         "<= 0.3 of the curve) and of the built widths' order")
    ap.add_argument("--width-weight", type=float, default=2.0,
                    help="weight of the width criterion (each unit built within 25%% of its published width) "
                         "and of sharp angles >= lines")
    ap.add_argument("--resume", help="JSON lines of an earlier run: skip stage 1, refine its best two")
    ap.add_argument("--out", help="JSON lines, one per evaluated candidate (appended)")
    ap.add_argument("--check", action="store_true", help="print the objective's terms for the spec's own settings")
    args = ap.parse_args(argv)
    if args.check:
        q = measures(current())
        for k, v in q.items():
            print(f"{k:24} {v:.3f}")
        print(f"score {score(q, args.filled_weight, args.spread_weight, args.width_weight, args.discover_weight):.4f}")
        return 0
    if not args.out:
        ap.error("--out is required for a search (the evaluations are appended there)")
    if args.resume and not pathlib.Path(args.resume).is_file():
        ap.error(f"--resume {args.resume!r} is not a file (give the JSON lines an earlier search wrote)")
    if args.resume and pathlib.Path(args.resume).resolve() == pathlib.Path(args.out).resolve():
        ap.error(f"--out {args.out!r} is the --resume input; write the new evaluations to another file")
    if args.samples < 1 or args.refine < 0:
        ap.error(f"--samples must be >= 1 and --refine >= 0, got {args.samples} and {args.refine}")
    search(args.samples, args.refine, args.seed, (args.filled_weight, args.spread_weight, args.width_weight, args.discover_weight),
           args.out, args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
