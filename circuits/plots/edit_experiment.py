"""The figure of the circuit-editing experiments: one radial plot per condition, side by side.

As in "Curve Circuits": every curve unit's radial tuning curve in each panel, each unit in
its own colour (the same in every panel), all panels on one radial scale, labelled, so
that a lowered or raised peak shows as such.

Example:
    >>> import weights
    >>> from circuits.editing.experiment import edit_experiment
    >>> exp = edit_experiment(weights.model("random"), n_angles=8, curvatures=[0.5], progress=False)
    >>> plot_edit_experiment(exp, "/tmp/edit-experiment.png").name
    'edit-experiment.png'
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from circuits.plots.style import FONT_PT, unit_styles
from circuits.plots.tuning import (
    ANGLE_CAPTION,
    RADIAL_QUANTITY,
    _check_path,
    _closed,
    _plt,
    _polar,
    _radial_labels_off_the_curves,
    save_figure,
)

__all__ = ["plot_edit_experiment"]


def plot_edit_experiment(exp, path, *, title: str | None = None) -> Path:
    """Write the three-panel radial figure of an `EditExperiment` to `path` (.png/.svg/.pdf)."""
    p = _check_path(path)
    plt = _plt()
    conds = exp.conditions
    fig = plt.figure(figsize=(4.0 * len(conds), 4.6))
    top = max(float(np.max(c)) for c in exp.curves.values())
    styles = unit_styles(len(exp.units))
    summary = exp.summary()
    for i, cond in enumerate(conds):
        ax = fig.add_subplot(1, len(conds), i + 1, projection="polar")
        # One radial scale for all panels; said once, under the first.
        _polar(ax, f"{RADIAL_QUANTITY} (raw units, same scale in every panel)" if i == 0 else None)
        for u, c, (colour, style) in zip(exp.units, exp.curves[cond], styles):
            ta, r = _closed(exp.angles_deg, c)
            ax.plot(ta, r, style, lw=1.3, color=colour, label=u.split(":")[-1])
        ax.set_ylim(0, top * 1.05 if top > 0 else 1.0)
        _radial_labels_off_the_curves(ax)
        s = summary[cond]
        ax.set_title(f"{cond}\nmedian peak {s['median_peak']:.0f}, echo {s['median_echo']:.2f}", fontsize=9)
        if i == len(conds) - 1:
            ax.legend(fontsize=FONT_PT, loc="center left", bbox_to_anchor=(1.08, 0.5), title="unit",
                      title_fontsize=FONT_PT + 1, frameon=False)
    fig.suptitle(title or f"{exp.curve_family} from {exp.early_family} (route: {exp.route})", fontsize=10)
    fig.text(0.5, 0.0, ANGLE_CAPTION, ha="center", va="top", fontsize=FONT_PT + 1, color="0.25")
    fig.tight_layout()
    return save_figure(fig, p)
