"""Attribution of a unit's activation to the units of the layer before: W ⊙ h_prev.

For a unit u at position p, its pre-activation is a sum over the source tensor h_prev
(the layer before) of weight times activation, plus a bias:

    pre(u, p) = sum_{c, i, j} W[u, c, i, j] * h_prev[c, y0 + i, x0 + j] + b[u]

where (y0, x0) is the top-left of the kernel's window over the source map
(TensorFlow SAME padding; positions outside the map hold 0). `attribute` returns the
terms ``W ⊙ h_prev`` per source channel and window position.

- Direct connection (the unit's convolution reads the source tensor itself, e.g.
  conv2d2 <- conv2d1, mixed3b 1x1 <- mixed3a): exact; the terms plus the bias sum to
  the unit's pre-activation (`Attribution.exact` is True).
- Expanded connection (through a bottleneck, a pool or several layers, e.g. mixed3b
  5x5 <- mixed3a): W is the expanded weight of `circuits.analysis.expanded.weights_between`
  (ReLU -> identity, max-pool -> average pool, LRN -> identity, intermediate biases
  dropped); the bias is the unit's own. The terms are a linear approximation and
  `Attribution.residual` says how far their sum is from the real pre-activation.
  Sources must lie in the network's range of expanded weights (`Graph.expanded_span`;
  InceptionV1: conv2d0 ... mixed4a, InceptionV3: conv2d_1 ... mixed7).

Every network fact (which conv computes the unit, the layer before, receptive fields)
is read from the model's graph, and the image is scaled to the model's input range.

Summaries: per source channel, per family of the source layer, the top contributing
units, and a heat map over the input image. `visualize` renders
FeatureVisualization(abs(W ⊙ h_prev)) with the attribution objective, as in the
Curve Detectors article.

Example:
    >>> import torch, weights
    >>> model = weights.model("random")
    >>> a = attribute(model, "conv2d2:5", torch.rand(3, 48, 48))
    >>> a.source, a.exact, tuple(a.contributions.shape)
    ('conv2d1', True, (64, 3, 3))
    >>> abs(a.total - a.preactivation) < 1e-3
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from circuits.analysis.networks import network_of, one_unit
from circuits.core import graph
from circuits.core.inputs import to_model_input
from circuits.core.model import Network
from circuits.core.units import Unit

__all__ = ["Attribution", "attribute", "previous_layer", "conv_of", "visualize", "LAYERS"]

# Lucid's layer list (conv2d0 .. mixed5b): the tensors that end a top-level block.
# InceptionV1's, kept for code that imports it; any network's is `Graph.trunk_layers`.
LAYERS: tuple[str, ...] = graph.INCEPTION_V1.trunk_layers


def conv_of(unit: Unit) -> graph.Node:
    """The convolution that computes `unit`'s pre-activation (in the unit's network)."""
    g = unit.network
    found = g.conv_of(unit.layer, unit.channel)
    if found is None:
        n = g.node(unit.branch)
        raise ValueError(
            f"{unit.id} is computed by a {n.op} ({n.name}), not a convolution: attribution needs a unit of a "
            f"convolutional layer of {g.name} ({', '.join(g.trunk_layers[:4])}, ...)"
        )
    return g.node(found[0])


def previous_layer(unit, model=None) -> str:
    """The layer before `unit`'s layer in the network's trunk layer list ("input" for the first).

    model: the model (or Graph) the unit belongs to; None only for a Unit.

    >>> from circuits.core.networks import DECLARED
    >>> v1, v3 = DECLARED["InceptionV1"], DECLARED["InceptionV3"]
    >>> previous_layer("mixed3b:379", v1), previous_layer("conv2d1:0", v1), previous_layer("conv2d0:0", v1)
    ('mixed3a', 'conv2d0', 'input')
    >>> previous_layer("mixed2:67", v3), previous_layer("activation_2:0", v3)
    ('mixed1', 'activation_1')
    """
    u = one_unit(unit, model)
    g = u.network
    conv = conv_of(u)
    anc = g.ancestors(conv.inputs[0])
    before = [l for l in g.trunk_layers if l in anc]
    return max(before, key=g.index) if before else graph.INPUT


@dataclass
class Attribution:
    """W ⊙ h_prev for one unit at one position of one image.

    contributions: [C_src, kh, kw], the terms W * h_prev over the kernel's window;
    window_origin: source-map coordinate (y, x) of contributions[:, 0, 0] (may be
    negative where the window hangs over TensorFlow's zero padding).
    """

    unit: Unit
    source: str
    position: tuple[int, int]
    contributions: torch.Tensor
    bias: float
    preactivation: float
    exact: bool
    window_origin: tuple[int, int]
    input_size: tuple[int, int]

    @property
    def total(self) -> float:
        """Sum of all terms plus the bias (equals `preactivation` for a direct connection)."""
        return float(self.contributions.double().sum()) + self.bias

    @property
    def residual(self) -> float:
        """preactivation - total: 0 up to rounding when exact; the approximation error otherwise."""
        return self.preactivation - self.total

    def per_channel(self) -> torch.Tensor:
        """[C_src]: each source unit's summed contribution over the window."""
        return self.contributions.sum(dim=(1, 2))

    def per_position(self) -> torch.Tensor:
        """[kh, kw]: contributions summed over source channels."""
        return self.contributions.sum(dim=0)

    def top(self, k: int = 10, sign: str = "abs") -> list[tuple[Unit, float]]:
        """The k source units with the largest contributions (sign: abs, positive or negative).

        >>> import weights
        >>> a = attribute(weights.model("random"), "conv2d2:5", torch.rand(3, 32, 32))
        >>> len(a.top(3)), a.top(1)[0][0].layer
        (3, 'conv2d1')
        """
        if sign not in ("abs", "positive", "negative"):
            raise ValueError(f"unknown sign {sign!r}; use abs, positive or negative")
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        v = self.per_channel()
        key = {"abs": v.abs(), "positive": v, "negative": -v}[sign]
        order = torch.argsort(key, descending=True)[:k].tolist()
        return [(Unit(self.source, c, self.unit.graph), float(v[c])) for c in order]

    def per_family(self, source: str | None = "early_vision", model=None) -> dict[str, float]:
        """Summed contribution per family of the source layer.

        source: which families: "early_vision" (default; the published partition, so
        the values add up to the total), "article", "user", or None for all
        families (they may overlap). Channels in none of them are summed under
        "(no family)". Empty if the source layer has no families (a bottleneck).
        model: the families of this model count (default: the unit's graph, whose
        families are the published ones); with the default source, channels are
        labelled by the families the model holds first (`circuits.families.labels`;
        e.g. the hand-built banks), then by the published partition; still a
        partition, so the values add up.
        """
        from circuits import families

        v = self.per_channel()
        out: dict[str, float] = {}
        seen: set[int] = set()
        network = model if model is not None else self.unit.graph
        if source == "early_vision":
            fams = families.labels(self.source, network)
        else:
            fams = families.families(network, self.source, source=source)
        for fam in fams:
            chans = [c for c in fam.channels if c not in seen] if source == "early_vision" else fam.channels
            if not chans:
                continue
            out[fam.name] = out.get(fam.name, 0.0) + float(v[chans].sum())
            seen.update(chans)
        if out and len(seen) < v.numel():
            rest = [c for c in range(v.numel()) if c not in seen]
            out["(no family)"] = float(v[rest].sum())
        return out

    def heatmap(self) -> torch.Tensor:
        """[H, W] over the input image: each window position's summed contribution, painted
        on the stride x stride input cell centred on that source unit's receptive field."""
        h, w = self.input_size
        heat = torch.zeros(h, w)
        rf = self.unit.network.receptive_field(self.source, self.input_size)
        s = rf.stride
        pos = self.per_position()
        for i in range(pos.shape[0]):
            for j in range(pos.shape[1]):
                cy, cx = rf.centre_of(self.window_origin[0] + i, self.window_origin[1] + j)
                y0 = math.floor(cy - (s - 1) / 2 + 0.5)
                x0 = math.floor(cx - (s - 1) / 2 + 0.5)
                ys, xs = slice(max(y0, 0), max(min(y0 + s, h), 0)), slice(max(x0, 0), max(min(x0 + s, w), 0))
                heat[ys, xs] += pos[i, j]
        return heat

    def objective(self):
        """The attribution objective for abs(W ⊙ h_prev) at the source layer."""
        from circuits.optvis import objectives

        return objectives.attribution(self.source, self.contributions.abs(), model=self.unit.graph)


def image_input(image, input_range: tuple[float, float] | None = None) -> torch.Tensor:
    """One image as model input [1, 3, H, W] in `input_range` (default InceptionV1's; see
    `circuits.to_model_input`)."""
    x = to_model_input(image, input_range)
    if x.shape[0] != 1:
        raise ValueError(f"attribution takes one image, got a batch of {x.shape[0]}")
    return x


def _window(src: torch.Tensor, y0: int, x0: int, kh: int, kw: int) -> torch.Tensor:
    """src[:, y0:y0+kh, x0:x0+kw] with zeros outside the map."""
    h, w = src.shape[-2:]
    pad = (max(-x0, 0), max(x0 + kw - w, 0), max(-y0, 0), max(y0 + kh - h, 0))
    padded = F.pad(src, pad)
    yy, xx = y0 + pad[2], x0 + pad[0]
    return padded[:, yy : yy + kh, xx : xx + kw]


def attribute(
    model: Network,
    unit,
    image,
    source: str | None = None,
    position: tuple[int, int] | None = None,
) -> Attribution:
    """W ⊙ h_prev for `unit` at `position` (default Lucid's centre) on one image.

    unit: a unit id (or Unit) of the model's network.
    image: anything `circuits.to_model_input` takes (uint8, or float in [0, 1]); it is
        scaled to the model's input range.
    source: the tensor to attribute to; default the layer before (`previous_layer`).
    If it is the tensor the unit's convolution reads, the attribution is exact;
    otherwise expanded weights are used (see the module docstring).
    """
    g = network_of(model)
    u = one_unit(unit, model)
    conv = conv_of(u)
    source = previous_layer(u) if source is None else source
    g.node(source)
    if source not in g.ancestors(conv.name) or source == conv.name:
        raise ValueError(f"source {source!r} is not upstream of {u.id} (computed by {conv.name})")
    x = image_input(image, g.input_range)
    size = tuple(x.shape[-2:])
    g.check_input_size(conv.name, size)
    out_hw = g.output_hw(conv.name, size)
    py, px = g.centre_position(conv.name, size) if position is None else position
    if not (0 <= py < out_hw[0] and 0 <= px < out_hw[1]):
        raise IndexError(f"position ({py}, {px}) is outside the {out_hw[0]}x{out_hw[1]} map of {u.layer}")
    c = u.branch_channel
    with torch.no_grad():
        cache = model.run_with_cache(x, sorted({source, conv.name}, key=g.index))
    pre = float(cache[conv.name][0, c, py, px])
    src = cache[source][0]
    if source == conv.inputs[0]:
        layer = getattr(model, conv.param)
        weight, bias = layer.weight[c].detach(), float(layer.bias[c].detach())
        y0, _, x0, _ = conv.kind.input_window(conv, (py, py, px, px), tuple(src.shape[-2:]))
        origin = (y0, x0)
        exact = True
    else:
        weight, bias, origin = _expanded(model, u, conv, source, size, (py, px))
        exact = False
    window = _window(src, origin[0], origin[1], weight.shape[-2], weight.shape[-1])
    return Attribution(u, source, (py, px), weight * window, bias, pre, exact, origin, size)


def _expanded(model, u: Unit, conv: graph.Node, source: str, size: tuple[int, int], pos: tuple[int, int]):
    """Expanded weights [C_src, k, k] from every unit of `source` to `u`, its own bias, and the
    window origin: `weights_between` centres the kernel on the source cell under the
    unit's receptive-field centre (offsets in the source grid)."""
    from circuits.analysis import expanded
    from circuits.analysis.networks import units_in

    g = u.network
    w = expanded.weights_between(model, units_in(g, source), u)[0]
    bias = float(getattr(model, conv.param).bias[u.branch_channel].detach())
    cy, cx = g.receptive_field(conv.name, size).centre_of(*pos)
    rs = g.receptive_field(source, size)
    ay, ax = (cy - rs.first_centre[0]) / rs.stride, (cx - rs.first_centre[1]) / rs.stride
    if ay != int(ay) or ax != int(ax):  # pragma: no cover - odd kernels keep centres on the grid
        raise AssertionError(f"{u.id}'s centre falls between cells of {source}")
    r = w.shape[-1] // 2
    return w, bias, (int(ay) - r, int(ax) - r)


def visualize(model: Network, attribution: Attribution, size: int = 128, **render_kw):
    """Render FeatureVisualization(abs(W ⊙ h_prev)): what the contributing units want to see.

    Keyword arguments go to `circuits.optvis.render` (steps, seed, transforms, ...).
    """
    from circuits.optvis import image, render

    seed = render_kw.get("seed", 0)
    return render(model, attribution.objective(), image(size, seed=seed), **render_kw)
