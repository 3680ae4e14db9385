"""Converting images to the range a network expects.

InceptionV1 (the default): RGB in [0, 255] minus 117, i.e. [-117, 138]. InceptionV3:
Keras's x / 127.5 - 1, i.e. [-1, 1]. Pass ``model.input_range`` (or call
``model.to_input``) for any network other than InceptionV1.

Example:
    >>> import torch
    >>> to_model_input(torch.ones(1, 3, 4, 4)).max().item()   # white in [0, 1]
    138.0
    >>> to_model_input(torch.full((1, 3, 4, 4), 255, dtype=torch.uint8), (-1.0, 1.0)).max().item()
    1.0
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

__all__ = ["to_model_input", "from_model_input", "read_image", "image_size", "load_image", "MEAN", "INPUT_RANGE"]

MEAN = 117.0
INPUT_RANGE = (-117.0, 138.0)


def _range(input_range) -> tuple[float, float]:
    if input_range is None:
        return INPUT_RANGE
    lo, hi = (float(v) for v in input_range)
    if not lo < hi:
        raise ValueError(f"bad input_range {input_range!r}: expected (low, high) with low < high")
    return lo, hi


def to_model_input(images, input_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Images -> float32 [N, 3, H, W] in the network's input range (InceptionV1's [-117, 138] if None).

    Accepts torch tensors or numpy arrays, NCHW, CHW, NHWC or HWC (3 channels):
    uint8 in [0, 255], or floats in [0, 1]; black maps to the range's low end, white
    to its high end. Floats outside [0, 1] are refused rather than guessed at.
    """
    lo, hi = _range(input_range)
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4:
        raise ValueError(f"images must be [N, 3, H, W], [3, H, W], [N, H, W, 3] or [H, W, 3]; got {list(x.shape)}")
    if x.shape[1] != 3 and x.shape[-1] == 3:
        x = x.permute(0, 3, 1, 2)
    if x.shape[1] != 3:
        raise ValueError(f"images must have 3 (RGB) channels; got shape {list(x.shape)}")
    if x.dtype == torch.uint8:
        # (hi - lo) / 255 is exactly 1 for InceptionV1: its pixels are x - 117 exactly
        return x.float() * ((hi - lo) / 255.0) + lo
    if not torch.is_floating_point(x):
        raise TypeError(f"images must be uint8 [0, 255] or float [0, 1]; got {x.dtype}")
    vmin, vmax = float(x.min()), float(x.max())
    if vmin < 0 or vmax > 1:
        raise ValueError(
            f"float images must lie in [0, 1]; got values in [{vmin:.3g}, {vmax:.3g}] "
            f"(if they already are model input in [{lo:g}, {hi:g}], pass them to the model directly)"
        )
    return x.float() * (hi - lo) + lo


def from_model_input(x: torch.Tensor, input_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Model input in the network's range (InceptionV1's [-117, 138] if None) -> images in [0, 1] (clamped)."""
    lo, hi = _range(input_range)
    return ((x - lo) / (hi - lo)).clamp(0, 1)


def _rgb_uint8(im, path: Path) -> np.ndarray:
    """A PIL image in any mode as uint8 RGB [H, W, 3], by its real bit depth.

    Pillow's ``convert("RGB")`` clips 16-bit and 32-bit greyscale (modes I;16, I) to
    255, reading them as white; they are scaled here instead (65535 -> 255). 16-bit
    colour PNGs come from Pillow already at 8 bits (their high byte). Float images (mode
    F) must lie in [0, 1]. Palette, greyscale, bilevel, CMYK, YCbCr and alpha modes are
    converted by Pillow (alpha dropped: the colour values are kept as they are).
    """
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(im).astype(np.float64)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ValueError(f"cannot read {path}: 32-bit integer pixels outside 0..65535 "
                             f"([{a.min():g}, {a.max():g}]) have no known white")
        grey = np.round(a / 257.0).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        a = np.asarray(im).astype(np.float64)
        if a.size and (not np.isfinite(a).all() or a.min() < 0 or a.max() > 1):
            raise ValueError(f"cannot read {path}: floating-point pixels must lie in [0, 1], "
                             f"got [{np.nanmin(a):g}, {np.nanmax(a):g}]")
        grey = np.round(a * 255.0).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("P", "PA") and "transparency" in im.info:
        im = im.convert("RGBA")  # Pillow's advice for palette images with transparency
    return np.asarray(im.convert("RGB")).copy()


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image file, from its header (nothing decoded)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"cannot read {path} as an image (PNG or JPEG): {e}") from None


def read_image(path: str | os.PathLike, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """An image file (PNG, JPEG, ...) as uint8 RGB [3, H, W], by its real bit depth and mode:
    16-bit greyscale is scaled, not clipped; grey is repeated, palette expanded, alpha dropped.

    size: resize to (size, size) or (H, W) first (antialiased bilinear), if given.
    """
    # Pillow decodes (torchvision's own decoders are deprecated since 0.29);
    # torchvision resizes.
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms.v2 import functional as TF

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    try:
        with Image.open(path) as im:
            arr = _rgb_uint8(im, path)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise ValueError(f"cannot read {path} as an image (PNG or JPEG): {e}") from None
    img = torch.from_numpy(arr).permute(2, 0, 1).contiguous()
    if size is not None:
        hw = [size, size] if isinstance(size, int) else list(size)
        img = TF.resize(img, hw, antialias=True)
    return img


def load_image(
    path: str | os.PathLike, size: int = 224, *, min_size: int | None = None,
    input_range: tuple[float, float] | None = None,
) -> torch.Tensor:
    """An image file as model input [1, 3, size, size]: shorter side resized to `size`, centre crop.

    input_range: the network's (``model.input_range``; InceptionV1's if None).
    min_size: refuse an image whose shorter side is below this many pixels (e.g. the
    receptive field of the units asked about) instead of blowing it up to `size`:
    a 5x5 image resized to 224 only shows the resize's blur.

    >>> load_image("photo.jpg").shape          # doctest: +SKIP
    torch.Size([1, 3, 224, 224])
    """
    from torchvision.transforms.v2 import functional as TF

    img = read_image(path)
    if min_size is not None and min(img.shape[-2:]) < min_size:
        h, w = img.shape[-2:]
        raise ValueError(
            f"image {path} is {w}x{h} px, smaller than the {min_size} px receptive field it is asked about; "
            f"give an image of at least {min_size}x{min_size} (it is not enlarged)"
        )
    img = TF.center_crop(TF.resize(img, size, antialias=True), [size, size])
    return to_model_input(img, input_range)
