"""Exact values of units at the centre position, computing only their receptive-field cone.

A full forward pass computes every position of every map, but a tuning measurement
reads one position. Walking the layer graph backwards from that position gives the
window of each tensor that the read depends on (its cone); computing only those
windows gives the same numbers for a fraction of the work. When the receptive field
lies inside the image, no window touches TensorFlow's SAME padding, so every conv and
pool in the cone runs without padding ("VALID") on its window.

The walk reads the model's own graph (`model.graph`), so it holds for any declared
network: InceptionV3's 'valid' convs and pools, its 1x7 / 7x1 kernels and its average
pools that exclude padding (inside the image there is none to exclude) give the full
forward's values too (tests/test_v3_tuning.py: max error about 2e-6).

Only the channels a read depends on are computed: walking back through each op's
`input_channels` (a conv's non-zero weights, an LRN's channel window, a concat's
branches) gives the channels of every tensor that matter, and each op's
`forward_channels` computes just those. Zero weights contribute exactly zero, so the
values do not change; a sparse network (the hand-built one) costs a fraction.

Each node runs its op table entry's ``forward_channels`` on the cropped window; the model's
weights are used, but not its hook points: callers use
this only for models without active hooks (`circuits.tuning.measure` falls back to
`model.run` otherwise).

Example:
    >>> import torch, weights
    >>> m = weights.model("random")
    >>> x = torch.randn(2, 3, 97, 97) * 50
    >>> v = centre_values(m, x, ["mixed3b_5x5"])["mixed3b_5x5"]
    >>> full = m.run(x, until="mixed3b_5x5")[:, :, 6, 6]
    >>> bool(torch.allclose(v, full, atol=1e-3))
    True
"""

from __future__ import annotations

import functools
import weakref
from typing import Mapping, Sequence

import torch

from circuits.core import graph, walk
from circuits.core.ops import take_channels

__all__ = ["cone_windows", "centre_values", "needed_channels", "zero_channels", "ConeError"]

Window = tuple[int, int, int, int]  # y0, y1, x0, x1 (inclusive), in a tensor's own coordinates


class ConeError(ValueError):
    """The cone of a read reaches padding (the receptive field is not inside the image)."""


def _union(a: Window | None, b: Window) -> Window:
    if a is None:
        return b
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


def cone_windows(names: tuple[str, ...], height: int, width: int,
                 network: graph.Graph = graph.INCEPTION_V1) -> dict[str, Window]:
    """The window of every tensor that the centre positions of `names` depend on.

    network: the graph `names` belong to (pass ``model.graph``; default InceptionV1's).
    Raises ConeError when a window leaves its map (the read would see padding).

    >>> cone_windows(("conv2d0",), 9, 9)["input"]
    (1, 7, 1, 7)
    """
    return _cone_windows(network, tuple(names), int(height), int(width))


@functools.lru_cache(maxsize=256)
def _cone_windows(network: graph.Graph, names: tuple[str, ...], height: int, width: int) -> dict[str, Window]:
    seed: dict[str, Window] = {}
    for n in names:
        cy, cx = network.centre_position(n, (height, width))
        seed[n] = _union(seed.get(n), (cy, cy, cx, cx))

    def step(node, win):  # the window each input of `node` must hold for `win` of its output
        if not node.kind.spatial:
            raise ConeError(f"{node.name} ({node.op}) has no spatial cone; read a tensor before it")
        if node.kind.opaque:
            raise ConeError(f"the receptive-field cone cannot cross {node.name} ({node.op}): it runs "
                            f"{node.source or 'code'} that the op table has no rule for; read a tensor before it")
        return [node.kind.input_window(node, win, network.output_hw(src, (height, width))) for src in node.inputs]

    need = walk.backward(network, names, seed, step, _union)
    for name, (y0, y1, x0, x1) in need.items():
        h, w = network.output_hw(name, (height, width))
        if y0 < 0 or x0 < 0 or y1 > h - 1 or x1 > w - 1:
            raise ConeError(
                f"the centre of {', '.join(names)} depends on {name} rows {y0}..{y1}, cols {x0}..{x1} of a "
                f"{h}x{w} map: the receptive field is not inside the {height}x{width} image"
            )
    return need


def _crop(t: torch.Tensor, have: Window, want: Window) -> torch.Tensor:
    """The part `want` of a tensor that covers `have` (both in the same map's coordinates)."""
    return t[..., want[0] - have[0] : want[1] - have[0] + 1, want[2] - have[2] : want[3] - have[2] + 1]


def _merge(a: torch.Tensor | None, b: torch.Tensor) -> torch.Tensor:
    return b if a is None else torch.unique(torch.cat([a, b]))


def zero_channels(model, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """Bool masks of the channels of every tensor in the cone of `names` that are 0 for every
    input (a conv channel with no bias and no non-zero weight from a live input; what a
    ReLU, pool, LRN or concat makes of zeros), walked forward through each op's
    `zero_channels`. The hand-built network is mostly such channels."""
    network = model.graph
    inp = network.node(graph.INPUT)

    def step(node, zin):
        params = getattr(model, node.param) if node.param else None
        cins = [network.node(s).channels for s in node.inputs]
        return node.kind.zero_channels(node, params, zin, cins)

    return walk.forward(network, tuple(names), {inp.name: torch.zeros(inp.channels, dtype=torch.bool)}, step,
                        free=False)


def needed_channels(model, names: Sequence[str], channels: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The sorted channels of every tensor in the cone that the reads (`channels` of `names`)
    depend on and that are not always 0 (`zero_channels`).

    Walked back through each op's `input_channels`: a conv needs only the inputs its
    needed outputs have non-zero weights from, an LRN the channel window, a concat the
    branches that hold them. A channel left out is either read by nobody or 0 for every
    input, so computing without it changes nothing. A tensor absent from the result is
    needed by no read.
    """
    network = model.graph
    zero = zero_channels(model, names)

    def live(name: str, ch: torch.Tensor) -> torch.Tensor:
        return ch[~zero[name][ch]]

    def step(node, out):
        params = getattr(model, node.param) if node.param else None
        cins = [network.node(s).channels for s in node.inputs]
        return [live(s, ch) for s, ch in zip(node.inputs, node.kind.input_channels(node, out, params, cins))]

    seed = {n: live(n, channels[n]) for n in names}
    return walk.backward(network, tuple(names), seed, step, _merge)


# model -> {read: (parameter versions, plan)}; a plan is rebuilt when a weight changes.
_PLANS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _plan(model, names: tuple[str, ...], want: dict[str, list[int]], h: int, w: int):
    """Windows, needed channels and each op's prepared parameters of a read.

    Derived from the weights (which channels are needed, the sliced conv weights), so it is
    kept per model and rebuilt whenever a parameter changes (an in-place edit bumps its
    version; new storage changes its address):
    every batch of a sweep would otherwise redo it.
    """
    key = (names, tuple(tuple(want[n]) for n in names), h, w)
    versions = tuple((p.data_ptr(), p._version) for p in model.parameters())
    cached = _PLANS.setdefault(model, {})
    hit = cached.get(key)
    if hit is not None and hit[0] == versions:
        return hit[1]
    network = model.graph
    wins = cone_windows(names, h, w, network)
    need = needed_channels(model, names, {n: torch.tensor(sorted(set(ch)), dtype=torch.long) for n, ch in want.items()})

    def prepare(node, _):
        if node.name in need and need[node.name].numel():
            params = getattr(model, node.param) if node.param else None
            return node.kind.prepare_channels(node, params, [need[s] for s in node.inputs], need[node.name])
        return None

    with torch.no_grad():
        prep = walk.forward(network, names, {graph.INPUT: None}, prepare, free=False)
    plan = (wins, need, prep)
    if len(cached) > 16:  # a few reads per model at a time; keep memory bounded
        cached.clear()
    cached[key] = (versions, plan)
    return plan


def centre_values(
    model, x: torch.Tensor, names: Sequence[str], channels: Mapping[str, Sequence[int]] | None = None
) -> dict[str, torch.Tensor]:
    """{name: [N, C] values at the centre position of `name`} for input x [N, 3, H, W].

    channels: {name: channel indices} to read only those (then [N, len(channels)], in
    the order given); default every channel of each name.

    Equal to ``model.run_with_cache(x, names)[name][:, channels, cy, cx]`` (up to float
    rounding) for a model without hooks, when every receptive field fits in x. Only
    the channels the reads depend on through non-zero weights are computed
    (`needed_channels`): exact, and for a sparse network (the hand-built one, where
    every unit outside its families is zero) most of the work.
    """
    network = model.graph
    names = tuple(dict.fromkeys(names))
    want = {n: list(range(network.node(n).channels)) if channels is None or n not in channels
            else [int(c) for c in channels[n]] for n in names}
    for n, ch in want.items():
        bad = [c for c in ch if not 0 <= c < network.node(n).channels]
        if bad or not ch:
            raise IndexError(f"channels {bad or '(none)'} of {n}: it has {network.node(n).channels} (0.."
                             f"{network.node(n).channels - 1})")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    wins, need, prep = _plan(model, names, want, h, w)
    inp = _crop(x, (0, h - 1, 0, w - 1), wins[graph.INPUT])

    def step(node, ins):
        win = wins[node.name]
        out_ch = need.get(node.name)
        if out_ch is None:
            return None
        if out_ch.numel() == 0:  # read only through zero weights: nothing to compute
            return x.new_zeros(x.shape[0], 0, win[1] - win[0] + 1, win[3] - win[2] + 1)
        # Each input cropped to the window this node reads: no window reaches padding,
        # so every op runs unpadded ("VALID") on it.
        xs = [
            _crop(t, wins[s], node.kind.input_window(node, win, network.output_hw(s, (h, w))))
            for s, t in zip(node.inputs, ins)
        ]
        cins = [network.node(s).channels for s in node.inputs]
        return node.kind.forward_channels(node, xs, prep[node.name], [need[s] for s in node.inputs], out_ch, cins)

    env = walk.forward(network, names, {graph.INPUT: take_channels(inp, need[graph.INPUT])}, step)
    out = {}
    for n in names:
        cy, cx = network.centre_position(n, (h, w))
        y0, _, x0, _ = wins[n]
        ch = torch.tensor(want[n], dtype=torch.long)
        have = need[n]
        pos = torch.searchsorted(have, ch).clamp(max=max(len(have) - 1, 0))
        present = (have[pos] == ch) if len(have) else torch.zeros(len(ch), dtype=torch.bool)
        vals = env[n][:, :, cy - y0, cx - x0]
        res = vals.new_zeros(x.shape[0], len(ch))  # an always-zero channel is read as its 0
        res[:, present] = vals[:, pos[present]]
        out[n] = res
    return out
