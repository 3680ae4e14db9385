"""Receptive-field-sized crops of an image, as positions of a unit's map.

A unit at map position (y, x) sees exactly the input pixels of its receptive field
(`Graph.receptive_field` of its network: InceptionV3's are much larger than
InceptionV1's). When that window lies inside the image, no padding reaches the unit,
so its activation depends on the crop's pixels only, whatever surrounds it: one
forward pass of an image gives every crop's activation. A
scan therefore samples *valid* map positions (window fully inside the image) and
names each crop by its image and window: ``"coffee@42,102,91"`` is the 91 px crop
of `coffee` whose top-left pixel is (42, 102).

Example:
    >>> from circuits.core.networks import DECLARED
    >>> g = crop_grid("mixed3b_5x5_pre_relu", (224, 300), DECLARED["InceptionV1"])
    >>> g.size, g.stride, g.shape
    (91, 8, (17, 26))
    >>> g.position(0, 0), g.box(0, 0)
    ((5, 6), (2, 6))
    >>> crop_id("coffee", *g.box(5, 12), g.size), parse_crop_id("coffee@42,102,91")
    ('coffee@42,102,91', ('coffee', 42, 102, 91))
    >>> v3 = crop_grid("conv2d_22", (224, 300), DECLARED["InceptionV3"])   # InceptionV3's mixed2:67
    >>> v3.size, v3.stride, v3.shape, v3.box(0, 0)
    (127, 8, (12, 21), (6, 6))
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from circuits.core.graph import Graph

__all__ = ["CropGrid", "crop_grid", "crop_id", "parse_crop_id", "sample_positions", "cut"]


@dataclass(frozen=True)
class CropGrid:
    """The valid positions of `tensor`'s map on an image of size `image_hw`.

    Valid map rows are y0 .. y0 + shape[0] - 1 (likewise columns); `box(i, j)` is the
    top-left input pixel of the crop at the i-th valid row and j-th valid column.
    """

    tensor: str
    image_hw: tuple[int, int]
    size: int
    stride: int
    first: tuple[int, int]  # first valid map position (y, x)
    shape: tuple[int, int]  # number of valid rows, columns
    first_box: tuple[int, int]  # top-left pixel of the crop at `first`

    def position(self, i: int, j: int) -> tuple[int, int]:
        """Map position of the i-th valid row, j-th valid column."""
        return self.first[0] + i, self.first[1] + j

    def box(self, i: int, j: int) -> tuple[int, int]:
        return self.first_box[0] + i * self.stride, self.first_box[1] + j * self.stride


def _valid_axis(first_centre: float, stride: int, size: int, n_map: int, length: int) -> tuple[int, int, int]:
    half = (size - 1) / 2
    if half != int(half) or first_centre != int(first_centre):
        raise ValueError(f"receptive field of size {size} centred at {first_centre} is not on the pixel grid")
    # window of position p: [c0 + p*stride - half, c0 + p*stride + half] must lie in [0, length - 1]
    lo = max(0, -(-(half - first_centre) // stride))
    hi = min(n_map - 1, (length - 1 - half - first_centre) // stride)
    n = int(hi - lo + 1) if hi >= lo else 0
    return int(lo), n, int(first_centre + lo * stride - half)


def crop_grid(tensor: str, image_hw: tuple[int, int], graph: Graph) -> CropGrid:
    """The valid crop positions of `tensor` on an image of (H, W) pixels (shape (0, n) if too small).

    graph: the network (`model.graph`). A crop is square, the larger side of
    a non-square receptive field: it holds the whole field, so it is still valid.
    """
    h, w = image_hw
    rf = graph.receptive_field(tensor, (h, w))
    mh, mw = graph.output_hw(tensor, (h, w))
    y0, ny, by = _valid_axis(rf.first_centre[0], rf.stride, rf.size, mh, h)
    x0, nx, bx = _valid_axis(rf.first_centre[1], rf.stride, rf.size, mw, w)
    return CropGrid(tensor, (h, w), rf.size, rf.stride, (y0, x0), (ny, nx), (by, bx))


def crop_id(image: str, y: int, x: int, size: int) -> str:
    return f"{image}@{y},{x},{size}"


def parse_crop_id(cid: str) -> tuple[str, int, int, int]:
    """(image name, top, left, size) of a crop id; raises ValueError on a malformed one."""
    name, sep, box = str(cid).rpartition("@")
    parts = box.split(",")
    if not sep or not name or len(parts) != 3 or not all(p.lstrip("-").isdigit() for p in parts):
        raise ValueError(f"bad crop id {cid!r}: expected 'IMAGE@TOP,LEFT,SIZE', e.g. 'coffee@40,96,91'")
    y, x, s = (int(p) for p in parts)
    return name, y, x, s


def _image_seed(seed: int, image: str, tensor: str) -> list[int]:
    # surrogateescape: a file name that is not UTF-8 (read by Python as lone surrogates)
    # hashes as its own bytes, instead of failing the scan; UTF-8 names are unchanged.
    h = hashlib.blake2b(f"{image}|{tensor}".encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return [int(seed), int.from_bytes(h, "big")]


def sample_positions(grid: CropGrid, image: str, mode: str = "grid", stride: int = 1, n: int = 64, seed: int = 0):
    """(rows, cols) indices into the valid grid: every `stride`-th one ("grid"), or `n` at
    random without replacement ("random"), seeded by (seed, image, tensor) so a crop's
    selection does not depend on which process scans the image.

    >>> from circuits.core.graph import INCEPTION_V1
    >>> g = crop_grid("mixed3a", (100, 100), INCEPTION_V1)
    >>> [len(r) for r in (sample_positions(g, "a", "grid", 2)[0], sample_positions(g, "a", "random", n=3)[0])]
    [9, 3]
    """
    ny, nx = grid.shape
    if mode == "grid":
        if not isinstance(stride, int) or stride < 1:
            raise ValueError(f"grid stride must be a positive int (in map cells), got {stride!r}")
        ii, jj = np.meshgrid(np.arange(0, ny, stride), np.arange(0, nx, stride), indexing="ij")
        return ii.ravel(), jj.ravel()
    if mode == "random":
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"crops per image must be a positive int, got {n!r}")
        total = ny * nx
        rng = np.random.default_rng(_image_seed(seed, image, grid.tensor))
        flat = np.sort(rng.choice(total, size=min(n, total), replace=False)) if total else np.zeros(0, np.int64)
        return flat // max(nx, 1), flat % max(nx, 1)
    raise ValueError(f"unknown sampling {mode!r}: use 'grid' or 'random'")


def cut(image: torch.Tensor, y: int, x: int, size: int) -> torch.Tensor:
    """image[:, y:y+size, x:x+size], checked to lie inside the image."""
    h, w = image.shape[-2:]
    if y < 0 or x < 0 or y + size > h or x + size > w:
        raise ValueError(f"crop ({y}, {x}) of size {size} is outside the {h}x{w} image")
    return image[..., y : y + size, x : x + size]
