"""Tracing a curve by optimizing a differentiable spline against an attribution map.

"Curve Detectors" traces curves by "backpropagating from the attribution through the
input into spline knots". Here a cubic Bézier stroke (4 control points, in pixel
coordinates (y, x)) is rendered anti-aliased — each pixel's ink is the largest
Gaussian exp(-d²/2σ²) of its distance d to points sampled densely along the curve
— and its control points are moved by Adam to maximize the attribution under the
stroke, sum(ink ⊙ A), minus a small cost per pixel of length (so the stroke ends
where the evidence does). The map is blurred at first and sharpened as the
optimization goes (coarse to fine), which widens the basin of attraction.

Example:
    >>> import torch
    >>> yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    >>> line = torch.exp(-((yy - 30) ** 2) / 4) * ((xx > 10) & (xx < 54))    # a horizontal band
    >>> fit = trace(line, steps=150)
    >>> bool(abs(fit.points()[:, 0] - 30).max() < 2)
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["bezier", "render_stroke", "trace", "SplineFit", "curve_distance"]


def bezier(p: torch.Tensor, n: int = 64) -> torch.Tensor:
    """[n, 2] points of the cubic Bézier curve with control points p [4, 2]."""
    t = torch.linspace(0, 1, n, dtype=p.dtype, device=p.device)[:, None]
    return ((1 - t) ** 3) * p[0] + 3 * ((1 - t) ** 2) * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]


def render_stroke(p: torch.Tensor, hw: tuple[int, int], sigma: float = 1.0, n: int = 48) -> torch.Tensor:
    """[H, W] anti-aliased ink in [0, 1] of the Bézier stroke p [4, 2] ((y, x) control points):
    exp(-d²/2σ²) of each pixel's distance d to the curve, drawn as a polyline of n - 1 segments.

    >>> ink = render_stroke(torch.tensor([[5.0, 2.0], [5.0, 6.0], [5.0, 10.0], [5.0, 14.0]]), (11, 17))
    >>> round(float(ink[5, 8]), 2), round(float(ink[7, 8]), 2)   # on the stroke; 2 px off: exp(-2)
    (1.0, 0.14)
    """
    h, w = hw
    pts = bezier(p, n)
    a, b = pts[:-1], pts[1:]  # segments a -> b
    ab = b - a
    yy = torch.arange(h, dtype=p.dtype, device=p.device)[:, None, None]
    xx = torch.arange(w, dtype=p.dtype, device=p.device)[None, :, None]
    py, px = yy - a[:, 0], xx - a[:, 1]
    t = ((py * ab[:, 0] + px * ab[:, 1]) / (ab * ab).sum(1).clamp(min=1e-9)).clamp(0, 1)
    d2 = (py - t * ab[:, 0]) ** 2 + (px - t * ab[:, 1]) ** 2
    return torch.exp(-d2.min(dim=-1).values / (2 * sigma**2))


def _blur(a: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        return a
    r = int(3 * sigma + 0.5)
    k = torch.exp(-torch.arange(-r, r + 1, dtype=a.dtype) ** 2 / (2 * sigma**2))
    k = k / k.sum()
    x = a[None, None]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return x[0, 0]


@dataclass
class SplineFit:
    """The fitted control points [4, 2] (y, x), the final objective and its history."""

    control_points: torch.Tensor
    objective: float
    history: list[float]

    def points(self, n: int = 200) -> torch.Tensor:
        return bezier(self.control_points, n)


def _init(a: torch.Tensor) -> torch.Tensor:
    """A Bézier fitted by least squares to the map's strongest pixels, parameterized by their
    position along the principal axis (so the initial stroke already bends with the evidence)."""
    h, w = a.shape
    flat = a.flatten()
    k = max(int(0.015 * flat.numel()), 8)
    idx = torch.topk(flat, k).indices
    pts = torch.stack([idx // w, idx % w], 1).double()
    wts = flat[idx].double()
    c = (pts * wts[:, None]).sum(0) / wts.sum()
    cov = ((pts - c).T * wts) @ (pts - c) / wts.sum()
    d = torch.linalg.eigh(cov)[1][:, -1]
    proj = (pts - c) @ d
    lo, hi = torch.quantile(proj, 0.02), torch.quantile(proj, 0.98)  # robust to a few stray pixels
    t = ((proj - lo) / (hi - lo).clamp(min=1e-9)).clamp(0, 1)[:, None]
    basis = torch.cat([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3], 1)
    sw = wts.sqrt()[:, None]
    return torch.linalg.lstsq(basis * sw, pts * sw).solution


def trace(attribution: torch.Tensor, steps: int = 300, sigma: float = 1.0, length_cost: float = 0.05,
          init: torch.Tensor | None = None, lr: float = 0.3, margin: int = 8, max_blur: float = 2.0) -> SplineFit:
    """Fit one cubic Bézier stroke to the map `attribution` [H, W] (non-negative)."""
    a = torch.as_tensor(attribution, dtype=torch.float32)
    if a.dim() != 2 or not torch.isfinite(a).all() or float(a.min()) < 0:
        raise ValueError("attribution must be a finite, non-negative [H, W] map")
    if not float(a.max()) > 0:
        raise ValueError("the attribution map is zero everywhere: nothing to trace")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    # Ignore a margin where padding makes edges of its own; clip the few strongest pixels
    # (line ends, corners) so the stroke is drawn along the whole curve, not to one blob.
    m = margin
    a = a.clone()
    if m > 0:
        a[:m], a[-m:], a[:, :m], a[:, -m:] = 0, 0, 0, 0
    a = (a / torch.quantile(a[a > 0], 0.98)).clamp(max=1.0)
    p = (init.clone() if init is not None else _init(a)).float().requires_grad_(True)
    opt = torch.optim.Adam([p], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)  # settle instead of jittering
    history = []
    for step in range(steps):
        blur = max_blur * max(0.0, 1 - 2 * step / steps)  # coarse to fine over the first half
        target = _blur(a, blur) if blur > 0.25 else a
        ink = render_stroke(p, a.shape, sigma=sigma + blur / 2)
        pts = bezier(p, 64)
        length = (pts[1:] - pts[:-1]).norm(dim=1).sum()
        obj = (ink * target).sum() - length_cost * length
        opt.zero_grad()
        (-obj).backward()
        opt.step()
        sched.step()
        history.append(float(obj.detach()))
    return SplineFit(p.detach(), history[-1], history)


def curve_distance(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(mean, max) of the symmetric nearest-point distance between two polylines [N, 2], [M, 2]."""
    d = torch.cdist(a.double(), b.double())
    ab, ba = d.min(1).values, d.min(0).values
    return float(torch.cat([ab, ba]).mean()), float(torch.cat([ab, ba]).max())
