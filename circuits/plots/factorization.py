"""The figure of an activation factorization: each factor's spatial map over each image, and a
feature visualization of each factor's channel direction.

Rows: one per image (up to `max_images`): the image, its segmentation (each position coloured by
its strongest factor, brightness by that factor's strength), then each factor's map over the
greyed image. Last row (if renders are given): each factor's direction rendered by
`circuits.optvis`, captioned with its strongest channels.

Example:
    >>> factorization_figure(images, fact, "factors.png", vis=renders)     # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from circuits.plots.dataset import _img, save
from circuits.plots.setup import pyplot

__all__ = ["factorization_figure", "factor_colours"]


def factor_colours(k: int) -> np.ndarray:
    """[k, 3] distinct RGB colours in [0, 1] (matplotlib's tab10, then tab20)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20"]
    return np.asarray([cmap(i % cmap.N)[:3] for i in range(k)])


def _upsample(m: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """A [h, w] map stretched to [H, W] by bilinear interpolation (cell centres aligned)."""
    import torch
    import torch.nn.functional as F

    t = torch.as_tensor(m, dtype=torch.float64)[None, None]
    return F.interpolate(t, size=hw, mode="bilinear", align_corners=False)[0, 0].numpy()


def _segmentation(maps: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    up = np.stack([_upsample(m, hw) for m in maps])
    top = up.argmax(0)
    strength = up.max(0) / max(float(up.max()), 1e-12)
    return factor_colours(len(maps))[top] * np.clip(strength, 0, 1)[..., None] ** 0.5


def factorization_figure(images: Sequence, fact, path: str | os.PathLike, vis: Sequence | None = None,
                         max_images: int = 3, title: str | None = None) -> Path:
    """Write the figure (see the module docstring); images: uint8 [3, H, W] in `fact`'s order."""
    plt = pyplot()
    n_img = min(len(images), max_images)
    k = fact.rank
    cols = k + 2
    rows = n_img + (1 if vis is not None else 0)
    colours = factor_colours(k)
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 1.9 * rows + 0.5), squeeze=False)
    for i in range(n_img):
        img = _img(images[i])
        hw = img.shape[:2]
        grey = img.mean(-1)
        maps = fact.maps(i)
        axes[i, 0].imshow(img)
        axes[i, 0].set_title(fact.names[i][:22], fontsize=8)
        axes[i, 1].imshow(_segmentation(maps, hw))
        axes[i, 1].set_title("strongest factor", fontsize=8)
        vmax = float(maps.max()) or 1.0  # one scale for all factors of an image: their sizes compare
        for j in range(k):
            ax = axes[i, j + 2]
            ax.imshow(grey, cmap="gray", alpha=0.5)
            heat = _upsample(maps[j], hw) / vmax
            rgba = np.concatenate([np.broadcast_to(colours[j], hw + (3,)), np.clip(heat, 0, 1)[..., None]], -1)
            ax.imshow(rgba)
            if i == 0:
                ax.set_title(f"factor {j}", fontsize=8, color=colours[j] * 0.8)
    if vis is not None:
        r = rows - 1
        axes[r, 0].text(0.0, 0.5, "feature vis.\nof each\nfactor's\nchannel\ndirection", fontsize=8, va="center")
        axes[r, 1].axis("off")
        for j in range(k):
            ax = axes[r, j + 2]
            ax.imshow(_img(vis[j]))
            top = ", ".join(str(c) for c, _ in fact.top_channels(j, 3))
            ax.set_title(f"{j}: ch {top}", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)
    n = len(fact.names)
    fig.suptitle(title or f"NMF of {fact.layer} ({fact.network}), rank {k}, {n} image{'s' * (n != 1)}; "
                 f"relative error {fact.relative_error:.3f}", fontsize=9)
    fig.tight_layout()
    return save(fig, path, dpi=100)
