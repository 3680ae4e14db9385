"""Curve extraction by attribution, beside Canny edges ("Curve Detectors", "repurposing").

`attribution_map` is an image-space map of what a family (e.g. `mixed3b:curves`)
responds to: the family's total response F = sum over its units and positions of
ReLU(pre-activation), attributed to each input pixel as |sum_c x_c dF/dx_c|
(gradient x input, the pixel-level analogue of W ⊙ h: for a piecewise-linear path
the terms sum to F). `compare_with_canny` puts it beside `skimage.feature.canny`
and scores both against a vessel/ridge reference, a Sato ridge map
(`skimage.filters.sato`, dark ridges, its top 10% inside the image's bright region):
precision is the fraction of each map's strongest pixels (as many as Canny marks)
within 2 px of a ridge, recall the fraction of ridge pixels within 2 px of them. Sato is
another filter, not ground truth; the score says which map follows the ridges
more closely, not how well either segments vessels.

Example:
    >>> import weights, torch
    >>> img = torch.full((3, 96, 96), 255, dtype=torch.uint8)
    >>> img[:, 40:44, :] = 0                                    # a dark horizontal line
    >>> m = attribution_map(weights.model("handbuilt"), "mixed3b:curves", img)
    >>> tuple(m.shape), bool(m[30:54].sum() > m[:20].sum())     # the map lies on the line
    ((96, 96), True)
"""

from __future__ import annotations

import numpy as np
import torch

from circuits.dataset.network import conv_table

__all__ = ["attribution_map", "canny", "compare_with_canny", "grey"]


def grey(image: torch.Tensor) -> np.ndarray:
    """uint8 [3, H, W] -> luminance [H, W] in [0, 1] (Rec. 601, skimage's rgb2gray weights)."""
    from skimage.color import rgb2gray

    return rgb2gray(image.permute(1, 2, 0).numpy())


def attribution_map(model, family, image: torch.Tensor) -> torch.Tensor:
    """[H, W]: |sum_c x_c dF/dx_c| for F the family's summed post-ReLU response over all positions.

    family: a family, unit or list of them of the model's network, or an objective
    (`circuits.optvis.Objective`, e.g. an activation factor's channel direction,
    `Factorization.objective`: then F is that objective); x is the image in the
    model's input range (so "input" means what the network reads, e.g. [-1, 1] for InceptionV3).
    """
    from circuits.optvis.objectives import Objective

    x = model.to_input(image).clone().requires_grad_(True)
    if isinstance(family, Objective):
        if family.network is not model.graph:
            raise ValueError(f"objective {family.description} reads {family.network.name}, the model is "
                             f"{model.graph.name}")
        total = family(model.run_with_cache(x, sorted(family.hooks, key=model.graph.index), detach=False))
    else:
        table = [(t, c) for _, t, c in conv_table(family, model)]
        tensors = sorted({t for t, _ in table}, key=model.graph.index)
        cache = model.run_with_cache(x, tensors, detach=False)
        total = sum(torch.relu(cache[t][0, c]).sum() for t, c in table)
    (g,) = torch.autograd.grad(total, x)
    return (g * x).sum(1)[0].abs().detach()


def canny(image: torch.Tensor, sigma: float = 2.0) -> np.ndarray:
    """`skimage.feature.canny` of the luminance: bool [H, W]."""
    from skimage.feature import canny as _canny

    if not sigma > 0:
        raise ValueError(f"Canny sigma must be positive, got {sigma!r}")
    return _canny(grey(image), sigma=sigma)


def _within(mask: np.ndarray, px: int) -> np.ndarray:
    from scipy.ndimage import binary_dilation

    return binary_dilation(mask, iterations=px)


def compare_with_canny(model, family, image: torch.Tensor, sigma: float = 2.0, ridge_quantile: float = 0.9) -> dict:
    """The attribution map, Canny's edges, a Sato ridge reference and each map's ridge precision."""
    from scipy.ndimage import binary_erosion, binary_fill_holes
    from skimage.filters import sato

    amap = attribution_map(model, family, image).numpy()
    edges = canny(image, sigma)
    g = grey(image)
    # the bright region (the fundus, not its dark surround), dark curves inside it included
    inside = binary_erosion(binary_fill_holes(g > 0.1), iterations=12)
    ridges = sato(g, sigmas=(1, 2, 3), black_ridges=True)
    ridge = (ridges > np.quantile(ridges[inside], ridge_quantile)) & inside
    near = _within(ridge, 2)
    n = int((edges & inside).sum())
    score, recall = {}, {}
    for name, m in (("attribution", np.where(inside, amap, -np.inf)), ("canny", None)):
        if m is None:
            top = edges & inside
        else:
            top = np.zeros_like(inside)
            idx = np.argsort(m, axis=None)[::-1][:n]
            top.flat[idx] = True
        score[name] = float((top & near).sum() / max(int(top.sum()), 1))
        recall[name] = float((_within(top, 2) & ridge).sum() / max(int(ridge.sum()), 1))
    score["chance"] = float(near[inside].mean())
    return {"attribution": amap, "canny": edges, "ridge": ridge, "inside": inside, "ridge_precision": score,
            "ridge_recall": recall, "n_pixels": n}
