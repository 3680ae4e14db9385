"""The figure of the circuit-editing experiments: one radial plot per condition, side by side.

As in "Curve Circuits": every curve unit's radial tuning curve in each panel, coloured by
the unit's preferred orientation (unedited), all panels on one radial scale so that a
lowered or raised peak shows as such.

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

from circuits.plots.tuning import _check_path, _closed, _plt, _polar, save_figure

__all__ = ["plot_edit_experiment"]


def plot_edit_experiment(exp, path, *, title: str | None = None) -> Path:
    """Write the three-panel radial figure of an `EditExperiment` to `path` (.png/.svg/.pdf)."""
    p = _check_path(path)
    plt = _plt()
    conds = exp.conditions
    fig = plt.figure(figsize=(4.0 * len(conds), 4.6))
    top = max(float(np.max(c)) for c in exp.curves.values())
    ref = exp.curves.get("unedited", next(iter(exp.curves.values())))
    prefs = [float(exp.angles_deg[int(np.argmax(c))]) if np.max(c) > 0 else 0.0 for c in ref]
    cmap = plt.get_cmap("hsv")
    summary = exp.summary()
    for i, cond in enumerate(conds):
        ax = fig.add_subplot(1, len(conds), i + 1, projection="polar")
        _polar(ax)
        for u, c, pref in zip(exp.units, exp.curves[cond], prefs):
            ta, r = _closed(exp.angles_deg, c)
            ax.plot(ta, r, lw=1.2, color=cmap(pref / 360.0), label=u.split(":")[-1])
        ax.set_ylim(0, top * 1.05 if top > 0 else 1.0)
        s = summary[cond]
        ax.set_title(f"{cond}\nmedian peak {s['median_peak']:.0f}, echo {s['median_echo']:.2f}", fontsize=9)
        if i == len(conds) - 1:
            ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.08, 0.5), title="unit", title_fontsize=7)
    fig.suptitle(title or f"{exp.curve_family} from {exp.early_family} (route: {exp.route})", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, p)
