"""Figures of tuning measurements (matplotlib, Agg backend), written to PNG/SVG/PDF files.

* `plot_radial`: a family's radial tuning curves around one circle, as in "Curve
  Detectors": each unit's curve in its own colour (a qualitative map, see
  `circuits.plots.style`), drawn at the orientations of the article's convention (0 at
  the right, angles clockwise on screen, 90 at the bottom), so a unit's lobe points the
  way its preferred curve bulges; the radial axis has its scale and says what it is.
* `plot_overlay`: several curves of one unit (e.g. hand-built, published, trained).
* `plot_response_map`: the orientation x curvature heat maps (`ResponseMap`).
* `plot_stimuli`: a sheet of rendered stimuli.

Files are written to a temporary name and renamed, so a failed plot leaves no half file.

Example:
    >>> import numpy as np
    >>> a = np.arange(720) * 0.5
    >>> curves = {"mixed3b:379": np.exp(10 * (np.cos(np.deg2rad(a - 243)) - 1))}
    >>> plot_radial(a, curves, "/tmp/radial.png")   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from circuits.core.files import atomic_path
from circuits.plots.style import DPI, FONT_PT, unit_styles

__all__ = ["plot_radial", "plot_overlay", "plot_response_map", "plot_stimuli", "save_figure"]

SUFFIXES = (".png", ".svg", ".pdf")

# What plot_radial shows, said on the figure: the radial axis and the default title.
RADIAL_QUANTITY = "post-ReLU response, mean over curvature"
# The angular axis, said under every polar plot.
ANGLE_CAPTION = "angle: curve orientation in degrees (0 = ')', 90 = '∪')"


def _plt():
    from circuits.plots.setup import pyplot

    return pyplot()


def _check_path(path) -> Path:
    p = Path(path)
    if p.suffix.lower() not in SUFFIXES:
        raise ValueError(f"plot file {str(p)!r} must end in one of {', '.join(SUFFIXES)}")
    if not p.parent.exists():
        raise FileNotFoundError(f"cannot write {p}: folder {p.parent} does not exist")
    return p


def save_figure(fig, path) -> Path:
    """Save `fig` to `path` atomically (temporary file, then rename) and close it."""
    p = _check_path(path)
    plt = _plt()
    try:
        with atomic_path(p) as tmp:
            fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format=p.suffix[1:])
    finally:
        plt.close(fig)
    return p


def _polar(ax, radius: str | None = None):
    """The article's convention: 0 at +x (right), angles clockwise on screen (y down);
    radial ticks with their values, and `radius` (what the radius is) under the axes."""
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator

    ax.set_theta_zero_location("E")
    ax.set_theta_direction(-1)
    ax.set_xticks(np.deg2rad(np.arange(0, 360, 45)))
    ax.tick_params(axis="x", labelsize=FONT_PT + 1, pad=1)
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.tick_params(axis="y", labelsize=FONT_PT, labelcolor="0.25")
    ax.set_rlabel_position(292.5)  # moved off the lobes by _radial_labels_off_the_curves once drawn
    ax.grid(alpha=0.3)
    if radius:
        ax.text(0.5, -0.1, f"radius: {radius}", transform=ax.transAxes, ha="center", va="top",
                fontsize=FONT_PT, color="0.25")


def _radial_labels_off_the_curves(ax) -> None:
    """Put the radial tick labels between two angle gridlines where the drawn curves are lowest."""
    candidates = np.arange(22.5, 360, 45)
    reach = np.zeros(candidates.size)
    for line in ax.lines:
        theta, r = (np.asarray(v, dtype=float) for v in line.get_data())
        if theta.size < 2:
            continue
        deg = np.rad2deg(theta) % 360
        for i, c in enumerate(candidates):
            near = np.abs((deg - c + 180) % 360 - 180) <= 12
            if near.any():
                reach[i] = max(reach[i], float(r[near].max()))
    ax.set_rlabel_position(float(candidates[int(np.argmin(reach))]))


def _closed(angles, curve):
    a = np.deg2rad(np.append(np.asarray(angles, dtype=float), float(angles[0]) + 360.0))
    return a, np.append(np.asarray(curve, dtype=float), float(curve[0]))


def plot_radial(
    angles_deg: Sequence[float],
    curves: Mapping[str, Sequence[float]],
    path,
    *,
    title: str | None = None,
    normalize: bool = False,
    fill: bool = True,
) -> Path:
    """Radial tuning plot of a family: {label: curve}, all sampled at `angles_deg`.

    The radius is the post-ReLU response averaged over curvature, in the network's
    raw units (labelled on the radial axis); each unit has its own colour, from its
    preferred orientation, dark enough to read on white.
    normalize: scale each curve to a peak of 1 (to compare shapes across units).
    """
    if not curves:
        raise ValueError("no curves to plot")
    plt = _plt()
    fig = plt.figure(figsize=(6.4, 6.4))
    ax = fig.add_subplot(projection="polar")
    units = "each unit normalized to its peak" if normalize else "raw units"
    radial_label = f"{RADIAL_QUANTITY} ({units})"
    _polar(ax)
    for (label, c), (colour, style) in zip(curves.items(), unit_styles(len(curves))):
        c = np.asarray(c, dtype=float)
        if c.shape != np.shape(angles_deg):
            raise ValueError(f"curve {label!r} has {c.size} samples for {len(angles_deg)} angles")
        if normalize and c.max() > 0:
            c = c / c.max()
        a, r = _closed(angles_deg, c)
        ax.plot(a, r, style, color=colour, lw=1.5, label=label)
        if fill:
            ax.fill(a, r, color=colour, alpha=0.08)
    ax.set_ylim(bottom=0)
    _radial_labels_off_the_curves(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=FONT_PT + 1, frameon=False)
    ax.set_title(title or f"radial tuning: {RADIAL_QUANTITY}", pad=18)
    # What the radius and the angle are, under the plot (not across the lobes).
    fig.text(0.5, 0.02, f"radius: {radial_label}\n{ANGLE_CAPTION}", ha="center", va="top",
             fontsize=FONT_PT + 1, color="0.25")
    return save_figure(fig, path)


def plot_overlay(
    angles: Mapping[str, Sequence[float]] | Sequence[float],
    curves: Mapping[str, Sequence[float]],
    path,
    *,
    unit: str = "",
    normalize: bool = True,
) -> Path:
    """Several curves of one unit on one polar plot, e.g. {"hand-built": c1, "published": c2}.

    angles: one array of orientations shared by all curves, or {label: angles}.
    normalize: scale each curve to a peak of 1 (curves from different models have
        different scales; default True).
    """
    if not curves:
        raise ValueError("no curves to plot")
    plt = _plt()
    fig = plt.figure(figsize=(5.6, 5.6))
    ax = fig.add_subplot(projection="polar")
    _polar(ax, "response / its peak" if normalize else "response (raw units)")
    styles = ["-", "--", ":", "-."]
    for i, (label, c) in enumerate(curves.items()):
        a = angles[label] if isinstance(angles, Mapping) else angles
        c = np.asarray(c, dtype=float)
        if normalize and c.max() > 0:
            c = c / c.max()
        ta, r = _closed(a, c)
        ax.plot(ta, r, styles[i % len(styles)], lw=1.5, label=label)
    ax.set_ylim(bottom=0)
    _radial_labels_off_the_curves(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=FONT_PT + 1, frameon=False)
    ax.set_title(f"{unit} tuning{' (normalized)' if normalize else ''}", pad=18)
    return save_figure(fig, path)


def plot_response_map(rmap, path, *, ncols: int = 4, cmap: str | None = None) -> Path:
    """Heat maps of a `circuits.tuning.measure.ResponseMap`, one panel per unit (rows x cols of the grid)."""
    plt = _plt()
    n = len(rmap.units)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.6 * nrows), squeeze=False)
    diverging = rmap.scale == "std" or rmap.pre_relu
    cmap = cmap or ("RdBu_r" if diverging else "viridis")
    label = "std of baseline" if rmap.scale == "std" else ("pre-ReLU" if rmap.pre_relu else "post-ReLU")
    for ax, uid, v in zip(axes.flat, rmap.units, rmap.values):
        kw = {}
        if diverging:
            lim = float(np.abs(v).max()) or 1.0
            kw = {"vmin": -lim, "vmax": lim}
        extent = [*_edges(rmap.cols), *_edges(rmap.rows)[::-1]]
        im = ax.imshow(v, aspect="auto", cmap=cmap, extent=extent, interpolation="nearest", **kw)
        ax.set_title(uid, fontsize=9)
        ax.set_xlabel(rmap.col_name)
        ax.set_ylabel(rmap.row_name)
        fig.colorbar(im, ax=ax, label=label)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(f"{rmap.kind} stimuli", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def _edges(values) -> list[float]:
    """Outer edges of cells centred on `values` (so that ticks sit on cell centres)."""
    v = np.asarray(values, dtype=float)
    half = (v[1] - v[0]) / 2 if v.size > 1 else 0.5
    return [float(v[0] - half), float(v[-1] + half)]


def plot_stimuli(images: torch.Tensor, path, *, titles: Sequence[str] | None = None, ncols: int = 8,
                 input_range: tuple[float, float] | None = None) -> Path:
    """A sheet of stimuli (model input [N, 3, H, W] in `input_range`, e.g. ``model.input_range``;
    default InceptionV1's [-117, 138]) with optional titles."""
    from circuits.core.inputs import from_model_input

    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be model input [N, 3, H, W], got {getattr(images, 'shape', type(images))}")
    if titles is not None and len(titles) != images.shape[0]:
        raise ValueError(f"{len(titles)} titles for {images.shape[0]} images")
    plt = _plt()
    n = images.shape[0]
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.75 * nrows), squeeze=False)
    pics = from_model_input(images.detach().float().cpu(), input_range).permute(0, 2, 3, 1).numpy()
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(pics[i], interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=FONT_PT)
    fig.tight_layout()
    return save_figure(fig, path)
