"""Curve families of the trained InceptionV3 (nsfwjs's frozen ImageNet trunk), layer by layer.

Runs `circuits.tuning.discover.discover` (36 orientations x 4 curvatures in both
polarities, plus lines, sharp and rounded angles and edges; the default `Criteria`) on
mixed0 .. mixed3 and reports per layer:

* how many units pass every criterion, their orientation coverage and its gaps;
* their curvature tolerance and the share ordered curves > rounded angles > sharp
  angles > lines;
* echo: the question "Curve Detectors" asks of InceptionV1 (early curves in mixed3a
  have echoes, the mixed3b curves do not). Here among the *curve-selective* units:
  those that meet every criterion except, possibly, the echo one.

Units of a max-pool branch (mixed3's third branch is a 3x3/2 max pool of mixed2) are
reported as what they are: pooled copies of the layer below, not new detectors.

With --out DIR it writes the family file of every layer that has one
(``inceptionv3_<layer>_curves.json``, read back by ``circuits discover --load``) and,
for the layer below the clearest family, an "early curves" file: the curve-selective
units there, echoes allowed (the input of ``circuits compare --early-of``). The
clearest family is, among the layers whose family has at least 8 units covering at
least 270 degrees (issue #11's bar), the one whose curve-selective units have the
lowest median echo (the article's mark of the mixed3b curves), then the most units.

Run: python experiments/discover_inception_v3.py [--layers mixed0,mixed1,mixed2,mixed3] [--out docs]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import weights
from circuits.families.files import save_family
from circuits.tuning.discover import discover


def curve_selective(d) -> list:
    """Scores of units that meet every criterion except, possibly, the echo criterion."""
    return [s for s in d.scores if s.accepted or (s.reasons and all(r.startswith("echo") for r in s.reasons))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="mixed0,mixed1,mixed2,mixed3")
    ap.add_argument("--out", default=None, help="folder for the family files (e.g. docs)")
    ap.add_argument("--weights", default="nsfwjs-inception-v3")
    args = ap.parse_args()
    model = weights.model(args.weights)
    rows, found = [], {}
    for layer in args.layers.split(","):
        t = time.perf_counter()
        d = discover(model, layer, register=False, progress=True)
        dt = time.perf_counter() - t
        acc = [s for s in d.scores if s.accepted]
        sel = curve_selective(d)
        cov, gaps = d.coverage()
        echo_sel = np.array([s.echo for s in sel])
        rows.append({
            "layer": layer, "channels": len(d.scores), "found": len(acc), "coverage": cov, "gaps": gaps,
            "curv_tol": np.median([s.curvature_tolerance for s in acc]) if acc else float("nan"),
            "ordered": np.mean([s.ordered for s in acc]) if acc else float("nan"),
            "rounded": np.median([s.rounded_angle_ratio for s in acc]) if acc else float("nan"),
            "sharp": np.median([s.sharp_angle_ratio for s in acc]) if acc else float("nan"),
            "line": np.median([s.line_ratio for s in acc]) if acc else float("nan"),
            "selective": len(sel), "echo_median": float(np.median(echo_sel)) if sel else float("nan"),
            "echo_share": float(np.mean(echo_sel > 0.25)) if sel else float("nan"), "seconds": dt,
        })
        found[layer] = d
        print(f"{layer}: {len(acc)} of {len(d.scores)} pass ({dt:.1f} s); family {d.family}")
        g = model.graph
        for uid in d.family:
            u = model.unit(uid)
            kind = g.node(u.branch).kind
            if kind.windowed and not kind.has_params:  # a pooling branch: the layer below, pooled
                src = g.node(u.branch).inputs[0]
                print(f"  {uid}: a pooled copy of {src}:{u.branch_channel} (the {u.branch} branch)")
    print()
    head = (f"{'layer':7} {'ch':>4} {'found':>5} {'coverage':>9} {'curv tol':>8} {'c>r>s>l':>7} {'rounded':>7} "
            f"{'sharp':>6} {'line':>6} | {'selective':>9} {'echo med':>8} {'echo>0.25':>9}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['layer']:7} {r['channels']:4d} {r['found']:5d} {r['coverage']:8.0f}° {r['curv_tol']:8.2f} "
              f"{r['ordered']:7.0%} {r['rounded']:7.2f} {r['sharp']:6.2f} {r['line']:6.2f} | {r['selective']:9d} "
              f"{r['echo_median']:8.2f} {r['echo_share']:9.0%}")
        if r["gaps"]:
            print(f"{'':7} gaps: " + ", ".join(f"{a:.0f}-{b:.0f}°" for a, b in r["gaps"]))
    print("(found: every criterion met; selective: every criterion but the echo one; medians over those units;"
          " ratios to the curve peak)")
    if args.out:
        out = Path(args.out)
        clear = [r for r in rows if r["found"] >= 8 and r["coverage"] >= 270] or rows
        best = min(clear, key=lambda r: (r["echo_median"], -r["found"]))
        for r in rows:
            d = found[r["layer"]]
            if d.family:
                name = f"inceptionv3_{r['layer']}_curves.json"
                print(f"wrote {d.save(out / name)}")
        names = args.layers.split(",")
        i = names.index(best["layer"])
        if i > 0:
            below = found[names[i - 1]]
            sel = curve_selective(below)
            rec = below.to_json()
            rec.update(name="early curves found", aliases=["early_curves_found"],
                       family=sorted((s.unit for s in sel), key=lambda u: below.score(u).pref_deg),
                       criteria={**rec["criteria"], "max_echo": None},
                       note="curve-selective units of the layer below the family: every criterion but echo")
            print(f"wrote {save_family(out / f'inceptionv3_{names[i - 1]}_early_curves.json', rec)}")
        print(f"clearest family: {best['layer']} ({best['found']} units, {best['coverage']:.0f}° covered)")


if __name__ == "__main__":
    main()
