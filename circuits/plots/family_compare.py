"""Figures of `circuits.tuning.family_compare`: curve families of several networks side by side.

* `plot_families`: one polar panel per family (each unit's radial tuning curve,
  normalised to its own peak, in its own colour, the units in order of preferred
  orientation: the article's banner), and, when given, a panel of the early -> curve weights by orientation
  difference for each network.

Example:
    >>> plot_families([hand_built, trained, published], "families.png", weights=[w_hb, w_v3])  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from circuits.plots.style import FONT_PT, unit_styles
from circuits.plots.tuning import ANGLE_CAPTION, _closed, _radial_labels_off_the_curves, _plt, _polar, save_figure

__all__ = ["plot_families"]


def plot_families(profiles: Sequence, path, *, weights: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Polar panels of each family's normalised curves, plus the weights panel if `weights`."""
    profiles = list(profiles)
    if not profiles:
        raise ValueError("no families to plot")
    plt = _plt()
    n = len(profiles) + (1 if weights else 0)
    fig = plt.figure(figsize=(4.2 * n, 4.6))
    for i, p in enumerate(profiles):
        ax = fig.add_subplot(1, n, i + 1, projection="polar")
        _polar(ax, "response / its peak")
        order = sorted(range(len(p.units)), key=lambda k: p.pref_deg[k])
        for k, (colour, style) in zip(order, unit_styles(len(order))):
            c = p.radial[k]
            if not c.max() > 0:
                continue
            ax.plot(*_closed(p.angles, c / c.max()), style, color=colour, lw=1.2)
        ax.set_ylim(0, 1.05)
        _radial_labels_off_the_curves(ax)
        ax.set_title(f"{p.label}\n{p.network} {p.layer}, {len(p.units)} units", fontsize=9, pad=14)
    if weights:
        ax = fig.add_subplot(1, n, n)
        for w in weights:
            x = np.asarray(w["centres_deg"], dtype=float)
            y = np.asarray(w["normalised"], dtype=float)
            if x.size and x[0] == -180.0:  # -180 and +180 are one bin: draw it at both ends
                x, y = np.append(x, 180.0), np.append(y, y[0])
            ax.plot(x, y, "o-", lw=1.4, label=f"{w.get('label', w['network'])}: {w['early']} -> {w['curves']}")
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set_xlabel("orientation difference, curve - early (degrees)")
        ax.set_ylabel("mean expanded weight / max |mean|")
        ax.set_xticks([-180, -90, 0, 90, 180])
        ax.legend(fontsize=FONT_PT, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16))
        ax.set_title("early curves -> curves, by orientation difference", fontsize=9)
    fig.text(0.5, 0.0, ANGLE_CAPTION, ha="center", va="top", fontsize=FONT_PT + 1, color="0.25")
    fig.tight_layout()
    return save_figure(fig, path)
