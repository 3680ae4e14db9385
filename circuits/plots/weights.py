"""Distill-style tile grids of the weights between two families, saved as PNG.

Rows are destination units, columns source units; each tile is one spatial kernel
``W[d, s]`` in the layout of `circuits.analysis.expanded` (the centre pixel is the source unit
under the destination's centre). Positive weights are red, negative blue, on a
colour scale symmetric around zero, so white is exactly 0; all tiles share it.

Example:
    >>> import weights
    >>> m = weights.model("random")                                              # doctest: +SKIP
    >>> plot_weights_between(m, "mixed3a:early_curves", "mixed3b:curves", "w.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from circuits.core.files import atomic_path
from circuits.analysis.expanded import connection, weights_between
from circuits.core.units import Unit
from circuits.plots.style import DPI, FONT_PT

__all__ = ["weight_grid", "plot_weights", "plot_weights_between", "CMAP"]

CMAP = "RdBu_r"  # red positive, blue negative, white zero


def weight_grid(w: torch.Tensor, gap: int = 1) -> np.ndarray:
    """The tiles of ``w [dst, src, k, k]`` laid out in one array, NaN between tiles.

    Tile (d, s) occupies rows ``d*(k+gap) : d*(k+gap)+k`` and the matching columns.

    >>> weight_grid(torch.ones(2, 3, 1, 1)).shape
    (3, 5)
    """
    if w.dim() != 4 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"expected square kernels [dst, src, k, k], got shape {list(w.shape)}")
    d, s, k, _ = w.shape
    step = k + gap
    out = np.full((d * step - gap, s * step - gap), np.nan)
    a = w.detach().cpu().double().numpy()
    for i in range(d):
        for j in range(s):
            out[i * step : i * step + k, j * step : j * step + k] = a[i, j]
    return out


def _save_atomic(fig: Figure, path: Path, dpi: int) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"weight plots are PNG files; got {str(path)!r} (use a name ending in .png)")
    if not path.parent.exists():
        raise FileNotFoundError(f"folder {str(path.parent)!r} does not exist (for plot {str(path)!r})")
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return path


def plot_weights(
    w: torch.Tensor,
    src_units: Sequence[Unit],
    dst_units: Sequence[Unit],
    path: str | os.PathLike,
    *,
    title: str | None = None,
    scale: float | None = None,
    tile_inches: float = 0.45,
    dpi: int = DPI,
) -> Path:
    """Save the tile grid of ``w [dst, src, k, k]`` to the PNG `path`; returns the path.

    scale: the weight shown at full red / full blue (default: max |w|); the colour
    scale is [-scale, scale].
    """
    if w.shape[:2] != (len(dst_units), len(src_units)):
        raise ValueError(
            f"weights of shape {list(w.shape)} do not match {len(dst_units)} dst x {len(src_units)} src units"
        )
    grid = weight_grid(w)
    vmax = float(scale) if scale is not None else float(np.nanmax(np.abs(grid)))
    if not np.isfinite(vmax):
        raise ValueError("weights contain non-finite values; nothing sensible to plot")
    vmax = vmax if vmax > 0 else 1.0
    d, s, k, _ = w.shape
    step = k + 1
    width = max(3.0, s * tile_inches * max(1.0, k / 5) ** 0.5 + 2.0)
    height = max(2.5, d * tile_inches * max(1.0, k / 5) ** 0.5 + 1.5)
    fig = Figure(figsize=(width, height))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=CMAP, vmin=-vmax, vmax=vmax, interpolation="nearest")
    centres_x = [j * step + (k - 1) / 2 for j in range(s)]
    centres_y = [i * step + (k - 1) / 2 for i in range(d)]
    # Tiles are at least `tile_inches` apart, more than a FONT_PT label is tall: every label fits.
    ax.set_xticks(centres_x, [u.id.split(":")[1] for u in src_units], rotation=90, fontsize=FONT_PT)
    ax.set_yticks(centres_y, [u.id.split(":")[1] for u in dst_units], fontsize=FONT_PT)
    ax.tick_params(length=0)
    ax.set_xlabel(f"source: {src_units[0].layer}")
    ax.set_ylabel(f"destination: {dst_units[0].layer}")
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)
    cb = fig.colorbar(im, ax=ax, shrink=0.6, pad=0.02)
    cb.set_label("weight (red +, blue -)", fontsize=FONT_PT + 1)
    cb.ax.tick_params(labelsize=FONT_PT)
    return _save_atomic(fig, Path(path), dpi)


def plot_weights_between(model, src, dst, path: str | os.PathLike, **kwargs) -> Path:
    """`weights_between(model, src, dst)` drawn as a tile grid to `path`.

    Keyword arguments `lrn`, `input`, `method` go to `weights_between`, the rest to
    `plot_weights`.
    """
    wkw = {k: kwargs.pop(k) for k in ("lrn", "input", "method") if k in kwargs}
    conn = connection(src, dst, model)
    w = weights_between(model, src, dst, **wkw)
    kind = "direct weights" if conn.direct else "expanded weights (" + ", ".join(conn.linearized) + " linearized)"
    kwargs.setdefault("title", f"{_name(src)} -> {_name(dst)}: {kind}")
    return plot_weights(w, conn.src_units, conn.dst_units, path, **kwargs)


def _name(spec) -> str:
    if isinstance(spec, str):
        return spec
    return getattr(spec, "id", None) or ", ".join(map(str, spec))[:40]
