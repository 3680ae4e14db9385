"""Figures of `circuits.tuning.compare`: a family against the published curves.

* `plot_family_comparison`: one radial plot, each unit's measured curve (solid) and
  its published curve (dashed) in the same colour, each normalized to its own peak.
* `plot_unit_multiples`: small multiples, one polar panel per unit, every model and
  the published curve overlaid (normalized).

Example:
    >>> plot_family_comparison(tuning, published, "family.png", label="hand-built")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import numpy as np

from circuits.plots.style import FONT_PT, unit_styles
from circuits.plots.tuning import ANGLE_CAPTION, _closed, _radial_labels_off_the_curves, _plt, _polar, save_figure
from circuits.tuning.reference import published_angles

__all__ = ["plot_family_comparison", "plot_unit_multiples"]


def _norm(c) -> np.ndarray:
    c = np.asarray(c, dtype=float)
    return c / c.max() if c.max() > 0 else c


def plot_family_comparison(tuning, published: Mapping[str, np.ndarray], path, *, label: str = "measured") -> Path:
    """Measured vs published (dashed) curves of a family around one circle.

    tuning: one `RadialTuning` (drawn solid, called `label`), or {label: RadialTuning}
    for several models (hand-built solid, the next dash-dot, then dotted), all drawn.
    """
    tunings = dict(tuning) if isinstance(tuning, Mapping) else {label: tuning}
    if not tunings:
        raise ValueError("no tuning curves to plot")
    plt = _plt()
    fig = plt.figure(figsize=(7, 7))
    ax = fig.add_subplot(projection="polar")
    _polar(ax, "response / its peak (each curve normalized)")
    pub_angles = published_angles() if published else None
    styles = ["-", "-.", ":"]
    first = next(iter(tunings.values()))
    for u, (colour, _) in zip(first.units, unit_styles(len(first.units))):
        for j, (name, t) in enumerate(tunings.items()):
            ax.plot(*_closed(t.angles_deg, _norm(t.curve(u))), styles[j % 3], color=colour, lw=1.4,
                    label=u if len(tunings) == 1 else f"{u} {name}")
        if u in published:
            ax.plot(*_closed(pub_angles, _norm(published[u])), "--", color=colour, lw=1.0)
    ax.set_ylim(0, 1.05)
    _radial_labels_off_the_curves(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=FONT_PT, frameon=False)
    names = " / ".join(f"{n} ({'solid' if j == 0 else 'dash-dot' if j == 1 else 'dotted'})"
                       for j, n in enumerate(tunings))
    what = f"{names} vs published (dashed)" if published else names
    ax.set_title(f"radial tuning, {what}, each normalized", pad=18)
    fig.text(0.5, 0.02, ANGLE_CAPTION, ha="center", va="top", fontsize=FONT_PT + 1, color="0.25")
    return save_figure(fig, path)


def plot_unit_multiples(tunings: Mapping[str, object], published: Mapping[str, np.ndarray], path, *, ncols: int = 5) -> Path:
    """One polar panel per unit: every model's curve and the published one (normalized)."""
    plt = _plt()
    units = list(next(iter(tunings.values())).units)
    ncols = max(1, min(ncols, len(units)))
    nrows = math.ceil(len(units) / ncols)
    fig = plt.figure(figsize=(2.8 * ncols, 3.0 * nrows))
    pub_angles = published_angles() if published else None
    styles = ["-", "-.", ":"]
    for i, u in enumerate(units):
        ax = fig.add_subplot(nrows, ncols, i + 1, projection="polar")
        _polar(ax, "response / its peak" if i == 0 else None)
        for j, (label, t) in enumerate(tunings.items()):
            ax.plot(*_closed(t.angles_deg, _norm(t.curve(u))), styles[j % 3], lw=1.3, label=label)
        if u in published:
            ax.plot(*_closed(pub_angles, _norm(published[u])), "--", color="k", lw=1.0, label="published")
        ax.set_ylim(0, 1.05)
        _radial_labels_off_the_curves(ax)
        ax.set_title(u, fontsize=9)
        if i == 0:
            ax.legend(loc="upper right", bbox_to_anchor=(0.0, 1.1), fontsize=FONT_PT, frameon=False)
    fig.text(0.5, 0.0, ANGLE_CAPTION, ha="center", va="top", fontsize=FONT_PT + 1, color="0.25")
    fig.tight_layout()
    return save_figure(fig, path)
