"""Where the images of a scan come from: the photographs scikit-image ships, or a folder.

A source is an ordered list of names and a way to read each as uint8 RGB [3, H, W],
resized so that its shorter side is `image_size` (the scale the network saw in
training: ImageNet photographs at 224 px). Grey images are converted to RGB by
repeating the one channel, so every unit sees the same kind of input.

`skimage` uses these photographs of `skimage.data` (all that load without a download):
astronaut, brick, camera, cell, chelsea, clock, coffee, coins, grass, gravel,
hubble_deep_field, immunohistochemistry, moon, page, retina, rocket, text. Left out:
`cat` (the same photograph as `chelsea`), synthetic or binary images (checkerboard,
colorwheel, logo, binary_blobs, horse, shepp_logan_phantom), tiny ones
(microaneurysms 102 px, lfw_subset 25 px) and those that need pooch to download.

Example:
    >>> src = skimage_source(image_size=224)
    >>> len(src), src.names[0]
    (17, 'astronaut')
    >>> tuple(src.read(0).shape)
    (3, 224, 224)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["ImageSource", "SKIMAGE_PHOTOS", "skimage_source", "folder_source", "open_source", "IMAGE_SUFFIXES"]

SKIMAGE_PHOTOS: tuple[str, ...] = (
    "astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
    "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket", "text",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def to_rgb_uint8(arr: np.ndarray, name: str) -> torch.Tensor:
    """[H, W], [H, W, 3] or [H, W, 4] uint8 (or bool, uint16 by its 16 bits, float in [0, 1]) -> uint8 [3, H, W].

    >>> to_rgb_uint8(np.full((1, 1), 65535, np.uint16), "white")[:, 0, 0].tolist()
    [255, 255, 255]
    """
    a = np.asarray(arr)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = np.round(a / 257.0).astype(np.uint8)
    elif a.dtype != np.uint8:
        if a.min() < 0 or a.max() > 1:
            raise ValueError(f"{name}: float image outside [0, 1]")
        a = np.round(a * 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"{name}: expected a grey or RGB image, got shape {a.shape}")
    return torch.from_numpy(np.ascontiguousarray(a[:, :, :3])).permute(2, 0, 1).contiguous()


def resize_short(img: torch.Tensor, image_size: int | None) -> torch.Tensor:
    """Resize uint8 [3, H, W] so the shorter side is `image_size` (None: unchanged)."""
    if image_size is None:
        return img
    from torchvision.transforms.v2 import functional as TF

    h, w = img.shape[-2:]
    s = image_size / min(h, w)
    hw = [max(1, round(h * s)), max(1, round(w * s))]
    return img if [h, w] == hw else TF.resize(img, hw, antialias=True)


@dataclass(frozen=True)
class ImageSource:
    """An ordered, named list of images: `kind` is "skimage" or "folder" (then `root` is set)."""

    kind: str
    names: tuple[str, ...]
    image_size: int | None = 224
    root: str | None = None

    def __len__(self) -> int:
        return len(self.names)

    @property
    def description(self) -> str:
        return "skimage" if self.kind == "skimage" else str(self.root)

    def read(self, i: int) -> torch.Tensor:
        """Image i as uint8 [3, H, W] at the source's scale; raises ValueError if unreadable."""
        return resize_short(self.read_native(i), self.image_size)

    def read_native(self, i: int) -> torch.Tensor:
        """Image i as uint8 [3, H, W] at its own size (a scan judges "too small" on it: an
        image enlarged to the source's scale only shows the resize's blur)."""
        name = self.names[i]
        if self.kind == "skimage":
            import skimage.data

            return to_rgb_uint8(getattr(skimage.data, name)(), name)
        from circuits.core.inputs import read_image

        return read_image(Path(self.root) / name)

    def state(self) -> dict:
        return {"kind": self.kind, "root": self.root, "image_size": self.image_size, "n_images": len(self.names)}


def skimage_source(image_size: int | None = 224) -> ImageSource:
    return ImageSource("skimage", SKIMAGE_PHOTOS, image_size)


def folder_source(root: str | os.PathLike, image_size: int | None = 224) -> ImageSource:
    """Every file under `root` (recursively) with an image suffix, sorted by relative path."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"--images: no such folder: {root} (give a folder of images or 'skimage')")
    names = sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not names:
        raise ValueError(f"--images: {root} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    return ImageSource("folder", tuple(names), image_size, str(root.resolve()))


def open_source(spec: str, image_size: int | None = 224) -> ImageSource:
    """`"skimage"` or a folder path."""
    return skimage_source(image_size) if spec == "skimage" else folder_source(spec, image_size)


def source_from_state(s: dict) -> ImageSource:
    """The source a scan recorded (a folder must still hold the same number of images)."""
    src = skimage_source(s["image_size"]) if s["kind"] == "skimage" else folder_source(s["root"], s["image_size"])
    if len(src) != s["n_images"]:
        raise ValueError(f"{src.description} now holds {len(src)} images, the scan saw {s['n_images']}")
    return src
