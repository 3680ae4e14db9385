"""Objectives: scalar functions of a model's activations that a render maximizes.

An `Objective` wraps ``fn(acts) -> scalar tensor`` where `acts` maps hook names to
activations [B, C, H, W], and declares the hook names it reads (`hooks`), so the
render loop runs the model only up to the last of them. Objectives compose like
Lucid's: ``a + b``, ``a - b``, ``2 * a``, ``a / 2``, ``-a``, ``a * b``.

Reductions over the batch follow Lucid's (lucid/optvis/objectives.py): `channel`
and `direction` average over batch and positions; `neuron` sums over the batch (Lucid
returns one value per image and TensorFlow differentiates their sum).

A unit of a concatenated layer (``mixed3b:379``) is read from its branch tensor
(``mixed3b_5x5`` channel 59): the same number, without computing the other branches.

An objective belongs to one network (`Objective.network`): the one whose tensors it
reads, given as ``model=`` (a model or its graph; a `Unit` carries its own). Combining
objectives of two networks, or rendering one on a model of another network, raises.

Example:
    >>> from circuits.core.graph import INCEPTION_V1 as v1
    >>> obj = channel("mixed3b", 379, model=v1) - 1e2 * diversity("mixed3b", model=v1)
    >>> sorted(obj.hooks)
    ['mixed3b', 'mixed3b_5x5']
"""

from __future__ import annotations

import functools
import numbers
from typing import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F

from circuits.core import graph
from circuits.core.networks import network_of
from circuits.core.units import Unit, parse_unit
from circuits.families import units_of

__all__ = [
    "Objective",
    "channel",
    "neuron",
    "direction",
    "diversity",
    "family",
    "attribution",
    "as_objective",
]

Acts = Mapping[str, torch.Tensor]


def _network_of(hooks: frozenset[str], network: graph.Graph | None, description: str) -> graph.Graph:
    """`network`, with each hook checked against it (an objective reads one network's tensors)."""
    if network is None:
        raise TypeError(f"objective {description!r} needs the network whose tensors it reads (network=model.graph)")
    for h in hooks:
        network.node(h)  # unknown hook names raise with close matches
    return network


class Objective:
    """A scalar function of activations, with the hook names it reads.

    min_size: the smallest square image (pixels) the objective is meaningful on;
    the render loop refuses smaller images. network: the graph whose tensors `hooks`
    are (required).

    >>> from circuits.core.networks import DECLARED
    >>> o = Objective(lambda acts: acts["conv2d0"].mean(), ["conv2d0"], "MeanConv", network=DECLARED["InceptionV1"])
    >>> (2 * o + o).description
    '(2·MeanConv + MeanConv)'
    >>> Objective(lambda acts: acts["mixed2"].mean(), ["mixed2"], "M2", network=DECLARED["InceptionV3"]).network.name
    'InceptionV3'
    """

    def __init__(self, fn: Callable[[Acts], torch.Tensor], hooks: Iterable[str], description: str, min_size: int = 1,
                 network: graph.Graph | None = None):
        hooks = frozenset(hooks)
        if not hooks:
            raise ValueError(f"objective {description!r} must read at least one hook name")
        self.network = _network_of(hooks, network, description)
        self.fn, self.hooks, self.description, self.min_size = fn, hooks, description, int(min_size)

    def __call__(self, acts: Acts) -> torch.Tensor:
        missing = [h for h in self.hooks if h not in acts]
        if missing:
            raise KeyError(f"objective {self.description} needs activations of {', '.join(sorted(missing))}")
        return self.fn(acts)

    @property
    def last_hook(self) -> str:
        """The hook the run must reach (the latest in execution order)."""
        return max(self.hooks, key=self.network.index)

    def _combine(self, other: "Objective", op, symbol: str) -> "Objective":
        if other.network is not self.network:
            raise ValueError(
                f"cannot combine {self.description} ({self.network.name}) with {other.description} "
                f"({other.network.name}): an objective reads one network's tensors"
            )
        return Objective(
            lambda acts: op(self(acts), other(acts)),
            self.hooks | other.hooks,
            f"({self.description} {symbol} {other.description})",
            max(self.min_size, other.min_size),
            self.network,
        )

    def __add__(self, other) -> "Objective":
        if isinstance(other, Objective):
            return self._combine(other, torch.add, "+")
        if isinstance(other, numbers.Real):
            if other == 0:  # lets sum([...]) start from 0
                return self
            return Objective(lambda acts: self(acts) + other, self.hooks, f"({self.description} + {other:g})",
                             self.min_size, self.network)
        return NotImplemented

    __radd__ = __add__

    def __neg__(self) -> "Objective":
        return -1 * self

    def __sub__(self, other) -> "Objective":
        if isinstance(other, Objective):
            return self._combine(other, torch.sub, "-")
        if isinstance(other, numbers.Real):
            return self + (-other)
        return NotImplemented

    def __rsub__(self, other) -> "Objective":
        if not isinstance(other, numbers.Real):
            return NotImplemented
        return (-1 * self) + other

    def __mul__(self, other) -> "Objective":
        if isinstance(other, Objective):
            return self._combine(other, torch.mul, "·")
        if isinstance(other, numbers.Real):
            w = float(other)
            return Objective(lambda acts: w * self(acts), self.hooks, f"{w:g}·{self.description}", self.min_size,
                             self.network)
        return NotImplemented

    __rmul__ = __mul__

    def __truediv__(self, other) -> "Objective":
        if not isinstance(other, numbers.Real):
            return NotImplemented
        if other == 0:
            raise ZeroDivisionError(f"cannot divide objective {self.description} by 0")
        return self * (1.0 / float(other))

    def __repr__(self) -> str:
        return self.description

    __str__ = __repr__


# --- helpers ------------------------------------------------------------------


def _batch(t: torch.Tensor, batch: int | None) -> torch.Tensor:
    if batch is None:
        return t
    if not -t.shape[0] <= batch < t.shape[0]:
        raise IndexError(f"batch index {batch} is out of range for a batch of {t.shape[0]} images")
    return t[batch : batch + 1]


def _unit(layer, n, model=None) -> Unit:
    """A unit of `model`'s network (validated against it); a Unit knows its network."""
    if isinstance(layer, Unit) and model is None:
        return layer
    if model is None:
        raise TypeError(f"the objective on {layer}:{n} needs the network it reads: pass model= (a model or its graph)")
    return parse_unit(layer if isinstance(layer, Unit) else (layer, n), network_of(model))


def _layer_network(layer: str, model) -> graph.Graph:
    """The graph `layer` is checked against: `model`'s."""
    g = network_of(model)
    if g is None:
        raise TypeError(f"the objective on {layer} needs the network it reads: pass model= (a model or its graph)")
    g.node(layer)  # unknown layer (or one of another network): raises with close matches
    return g


def _rf_size(hook: str, network: graph.Graph) -> int:
    return network.receptive_field(hook).size


@functools.lru_cache(maxsize=1024)
def _min_size_for_map(layer: str, h: int, w: int, network: graph.Graph) -> int:
    """Smallest square input whose `layer` map is at least h x w."""
    size = network.min_input_size(layer)
    while min(network.output_hw(layer, size)[0] - h, network.output_hw(layer, size)[1] - w) < 0:
        size += 1
        if size > 4096:  # pragma: no cover - maps of real layers grow with the input
            raise ValueError(f"no input size gives {layer} a {h}x{w} map")
    return size


# --- objectives ---------------------------------------------------------------


def channel(layer: str, n: int, batch: int | None = None, *, model=None) -> Objective:
    """Mean activation of channel `n` of `layer` over positions (and images).

    model: the model (or graph) the unit belongs to (not needed for a Unit).

    >>> from circuits.core.networks import DECLARED
    >>> channel("mixed3b", 379, model=DECLARED["InceptionV1"]).hooks
    frozenset({'mixed3b_5x5'})
    >>> v3 = DECLARED["InceptionV3"]
    >>> channel("mixed2", 67, model=v3).hooks, channel("mixed2", 67, model=v3).network.name
    (frozenset({'activation_22'}), 'InceptionV3')
    """
    u = _unit(layer, n, model)
    net = u.network
    hook, c = u.branch, u.branch_channel
    return Objective(
        lambda acts: _batch(acts[hook], batch)[:, c].mean(),
        [hook],
        f"Channel({u.id}{'' if batch is None else f', batch={batch}'})",
        net.min_input_size(hook),
        net,
    )


def neuron(layer: str, n: int, y: int | None = None, x: int | None = None, batch: int | None = None,
           *, model=None) -> Objective:
    """Activation of channel `n` at one position, by default Lucid's centre (H // 2, W // 2).

    The image must be at least the unit's receptive field (else the unit cannot see
    a whole visualization); `min_size` says so to the render loop. model: as in `channel`.

    >>> from circuits.core.graph import INCEPTION_V1
    >>> neuron("conv2d0", 3, model=INCEPTION_V1).min_size
    7
    """
    u = _unit(layer, n, model)
    net = u.network
    hook, c = u.branch, u.branch_channel
    for name, v in (("y", y), ("x", x)):
        if v is not None and (not isinstance(v, int) or v < 0):
            raise ValueError(f"neuron position {name}={v!r} must be a non-negative int")

    def fn(acts: Acts) -> torch.Tensor:
        t = _batch(acts[hook], batch)
        h, w = t.shape[-2:]
        yy, xx = (h // 2 if y is None else y), (w // 2 if x is None else x)
        if yy >= h or xx >= w:
            raise IndexError(f"neuron position ({yy}, {xx}) is outside the {h}x{w} map of {hook}")
        return t[:, c, yy, xx].sum()

    pos = "" if y is None and x is None else f", y={y}, x={x}"
    return Objective(fn, [hook], f"Neuron({u.id}{pos})", max(_rf_size(hook, net), net.min_input_size(hook)), net)


def direction(layer: str, vec, batch: int | None = None, *, model=None) -> Objective:
    """Mean over positions (and images) of the dot product of `layer`'s activation with `vec`.

    model: the model (or graph) that has `layer`.

    >>> from circuits.core.graph import INCEPTION_V1
    >>> direction("conv2d0", torch.ones(64), model=INCEPTION_V1).description
    'Direction(conv2d0)'
    """
    net = _layer_network(layer, model)
    node = net.node(layer)
    v = torch.as_tensor(vec, dtype=torch.float32).flatten()
    if v.numel() != node.channels:
        raise ValueError(f"direction for {layer} must have {node.channels} values (one per channel), got {v.numel()}")
    if not torch.isfinite(v).all():
        raise ValueError(f"direction for {layer} contains NaN or infinite values")

    def fn(acts: Acts) -> torch.Tensor:
        t = _batch(acts[layer], batch)
        return torch.einsum("bchw,c->bhw", t, v.to(t)).mean()

    return Objective(fn, [layer], f"Direction({layer})", net.min_input_size(layer), net)


def diversity(layer: str, *, model=None) -> Objective:
    """Lucid's diversity: mean over images of the summed cosine similarity of their Gram matrices.

    For a batch of B images with [C, C] Gram matrices G_b = A_b^T A_b (A_b: positions x
    channels), each L2-normalized, the value is sum_{i != j} <G_i, G_j> / B. It is a
    similarity, so subtract it: ``channel(...) - 1e2 * diversity(layer)`` (Lucid's use).
    Needs a batch of at least 2 images.

    >>> from circuits.core.graph import INCEPTION_V1
    >>> diversity("mixed4a", model=INCEPTION_V1).description
    'Diversity(mixed4a)'
    """
    net = _layer_network(layer, model)

    def fn(acts: Acts) -> torch.Tensor:
        t = acts[layer]
        b, c = t.shape[:2]
        if b < 2:
            raise ValueError(f"diversity({layer}) needs a batch of at least 2 images, got {b} (use image(..., batch=4))")
        flat = t.reshape(b, c, -1)
        grams = F.normalize(flat @ flat.transpose(1, 2), dim=(1, 2), eps=1e-10)
        sims = torch.einsum("icd,jcd->ij", grams, grams)
        return (sims.sum() - sims.diagonal().sum()) / b

    return Objective(fn, [layer], f"Diversity({layer})", net.min_input_size(layer), net)


def family(spec, weights: Sequence[float] | Mapping[str, float] | None = None, kind: str = "channel",
           *, model=None) -> Objective:
    """Weighted sum of `channel` (or `neuron`) objectives over a family's units.

    `spec` is anything `circuits.resolve_units` accepts: a family id (``"mixed3b:curves"``),
    a unit id, or a list. `weights` (default: 1 for every unit) is a sequence in the
    units' order or a mapping from unit id to weight.

    >>> from circuits.core.graph import INCEPTION_V1
    >>> obj = family(["conv2d0:1", "conv2d0:2"], weights=[1.0, -0.5], model=INCEPTION_V1)
    >>> obj.hooks
    frozenset({'conv2d0'})
    """
    if kind not in ("channel", "neuron"):
        raise ValueError(f"unknown family objective kind {kind!r}; use channel or neuron")
    units = units_of(spec, model)
    if weights is None:
        ws = [1.0] * len(units)
    elif isinstance(weights, Mapping):
        unknown = set(weights) - {u.id for u in units}
        if unknown:
            raise KeyError(f"weights name units not in {spec!r}: {', '.join(sorted(unknown))}")
        ws = [float(weights.get(u.id, 0.0)) for u in units]
    else:
        ws = [float(w) for w in weights]
        if len(ws) != len(units):
            raise ValueError(f"{len(ws)} weights for {len(units)} units of {spec!r}")
    make = channel if kind == "channel" else neuron
    total = sum(w * make(u, u.channel) for u, w in zip(units, ws) if w != 0)
    if not isinstance(total, Objective):
        raise ValueError(f"all weights of {spec!r} are zero: nothing to maximize")
    name = spec if isinstance(spec, str) else f"{len(units)} units"
    total.description = f"Family({name}, {kind})"
    return total


def attribution(layer: str, vec, batch: int | None = None, *, model=None) -> Objective:
    """Dot product of `layer`'s activations with an attribution vector.

    `vec` is [C] (one weight per channel; averaged over positions, like `direction`)
    or [C, kh, kw] (per channel and position: multiplied with the central kh x kw
    window of the map, the window around Lucid's centre neuron, and summed). Used with
    ``abs(W ⊙ h_prev)`` to visualize what an image contributed to a unit.

    >>> from circuits.core.graph import INCEPTION_V1
    >>> attribution("conv2d0", torch.ones(64, 3, 3), model=INCEPTION_V1).min_size
    5
    """
    net = _layer_network(layer, model)
    node = net.node(layer)
    v = torch.as_tensor(vec, dtype=torch.float32)
    if v.dim() not in (1, 3) or v.shape[0] != node.channels:
        raise ValueError(
            f"attribution vector for {layer} must be [{node.channels}] or [{node.channels}, kh, kw], got {list(v.shape)}"
        )
    if not torch.isfinite(v).all():
        raise ValueError(f"attribution vector for {layer} contains NaN or infinite values")
    if v.dim() == 1:
        obj = direction(layer, v, batch, model=net)
        obj.description = f"Attribution({layer})"
        return obj
    kh, kw = v.shape[1:]

    def fn(acts: Acts) -> torch.Tensor:
        t = _batch(acts[layer], batch)
        h, w = t.shape[-2:]
        if h < kh or w < kw:
            raise ValueError(f"{layer} map is {h}x{w}, smaller than the {kh}x{kw} attribution window")
        y0, x0 = h // 2 - kh // 2, w // 2 - kw // 2
        window = t[:, :, y0 : y0 + kh, x0 : x0 + kw]
        return torch.einsum("bchw,chw->b", window, v.to(t)).mean()

    return Objective(fn, [layer], f"Attribution({layer}, {kh}x{kw})", _min_size_for_map(layer, kh, kw, net), net)


def as_objective(obj, model=None) -> Objective:
    """An Objective from an Objective, a unit id (-> `channel`) or a family id (-> `family`).

    model: the model (or graph) the units belong to; an Objective is returned as it is.

    >>> from circuits.core.graph import INCEPTION_V1
    >>> as_objective("mixed3a:81", INCEPTION_V1).description
    'Channel(mixed3a:81)'
    """
    if isinstance(obj, Objective):
        return obj
    g = network_of(model) or (obj.graph if isinstance(obj, Unit) else None)
    if isinstance(obj, str):
        try:
            u = parse_unit(obj, g)
        except ValueError:  # not "layer:<int>": a family id (unknown layers raise KeyError)
            return family(obj, model=model)  # the model's own families count
        return channel(u, u.channel)
    if isinstance(obj, (Unit, tuple)):
        u = parse_unit(obj, g)
        return channel(u, u.channel)
    if isinstance(obj, list):
        return family(obj, model=model)
    raise TypeError(f"cannot make an objective from {obj!r}: pass an Objective, a unit id or a family id")
