"""Weights between units: real kernel slices and expanded weights ("Visualizing Weights").

`weights_between(model, src, dst)` returns a tensor ``[n_dst, n_src, kh, kw]`` for any
two units, families or lists of units in the model's network's `expanded_span`
(InceptionV1: conv2d0 ... mixed4a; InceptionV3: conv2d_1 ... mixed7; their branch
tensors included). Everything is read from the model's graph (``model.graph``); the
units are resolved against it.

What the endpoints mean
-----------------------
- A **source** unit is the value of its tensor: ``"mixed3a:81"`` is the post-ReLU
  output (``mixed3a`` = ``mixed3a_3x3`` channel 17); ``"conv2d2_pre_relu:5"`` is the
  pre-ReLU value. Units of the synthesized ``<block>_pre_relu`` concatenations are
  read as the block's channel with its ReLU linearized.
- A **destination** unit is its pre-activation: ``"mixed3b:379"`` means the output of
  the convolution producing ``mixed3b_5x5_pre_relu`` channel 59 (379 - 320), before
  the bias and the ReLU. A destination on a max-pool or LRN tensor is that tensor's
  linearized value.

Spatial layout
--------------
``W[d, s, i, j]`` is indexed like a conv weight (cross-correlation, as torch and
TensorFlow use): position (i, j) holds the weight from source unit ``s`` at offset
``(i - kh//2, j - kw//2)`` relative to the destination unit, counted in the
SOURCE layer's grid; the centre (kh//2, kw//2) is the source position under the
destination's receptive-field centre. Kernels are square and odd: a 1x7 or 7x1
convolution (InceptionV3's factorized 7x7s) gives a kernel zero-padded to 7x7. Where
the destination units lie in different branches (e.g. a family spanning mixed3b's 1x1
and 5x5 branches), each kernel is zero-padded around its centre to the largest size.

Direct and expanded
-------------------
- If the source tensor is the direct input of the destination's convolution (possibly
  as one branch of a concatenation; e.g. ``conv2d1 -> conv2d2``, ``mixed3a ->
  mixed3b_1x1``, ``mixed3a_3x3_bottleneck -> mixed3a_3x3``), the result is exactly
  the slice of that convolution's weight (``connection(...).direct`` is True).
- Otherwise the result is the **expanded weight**: the linear map from source to
  destination of the network linearized as follows.
    * ReLU -> identity.
    * max-pool -> average pool over the same window and stride (each of the k*k taps
      weighs 1/k^2), with TensorFlow SAME geometry. At a map border TF's SAME average
      pool divides by the number of in-bounds cells (padding does not count); the
      expanded weights are defined for interior positions, where every window is
      complete, so padding never enters them. An average pool (InceptionV3's pool
      branches) is linear already and is the same average there.
    * LRN -> identity (``lrn="identity"``, the default), or (``lrn="at_input"``) the
      LRN's Jacobian at a stated per-channel operating point ``v``, the same at every
      position: ``dy_c/dx_k = [c=k] s_c^-b - 2 a b v_c v_k s_c^(-b-1) [|c-k| <= r]``,
      ``s_c = 2 + a * sum_{|c'-c|<=r} v_c'^2`` (TF's constants, see `circuits.core.ops`).
    * Biases are dropped: the expanded weight is the linear part only.
  The map is computed exactly by either of two methods: ``"compose"`` convolves the
  kernels along every path (strides dilate the downstream kernel), ``"autograd"``
  back-propagates from the destination unit at the centre of a linearized forward
  pass started at the source tensor. They agree to rounding (tests check it).

Example:
    >>> import weights
    >>> m = weights.model("random")
    >>> weights_between(m, "mixed3a:early_curves", "mixed3b:curves").shape
    torch.Size([10, 11, 5, 5])
    >>> connection("conv2d1:3", "conv2d2:7", m).direct
    True
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

from circuits.analysis.networks import common_network, network_of, resolve
from circuits.core import graph
from circuits.core import ops, walk
from circuits.core.units import Unit

__all__ = [
    "Route",
    "Connection",
    "connection",
    "weights_between",
    "lrn_jacobian",
    "WeightSummary",
    "summarize",
    "summary_rows",
    "OrientationProfile",
    "weight_by_orientation_difference",
    "FIRST_LAYER",
    "LAST_LAYER",
    "LRN_MODES",
    "METHODS",
]

# The tensors weights between units may span: declared with each network (its graph's
# `expanded_span`). These two are InceptionV1's, kept for code that imports them.
FIRST_LAYER, LAST_LAYER = graph.INCEPTION_V1.expanded_span
LRN_MODES = ("identity", "at_input")
METHODS = ("compose", "autograd")


# --- resolving endpoints ---------------------------------------------------


def _check_range(u: Unit, role: str, g: graph.Graph) -> None:
    if not g.in_expanded_span(u.layer):
        first, last = g.expanded_span
        # Named by its unit layers (InceptionV1: conv2d0 ... mixed4a), then exactly by its tensors.
        layers = [n for n in g.trunk_layers if g.in_expanded_span(n)]
        raise ValueError(
            f"{role} {u.id} is outside {layers[0]} ... {layers[-1]}: weights between units of {g.name} are "
            f"defined for the tensors from {first} to {last} (run `circuits layers` for their names)"
        )


def _units(spec, role: str, g) -> list[Unit]:
    units = resolve(spec, g)  # g: the model (its own families count) or a Graph
    g = common_network(units, f"{role} units")
    for u in units:
        _check_range(u, role, g)
    layers = sorted({u.layer for u in units}, key=g.index)
    if len(layers) > 1:
        raise ValueError(
            f"{role} units must all be in one layer, got units of {', '.join(layers)}; "
            f"call weights_between once per layer"
        )
    return units


def _src_tensor(units: list[Unit], g: graph.Graph) -> tuple[str, list[int], bool]:
    """The tensor the sources are read from, their channels, and whether a ReLU is linearized."""
    n = g.node(units[0].layer)
    if n.synthesized:  # <block>_pre_relu: the block's channels with its ReLU linearized
        return g.node(n.name.removesuffix("_pre_relu")).name, [u.channel for u in units], True
    return n.name, [u.channel for u in units], False


def _dst_tensor(u: Unit, g: graph.Graph) -> tuple[str, int]:
    """The tensor holding a destination's pre-activation (its conv), else its branch."""
    return g.conv_of(u.layer, u.channel) or g.branch_of(u.layer, u.channel)


@dataclass(frozen=True)
class Route:
    """The destinations that share one destination tensor, and the path to it.

    dst_tensor: the tensor holding their pre-activations (e.g. mixed3b_5x5_pre_relu).
    dst_channels: their channels in dst_tensor; dst_index: their rows in the result.
    path: the nodes between source and destination (source excluded, dst_tensor last).
    direct: True when dst_tensor is a convolution reading the source tensor directly;
        then `param` is that convolution's module name (state-dict key prefix) and
        `param_in_channels` are the source units' input channels of its weight.
    linearized: the ops replaced by linear stand-ins on the way ("relu", "maxpool", "lrn").
    kernel_size: side of this route's kernel in the source grid.
    """

    dst_tensor: str
    dst_channels: tuple[int, ...]
    dst_index: tuple[int, ...]
    path: tuple[str, ...]
    direct: bool
    param: str | None
    param_in_channels: tuple[int, ...] | None
    linearized: tuple[str, ...]
    kernel_size: int
    jump: int


@dataclass(frozen=True)
class Connection:
    """How a set of source units reaches a set of destination units (no weights needed).

    >>> c = connection("mixed3a:early_curves", "mixed3b:curves", graph.INCEPTION_V1)
    >>> c.src_tensor, c.routes[0].dst_tensor, c.direct, c.kernel_size
    ('mixed3a', 'mixed3b_5x5_pre_relu', False, 5)
    """

    src_units: tuple[Unit, ...]
    dst_units: tuple[Unit, ...]
    src_tensor: str
    src_channels: tuple[int, ...]
    routes: tuple[Route, ...]
    #: the network the units belong to (its graph)
    network: graph.Graph = graph.INCEPTION_V1

    @property
    def direct(self) -> bool:
        """True when every destination reads the source tensor through one convolution."""
        return all(r.direct for r in self.routes)

    @property
    def kernel_size(self) -> int:
        return max(r.kernel_size for r in self.routes)

    @property
    def linearized(self) -> tuple[str, ...]:
        return tuple(sorted({op for r in self.routes for op in r.linearized}))

    def lrn_layers(self) -> list[str]:
        """The LRN tensors on the way: the ops linearized around an operating point
        (`Op.takes_operating_point`; they need one with lrn="at_input")."""
        g = self.network
        return sorted({p for r in self.routes for p in r.path if g.node(p).kind.takes_operating_point}, key=g.index)


def _support(g: graph.Graph, src: str, path: Sequence[str]) -> tuple[int, int]:
    """(radius in the source grid, jump) of the last node of `path` as seen from `src`."""
    def step(n, ins):  # inputs that do not depend on `src` add nothing to the support
        return n.kind.support(n, [r for r in ins if r is not None])

    ry, rx, jump = walk.forward(g, (path[-1],), {src: (0, 0, 1)}, step, start=src)[path[-1]]
    return max(ry, rx), jump


@functools.lru_cache(maxsize=1024)
def _route(g: graph.Graph, src: str, dst: str, src_pre_relu: bool) -> tuple:
    path = walk.plan(g, (dst,), start=src).names
    kinds = [g.node(p).kind for p in path]
    # Every nonlinearity strictly inside the path is linearized, and the destination
    # itself when it is one (a destination on a pool or LRN tensor is its linearized value).
    linearized = {k.kind for k in kinds if k.nonlinear}
    if src_pre_relu:
        linearized.add("relu")
    d = g.node(dst)
    # direct: the destination's convolution reads the source, at most through concatenations
    direct = d.kind.has_kernel and not linearized and sum(not k.joins_branches for k in kinds) == 1
    param = d.param if direct else None
    offset = 0
    if direct and d.inputs[0] != src:
        offset = next(off for b, off, _ in g.branches(d.inputs[0]) if b == src)
    radius, jump = _support(g, src, path)
    return path, direct, param, offset, tuple(sorted(linearized)), 2 * radius + 1, jump


def connection(src, dst, network=None) -> Connection:
    """Resolve `src` and `dst` (unit ids, family ids, Family objects or lists) into routes.

    network: the model (whose own families count) or Graph the units belong to; None
    only for resolved Units.
    Raises ValueError for units outside the network's `expanded_span`, units of several
    layers or networks, or a source that the destination does not depend on.
    """
    su = _units(src, "source", network)
    g = su[0].network
    du = _units(dst, "destination", network if network is not None else g)
    src_tensor, src_channels, pre_relu = _src_tensor(su, g)
    groups: dict[str, list[tuple[int, int]]] = {}
    for k, u in enumerate(du):
        t, ch = _dst_tensor(u, g)
        groups.setdefault(t, []).append((k, ch))
    routes = []
    for t, members in groups.items():
        if t == src_tensor or src_tensor not in g.ancestors(t):
            first = du[members[0][0]]
            raise ValueError(
                f"source {su[0].layer} is not upstream of destination {first.id} "
                f"(its pre-activation {t} does not depend on {src_tensor}); "
                f"the source must be a layer upstream of the destination's convolution (e.g. "
                f"{g.node(t).inputs[0]} for {first.id})"
            )
        path, direct, param, offset, linearized, size, jump = _route(g, src_tensor, t, pre_relu)
        routes.append(
            Route(
                dst_tensor=t,
                dst_channels=tuple(ch for _, ch in members),
                dst_index=tuple(k for k, _ in members),
                path=path,
                direct=direct,
                param=param,
                param_in_channels=tuple(c + offset for c in src_channels) if direct else None,
                linearized=linearized,
                kernel_size=size,
                jump=jump,
            )
        )
    return Connection(tuple(su), tuple(du), src_tensor, tuple(src_channels), tuple(routes), g)


# --- LRN operating point -----------------------------------------------------


lrn_jacobian = ops.lrn_jacobian


def _lrn_points(model, conn: Connection, lrn: str, input, dtype) -> dict[str, torch.Tensor]:
    if lrn not in LRN_MODES:
        raise ValueError(f"unknown lrn mode {lrn!r}; use one of {', '.join(LRN_MODES)}")
    names = conn.lrn_layers()
    g = conn.network
    if lrn == "identity":
        if input is not None:
            raise ValueError("input= is the LRN operating point and is only used with lrn='at_input'")
        return {}
    if not any(n.kind.takes_operating_point for n in g.nodes):
        raise ValueError(
            f"lrn='at_input' linearizes LRNs around an operating point, but {g.name} has no LRN layer; "
            "leave lrn at its default ('identity', which changes nothing here)"
        )
    if input is None:
        raise ValueError(
            "lrn='at_input' needs input=: a per-channel vector of the LRN's input, a dict "
            "{lrn layer: vector}, or images [N, 3, H, W] (the spatial mean of the LRN's input is used)"
        )
    if not names:
        return {}
    if isinstance(input, Mapping):
        missing = [n for n in names if n not in input]
        if missing:
            raise KeyError(f"input= has no operating point for {', '.join(missing)} (keys: {', '.join(map(str, input))})")
        points = {n: torch.as_tensor(input[n]) for n in names}
    else:
        t = torch.as_tensor(input)
        if t.dim() == 4:
            with torch.no_grad():
                cache = model.run_with_cache(t, [g.node(n).inputs[0] for n in names])
            points = {n: cache[g.node(n).inputs[0]].mean(dim=(0, 2, 3)) for n in names}
        elif t.dim() == 1:
            if len(names) > 1:
                raise ValueError(f"this path crosses {len(names)} LRNs ({', '.join(names)}): give input= as a dict of vectors")
            points = {names[0]: t}
        else:
            raise ValueError(f"input= must be a vector [C], a dict of vectors, or images [N, 3, H, W]; got shape {list(t.shape)}")
    for n, v in points.items():
        need = g.node(n).channels
        if v.dim() != 1 or v.shape[0] != need:
            raise ValueError(f"the operating point of {n} must have {need} values (one per channel), got shape {list(v.shape)}")
    return {n: v.to(dtype) for n, v in points.items()}


# --- the two methods -------------------------------------------------------


def _params(model, name: str):
    n = model.graph.node(name)
    return getattr(model, n.param) if n.param else None


def _pad_to(k: torch.Tensor, size: int) -> torch.Tensor:
    return ops.pad_kernel(k, (size, size))


def _compose(model, src: str, src_channels, route: Route, points, dtype) -> torch.Tensor:
    """Kernels composed along the path, each op by its op-table linearization."""
    g = model.graph
    S = len(src_channels)
    k0 = torch.zeros(g.node(src).channels, S, 1, 1, dtype=dtype)
    k0[list(src_channels), torch.arange(S), 0, 0] = 1

    def step(n, ks):  # an input that does not depend on `src` is None: it adds no kernel
        dst_channels = route.dst_channels if n.name == route.dst_tensor and n.kind.has_kernel else None
        return n.kind.compose(
            n, ks, _params(model, n.name),
            channels=[g.node(i).channels for i in n.inputs], point=points.get(n.name), dst_channels=dst_channels,
        )

    out = walk.forward(g, (route.dst_tensor,), {src: (k0, 1)}, step, start=src)[route.dst_tensor][0]
    if not g.node(route.dst_tensor).kind.has_kernel:
        out = out[list(route.dst_channels)]
    return out


def _geometry(g: graph.Graph, src: str, dst: str, radius: int) -> tuple[int, tuple[int, int], tuple[int, int]]:
    """An input size whose `src` map holds the whole window of `dst`'s centre unit.

    Returns (input size, dst centre position, its anchor in the src grid), placed with
    the receptive fields of `circuits.core.graph` (independent of the kernel algebra).
    """
    for size in range(g.min_input_size(dst), 4096):
        h = g.output_hw(src, size)[0]
        if h < 2 * radius + 1:
            continue
        p = g.centre_position(dst, size)
        cy, cx = g.receptive_field(dst, size).centre_of(*p)
        rs = g.receptive_field(src, size)
        ay, ax = (cy - rs.first_centre[0]) / rs.stride, (cx - rs.first_centre[1]) / rs.stride
        if ay != int(ay) or ax != int(ax):  # pragma: no cover - odd kernels keep centres on the grid
            raise AssertionError(f"{dst} centre falls between {src} cells")
        ay, ax = int(ay), int(ax)
        if radius <= min(ay, ax) and max(ay, ax) + radius < h:
            return size, p, (ay, ax)
    raise ValueError(f"no input size up to 4096 fits the window of {dst} in {src}")  # pragma: no cover


def _autograd(model, src: str, src_channels, route: Route, points, dtype, chunk: int = 64) -> torch.Tensor:
    g = model.graph
    radius = route.kernel_size // 2
    size, (py, px), (ay, ax) = _geometry(g, src, route.dst_tensor, radius)
    hw = g.output_hw(src, size)
    S, out = len(src_channels), []
    for start in range(0, len(route.dst_channels), chunk):
        dst_ch = list(route.dst_channels[start : start + chunk])
        D = len(dst_ch)
        x = torch.zeros(D, S, *hw, dtype=dtype, requires_grad=True)
        full = torch.zeros(D, g.node(src).channels, *hw, dtype=dtype)
        full[:, list(src_channels)] = x

        def step(n, xs, D=D):
            # an input that does not depend on the source contributes no linear term: zeros
            xs = [x if x is not None else torch.zeros(D, g.node(i).channels, *g.output_hw(i, size), dtype=dtype)
                  for i, x in zip(n.inputs, xs)]
            return n.kind.linear(n, xs, _params(model, n.name), bias=False, point=points.get(n.name))

        y = walk.forward(g, (route.dst_tensor,), {src: full}, step, start=src)[route.dst_tensor]
        picked = y[torch.arange(D), dst_ch, py, px]
        (grad,) = torch.autograd.grad(picked.sum(), x)
        crop = grad[:, :, ay - radius : ay + radius + 1, ax - radius : ax + radius + 1]
        outside = grad.detach().clone()
        outside[:, :, ay - radius : ay + radius + 1, ax - radius : ax + radius + 1] = 0
        if bool(outside.any()):  # pragma: no cover - a bug in the support computation
            raise AssertionError("gradient outside the computed kernel support")
        out.append(crop.detach())
    return torch.cat(out)


def weights_between(
    model,
    src,
    dst,
    *,
    lrn: str = "identity",
    input=None,
    method: str = "compose",
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Weights ``[n_dst, n_src, k, k]`` from `src` to `dst` (see the module docstring).

    src, dst: unit ids (``"mixed3a:81"``), family ids (``"mixed3b:curves"``), Family
        objects, or lists of unit ids of the model's network; each side within one
        layer of its `expanded_span` (InceptionV1: conv2d0 ... mixed4a).
    lrn: "identity" (LRN -> identity) or "at_input" (LRN -> its Jacobian at `input`).
    input: with lrn="at_input", the LRN operating point: a vector of the LRN's input
        channels, a dict {lrn layer name: vector}, or images [N, 3, H, W] whose spatial
        mean LRN input is used.
    method: "compose" (kernel composition) or "autograd" (gradient of the centre unit
        of a linearized forward pass); both exact, they agree to rounding. A direct
        connection returns the parameter slice whatever the method.
    dtype: computation and result dtype (default: the model's weight dtype).

    >>> import weights
    >>> m = weights.model("random")
    >>> w = weights_between(m, "conv2d1:3", ["conv2d2:7", "conv2d2:9"])
    >>> torch.equal(w, m.conv2d2_pre_relu_conv.weight[[7, 9]][:, [3]])
    True
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    g = network_of(model)
    conn = connection(src, dst, model)
    if dtype is None:
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    points = _lrn_points(model, conn, lrn, input, dtype)
    size = conn.kernel_size
    result = torch.zeros(len(conn.dst_units), len(conn.src_units), size, size, dtype=dtype)
    for r in conn.routes:
        if r.direct:
            d = g.node(r.dst_tensor)
            k = d.kind.kernel_slice(d, getattr(model, r.param), r.dst_channels, r.param_in_channels).to(dtype)
        elif method == "compose":
            k = _compose(model, conn.src_tensor, conn.src_channels, r, points, dtype)
        else:
            k = _autograd(model, conn.src_tensor, conn.src_channels, r, points, dtype)
        result[list(r.dst_index)] = _pad_to(k, size)
    return result


# --- summaries -------------------------------------------------------------


@dataclass(frozen=True)
class WeightSummary:
    """Per (dst, src) pair summaries of a weight tensor ``[dst, src, kh, kw]``, each ``[dst, src]``.

    total: sum over the kernel; max_positive: the largest weight, 0 if none is positive;
    max_negative: the most negative weight, 0 if none is negative; positive_mass: sum of
    the positive weights; negative_mass: sum of the negative weights (<= 0), so
    total = positive_mass + negative_mass.
    """

    total: torch.Tensor
    max_positive: torch.Tensor
    max_negative: torch.Tensor
    positive_mass: torch.Tensor
    negative_mass: torch.Tensor


def summarize(w: torch.Tensor) -> WeightSummary:
    """The article's summaries of a weight tensor, per (dst, src) pair.

    >>> s = summarize(torch.tensor([[[[1.0, -2.0], [3.0, 0.5]]]]))
    >>> s.total.item(), s.max_positive.item(), s.max_negative.item(), s.negative_mass.item()
    (2.5, 3.0, -2.0, -2.0)
    """
    if w.dim() != 4:
        raise ValueError(f"expected weights [dst, src, kh, kw], got shape {list(w.shape)}")
    flat = w.flatten(2)
    pos, neg = flat.clamp(min=0), flat.clamp(max=0)
    return WeightSummary(flat.sum(-1), pos.amax(-1), neg.amin(-1), pos.sum(-1), neg.sum(-1))


def summary_rows(w: torch.Tensor, src_units: Sequence[Unit], dst_units: Sequence[Unit]) -> list[dict]:
    """One row per (dst, src) pair with the `summarize` values, as plain Python numbers."""
    s = summarize(w)
    if w.shape[:2] != (len(dst_units), len(src_units)):
        raise ValueError(f"weights of shape {list(w.shape)} do not match {len(dst_units)} dst x {len(src_units)} src units")
    rows = []
    for d, du in enumerate(dst_units):
        for k, su in enumerate(src_units):
            rows.append(
                {
                    "dst": du.id,
                    "src": su.id,
                    "total": float(s.total[d, k]),
                    "max_positive": float(s.max_positive[d, k]),
                    "max_negative": float(s.max_negative[d, k]),
                    "positive_mass": float(s.positive_mass[d, k]),
                    "negative_mass": float(s.negative_mass[d, k]),
                }
            )
    return rows


@dataclass(frozen=True)
class OrientationProfile:
    """Weights binned by orientation difference (dst - src, wrapped into [-period/2, period/2)).

    centres: bin centres in degrees; mean: mean weight per bin (nan for an empty bin);
    counts: pairs per bin; diffs, values: every (dst, src) pair's difference and weight.
    """

    centres: torch.Tensor
    mean: torch.Tensor
    counts: torch.Tensor
    diffs: torch.Tensor
    values: torch.Tensor


def weight_by_orientation_difference(
    weights: torch.Tensor,
    src_orientations: Sequence[float],
    dst_orientations: Sequence[float],
    *,
    period: float = 360.0,
    bin_width: float = 45.0,
) -> OrientationProfile:
    """Bin pair weights of two rotation-equivariant families by their orientation difference.

    weights: ``[dst, src]`` scalars per pair (e.g. ``summarize(w).total``), or a full
        ``[dst, src, kh, kw]`` tensor, which is summed over the kernel first.
    src_orientations, dst_orientations: preferred orientation of each unit, degrees.
    period: 360 for curves (a curve and its 180-degree rotation differ), 180 for lines.
    bin_width: bins are centred on multiples of it (0 is a bin centre); it must
        divide the period.

    >>> p = weight_by_orientation_difference(torch.tensor([[1.0, -1.0]]), [0, 180], [10])
    >>> p.mean[p.centres == 0].item(), p.mean[p.centres == -180].item()
    (1.0, -1.0)
    """
    w = torch.as_tensor(weights)
    if w.dim() == 4:
        w = w.flatten(2).sum(-1)
    if w.dim() != 2:
        raise ValueError(f"weights must be [dst, src] or [dst, src, kh, kw], got shape {list(w.shape)}")
    so = torch.as_tensor(src_orientations, dtype=torch.float64)
    do = torch.as_tensor(dst_orientations, dtype=torch.float64)
    if w.shape != (len(do), len(so)):
        raise ValueError(
            f"weights of shape {list(w.shape)} need {w.shape[0]} dst and {w.shape[1]} src orientations, "
            f"got {len(do)} and {len(so)}"
        )
    n_bins = period / bin_width
    if bin_width <= 0 or abs(n_bins - round(n_bins)) > 1e-9:
        raise ValueError(f"bin_width {bin_width} must be positive and divide the period {period}")
    n_bins = int(round(n_bins))
    diffs = torch.remainder(do[:, None] - so[None, :] + period / 2, period) - period / 2
    idx = torch.remainder(torch.round(diffs / bin_width).long(), n_bins)
    centres = torch.remainder(torch.arange(n_bins, dtype=torch.float64) * bin_width + period / 2, period) - period / 2
    order = torch.argsort(centres)
    vals = w.to(torch.float64)
    sums = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, idx.flatten(), vals.flatten())
    counts = torch.bincount(idx.flatten(), minlength=n_bins)
    mean = torch.where(counts > 0, sums / counts.clamp(min=1), torch.full_like(sums, float("nan")))
    return OrientationProfile(centres[order], mean[order], counts[order], diffs, vals)
