"""The synthetic heat maps of one unit (`circuits.tuning.heatmaps.HeatMaps`) on one sheet.

One panel per map (curves, fill, colour pairs; angles and the series from sharp angles to
curves), orientation across, all on one diverging colour scale centred at the dataset
mean (0 standard deviations) so that panels compare; the title states the largest value
("up to N standard deviations above the average dataset activation").

Example:
    >>> plot_heatmaps(hm, "mixed3b:379", "heatmaps.png")     # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from circuits.plots.tuning import save_figure

__all__ = ["plot_heatmaps", "panel_title"]


def panel_title(name: str, stimulus: dict | None = None) -> str:
    """A readable title for a map name.

    >>> panel_title("series_0.5"), panel_title("colour_red_on_green"), panel_title("curves")
    ('rounded angles, roundness 0.5', 'curves, red on green', 'curves')
    """
    if name.startswith("series_"):
        f = name.split("_", 1)[1]
        return "sharp angles (roundness 0)" if float(f) == 0 else f"rounded angles, roundness {f}"
    if name.startswith("colour_"):
        return "curves, " + name.split("_", 1)[1].replace("_", " ")
    return {"fill": "filled curves", "angles": "angles"}.get(name, name)


def plot_heatmaps(hm, unit: str, path, *, ncols: int = 5, title: str | None = None) -> Path:
    """Write every map of `unit` in `hm` to `path` (.png/.svg/.pdf), one shared colour scale."""
    from circuits.plots.setup import pyplot

    if unit not in hm.units:
        raise ValueError(f"{unit} was not measured; measured: {', '.join(hm.units)}")
    names = [n for n in hm.maps if not (n == "angles" and "series_0" in hm.maps)]  # series_0 is the angles map
    plt = pyplot()
    n = len(names)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols + 1.2, 3.0 * nrows + 0.6), squeeze=False,
                             layout="constrained")
    vals = [hm.maps[k].of(unit) for k in names]
    std = hm.scale == "std"
    lim = max(float(np.abs(v).max()) for v in vals) or 1.0
    im = None
    for ax, name, v in zip(axes.flat, names, vals):
        m = hm.maps[name]
        extent = [*_edges(m.cols), *_edges(m.rows)[::-1]]
        im = ax.imshow(v, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, extent=extent, interpolation="nearest")
        ax.set_title(f"{panel_title(name)}\nmax {v.max():.1f}", fontsize=9)
        ax.set_xlabel("orientation (degrees)", fontsize=8)
        ax.set_ylabel(m.row_name + (" (px)" if m.row_name == "radius" else ""), fontsize=8)
        ax.set_xticks(np.arange(0, 360, 90))
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    what = "standard deviations from the dataset mean (pre-ReLU)" if std else "pre-ReLU activation"
    cb = fig.colorbar(im, ax=list(axes.flat), shrink=0.9)
    cb.set_label(what, fontsize=9)
    cb.ax.tick_params(labelsize=8)
    best, where = hm.up_to(unit)
    head = (f"{unit}: up to {best:.1f} standard deviations above the average dataset activation ({panel_title(where)})"
            if std else f"{unit}: largest pre-ReLU response {best:.1f} ({panel_title(where)})")
    fig.suptitle(title or head, fontsize=10)
    return save_figure(fig, path)


def _edges(values) -> list[float]:
    """Outer edges of cells centred on `values`."""
    v = np.asarray(values, dtype=float)
    half = (v[1] - v[0]) / 2 if v.size > 1 else 0.5
    return [float(v[0] - half), float(v[-1] + half)]
