"""The attribution figure: the image with the W ⊙ h heat map, the top source units, the
families, and the attribution feature visualization.

Example:
    >>> plot_attribution(attribute(model, "mixed3b:379", img), img, "attr.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from circuits.analysis.attribution import Attribution, image_input
from circuits.core.files import atomic_path
from circuits.core.inputs import from_model_input
from circuits.plots.setup import pyplot
from circuits.plots.style import DPI, FONT_PT, colour_bar

__all__ = ["plot_attribution"]


def plot_attribution(
    attribution: "Attribution", image, path: str | os.PathLike, k: int = 10, vis: torch.Tensor | None = None, model=None
) -> Path:
    """Save a figure: the image with the heat map, the top-k source units, the families
    (labelled by `model`'s own families first, if given; and the attribution
    visualization `vis` [3, H, W] if given), atomically."""
    plt = pyplot()
    a = attribution
    img = from_model_input(image_input(image))[0].permute(1, 2, 0).numpy()
    heat = a.heatmap().numpy()
    fams = a.per_family(model=model)
    panels = 3 + (vis is not None) - (not fams)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 4.2))
    ax = axes[0]
    lim = float(abs(heat).max()) or 1.0
    ax.imshow(img)
    # Cells outside the kernel's window stay transparent so the image shows through.
    im = ax.imshow(np.ma.masked_equal(heat, 0.0), cmap="RdBu_r", vmin=-lim, vmax=lim, alpha=0.7)
    colour_bar(fig, ax, im, f"W ⊙ h at each {a.source} position (red +, blue -)")
    ax.set_title(f"{a.unit.id} at {a.position}: W ⊙ h from {a.source}", fontsize=9)
    ax.axis("off")
    what = f"contribution to {a.unit.id}'s pre-ReLU (W ⊙ h)"
    top = a.top(k)
    ax = axes[1]
    ax.barh([u.id for u, _ in top][::-1], [v for _, v in top][::-1], color=["#c33" if v > 0 else "#36c" for _, v in top][::-1])
    ax.set_title(f"top {len(top)} source units ({'exact' if a.exact else 'expanded weights'})", fontsize=9)
    ax.set(xlabel=what, ylabel=f"source unit ({a.source})")
    ax.tick_params(labelsize=FONT_PT)
    i = 2
    if fams:
        ax = axes[i]
        names = list(fams)
        ax.barh(names[::-1], [fams[n] for n in names][::-1], color=["#c33" if fams[n] > 0 else "#36c" for n in names][::-1])
        ax.set_title(f"per family of {a.source}", fontsize=9)
        ax.set(xlabel=what, ylabel="family")
        ax.tick_params(labelsize=FONT_PT)
        i += 1
    if vis is not None:
        axes[i].imshow(vis.detach().permute(1, 2, 0).clamp(0, 1).numpy())
        axes[i].set_title("FeatureVis(abs(W ⊙ h))", fontsize=9)
        axes[i].axis("off")
    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=DPI, format=(path.suffix or ".png")[1:], bbox_inches="tight")
    finally:
        plt.close(fig)
    return path
