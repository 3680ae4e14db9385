"""Figures of tuning measurements (matplotlib, Agg backend), written to PNG/SVG/PDF files.

* `plot_radial`: a family's radial tuning curves around one circle, as in "Curve
  Detectors": each unit's curve in its own colour, drawn at the orientations of the
  article's convention (0 at the right, angles clockwise on screen, 90 at the bottom),
  so a unit's lobe points the way its preferred curve bulges.
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

__all__ = ["plot_radial", "plot_overlay", "plot_response_map", "plot_stimuli", "save_figure", "orientation_colour"]

SUFFIXES = (".png", ".svg", ".pdf")

# What plot_radial shows, said on the figure: the radial axis and the default title.
RADIAL_QUANTITY = "post-ReLU response, mean over curvature"
# Darkest relative luminance allowed for a curve colour: at most 0.25 gives a contrast
# of at least 3:1 against white (WCAG's minimum for graphics).
MAX_LUMINANCE = 0.25


def _luminance(rgb) -> float:
    """WCAG relative luminance of an sRGB colour in [0, 1]."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def orientation_colour(fraction: float) -> tuple[float, float, float]:
    """A colour around the hue circle (fraction 0..1 of a turn), dark enough to read on white.

    Hues are those of matplotlib's "hsv" map, but yellows and greens (too light at
    full value) are darkened until their contrast with white is at least 3:1.

    >>> r, g, b = orientation_colour(1 / 6)       # yellow, darkened
    >>> round(1.05 / (_luminance((r, g, b)) + 0.05), 1) >= 3.0
    True
    """
    import colorsys

    h = float(fraction) % 1.0
    light = 0.5
    rgb = colorsys.hls_to_rgb(h, light, 1.0)
    while _luminance(rgb) > MAX_LUMINANCE and light > 0.05:
        light -= 0.01
        rgb = colorsys.hls_to_rgb(h, light, 1.0)
    return rgb


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
            fig.savefig(tmp, dpi=120, bbox_inches="tight", format=p.suffix[1:])
    finally:
        plt.close(fig)
    return p


def _polar(ax):
    # The article's convention: 0 at +x (right), angles clockwise on screen (y down).
    ax.set_theta_zero_location("E")
    ax.set_theta_direction(-1)
    ax.set_xticks(np.deg2rad(np.arange(0, 360, 45)))
    ax.set_yticklabels([])  # plot_radial labels its radial axis (raw units); normalized plots need none
    ax.grid(alpha=0.3)


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
    _polar(ax)
    for i, (label, c) in enumerate(curves.items()):
        c = np.asarray(c, dtype=float)
        if c.shape != np.shape(angles_deg):
            raise ValueError(f"curve {label!r} has {c.size} samples for {len(angles_deg)} angles")
        if normalize and c.max() > 0:
            c = c / c.max()
        colour = orientation_colour(np.argmax(c) / c.size)
        a, r = _closed(angles_deg, c)
        ax.plot(a, r, color=colour, lw=1.4, label=label)
        if fill:
            ax.fill(a, r, color=colour, alpha=0.12)
    ax.set_ylim(bottom=0)
    # Radial ticks with their values, and what they measure.
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.FormatStrFormatter("%g"))
    ax.tick_params(axis="y", labelsize=7, labelcolor="0.3")
    ax.set_rlabel_position(112.5)
    units = "each unit normalized to its peak" if normalize else "raw units"
    radial_label = f"{RADIAL_QUANTITY} ({units})"
    ax.text(np.deg2rad(112.5), ax.get_rmax() * 1.08, radial_label, fontsize=7, color="0.3",
            ha="left", va="bottom", rotation=0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    ax.set_title(title or f"radial tuning: {RADIAL_QUANTITY}", pad=18)
    fig.text(0.5, 0.02, f"radius: {radial_label}; angle: curve orientation in degrees (0 = ')', 90 = '∪')",
             ha="center", fontsize=8, color="0.25")
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
    _polar(ax)
    styles = ["-", "--", ":", "-."]
    for i, (label, c) in enumerate(curves.items()):
        a = angles[label] if isinstance(angles, Mapping) else angles
        c = np.asarray(c, dtype=float)
        if normalize and c.max() > 0:
            c = c / c.max()
        ta, r = _closed(a, c)
        ax.plot(ta, r, styles[i % len(styles)], lw=1.5, label=label)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
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
                ax.set_title(titles[i], fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
