"""Curve stimuli drawn independently of `circuits.tuning.stimuli`, and the hand-built network measured with them.

A blind check of the hand-built curves must not rely on the renderer they were designed
against. Here an arc is drawn by another method: each pixel's ink is the fraction of its
4 x 4 sub-pixel samples that lie within width/2 of the arc (distance to a circle, clipped
to the arc's angular extent, else to its nearer endpoint), on a 128 px canvas, with thinner
strokes and other arc lengths than the project's defaults (mixed3b: 45.5 px long, 3 px wide):
four lengths from 28 to 64 px and six curvatures from nearly straight to beyond a half
circle (1.2: the project's renderer stops at 1). Nothing here imports
`circuits.tuning.stimuli`; only the measurement (`circuits.tuning.measure.responses`: the
units' centre values) is shared.

Geometry (the articles' convention): orientation theta is the direction from the centre of
curvature to the arc's midpoint, degrees clockwise on screen from +x (y down); curvature is
the fraction of a half circle the arc subtends (radius = length / (curvature * pi)); the
midpoint sits on the unit's receptive-field centre.

Run (the full table: 144 orientations x 6 curvatures x 4 lengths, the editing conditions too;
about ten minutes on 2 cores):
    python experiments/independent_arcs.py --n-angles 144
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Sequence

import numpy as np
import torch

CANVAS = 128
WIDTH = 2.0  # px: thinner than the project's 3 px
LENGTHS = (28.0, 40.0, 52.0, 64.0)  # px: shorter and longer than the project's 45.5
CURVATURES = (0.15, 0.35, 0.55, 0.75, 0.95, 1.2)  # 1.2: more than a half circle
SUPERSAMPLE = 4


def arcs(orientations: Sequence[float], curvature: float, length: float, width: float = WIDTH,
         size: int = CANVAS, centre: tuple[float, float] | None = None) -> torch.Tensor:
    """Black arcs on white as Lucid model input [N, 3, size, size] (pixels 0..255 minus 117).

    >>> x = arcs([0.0], 1.0, 40.0, size=64, centre=(32.0, 32.0))   # a ')' bulging right
    >>> ink = (138.0 - x[0, 0]) / 255                            # 0 background .. 1 ink
    >>> float(ink[:, 34:].sum()), bool(ink[:, :31].sum() > 20)   # all ink at or left of the midpoint
    (0.0, True)
    """
    cy, cx = centre if centre is not None else ((size - 1) / 2, (size - 1) / 2)
    s = SUPERSAMPLE
    # Only a box around the midpoint can hold ink (every point of the arc is within length/2 of it).
    reach = length / 2 + width
    y0, y1 = max(0, int(math.floor(cy - reach))), min(size, int(math.ceil(cy + reach)) + 1)
    x0, x1 = max(0, int(math.floor(cx - reach))), min(size, int(math.ceil(cx + reach)) + 1)
    sy = y0 + (np.arange((y1 - y0) * s) + 0.5) / s - 0.5  # sub-pixel sample positions
    sx = x0 + (np.arange((x1 - x0) * s) + 0.5) / s - 0.5
    yy, xx = np.meshgrid(sy, sx, indexing="ij")
    r = length / (curvature * math.pi)
    half = length / (2 * r)  # radians each side of the midpoint
    out = torch.full((len(orientations), 3, size, size), 255.0 - 117.0)
    for i, theta in enumerate(orientations):
        t = math.radians(theta)
        oy, ox = cy - r * math.sin(t), cx - r * math.cos(t)  # the centre of curvature
        dy, dx = yy - oy, xx - ox
        ang = np.remainder(np.arctan2(dy, dx) - t + math.pi, 2 * math.pi) - math.pi
        d = np.abs(np.hypot(dy, dx) - r)  # distance to the circle ...
        ends = [(oy + r * math.sin(t + e), ox + r * math.cos(t + e)) for e in (-half, half)]
        d_end = np.minimum(*[np.hypot(yy - ey, xx - ex) for ey, ex in ends])
        d = np.where(np.abs(ang) <= half, d, d_end)  # ... where the arc is, else to its nearer end
        ink = (d <= width / 2).reshape(y1 - y0, s, x1 - x0, s).mean((1, 3))
        out[i, :, y0:y1, x0:x1] = torch.from_numpy(255.0 * (1.0 - ink)).float()[None] - 117.0
    return out


def radial(model, units, n_angles: int, curvatures=CURVATURES, lengths=LENGTHS, width: float = WIDTH,
           batch: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """(angles [A], curves [U, A]): post-ReLU centre responses to these arcs, averaged over
    curvature and length (as the published curves average over curvature)."""
    from circuits.families import resolve_units
    from circuits.tuning.measure import responses

    us = resolve_units(units, model)
    centre = us[0].centre_in_input(CANVAS)
    angles = np.arange(n_angles) * 360.0 / n_angles
    total = torch.zeros(n_angles, len(us))
    for c in curvatures:
        for L in lengths:
            for a in range(0, n_angles, batch):
                x = arcs(angles[a:a + batch], c, L, width, CANVAS, centre)
                total[a:a + batch] += torch.relu(responses(model, us, x))
    return angles, (total / (len(curvatures) * len(lengths))).T.double().numpy()


def measure(model, n_angles: int, lengths=LENGTHS, curvatures=CURVATURES) -> dict[str, np.ndarray]:
    """{condition: curves [U, A]} of the hand-built 3b curves on these arcs, unedited and under the
    two "Curve Circuits" edits (`circuits.editing.experiment`'s conditions, direct route)."""
    from circuits.editing.edits import editing
    from circuits.editing.experiment import CONDITIONS, condition_edits

    units, early = "mixed3b:curves", "mixed3b_5x5_bottleneck:hb_curve_relay"
    results = {}
    for cond in CONDITIONS:
        with editing(model, *condition_edits(cond, units, early, "direct", model)):
            results[cond] = radial(model, units, n_angles, curvatures, lengths)[1]
    return results


def summary(results: dict[str, np.ndarray], have_reference: bool) -> dict:
    """Issue 22's bars from `measure`'s curves: correlation and angle error against the published
    curves (when the reference data is present), echoes, and the two edits' peaks and echoes."""
    from circuits.core.graph import INCEPTION_V1
    from circuits.editing.experiment import CONDITIONS
    from circuits.families import resolve_units
    from circuits.tuning import reference
    from circuits.tuning.metrics import compare_curves, curve_metrics

    ids = [u.id for u in resolve_units("mixed3b:curves", INCEPTION_V1)]  # the published family's order
    un, early, pos = ([curve_metrics(c) for c in results[cond]] for cond in CONDITIONS)
    out: dict = {"units": ids, "unedited": un, "early": early, "positive": pos}
    if have_reference:
        cmp = [compare_curves(c, reference.published_curve(u)) for c, u in zip(results["unedited"], ids)]
        out["compare"] = cmp
        corr = np.array([c["correlation"] for c in cmp])
        out.update(corr_min=float(corr.min()), corr_median=float(np.median(corr)),
                   angle_error_max=float(max(c["angle_error"] for c in cmp)))
    else:
        out.update(corr_min=float("nan"), corr_median=float("nan"), angle_error_max=float("nan"))
    echo2 = np.array([p.echo for p in pos])

    def ratio(a, b):  # a unit that never fires has no peak ratio
        return a / b if b > 0 else float("nan")

    out.update(echo_max=float(max(m.echo for m in un)),
               early_peak_ratio_median=float(np.median([ratio(e.peak, m.peak) for e, m in zip(early, un)])),
               early_echo_max=float(max(e.echo for e in early)),
               positive_peak_ratio_max=float(max(ratio(p.peak, m.peak) for p, m in zip(pos, un))),
               positive_echo_median=float(np.median(echo2)), positive_echo_std=float(echo2.std()),
               positive_echo_min=float(echo2.min()), positive_echo_max=float(echo2.max()))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-angles", type=int, default=72)
    args = ap.parse_args(argv)
    if args.n_angles < 1:
        ap.error(f"--n-angles must be a positive integer, got {args.n_angles}")
    torch.set_num_threads(2)
    import handbuilt
    from circuits.tuning import reference
    from circuits.tuning.metrics import curve_metrics

    model = handbuilt.build()
    print(f"independent arcs: {CANVAS} px canvas, width {WIDTH} px, lengths {LENGTHS}, curvatures {CURVATURES}, "
          f"{args.n_angles} orientations")
    t0 = time.perf_counter()
    s = summary(measure(model, args.n_angles), reference.available())
    print(f"  measured in {time.perf_counter() - t0:.1f} s")
    # The page's table (markdown): unedited tuning against the published curve, and the two edits.
    print("\n| unit | pref (published) | angle error | correlation | FWHM | echo | early curves only: peak / unedited, echo "
          "| positive only: peak / unedited, echo |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for i, u in enumerate(s["units"]):
        m, e1, e2 = s["unedited"][i], s["early"][i], s["positive"][i]
        pub = e = cc = "-"
        if "compare" in s:
            c = s["compare"][i]
            pub = f"{curve_metrics(reference.published_curve(u)).pref_deg:g}"
            e, cc = f"{c['angle_error']:.1f}", f"{c['correlation']:.3f}"
        print(f"| {u} | {m.pref_deg:g} ({pub}) | {e} | {cc} | {m.fwhm_deg:.1f} | {m.echo:.3f} | "
              f"{e1.peak / m.peak:.2f}, {e1.echo:.3f} | {e2.peak / m.peak:.2f}, {e2.echo:.3f} |")
    print(f"\ncorrelation: min {s['corr_min']:.3f}, median {s['corr_median']:.3f}; angle error max {s['angle_error_max']:.1f}")
    print(f"unedited: echo max {s['echo_max']:.3f}")
    print(f"early curves only: peak / unedited median {s['early_peak_ratio_median']:.2f}, echo max {s['early_echo_max']:.3f}")
    print(f"positive early-curve weights only: peak / unedited max {s['positive_peak_ratio_max']:.2f}, "
          f"echo median {s['positive_echo_median']:.3f}, range {s['positive_echo_min']:.3f}..{s['positive_echo_max']:.3f}, "
          f"standard deviation {s['positive_echo_std']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
