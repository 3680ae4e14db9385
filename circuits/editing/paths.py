"""The hooks behind expanded weight edits and re-expressions (see `circuits.editing.edits`).

The hooks belong to the edit that installs them (`HookPoint.add_owned`): the
user's `clear_hooks()` and hook blocks leave them in place, and only undoing the
edit removes them. The hook that keeps the source activation reads it after the
user's hooks on that tensor, so the edited path sees what the real path sees.

An expanded edit adds ``conv(src_activation, delta)`` to the destination conv's
output channels; a re-expression replaces them by ``conv(src_activation, W) +
bias_path``. Both need the source layer's activation from the same run, which a
hook on the source tensor caches (and the destination hook releases).

Spatial layout: the expanded kernels ``[dst, src, kh, kw]`` of
`circuits.analysis.expanded.weights_between` are centred on the destination unit's
receptive-field centre, expressed in source-layer positions, with odd kh = kw. Unit
(y, x) of the destination therefore reads source positions
``centre(y, x) + (i - kh // 2, j - kw // 2)``, where `centre` comes from the
receptive-field arithmetic of `circuits.core.graph` for the actual input size (it moves
with TensorFlow's SAME padding). Outside the source map the source is taken as 0.

The bias path of a re-expression is the linearized network (ReLU -> identity,
max-pool -> average pool over the in-image cells, LRN -> identity) run on an
all-zero source.

Every geometry and path fact is read from the part's network (`_Part.network`, the
graph of the edit's units), so the hooks work on any declared network; the functions
that take a `network` argument default to InceptionV1 for code that calls them bare.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from circuits.core import graph, ops, walk  # noqa: F401 - ops: the docstring examples use it
from circuits.editing.selection import EditError, _Part

if TYPE_CHECKING:  # pragma: no cover
    from circuits.core.model import InceptionV1

__all__ = ["aligned_conv", "path_nodes", "linearized_path", "expanded_weights", "install"]


# --- what an applied expanded edit or re-expression holds ------------------


@dataclass(eq=False)
class _ExpandedItem:
    part: _Part
    delta: torch.Tensor  # [dst, src, kh, kw], added to the expanded weights
    handles: list = field(default_factory=list)


@dataclass(eq=False)
class _ReexpressItem:
    part: _Part
    handles: list = field(default_factory=list)


# --- geometry --------------------------------------------------------------


def _alignment(src_layer: str, dst: str, input_hw: tuple[int, int], g: graph.Graph) -> tuple[int, tuple[float, float]]:
    """(stride, centre of dst position (0, 0) in source positions) for this input size."""
    rs = g.receptive_field(src_layer, input_hw)
    rd = g.receptive_field(dst, input_hw)
    if rd.stride % rs.stride:
        raise AssertionError(f"{dst} stride {rd.stride} is not a multiple of {src_layer}'s {rs.stride}")  # pragma: no cover
    stride = rd.stride // rs.stride
    c = tuple((rd.first_centre[a] - rs.first_centre[a]) / rs.stride for a in (0, 1))
    return stride, c


def aligned_conv(
    src: torch.Tensor, kernel: torch.Tensor, src_layer: str, dst: str, input_hw: tuple[int, int],
    network: graph.Graph = graph.INCEPTION_V1,
) -> torch.Tensor:
    """conv(src, kernel) laid out on `dst`'s grid: [N, D, Hd, Wd] for an input of `input_hw`.

    kernel: [D, S, kh, kw], centred (odd kh, kw) on each destination unit's
    receptive-field centre in `src_layer` positions; the source is zero outside its map.

    >>> x = torch.randn(1, 2, 9, 9); k = torch.randn(3, 2, 3, 3)
    >>> bool(torch.allclose(aligned_conv(x, k, "mixed3a", "mixed3b_3x3_pre_relu", (9 * 8, 9 * 8)),
    ...                     ops.conv2d_same(x, k, None), atol=1e-6))
    True
    """
    kh, kw = kernel.shape[-2:]
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"expanded kernels have odd sizes, got {kh}x{kw}")
    stride, (cy, cx) = _alignment(src_layer, dst, input_hw, network)
    hd, wd = network.output_hw(dst, input_hw)
    hs, ws = src.shape[-2:]
    if (hs, ws) != network.output_hw(src_layer, input_hw):
        raise ValueError(
            f"{src_layer} activation of size {hs}x{ws} does not fit an input of {input_hw[0]}x{input_hw[1]}"
        )
    ty, tx = cy - kh // 2, cx - kw // 2
    if ty != int(ty) or tx != int(tx):  # pragma: no cover - odd kernels keep centres on the grid
        raise AssertionError(f"{dst} centres fall between {src_layer} positions")
    ty, tx = int(ty), int(tx)
    # Negative padding crops: the padded map starts at the window of dst (0, 0).
    need_h, need_w = (hd - 1) * stride + kh, (wd - 1) * stride + kw
    x = F.pad(src, (-tx, tx + need_w - ws, -ty, ty + need_h - hs))
    return F.conv2d(x, kernel.to(src.dtype), None, stride)


# --- the linearized path ---------------------------------------------------


@functools.lru_cache(maxsize=None)
def path_nodes(src_layer: str, dst: str, network: graph.Graph = graph.INCEPTION_V1) -> tuple[graph.Node, ...]:
    """Nodes strictly after `src_layer` up to `dst` that depend on it, in order (in `network`).

    Raises ValueError unless every input of those nodes comes from `src_layer` (so
    the source layer alone determines `dst`: a trunk layer, not one branch).
    """
    g = network
    g.node(src_layer)
    if src_layer not in g.ancestors(dst) or src_layer == dst:
        raise ValueError(f"{src_layer} is not upstream of {dst}")
    nodes = walk.plan(g, (dst,), start=src_layer).nodes
    inside = {src_layer} | {n.name for n in nodes}
    for n in nodes:
        outside = [i for i in n.inputs if i not in inside]
        if outside:
            raise ValueError(
                f"{dst} also depends on {', '.join(outside)}, which {src_layer} does not feed: "
                f"re-express from a layer every path to {dst} goes through (e.g. a whole mixed layer)"
            )
    return tuple(nodes)


def linearized_path(model: "InceptionV1", src_layer: str, dst: str, src: torch.Tensor) -> torch.Tensor:
    """`dst` computed from `src` (the source layer's tensor) by the linearized network.

    Each op on the way runs its op-table linearization: ReLU -> identity, max-pool ->
    average pool over in-image cells, LRN -> identity; convolutions keep their weights
    and biases.
    """
    path_nodes(src_layer, dst, model.graph)  # every input on the way comes from src_layer

    def step(n, xs):
        return n.kind.linear(n, xs, getattr(model, n.param) if n.param else None, bias=True)

    return walk.forward(model.graph, (dst,), {src_layer: src}, step, start=src_layer)[dst]


# --- the expanded weights an edit starts from --------------------------------


def expanded_weights(model: "InceptionV1", part: "_Part", src_idx=None) -> torch.Tensor:
    """Expanded weights [dst, src, kh, kw] of the current parameters for `part`."""
    from circuits.analysis.expanded import weights_between

    from circuits.analysis.networks import units_in

    src_idx = part.src_idx if src_idx is None else src_idx
    src = units_in(part.network, part.src_layer, src_idx)
    dst = units_in(part.network, part.conv, part.dst_idx)
    return weights_between(model, src, dst).detach()


def check_supported(part: "_Part") -> None:
    """Raise unless a re-expression of `part` can be computed (see `path_nodes`)."""
    try:
        path_nodes(part.src_layer, part.conv, part.network)
    except ValueError as e:
        raise EditError(str(e)) from None


def check_delta_shape(part: "_Part", delta: torch.Tensor) -> None:
    """Raise unless `delta` has odd spatial sizes (the layout `aligned_conv` needs)."""
    if delta.shape[-1] % 2 == 0 or delta.shape[-2] % 2 == 0:
        raise EditError(f"expanded delta for {part.key} has even kernel size {list(delta.shape[-2:])}")


# --- hooks -------------------------------------------------------------------


def install(model: "InceptionV1", item, owner: object) -> list:
    """Add the hooks of an expanded edit or re-expression item, owned by the edit `owner`;
    returns their handles (`HookPoint.remove` takes them off when the edit is undone)."""
    if hasattr(item, "install"):  # items that bring their own hooks (implants)
        return item.install(model, owner)
    part = item.part
    g = part.network
    cache: dict[str, torch.Tensor] = {}

    def keep_source(x, hook):
        cache["src"] = x
        return None

    dst_idx = torch.tensor(part.dst_idx)
    if isinstance(item, _ExpandedItem):
        src_idx = torch.tensor(part.src_idx)
        delta = item.delta

        def add_delta(x, hook):
            src = _take(cache, part, x)
            hw = input_size_for(part.src_layer, *src.shape[-2:], g)
            change = aligned_conv(src[:, src_idx], delta, part.src_layer, part.conv, hw, g)
            x = x.clone()
            x[:, dst_idx] += change
            return x

        add_delta.__qualname__ = f"expanded_edit({part.src_layer}->{part.conv})"
        keep_source.__qualname__ = f"expanded_edit_source({part.src_layer}->{part.conv})"
        h_src = model.hook_points[part.src_layer].add_owned(keep_source, owner, reads_output=True)
        h_dst = model.hook_points[part.conv].add_owned(add_delta, owner)
        return [h_src, h_dst]

    all_src = list(range(g.node(part.src_layer).channels))
    weights = expanded_weights(model, part, all_src)

    def reexpress(x, hook):
        src = _take(cache, part, x)
        hw = input_size_for(part.src_layer, *src.shape[-2:], g)
        linear = aligned_conv(src, weights, part.src_layer, part.conv, hw, g)
        zero = torch.zeros_like(src[:1])
        bias = linearized_path(model, part.src_layer, part.conv, zero)[:, dst_idx]
        x = x.clone()
        x[:, dst_idx] = linear + bias
        return x

    reexpress.__qualname__ = f"reexpress({part.src_layer}->{part.conv})"
    keep_source.__qualname__ = f"reexpress_source({part.src_layer}->{part.conv})"
    h_src = model.hook_points[part.src_layer].add_owned(keep_source, owner, reads_output=True)
    # The re-expression replaces what the conv computed, so it must run before any
    # other edit hook on that tensor (an expanded edit's delta is added on top of it).
    h_dst = model.hook_points[part.conv].add_owned(reexpress, owner, first=True)
    return [h_src, h_dst]


def _take(cache: dict, part: "_Part", x: torch.Tensor) -> torch.Tensor:
    src = cache.pop("src", None)
    if src is None or src.shape[0] != x.shape[0]:
        raise RuntimeError(  # pragma: no cover - the source is always an ancestor of the conv
            f"edit hook on {part.conv} found no {part.src_layer} activation from the same run"
        )
    return src


@functools.lru_cache(maxsize=1024)
def input_size_for(src_layer: str, hs: int, ws: int, network: graph.Graph = graph.INCEPTION_V1) -> tuple[int, int]:
    """An input size giving `src_layer` a map of hs x ws.

    Sizes downstream of `src_layer` depend only on its own size, so any such input
    gives the same source-to-destination alignment.
    """
    out = []
    for want, axis in ((hs, 0), (ws, 1)):
        for h in range(1, 8192):
            got = network.output_hw(src_layer, h)[axis]
            if got == want:
                out.append(h)
                break
            if got > want:
                raise ValueError(f"no input size gives {src_layer} a side of {want}")
    return out[0], out[1]
