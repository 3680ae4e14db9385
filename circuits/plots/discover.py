"""The "Curve Detectors" banner for a discovered family: radial tuning curves and feature visualizations.

Example:
    >>> import tempfile, numpy as np, torch
    >>> out = tempfile.mkdtemp()
    >>> a = np.arange(36) * 10.0
    >>> curves = {"mixed3b:1": np.exp(np.cos(np.deg2rad(a))), "mixed3b:2": np.exp(np.sin(np.deg2rad(a)))}
    >>> plot_family_radial(a, curves, out + "/radial.png", prefs={"mixed3b:1": 0, "mixed3b:2": 90}).name
    'radial.png'
    >>> plot_contact_sheet(torch.rand(2, 3, 16, 16), ["a", "b"], out + "/sheet.png").name
    'sheet.png'
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import torch

from circuits.plots.tuning import _plt, plot_radial, save_figure

__all__ = ["plot_family_radial", "plot_contact_sheet", "plot_discovery"]


def plot_family_radial(
    angles_deg: Sequence[float],
    curves: Mapping[str, Sequence[float]],
    path,
    *,
    prefs: Mapping[str, float] | None = None,
    title: str | None = None,
) -> Path:
    """The family's radial tuning curves, each normalised to a peak of 1, in one polar plot.

    curves: {unit id: curve} in the family's order; prefs: preferred orientations
    (degrees) shown in the legend.
    """
    labels = {}
    for u, c in curves.items():
        p = None if prefs is None else prefs.get(u)
        labels[u if p is None else f"{u} ({p:g}°)"] = c
    return plot_radial(angles_deg, labels, path, normalize=True,
                       title=title or "radial tuning, normalised (post-ReLU, mean over curvature)")


def plot_contact_sheet(images: torch.Tensor, titles: Sequence[str], path, *, ncols: int = 5) -> Path:
    """A grid of images [N, 3, H, W] in [0, 1] (feature visualizations) with a title each."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [N, 3, H, W] in [0, 1], got {getattr(images, 'shape', type(images))}")
    if len(titles) != images.shape[0]:
        raise ValueError(f"{len(titles)} titles for {images.shape[0]} images")
    x = images.detach().float().cpu()
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError("contact sheet images must be finite and in [0, 1]")
    plt = _plt()
    n = x.shape[0]
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.9 * ncols, 2.05 * nrows), squeeze=False)
    pics = x.permute(0, 2, 3, 1).numpy()
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(pics[i], interpolation="bilinear")
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_discovery(discovery, radial_path=None, sheet_path=None, *, model=None, steps: int = 256,
                   progress: bool = True) -> list[Path]:
    """The banner of a `circuits.tuning.discover.Discovery`: radial plot and/or contact sheet.

    The contact sheet needs the `model` (it renders one feature visualization per
    family member, `feature_visualizations`). An empty family raises ValueError.
    """
    from circuits.tuning.discover import feature_visualizations

    fam = discovery.family
    if not fam:
        raise ValueError(f"no curve family found in {discovery.layer}: nothing to plot")
    prefs = {u: discovery.score(u).pref_deg for u in fam}
    out = []
    if radial_path is not None:
        out.append(plot_family_radial(discovery.angles_deg, {u: discovery.curves[u] for u in fam}, radial_path,
                                      prefs=prefs, title=f"{discovery.layer}: curves found ({len(fam)} units), "
                                      "normalised radial tuning"))
    if sheet_path is not None:
        if model is None:
            raise ValueError("the contact sheet renders feature visualizations: pass the model")
        imgs = feature_visualizations(model, fam, steps=steps, progress=progress)
        out.append(plot_contact_sheet(imgs, [f"{u.split(':')[1]} ({prefs[u]:g}°)" for u in fam], sheet_path))
    return out

