"""Exponential fits of the two tails of a pre-activation histogram.

"Curve Detectors" observes that both tails of 3b:379's pre-ReLU distribution are
exponential: straight lines on a log-density plot. `fit_tails` fits
log(count) = a - rate * |x - x0| on each side of the histogram's mode, by least
squares weighted by the counts (a Poisson count's log has variance about 1/count),
and reports the rate, its inverse (the scale), the weighted R² of the line and the
bins used. Bins with fewer than `min_count` entries are left out (their logs are
dominated by noise).

Example:
    >>> import numpy as np
    >>> from circuits.dataset.accumulators import Histogram
    >>> rng = np.random.default_rng(0)
    >>> h = Histogram(width=0.1)
    >>> h.add(np.concatenate([rng.exponential(1 / 2.0, 200000), -rng.exponential(1 / 0.5, 200000)]))
    >>> fits = fit_tails(h)
    >>> round(fits["positive"]["rate"], 1), round(fits["negative"]["rate"], 1)
    (2.0, 0.5)
"""

from __future__ import annotations

import math

import numpy as np

from circuits.dataset.accumulators import Histogram

__all__ = ["fit_tails", "fit_exponential"]


def fit_exponential(centres: np.ndarray, counts: np.ndarray, width: float, n_total: int) -> dict:
    """Weighted least-squares line through log(density) against distance from the tail's start."""
    keep = counts > 0
    x, c = np.asarray(centres, float)[keep], np.asarray(counts, float)[keep]
    if x.size < 3:
        return {"rate": None, "scale": None, "r2": None, "n_bins": int(x.size), "range": None,
                "reason": f"only {x.size} bins with enough counts (need 3)"}
    y = np.log(c / (n_total * width))  # log density
    w = c
    xm, ym = np.average(x, weights=w), np.average(y, weights=w)
    sxx = np.average((x - xm) ** 2, weights=w)
    slope = np.average((x - xm) * (y - ym), weights=w) / sxx
    intercept = ym - slope * xm
    resid = y - (intercept + slope * x)
    ss_tot = np.average((y - ym) ** 2, weights=w)
    r2 = 1.0 - np.average(resid**2, weights=w) / ss_tot if ss_tot > 0 else 1.0
    rate = abs(float(slope))
    return {"rate": rate, "scale": 1.0 / rate if rate > 0 else math.inf, "slope": float(slope),
            "intercept": float(intercept), "r2": float(r2), "n_bins": int(x.size),
            "range": [float(x.min() - width / 2), float(x.max() + width / 2)],
            "fraction": float(c.sum() / n_total)}


def fit_tails(hist: Histogram, min_count: int = 5) -> dict[str, dict]:
    """{"positive": fit, "negative": fit}: the tails above max(mode, 0) and below min(mode, 0).

    The positive tail is the activating regime (what survives the ReLU); the negative
    one is how strongly the unit is inhibited. A fit without enough bins has
    rate None and a "reason".
    """
    edges, counts = hist.dense()
    if not counts.size:
        none = {"rate": None, "scale": None, "r2": None, "n_bins": 0, "range": None, "reason": "empty histogram"}
        return {"positive": dict(none), "negative": dict(none)}
    centres = (edges[:-1] + edges[1:]) / 2
    mode = centres[int(np.argmax(counts))]
    ok = counts >= min_count
    pos = ok & (edges[:-1] >= max(mode + hist.width / 2, 0.0))
    neg = ok & (edges[1:] <= min(mode - hist.width / 2, 0.0))
    out = {}
    for name, sel in (("positive", pos), ("negative", neg)):
        out[name] = fit_exponential(centres[sel], counts[sel], hist.width, hist.n)
        out[name]["mode"] = float(mode)
    return out
