"""The attribution quilt's images: FeatureVisualization(abs(W ⊙ h)) of sampled crops.

For each crop the unit's attribution to the layer before is computed with
`circuits.analysis.attribution.attribute` on the whole image at the crop's map
position (whose receptive field is exactly the crop), then rendered with
`circuits.analysis.attribution.visualize` ("Curve Detectors": "visualizing the
attribution vector" shows what in the crop made the unit fire).

Example:
    >>> vis = attribution_images(model, source, "mixed3b:379", ["coffee@18,98,91"], steps=64)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Sequence

import torch

from circuits.core.graph import Graph
from circuits.dataset.crops import crop_grid, parse_crop_id
from circuits.dataset.sources import ImageSource

__all__ = ["crop_position", "attribution_images"]


def crop_position(tensor: str, image_hw: tuple[int, int], y: int, x: int,
                  graph: Graph) -> tuple[int, int]:
    """The map position of `tensor` whose receptive field is the crop with top-left (y, x).

    graph: the network (`model.graph`).
    """
    g = crop_grid(tensor, image_hw, graph)
    dy, dx = y - g.first_box[0], x - g.first_box[1]
    if dy % g.stride or dx % g.stride or not (0 <= dy // g.stride < g.shape[0] and 0 <= dx // g.stride < g.shape[1]):
        raise ValueError(f"({y}, {x}) is not the top-left of a valid {g.size} px crop of {tensor} on a "
                         f"{image_hw[0]}x{image_hw[1]} image")
    return g.position(dy // g.stride, dx // g.stride)


def attribution_images(model, source: ImageSource, unit: str, crop_ids: Sequence[str], steps: int = 64,
                       size: int = 64, progress: bool = True) -> dict[str, torch.Tensor]:
    """crop id -> FeatureVis(abs(W ⊙ h)) image [3, size, size] in [0, 1].

    unit: a unit of the model's network (another network's is refused naming both).
    """
    from tqdm.auto import tqdm

    from circuits.analysis.attribution import attribute, visualize
    from circuits.dataset.network import conv_table, resolve

    net = model.graph
    table = conv_table(unit, model)
    if len(table) != 1:
        raise ValueError(f"the attribution quilt is of one unit, got {len(table)} ({unit!r})")
    tensor = table[0][1]
    (u,) = resolve(unit, model)  # the Unit carries its network into `attribute`
    index = {n: i for i, n in enumerate(source.names)}
    cache: dict[str, torch.Tensor] = {}
    out = {}
    for cid in tqdm(list(crop_ids), desc="attribution quilt", disable=not progress):
        name, y, x, _ = parse_crop_id(cid)
        if name not in cache:
            cache = {name: source.read(index[name])}  # crops come grouped by bin, not image: keep one
        img = cache[name]
        pos = crop_position(tensor, tuple(img.shape[-2:]), y, x, net)
        a = attribute(model, u, img, position=pos)
        out[cid] = visualize(model, a, size=size, steps=steps, progress=False).final[0].detach()
    return out
