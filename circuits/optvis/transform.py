"""Random image transformations that a visualization must be robust to (pure torch).

A transform is a callable ``t(images, generator) -> images`` on RGB images in [0, 1],
shape [B, 3, H, W]. Random choices come from the `torch.Generator` the render loop
passes in, so a fixed seed gives the same sequence of transformations. As in Lucid,
one random choice is drawn per call and applied to the whole batch.

`standard_transforms()` is Lucid's `transform.standard_transforms` (tensorflow/lucid,
lucid/optvis/transform.py): pad 12 with grey, jitter 8, scale by 0.9..1.1, rotate by
-10..10 degrees (0 five times more likely), jitter 4.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> out = compose(standard_transforms())(torch.rand(1, 3, 64, 64), g)
    >>> out.shape[:2], 60 <= out.shape[-1] <= 84
    (torch.Size([1, 3]), True)
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "Transform",
    "Pad",
    "Jitter",
    "RandomScale",
    "RandomRotate",
    "Compose",
    "compose",
    "standard_transforms",
]

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _choice(values: Sequence, g: torch.Generator):
    return values[int(torch.randint(len(values), (1,), generator=g))]


def _check_images(x: torch.Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"transforms act on image batches [B, C, H, W], got shape {list(x.shape)}")


class Pad:
    """Pad `width` pixels on every side with a constant (Lucid: grey 0.5) or by reflection."""

    def __init__(self, width: int, value: float = 0.5, mode: str = "constant"):
        if not isinstance(width, int) or width < 0:
            raise ValueError(f"pad width must be a non-negative int, got {width!r}")
        if mode not in ("constant", "reflect", "replicate"):
            raise ValueError(f"unknown pad mode {mode!r}; use constant, reflect or replicate")
        self.width, self.value, self.mode = width, value, mode

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        _check_images(x)
        w = self.width
        if self.mode == "constant":
            return F.pad(x, (w, w, w, w), mode="constant", value=self.value)
        return F.pad(x, (w, w, w, w), mode=self.mode)

    def __repr__(self) -> str:
        return f"Pad({self.width}, {self.value if self.mode == 'constant' else self.mode})"


class Jitter:
    """Random crop `d` pixels smaller in each dimension (Lucid's `jitter`: offsets 0..d)."""

    def __init__(self, d: int):
        if not isinstance(d, int) or d < 0:
            raise ValueError(f"jitter must be a non-negative int of pixels, got {d!r}")
        self.d = d

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        _check_images(x)
        d = self.d
        h, w = x.shape[-2:]
        if d == 0:
            return x
        if d >= min(h, w):
            raise ValueError(f"jitter of {d} px does not fit an image of {h}x{w}")
        oy, ox = (int(v) for v in torch.randint(d + 1, (2,), generator=g))
        return x[..., oy : oy + h - d, ox : ox + w - d]

    def __repr__(self) -> str:
        return f"Jitter({self.d})"


class RandomScale:
    """Bilinear resize by a factor drawn from `scales` (Lucid's `random_scale`).

    The new size is int(scale * size) as in Lucid; torch's bilinear resampling uses
    half-pixel centres (TF1's legacy resize_bilinear did not), a sub-pixel difference.
    """

    def __init__(self, scales: Sequence[float]):
        scales = [float(s) for s in scales]
        if not scales or any(not s > 0 for s in scales):
            raise ValueError(f"scales must be a non-empty list of positive factors, got {scales!r}")
        self.scales = scales

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        _check_images(x)
        s = _choice(self.scales, g)
        h, w = x.shape[-2:]
        size = (max(1, int(s * h)), max(1, int(s * w)))
        if size == (h, w):
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def __repr__(self) -> str:
        return f"RandomScale({min(self.scales):g}..{max(self.scales):g})"


class RandomRotate:
    """Rotate about the centre by an angle (degrees) drawn from `angles` (Lucid's `random_rotate`).

    Implemented with affine_grid/grid_sample (bilinear); pixels that come from outside
    the image are 0, as with Lucid's tf.contrib/tfa rotate.
    """

    def __init__(self, angles: Sequence[float], mode: str = "bilinear"):
        angles = [float(a) for a in angles]
        if not angles:
            raise ValueError("angles must be a non-empty list of degrees")
        if mode not in ("bilinear", "nearest"):
            raise ValueError(f"unknown rotation interpolation {mode!r}; use bilinear or nearest")
        self.angles, self.mode = angles, mode

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        _check_images(x)
        angle = _choice(self.angles, g)
        if angle == 0:
            return x
        return rotate(x, angle, self.mode)

    def __repr__(self) -> str:
        return f"RandomRotate({min(self.angles):g}..{max(self.angles):g} deg)"


def rotate(x: torch.Tensor, degrees: float, mode: str = "bilinear") -> torch.Tensor:
    """Rotate images [B, C, H, W] by `degrees` about their centre (zeros outside).

    >>> x = torch.zeros(1, 1, 5, 5); x[0, 0, 2, 4] = 1
    >>> rotate(x, 90)[0, 0].nonzero().tolist()   # the right-hand pixel goes to the bottom
    [[4, 2]]
    """
    h, w = x.shape[-2:]
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    # Output pixel p samples the input at R(-angle) p; normalized coordinates scale
    # x by 2/W and y by 2/H, hence the aspect factors on the off-diagonal terms.
    theta = torch.tensor([[c, s * h / w, 0.0], [-s * w / h, c, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"a transform must be callable t(images, generator), got {t!r}")

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        for t in self.transforms:
            x = t(x, g)
        return x

    def __repr__(self) -> str:
        return f"Compose({', '.join(map(repr, self.transforms))})"


def compose(transforms: Sequence[Transform]) -> Compose:
    """The transforms applied in order, as one transform."""
    return Compose(transforms)


def standard_transforms() -> list[Transform]:
    """Lucid's `standard_transforms` (lucid/optvis/transform.py), in the same order.

    Net effect on size: +24 (pad) -8 (jitter) x0.9..1.1 (scale) -4 (jitter).
    """
    return [
        Pad(12, value=0.5),
        Jitter(8),
        RandomScale([1 + (i - 5) / 50.0 for i in range(11)]),
        RandomRotate(list(range(-10, 11)) + 5 * [0]),
        Jitter(4),
    ]
