"""Image parameterizations: what the optimizer actually changes.

An `ImageParam` is an `nn.Module` whose `forward()` returns a batch of RGB images in
[0, 1], shape [B, 3, H, W]. Two parameterizations, as in Lucid's `optvis.param`:

- `PixelImage`: one parameter per pixel and colour (Lucid's `pixel_image`).
- `FourierImage`: the image's 2-D Fourier coefficients, scaled by 1/f so that every
  frequency starts with equal energy (Lucid's `fft_image`); it makes the optimizer
  prefer natural-looking low frequencies.

Both map their raw values to colours as Lucid's `to_valid_rgb` does: optionally
through the square root of ImageNet's colour correlation (`decorrelate=True`), then
a sigmoid. Initial values come from a private `torch.Generator` seeded with `seed`,
so the same seed gives the same image and the global RNG is left alone.

Example:
    >>> p = image(64, batch=2, seed=0)
    >>> x = p()
    >>> x.shape, bool(x.min() >= 0) and bool(x.max() <= 1)
    (torch.Size([2, 3, 64, 64]), True)
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ImageParam", "PixelImage", "FourierImage", "image", "COLOR_CORRELATION_SVD_SQRT", "to_valid_rgb"]

# Square root of ImageNet's colour correlation matrix (rows: R, G, B), a published
# constant copied from Lucid: tensorflow/lucid, lucid/optvis/param/color.py,
# `color_correlation_svd_sqrt`. Lucid divides it by its largest column norm.
COLOR_CORRELATION_SVD_SQRT = torch.tensor(
    [[0.26, 0.09, 0.02],
     [0.27, 0.00, -0.05],
     [0.27, -0.09, 0.03]],
    dtype=torch.float32,
)
_MAX_NORM_SVD_SQRT = torch.linalg.vector_norm(COLOR_CORRELATION_SVD_SQRT, dim=0).max()
_COLOR_NORMALIZED = COLOR_CORRELATION_SVD_SQRT / _MAX_NORM_SVD_SQRT


def to_valid_rgb(t: torch.Tensor, decorrelate: bool = True) -> torch.Tensor:
    """Raw values [B, 3, H, W] -> RGB in [0, 1]: Lucid's `to_valid_rgb(sigmoid=True)`.

    With `decorrelate`, each pixel's 3 values are read as coordinates in a
    decorrelated colour space and mapped back with the normalized square-root
    colour correlation matrix (Lucid: ``t_flat @ color_correlation_normalized.T``).

    >>> to_valid_rgb(torch.zeros(1, 3, 2, 2)).unique().tolist()
    [0.5]
    """
    if t.dim() != 4 or t.shape[1] != 3:
        raise ValueError(f"expected raw image values of shape [B, 3, H, W], got {list(t.shape)}")
    if decorrelate:
        t = torch.einsum("ij,bjhw->bihw", _COLOR_NORMALIZED.to(t), t)
    return torch.sigmoid(t)


def _check_size(size) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if not all(isinstance(v, int) and v >= 1 for v in (h, w)):
        raise ValueError(f"image size must be a positive int or (height, width) of ints, got {size!r}")
    return h, w


def _check_batch(batch) -> int:
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    return batch


class ImageParam(nn.Module):
    """Base class: `forward()` -> images [B, 3, H, W] in [0, 1]; `size` is (H, W)."""

    size: tuple[int, int]
    batch: int

    def forward(self) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class PixelImage(ImageParam):
    """One parameter per pixel and colour, initialized N(0, sd) (Lucid's `pixel_image`).

    >>> PixelImage(8, seed=1)().shape
    torch.Size([1, 3, 8, 8])
    """

    def __init__(self, size, batch: int = 1, sd: float = 0.01, decorrelate: bool = True, seed: int = 0):
        super().__init__()
        self.size, self.batch, self.decorrelate = _check_size(size), _check_batch(batch), decorrelate
        g = torch.Generator().manual_seed(seed)
        self.pixels = nn.Parameter(torch.randn(batch, 3, *self.size, generator=g) * sd)

    def forward(self) -> torch.Tensor:
        return to_valid_rgb(self.pixels, self.decorrelate)


class FourierImage(ImageParam):
    """Fourier coefficients with 1/f^decay_power scaling (Lucid's `fft_image`).

    The spectrum is initialized N(0, sd) for real and imaginary parts; each frequency
    f (cycles per pixel) is scaled by 1 / max(f, 1 / max(H, W))^decay_power and by
    sqrt(H * W), inverted with a real 2-D FFT (normalized by 1 / (H * W), as
    TensorFlow's irfft2d) and divided by 4, all as in Lucid. Unlike Lucid, odd widths
    are inverted at their exact size rather than one pixel wider and cropped.

    >>> FourierImage((16, 24), batch=3)().shape
    torch.Size([3, 3, 16, 24])
    """

    def __init__(
        self, size, batch: int = 1, sd: float = 0.01, decay_power: float = 1.0, decorrelate: bool = True, seed: int = 0
    ):
        super().__init__()
        self.size, self.batch, self.decorrelate = _check_size(size), _check_batch(batch), decorrelate
        h, w = self.size
        fy = torch.fft.fftfreq(h)[:, None]
        fx = torch.fft.rfftfreq(w)[None, :]
        freqs = torch.sqrt(fx * fx + fy * fy)
        scale = 1.0 / torch.clamp(freqs, min=1.0 / max(h, w)) ** decay_power * (h * w) ** 0.5
        self.register_buffer("scale", scale.float(), persistent=False)
        g = torch.Generator().manual_seed(seed)
        self.spectrum = nn.Parameter(torch.randn(batch, 3, *freqs.shape, 2, generator=g) * sd)

    def forward(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        raw = torch.fft.irfft2(spectrum, s=self.size, norm="backward") / 4.0
        return to_valid_rgb(raw, self.decorrelate)


def image(size, batch: int = 1, fft: bool = True, decorrelate: bool = True, sd: float = 0.01, seed: int = 0) -> ImageParam:
    """Lucid's `param.image`: a Fourier (default) or pixel image, colour-decorrelated.

    >>> type(image(32, fft=False)).__name__
    'PixelImage'
    """
    cls = FourierImage if fft else PixelImage
    return cls(size, batch=batch, sd=sd, decorrelate=decorrelate, seed=seed)
