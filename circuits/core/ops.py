"""The op table: what each kind of node computes, written once, with TensorFlow's numerics.

Every node of a network declaration (`circuits.core.graph`) names an op kind; the entry
`OPS[kind]` is everything the rest of the package asks of that kind:

- ``forward``: the real computation (the model runs it);
- ``forward_valid``: the same on a window that never reaches the padding (the
  receptive-field cone, `circuits.tuning.cone`, runs it on cropped inputs);
- ``out_size``, ``receptive_field`` and ``input_window``: its geometry (output sizes,
  receptive fields, the input window an output window reads);
- ``linear`` and ``compose``: its linearization (ReLU -> identity, max-pool -> average
  pool, LRN -> identity or its Jacobian at an operating point), for expanded weights
  (`circuits.analysis.expanded`) and re-expression (`circuits.editing.paths`);
- ``bounds``: interval arithmetic, for the hand-built compiler's dead-unit check;
- ``identity_on``, ``linearizable``, ``nonnegative_linearization``,
  ``takes_operating_point``, ``joins_branches``: what the op is on an interval and what
  its linear stand-in is (the questions edits and expanded weights ask, never an op's class);
- ``param_shapes`` / ``make_module``: the parameters it owns.

TensorFlow's numerics differ from PyTorch's defaults: SAME padding puts the odd pixel
after (bottom/right) and depends on the input size; max-pool pads with -inf; SAME
average pooling divides by the number of in-image cells (Keras's InceptionV3);
TensorFlow's LRN does not divide alpha by the window size (torch's LocalResponseNorm
does; the popular PyTorch port of InceptionV1 gets this wrong).

Adding an op kind is one `Op` subclass and its entry in `OPS`. Nothing else walks the
graph by hand: `circuits.core.walk` runs a step (one of these methods) at every node.

Example:
    >>> import torch
    >>> x = torch.randn(1, 3, 8, 8)
    >>> max_pool_same(x, (3, 3), 2).shape
    torch.Size([1, 3, 4, 4])
    >>> OPS["maxpool"].nonlinear, OPS["avgpool"].nonlinear
    (True, False)
"""

from __future__ import annotations

import functools
import importlib
from types import SimpleNamespace
from typing import TYPE_CHECKING, Mapping, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import torch
    import torch.nn.functional as F
    from torch import nn

    from circuits.core.graph import Node


class _OnFirstUse:
    """A module imported when one of its attributes is first used: the geometry of the
    op table (output sizes, receptive fields) serves `circuits layers`/`unit`/`families`
    and `--help`, which need no torch (about a second to import)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        module = importlib.import_module(self._name)
        globals()[self._alias] = module  # later uses go straight to the module
        return getattr(module, attr)


if not TYPE_CHECKING:
    torch, F, nn = _OnFirstUse("torch"), _OnFirstUse("torch.nn.functional"), _OnFirstUse("torch.nn")
    torch._alias, F._alias, nn._alias = "torch", "F", "nn"

__all__ = [
    "OPS",
    "Op",
    "same_padding",
    "pads",
    "conv2d_same",
    "max_pool_same",
    "avg_pool_same",
    "avg_pool_valid",
    "lrn",
    "lrn_jacobian",
    "fold_batchnorm",
    "LRN_DEPTH_RADIUS",
    "LRN_BIAS",
    "LRN_ALPHA",
    "LRN_BETA",
    "UnsupportedOpError",
]

LRN_DEPTH_RADIUS = 5
LRN_BIAS = 2.0
LRN_ALPHA = 1e-4
LRN_BETA = 0.5

Window = tuple[int, int, int, int]  # y0, y1, x0, x1 (inclusive), in a tensor's own coordinates
Geometry = tuple[int, int, float]  # receptive field along one axis: size, jump, first centre
Kernel = tuple["torch.Tensor", int]  # composed kernel [C, S, kh, kw] and its jump in the source grid


class UnsupportedOpError(ValueError):
    """An analysis asked of an op that has no rule for it (an opaque node's cone or kernel,
    a gate's linearization), naming the node and its op."""


# --- TensorFlow's padding and pooling ----------------------------------------------


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding (before, after) along one axis: the odd pixel goes after.

    >>> same_padding(224, 7, 2), same_padding(7, 3, 2)
    ((2, 3), (1, 1))
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pair(k) -> tuple[int, int]:
    return (k, k) if isinstance(k, int) else (int(k[0]), int(k[1]))


def pads(hw: tuple[int, int], kernel, stride: int, padding: str = "same") -> tuple[int, int, int, int]:
    """(top, bottom, left, right) padding of a window op on a map of size hw (kernel: k or (kh, kw))."""
    kernel = _pair(kernel)
    if padding == "valid":
        return 0, 0, 0, 0
    top, bottom = same_padding(hw[0], kernel[0], stride)
    left, right = same_padding(hw[1], kernel[1], stride)
    return top, bottom, left, right


def conv2d_same(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int = 1) -> torch.Tensor:
    """conv2d with TensorFlow SAME padding (zeros; the odd pixel bottom/right)."""
    top, bottom, left, right = pads(x.shape[-2:], weight.shape[-2:], stride)
    if top == bottom and left == right:
        # Symmetric: let the convolution pad, which avoids a copy of the input.
        return F.conv2d(x, weight, bias, stride, (top, left))
    return F.conv2d(F.pad(x, (left, right, top, bottom)), weight, bias, stride)


def max_pool_same(x: torch.Tensor, kernel, stride: int) -> torch.Tensor:
    """max-pool with TensorFlow SAME padding: padded cells are -inf, never picked."""
    kernel = _pair(kernel)
    top, bottom, left, right = pads(x.shape[-2:], kernel, stride)
    if top == bottom and left == right and 2 * top <= kernel[0] and 2 * left <= kernel[1]:
        # torch pads max_pool2d with -inf itself when the padding is symmetric.
        return F.max_pool2d(x, kernel, stride, (top, left))
    x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
    return F.max_pool2d(x, kernel, stride)


def avg_pool_same(x: torch.Tensor, kernel, stride: int) -> torch.Tensor:
    """TensorFlow's SAME average pool: the mean over the in-image cells of each window.

    Padding is excluded from the count (Keras's AveragePooling2D(padding="same")), so a
    corner cell of a 3x3 window averages 4 values, not 9.
    """
    kernel = _pair(kernel)
    top, bottom, left, right = pads(x.shape[-2:], kernel, stride)
    if top == bottom and left == right and 2 * top <= kernel[0] and 2 * left <= kernel[1]:
        return F.avg_pool2d(x, kernel, stride, (top, left), count_include_pad=False)
    pad = (left, right, top, bottom)
    total = F.avg_pool2d(F.pad(x, pad), kernel, stride)
    count = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), pad), kernel, stride)
    return total / count


def avg_pool_valid(x: torch.Tensor, kernel: tuple[int, int], stride: int) -> torch.Tensor:
    """average pool with VALID padding (Lucid's avgpool0)."""
    return F.avg_pool2d(x, kernel, stride)


def lrn(
    x: torch.Tensor,
    depth_radius: int = LRN_DEPTH_RADIUS,
    bias: float = LRN_BIAS,
    alpha: float = LRN_ALPHA,
    beta: float = LRN_BETA,
    *,
    channels: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """TensorFlow's local response normalization over channels.

    out = x / (bias + alpha * sum_{|c'-c| <= r} x[c']^2) ** beta, alpha NOT divided by 2r+1
    (torch.nn.LocalResponseNorm divides it; that is the common porting bug).

    channels: the (sorted) channel indices x holds (default all); out: the output channels
    wanted (default `channels`). Each output's window must lie inside `channels` (the cone
    computes only the channels a read needs).
    """
    c = torch.arange(x.shape[1], device=x.device) if channels is None else channels.to(x.device)
    o = c if out is None else out.to(x.device)
    # The windowed sum over channels as a 1x1 convolution with a band matrix: several
    # times faster on CPU than pooling over a channel axis, and exact up to the order
    # of summation.
    band = ((o[:, None] - c[None, :]).abs() <= depth_radius).to(x.dtype)[:, :, None, None]
    # bias + alpha * window sum, in the one convolution.
    denom = F.conv2d(x * x, band * alpha, torch.full((len(o),), float(bias), dtype=x.dtype, device=x.device))
    xo = x if out is None else take_channels(x, torch.searchsorted(c, o))
    return xo * (denom.rsqrt() if beta == 0.5 else denom.pow(-beta))


def lrn_jacobian(v: torch.Tensor) -> torch.Tensor:
    """Jacobian ``J[c, k] = d lrn(x)_c / d x_k`` of TF's LRN at the channel vector `v`.

    Written out from the formula (not by autograd):
    ``J[c, k] = [c=k] s_c^-b - 2 a b v_c v_k s_c^(-b-1) [|c-k| <= r]``.

    >>> lrn_jacobian(torch.zeros(4)).diagonal()
    tensor([0.7071, 0.7071, 0.7071, 0.7071])
    """
    v = torch.as_tensor(v)
    if v.dim() != 1:
        raise ValueError(f"an LRN operating point is a vector with one value per channel, got shape {list(v.shape)}")
    c = v.shape[0]
    r, b, a, beta = LRN_DEPTH_RADIUS, LRN_BIAS, LRN_ALPHA, LRN_BETA
    idx = torch.arange(c)
    band = ((idx[:, None] - idx[None, :]).abs() <= r).to(v.dtype)
    s = b + a * (band @ v.pow(2))
    return torch.diag(s.pow(-beta)) - 2 * a * beta * (v * s.pow(-beta - 1))[:, None] * v[None, :] * band


def fold_batchnorm(
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mean: torch.Tensor,
    variance: torch.Tensor,
    beta: torch.Tensor | None = None,
    gamma: torch.Tensor | None = None,
    eps: float = 1e-3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A convolution followed by inference-mode batch norm, as one convolution.

    BN(conv(x)) = gamma * (W*x + b - mean) / sqrt(var + eps) + beta, so the folded conv
    has W' = W * s and b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps)
    per output channel. Keras's InceptionV3 has no conv bias and no gamma
    (``scale=False``), and eps = 0.001.

    >>> w, b = fold_batchnorm(torch.ones(2, 1, 1, 1), None, torch.zeros(2), torch.full((2,), 3.999))
    >>> w.flatten().tolist(), b.tolist()
    ([0.5, 0.5], [0.0, 0.0])
    """
    s = (variance + eps).rsqrt()
    if gamma is not None:
        s = s * gamma
    b = -mean if bias is None else bias - mean
    b = b * s + (0 if beta is None else beta)
    return weight * s.view(-1, *([1] * (weight.dim() - 1))), b


# --- the op kinds ------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _zero_initialized(name: str) -> type:
    """torch.nn's `name` (Conv2d, Linear) starting from zeros instead of a random init.

    Parameters are loaded right after construction, so drawing random ones is wasted
    (seconds for InceptionV3's 22M), and `skip_init`'s meta-device round trip costs half a
    second of first-use imports: allocation and a memset are all that is needed.
    """
    base = getattr(nn, name)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.zero_()
            if self.bias is not None:
                self.bias.zero_()

    return type(name, (base,), {"reset_parameters": reset_parameters, "__module__": __name__,
                                "__doc__": f"torch.nn.{name} whose parameters start at 0."})


def _zeros_conv(cin: int, cout: int, kernel: tuple[int, int]) -> nn.Conv2d:
    return _zero_initialized("Conv2d")(cin, cout, kernel)


def _union(a: Window | None, b: Window) -> Window:
    if a is None:
        return b
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


def _memory_format(x: torch.Tensor):
    """channels_last when x is laid out so (channel stride 1; a cropped view included): CPU
    pooling is ~10x faster there than on NCHW, so channel subsets keep the layout."""
    return torch.channels_last if x.dim() == 4 and x.shape[1] > 1 and x.stride(1) == 1 else torch.contiguous_format


def take_channels(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """x[:, pos] in x's memory layout (x itself when pos is every channel in order)."""
    if len(pos) == x.shape[1] and bool((pos == torch.arange(len(pos))).all()):
        return x
    return x[:, pos].contiguous(memory_format=_memory_format(x))


def zeros_channels(x: torch.Tensor, channels: int, hw: tuple[int, int]) -> torch.Tensor:
    """Zeros [N, channels, *hw] in x's dtype, device and memory layout."""
    return torch.zeros((x.shape[0], channels, *hw), dtype=x.dtype, device=x.device).contiguous(
        memory_format=_memory_format(x))


class Op:
    """One op kind. Subclasses override what differs from an elementwise identity."""

    kind = ""
    has_params = False
    #: replaced by a linear stand-in when a path is linearized (expanded weights)
    nonlinear = False
    #: has a spatial cone (a unit reads a window of its input)
    spatial = True
    #: output channel c is computed from input channel c (and its neighbours, for an LRN)
    keeps_channels = False
    #: output channel c is a function of input channel c alone (ReLU, pools)
    channelwise = False
    #: joins branches (a concatenation): a channel of the output is a channel of one input
    joins_branches = False
    #: the activation function a layer's pre-activation goes through
    is_activation = False
    #: a sliding window with a kernel and a stride (conv, pools)
    windowed = False
    #: its weight is a convolution kernel between channels (`kernel_slice`): it computes a unit's pre-activation
    has_kernel = False
    #: runs code the table does not know (`Opaque`): no geometry beyond its size, no linearization, no bounds
    opaque = False
    #: the value passes through unchanged (an identity: dropout in eval, a module's output)
    passes_through = False
    #: linearized around an operating point (`linear`/`compose` take ``point=``: an LRN's Jacobian)
    takes_operating_point = False

    # what the op is on an interval, and what its linearization is
    def identity_on(self, node: "Node", lo: torch.Tensor, hi: torch.Tensor, m=None) -> bool:
        """Whether the op is the identity (equal to its input, hence to its linear stand-in)
        for every input in [lo, hi] (per-channel bounds of its first input); False when not
        known. m: its parameters, for ops that have them."""
        return False

    def linearizable(self, node: "Node") -> bool:
        """Whether the op has a linear stand-in (`linear`, `compose`) at this node."""
        return True

    def nonnegative_linearization(self, node: "Node") -> bool:
        """Whether its linear stand-in maps each channel to itself by a kernel with no
        negative tap, whatever its parameters (ReLU -> identity, max-pool -> average pool):
        then a weight into it keeps its sign through the op. False when not known."""
        return False

    # geometry
    def out_size(self, node: "Node", size: int, axis: int) -> int:
        return size

    def receptive_field(self, node: "Node", ins: Sequence[Geometry], in_size: int, axis: int) -> Geometry:
        return ins[0]

    def input_window(self, node: "Node", win: Window, src_hw: tuple[int, int]) -> Window:
        return win

    # parameters
    def param_shapes(self, node: "Node", cin: int) -> dict[str, tuple[int, ...]]:
        return {}

    def make_module(self, node: "Node", cin: int) -> nn.Module | None:
        return None

    # computation
    def forward(self, node: "Node", xs: Sequence[torch.Tensor], m: nn.Module | None) -> torch.Tensor:
        raise NotImplementedError

    def forward_valid(self, node: "Node", xs: Sequence[torch.Tensor], m: nn.Module | None) -> torch.Tensor:
        return self.forward(node, xs, m)

    # computing some channels only (the cone of a few units)
    def input_channels(self, node: "Node", out: torch.Tensor, m, cins: Sequence[int]) -> list[torch.Tensor]:
        """For each input, the sorted channels that output channels `out` (sorted) read;
        through non-zero weights only for an op with parameters (a channel every needed
        weight ignores changes nothing, whatever its value)."""
        if self.channelwise:
            return [out for _ in cins]
        return [torch.arange(c) for c in cins]

    def zero_channels(self, node: "Node", m, zin: Sequence[torch.Tensor], cins: Sequence[int]) -> torch.Tensor:
        """Bool mask of the output channels that are 0 for every input, given the masks `zin`
        of the inputs' always-zero channels. Channelwise ops and channel-keeping ones (ReLU,
        pools, LRN) map 0 to 0, so they keep their input's zeros; other ops (the input, the
        classifier, softmax) claim none."""
        if self.channelwise or self.keeps_channels:
            return zin[0]
        return torch.zeros(node.channels, dtype=torch.bool)

    def prepare_channels(self, node: "Node", m, have: Sequence[torch.Tensor], out: torch.Tensor):
        """What `forward_channels` needs of the parameters for these channels (the sliced
        weights of a conv), computed once per plan rather than per batch; default `m`."""
        return m

    def forward_channels(self, node: "Node", xs: Sequence[torch.Tensor], prep, have: Sequence[torch.Tensor],
                         out: torch.Tensor, cins: Sequence[int]) -> torch.Tensor:
        """`forward_valid`'s output channels `out` only, from inputs that hold the channels
        `have[i]` (sorted, a superset of `input_channels`) in that order; `prep` is
        `prepare_channels`'s result."""
        m = prep
        if self.channelwise:
            return self.forward_valid(node, [take_channels(xs[0], torch.searchsorted(have[0], out))], m)
        # Any other op: the full input with the channels nobody needs left at 0 (they do
        # not reach `out`, by `input_channels`), then the channels asked for.
        full = []
        for x, ch, c in zip(xs, have, cins):
            z = zeros_channels(x, c, tuple(x.shape[2:]))
            z[:, ch] = x
            full.append(z)
        return take_channels(self.forward_valid(node, full, m), out)

    # linearization
    def linear(self, node: "Node", xs: Sequence[torch.Tensor], m, *, bias: bool = True, point=None) -> torch.Tensor:
        """The linearized op (its linear stand-in; biases kept only with bias=True)."""
        return self.forward(node, xs, m)

    def compose(self, node: "Node", ks: Sequence[Kernel | None], m, *, channels: Sequence[int], point=None,
                dst_channels=None) -> Kernel:
        """The composed kernel of the linearized op applied after the kernels `ks`."""
        raise NotImplementedError(f"{self.kind} cannot be linearized")

    def support(self, node: "Node", ins: Sequence[tuple[int, int, int]]) -> tuple[int, int, int]:
        """(radius y, radius x, jump) of the linearized op's kernel, in the source grid."""
        return ins[0]

    def kernel_slice(self, node: "Node", m, dst_channels: Sequence[int], src_channels: Sequence[int]) -> torch.Tensor:
        """The weights [dst, src, kh, kw] from input channels `src_channels` to output
        channels `dst_channels` (ops with `has_kernel`)."""
        raise UnsupportedOpError(f"{node.name} ({self.kind}) has no convolution kernel")

    # interval arithmetic
    def bounds(self, node: "Node", ins: Sequence[tuple[torch.Tensor, torch.Tensor]], m) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError(f"no bounds for {self.kind}")

    def __repr__(self) -> str:
        return f"<op {self.kind}>"


class _Identity(Op):
    def forward(self, node, xs, m):
        return xs[0]

    def compose(self, node, ks, m, *, channels, point=None, dst_channels=None):
        return ks[0]

    def bounds(self, node, ins, m):
        return ins[0]


def _one_cell(node: "Node") -> bool:
    """A window op whose every window is one cell (1x1, stride 1, no padding): the identity."""
    return tuple(node.kernel) == (1, 1) and node.stride == 1 and tuple(node.pad) == (0, 0)


class Input(_Identity):
    kind = "input"

    def identity_on(self, node, lo, hi, m=None):
        return True

    def nonnegative_linearization(self, node):
        return True


class _WindowOp(Op):
    """A sliding-window op (conv and pools): kernel (kh, kw), stride, SAME or VALID padding."""

    windowed = True

    def out_size(self, node, size, axis):
        if node.padding == "valid":
            return (size - node.kernel[axis]) // node.stride + 1
        return -(-size // node.stride)

    def _before(self, node, in_size, axis):
        if node.padding == "valid":
            return 0
        return same_padding(in_size, node.kernel[axis], node.stride)[0]

    def _span(self, node, axis) -> int:
        """Input cells one window covers along `axis` (the kernel; dilated, for PyTorch's ops)."""
        return node.kernel[axis]

    def receptive_field(self, node, ins, in_size, axis):
        size, jump, start = ins[0]
        k, s = self._span(node, axis), node.stride
        before = self._before(node, in_size, axis)
        return size + (k - 1) * jump, jump * s, start + jump * ((k - 1) / 2 - before)

    def input_window(self, node, win, src_hw):
        y0, y1, x0, x1 = win
        (kh, kw), s = (self._span(node, 0), self._span(node, 1)), node.stride
        py, px = self._before(node, src_hw[0], 0), self._before(node, src_hw[1], 1)
        return y0 * s - py, y1 * s - py + kh - 1, x0 * s - px, x1 * s - px + kw - 1

    def support(self, node, ins):
        ry, rx, j = ins[0]
        kh, kw = self._span(node, 0), self._span(node, 1)
        return ry + j * (kh - 1) // 2, rx + j * (kw - 1) // 2, j * node.stride

    def _box(self, node, ks, point=None, dst_channels=None):
        """Compose with an average over the window (each of the kh*kw taps 1/(kh*kw))."""
        k, jump = ks[0]
        c, s, kh, kw = k.shape
        kernel_h, kernel_w = node.kernel
        box = torch.full((1, 1, kernel_h, kernel_w), 1.0 / (kernel_h * kernel_w), dtype=k.dtype)
        out = F.conv_transpose2d(box, k.reshape(1, c * s, kh, kw), stride=jump)
        return out.reshape(c, s, out.shape[-2], out.shape[-1]), jump * node.stride


class Conv(_WindowOp):
    """Convolution with bias; batch norm, where a network has it, is folded in at load time
    (`fold_batchnorm`), so its output is the pre-ReLU value."""

    kind = "conv"
    has_params = True
    has_kernel = True

    def kernel_slice(self, node, m, dst_channels, src_channels):
        return m.weight.detach()[list(dst_channels)][:, list(src_channels)]

    def param_shapes(self, node, cin):
        return {"weight": (node.channels, cin, *node.kernel), "bias": (node.channels,)}

    def make_module(self, node, cin):
        return _zeros_conv(cin, node.channels, node.kernel)

    def forward(self, node, xs, m):
        if node.padding == "valid":
            return F.conv2d(xs[0], m.weight, m.bias, node.stride)
        return conv2d_same(xs[0], m.weight, m.bias, node.stride)

    def forward_valid(self, node, xs, m):
        return F.conv2d(xs[0], m.weight, m.bias, node.stride)

    def input_channels(self, node, out, m, cins):
        used = m.weight.detach()[out].ne(0).flatten(2).any(2).any(0)
        return [torch.nonzero(used).flatten()]

    def zero_channels(self, node, m, zin, cins):
        # 0 for every input: no bias, and no non-zero weight from an input that is not always 0
        w = m.weight.detach()
        reads = w.ne(0).flatten(2).any(2)[:, ~zin[0]].any(1)
        return ~reads & (m.bias.detach().eq(0) if m.bias is not None else True)

    def prepare_channels(self, node, m, have, out):
        w = m.weight.detach()[out]
        b = m.bias.detach()[out] if m.bias is not None else None
        # Channels with all-zero weights and bias are 0 for every input: not computed.
        live = w.ne(0).flatten(1).any(1) | (b.ne(0) if b is not None else False)
        idx = torch.nonzero(live).flatten()
        return SimpleNamespace(
            n_out=len(out), all_live=bool(live.all()), idx=idx,
            weight=w[idx][:, have[0]].contiguous(), bias=b[idx] if b is not None else None,
        )

    def _conv_valid(self, node, x, weight, bias):
        """The unpadded convolution with these (sliced) weights."""
        return F.conv2d(x, weight, bias, node.stride)

    def forward_channels(self, node, xs, prep, have, out, cins):
        x = xs[0]
        if prep.all_live:
            return self._conv_valid(node, x, prep.weight, prep.bias)
        oh = (x.shape[-2] - self._span(node, 0)) // node.stride + 1
        ow = (x.shape[-1] - self._span(node, 1)) // node.stride + 1
        y = zeros_channels(x, prep.n_out, (oh, ow))
        if len(prep.idx):
            y[:, prep.idx] = self._conv_valid(node, x, prep.weight, prep.bias)
        return y

    def linear(self, node, xs, m, *, bias=True, point=None):
        w, b = m.weight.to(xs[0].dtype), (m.bias.to(xs[0].dtype) if bias else None)
        if node.padding == "valid":
            return F.conv2d(xs[0], w, b, node.stride)
        return conv2d_same(xs[0], w, b, node.stride)

    def compose(self, node, ks, m, *, channels, point=None, dst_channels=None):
        k, jump = ks[0]
        w = m.weight.detach().to(k.dtype)
        if dst_channels is not None:
            w = w[list(dst_channels)]
        # K_out[c, s, u] = sum_{m, a} W[c, m, a] K_in[m, s, u - jump * a]: a transposed conv.
        return F.conv_transpose2d(w, k, stride=jump), jump * node.stride

    def bounds(self, node, ins, m):
        lo, hi = (t.double() for t in ins[0])
        W, b = m.weight.detach().double(), m.bias.detach().double()
        pos, neg = W.clamp(min=0), W.clamp(max=0)
        hi_ = b + (pos * hi[None, :, None, None]).sum((1, 2, 3)) + (neg * lo[None, :, None, None]).sum((1, 2, 3))
        lo_ = b + (pos * lo[None, :, None, None]).sum((1, 2, 3)) + (neg * hi[None, :, None, None]).sum((1, 2, 3))
        return lo_, hi_


class MaxPool(_WindowOp):
    """Max-pool (padding cells are -inf). Linearized: the average pool over in-image cells."""

    kind = "maxpool"
    keeps_channels = True
    nonlinear = True
    channelwise = True

    def forward(self, node, xs, m):
        if node.padding == "valid":
            return F.max_pool2d(xs[0], node.kernel, node.stride)
        return max_pool_same(xs[0], node.kernel, node.stride)

    def forward_valid(self, node, xs, m):
        return F.max_pool2d(xs[0], node.kernel, node.stride)

    def linear(self, node, xs, m, *, bias=True, point=None):
        if node.padding == "valid":
            return F.avg_pool2d(xs[0], node.kernel, node.stride)
        return avg_pool_same(xs[0], node.kernel, node.stride)

    def identity_on(self, node, lo, hi, m=None):
        return _one_cell(node)

    def nonnegative_linearization(self, node):
        return True  # an average: every tap 1/(cells in the window)

    def compose(self, node, ks, m, *, channels, point=None, dst_channels=None):
        return self._box(node, ks)

    def bounds(self, node, ins, m):
        return ins[0]


class AvgPool(_WindowOp):
    """Average pool; SAME padding excludes the padded cells from the mean (TensorFlow)."""

    kind = "avgpool"
    keeps_channels = True
    channelwise = True

    def forward(self, node, xs, m):
        if node.padding == "valid":
            return avg_pool_valid(xs[0], node.kernel, node.stride)
        return avg_pool_same(xs[0], node.kernel, node.stride)

    def forward_valid(self, node, xs, m):
        return avg_pool_valid(xs[0], node.kernel, node.stride)

    def compose(self, node, ks, m, *, channels, point=None, dst_channels=None):
        return self._box(node, ks)

    def identity_on(self, node, lo, hi, m=None):
        return _one_cell(node)

    def nonnegative_linearization(self, node):
        return True

    def bounds(self, node, ins, m):
        return ins[0]


class ReLU(_Identity):
    kind = "relu"
    is_activation = True
    keeps_channels = True
    nonlinear = True
    channelwise = True

    def forward(self, node, xs, m):
        return F.relu(xs[0])

    def linear(self, node, xs, m, *, bias=True, point=None):
        return xs[0]

    def identity_on(self, node, lo, hi, m=None):
        return bool((lo >= 0).all())  # relu(x) = x for x >= 0

    def nonnegative_linearization(self, node):
        return True  # the identity

    def bounds(self, node, ins, m):
        lo, hi = ins[0]
        return lo.clamp(min=0), hi.clamp(min=0)


class LRN(_Identity):
    """TensorFlow's LRN. Linearized: identity, or its Jacobian at an operating point."""

    kind = "lrn"
    keeps_channels = True
    nonlinear = True
    takes_operating_point = True

    def forward(self, node, xs, m):
        return lrn(xs[0])

    def input_channels(self, node, out, m, cins):
        r = LRN_DEPTH_RADIUS
        win = (out[:, None] + torch.arange(-r, r + 1)[None, :]).flatten()
        return [torch.unique(win[(win >= 0) & (win < cins[0])])]

    def forward_channels(self, node, xs, prep, have, out, cins):
        # each output's window lies inside `have` (input_channels)
        return lrn(xs[0], channels=have[0], out=out)

    def linear(self, node, xs, m, *, bias=True, point=None):
        if point is None:
            return xs[0]
        # The real LRN around the operating point, minus its value there, so that
        # downstream LRNs see their own operating point; the gradient at x = 0 is the
        # Jacobian.
        v = point.view(1, -1, 1, 1).to(xs[0].dtype)
        return lrn(v + xs[0]) - lrn(v)

    def compose(self, node, ks, m, *, channels, point=None, dst_channels=None):
        if point is None:
            return ks[0]
        k, jump = ks[0]
        return torch.einsum("ck,ksij->csij", lrn_jacobian(point).to(k.dtype), k), jump

    def bounds(self, node, ins, m):
        # |lrn(x)_c| <= |x_c| / sqrt(2 + 1e-4 x_c^2) (the window sum holds x_c^2), which grows
        # with |x_c|: an LRN only shrinks a value, towards 0.
        lo, hi = ins[0]
        shrink = lambda v: v / torch.sqrt(LRN_BIAS + LRN_ALPHA * v * v)  # noqa: E731
        return shrink(lo.clamp(max=0)), shrink(hi.clamp(min=0))


class Concat(Op):
    """Channel concatenation of branches that share one spatial grid."""

    kind = "concat"
    joins_branches = True

    def receptive_field(self, node, ins, in_size, axis):
        # Branches are aligned (stride-1 odd kernels), so the union is the largest.
        return max(ins)

    def forward(self, node, xs, m):
        return torch.cat(list(xs), dim=1)

    def zero_channels(self, node, m, zin, cins):
        return torch.cat(list(zin))

    def input_channels(self, node, out, m, cins):
        parts, off = [], 0
        for c in cins:
            parts.append(out[(out >= off) & (out < off + c)] - off)
            off += c
        return parts

    def forward_channels(self, node, xs, prep, have, out, cins):
        parts = [take_channels(x, torch.searchsorted(h, ch))
                 for x, h, ch in zip(xs, have, self.input_channels(node, out, prep, cins))]
        return torch.cat(parts, dim=1)

    def compose(self, node, ks, m, *, channels, point=None, dst_channels=None):
        present = [k for k in ks if k is not None]
        kh = max(k.shape[-2] for k, _ in present)
        kw = max(k.shape[-1] for k, _ in present)
        jump = present[0][1]
        S = present[0][0].shape[1]
        like = present[0][0]
        parts = [
            pad_kernel(k[0], (kh, kw)) if k is not None else like.new_zeros(c, S, kh, kw)
            for k, c in zip(ks, channels)
        ]
        return torch.cat(parts), jump

    def support(self, node, ins):
        return max(r[0] for r in ins), max(r[1] for r in ins), ins[0][2]

    def identity_on(self, node, lo, hi, m=None):
        return len(node.inputs) == 1

    def nonnegative_linearization(self, node):
        return True  # itself: each output channel is a copy of one input channel

    def bounds(self, node, ins, m):
        return torch.cat([lo for lo, _ in ins]), torch.cat([hi for _, hi in ins])


class Linear(Op):
    """The classifier: a matrix on a 1x1 map."""

    kind = "linear"
    has_params = True
    spatial = False

    def out_size(self, node, size, axis):
        return 1

    def param_shapes(self, node, cin):
        return {"weight": (node.channels, cin), "bias": (node.channels,)}

    def make_module(self, node, cin):
        return _zero_initialized("Linear")(cin, node.channels)

    def forward(self, node, xs, m):
        x = xs[0]
        if x.dim() == 2:  # a flattened input (PyTorch's classifiers)
            return F.linear(x, m.weight, m.bias)
        if x.shape[-2:] != (1, 1):
            raise ValueError(
                f"{node.name} needs {node.inputs[0]} to be 1x1, got {x.shape[-2]}x{x.shape[-1]}: "
                f"use an input size for which {node.inputs[0]} is 1x1 (any size works for the layers before it)"
            )
        return F.linear(x.flatten(1), m.weight, m.bias)


class Softmax(Op):
    kind = "softmax"
    spatial = False
    nonlinear = True

    def linearizable(self, node):
        return False

    def linear(self, node, xs, m, *, bias=True, point=None):
        raise _refused(node, self.kind, "linearization", "softmax has no linear stand-in")

    def out_size(self, node, size, axis):
        return 1

    def forward(self, node, xs, m):
        return F.softmax(xs[0], dim=1)


# --- PyTorch's ops (networks traced from torch modules: circuits.core.trace) --------------
#
# PyTorch's numerics: explicit symmetric padding (zeros for convolutions, -inf for max
# pooling), dilation, groups, ceil_mode and count_include_pad, exactly as torch.nn's
# functional calls take them. Batch norm after a convolution is folded into it by the
# tracer (`fold_batchnorm`); elsewhere it is a channel-wise affine op.


def _refused(node: "Node", kind: str, what: str, why: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"{what} cannot cross {node.name} ({kind}): {why}")


def _dense_weight(node: "Node", w: torch.Tensor) -> torch.Tensor:
    """A grouped convolution's weight [C, Cin/groups, kh, kw] as the dense [C, Cin, kh, kw]
    it equals (zero across groups), so that one rule composes and bounds every convolution."""
    g = node.groups
    if g == 1:
        return w
    cout, cin_g, kh, kw = w.shape
    dense = w.new_zeros(g, cout // g, g, cin_g, kh, kw)
    idx = torch.arange(g)
    dense[idx, :, idx] = w.reshape(g, cout // g, cin_g, kh, kw)
    return dense.reshape(cout, g * cin_g, kh, kw)


def _dilated(w: torch.Tensor, dilation: tuple[int, int]) -> torch.Tensor:
    """A kernel with dilation (dy, dx) as the undilated kernel it equals (zeros between taps)."""
    dy, dx = dilation
    if (dy, dx) == (1, 1):
        return w
    kh, kw = w.shape[-2:]
    out = w.new_zeros(*w.shape[:-2], (kh - 1) * dy + 1, (kw - 1) * dx + 1)
    out[..., ::dy, ::dx] = w
    return out


def _gather(x: torch.Tensor, have: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Channels `out` of x, which holds the sorted channels `have`; a channel absent from
    `have` is 0 for every input (the cone leaves such channels out)."""
    if len(have) == len(out) and bool(torch.equal(have, out)):
        return x
    if len(have) == 0:
        return zeros_channels(x, len(out), tuple(x.shape[2:]))
    pos = torch.searchsorted(have, out).clamp(max=len(have) - 1)
    present = have[pos] == out
    if bool(present.all()):
        return take_channels(x, pos)
    y = zeros_channels(x, len(out), tuple(x.shape[2:]))
    y[:, present] = x[:, pos[present]]
    return y


class _TorchWindow(_WindowOp):
    """PyTorch's window geometry: explicit padding `node.pad`, dilation, ceil_mode."""

    def _span(self, node, axis):
        return node.dilation[axis] * (node.kernel[axis] - 1) + 1

    def out_size(self, node, size, axis):
        k, p, s = self._span(node, axis), node.pad[axis], node.stride
        if not node.ceil_mode:
            return (size + 2 * p - k) // s + 1
        out = -(-(size + 2 * p - k) // s) + 1
        # torch: the last window must start inside the input or its left padding
        return out - 1 if (out - 1) * s >= size + p else out

    def _before(self, node, in_size, axis):
        return node.pad[axis]

    def _centred(self, node, what: str) -> None:
        kh, kw = self._span(node, 0), self._span(node, 1)
        if kh % 2 == 0 or kw % 2 == 0:
            raise _refused(node, self.kind, what, f"its {kh}x{kw} window has no centre cell, so kernels "
                           "composed through it are not centred on a unit")


class TorchConv(_TorchWindow, Conv):
    """torch.nn.Conv2d: explicit zero padding, dilation, groups (depthwise included), bias."""

    kind = "conv2d"

    def param_shapes(self, node, cin):
        return {"weight": (node.channels, cin // node.groups, *node.kernel), "bias": (node.channels,)}

    def make_module(self, node, cin):
        return _zero_initialized("Conv2d")(cin, node.channels, node.kernel, node.stride, node.pad,
                                           node.dilation, node.groups)

    def forward(self, node, xs, m):
        return F.conv2d(xs[0], m.weight, m.bias, node.stride, node.pad, node.dilation, node.groups)

    def forward_valid(self, node, xs, m):
        return F.conv2d(xs[0], m.weight, m.bias, node.stride, 0, node.dilation, node.groups)

    def _conv_valid(self, node, x, weight, bias):
        return F.conv2d(x, weight, bias, node.stride, 0, node.dilation)

    def _dense(self, node, m) -> torch.Tensor:
        return _dense_weight(node, m.weight.detach())

    def kernel_slice(self, node, m, dst_channels, src_channels):
        w = self._dense(node, m)[list(dst_channels)][:, list(src_channels)]
        return _dilated(w, node.dilation)

    def input_channels(self, node, out, m, cins):
        used = self._dense(node, m)[out].ne(0).flatten(2).any(2).any(0)
        return [torch.nonzero(used).flatten()]

    def zero_channels(self, node, m, zin, cins):
        reads = self._dense(node, m).ne(0).flatten(2).any(2)[:, ~zin[0]].any(1)
        return ~reads & (m.bias.detach().eq(0) if m.bias is not None else True)

    def prepare_channels(self, node, m, have, out):
        if node.groups > 1:  # computed whole (grouped convolutions are cheap), then sliced
            return SimpleNamespace(weight=m.weight.detach(), bias=m.bias.detach() if m.bias is not None else None)
        return super().prepare_channels(node, m, have, out)

    def forward_channels(self, node, xs, prep, have, out, cins):
        if node.groups > 1:
            full = zeros_channels(xs[0], cins[0], tuple(xs[0].shape[2:]))
            full[:, have[0]] = xs[0]
            return take_channels(self.forward_valid(node, [full], prep), out)
        return super().forward_channels(node, xs, prep, have, out, cins)

    def linear(self, node, xs, m, *, bias=True, point=None):
        w, b = m.weight.to(xs[0].dtype), (m.bias.to(xs[0].dtype) if bias and m.bias is not None else None)
        return F.conv2d(xs[0], w, b, node.stride, node.pad, node.dilation, node.groups)

    def compose(self, node, ks, m, *, channels, point=None, dst_channels=None):
        self._centred(node, "kernel composition")
        k, jump = ks[0]
        w = _dilated(self._dense(node, m), node.dilation).to(k.dtype)
        if dst_channels is not None:
            w = w[list(dst_channels)]
        return F.conv_transpose2d(w, k, stride=jump), jump * node.stride

    def bounds(self, node, ins, m):
        dense = SimpleNamespace(weight=self._dense(node, m), bias=m.bias.detach() if m.bias is not None
                                else torch.zeros(node.channels))
        return super().bounds(node, ins, dense)


class TorchMaxPool(_TorchWindow, MaxPool):
    """torch.nn.MaxPool2d (padding is -inf; ceil_mode, dilation). Linearized: the average
    pool over the window's in-image cells."""

    kind = "max_pool2d"

    def forward(self, node, xs, m):
        return F.max_pool2d(xs[0], node.kernel, node.stride, node.pad, node.dilation, node.ceil_mode)

    def forward_valid(self, node, xs, m):
        return F.max_pool2d(xs[0], node.kernel, node.stride, 0, node.dilation)

    def linear(self, node, xs, m, *, bias=True, point=None):
        if node.dilation != (1, 1):
            raise _refused(node, self.kind, "linearization", "a dilated max-pool has no average-pool stand-in")
        return F.avg_pool2d(xs[0], node.kernel, node.stride, node.pad, node.ceil_mode, count_include_pad=False)

    def compose(self, node, ks, m, *, channels, point=None, dst_channels=None):
        self._centred(node, "kernel composition")
        if node.dilation != (1, 1):
            raise _refused(node, self.kind, "kernel composition", "a dilated max-pool has no average-pool stand-in")
        return self._box(node, ks)

    def linearizable(self, node):
        return tuple(node.dilation) == (1, 1)

    def nonnegative_linearization(self, node):
        return self.linearizable(node)


class TorchAvgPool(_TorchWindow, AvgPool):
    """torch.nn.AvgPool2d: padding counted in the mean unless count_include_pad=False."""

    kind = "avg_pool2d"

    def forward(self, node, xs, m):
        return F.avg_pool2d(xs[0], node.kernel, node.stride, node.pad, node.ceil_mode, node.count_include_pad)

    def forward_valid(self, node, xs, m):
        return F.avg_pool2d(xs[0], node.kernel, node.stride)

    def compose(self, node, ks, m, *, channels, point=None, dst_channels=None):
        self._centred(node, "kernel composition")
        return self._box(node, ks)

    def bounds(self, node, ins, m):
        lo, hi = ins[0]
        if node.count_include_pad and any(node.pad):  # border means average zeros in
            return lo.clamp(max=0), hi.clamp(min=0)
        return lo, hi


@functools.lru_cache(maxsize=None)
def _channel_affine() -> type:
    """The module of an `affine` node (made on first use: the op table imports no torch)."""

    class ChannelAffine(nn.Module):
        """y[:, c] = weight[c] * x[:, c] + bias[c]: an inference-mode batch norm that follows
        no convolution (DenseNet's pre-activations), or an input normalization."""

        def __init__(self, channels: int):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))

        def extra_repr(self) -> str:
            return str(self.weight.shape[0])

    ChannelAffine.__module__ = __name__
    return ChannelAffine


def _per_channel(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.to(x.dtype).view(1, -1, *([1] * (x.dim() - 2)))


class Affine(Op):
    """Channel-wise affine map (batch norm that follows no convolution; input normalization)."""

    kind = "affine"
    has_params = True
    keeps_channels = True
    channelwise = True

    def param_shapes(self, node, cin):
        return {"weight": (node.channels,), "bias": (node.channels,)}

    def make_module(self, node, cin):
        return _channel_affine()(node.channels)

    def forward(self, node, xs, m):
        return xs[0] * _per_channel(m.weight, xs[0]) + _per_channel(m.bias, xs[0])

    def zero_channels(self, node, m, zin, cins):
        return zin[0] & m.bias.detach().eq(0)

    def prepare_channels(self, node, m, have, out):
        return SimpleNamespace(weight=m.weight.detach()[out], bias=m.bias.detach()[out])

    def forward_channels(self, node, xs, prep, have, out, cins):
        return self.forward(node, [_gather(xs[0], have[0], out)], prep)

    def linear(self, node, xs, m, *, bias=True, point=None):
        y = xs[0] * _per_channel(m.weight, xs[0])
        return y + _per_channel(m.bias, xs[0]) if bias else y

    def compose(self, node, ks, m, *, channels, point=None, dst_channels=None):
        k, jump = ks[0]
        return k * m.weight.detach().to(k.dtype).view(-1, 1, 1, 1), jump

    def identity_on(self, node, lo, hi, m=None):
        return m is not None and bool(m.weight.detach().eq(1).all() and m.bias.detach().eq(0).all())

    def nonnegative_linearization(self, node):
        return False  # its scale is a parameter, which may be negative (a flipped channel)

    def bounds(self, node, ins, m):
        lo, hi = (t.double() for t in ins[0])
        w, b = m.weight.detach().double(), m.bias.detach().double()
        a, c = w * lo + b, w * hi + b
        return torch.minimum(a, c), torch.maximum(a, c)


class _Pointwise(_Identity):
    """An elementwise activation of PyTorch's (relu6, silu, ...): `fn` of torch.nn.functional."""

    keeps_channels = True
    channelwise = True
    nonlinear = True
    is_activation = True
    fn = ""
    #: linearized as the identity, as ReLU is (the activations that pass positive values on)
    identity_linearization = True
    #: maps 0 to 0 (an always-zero channel stays one)
    zero_to_zero = True
    #: (x, a lower bound of f(x)) at the minimum of a non-monotone activation; None: non-decreasing
    minimum: tuple[float, float] | None = None
    #: (low, high): f(x) = x for every x in [low, high]; None: on no interval
    identity_interval: tuple[float, float] | None = None

    def identity_on(self, node, lo, hi, m=None):
        if self.identity_interval is None:
            return False
        a, b = self.identity_interval
        return bool((lo >= a).all() and (hi <= b).all())

    def linearizable(self, node):
        return self.identity_linearization

    def nonnegative_linearization(self, node):
        return self.identity_linearization  # the identity

    def forward(self, node, xs, m):
        return getattr(F, self.fn)(xs[0])

    def forward_channels(self, node, xs, prep, have, out, cins):
        return self.forward(node, [_gather(xs[0], have[0], out)], prep)

    def zero_channels(self, node, m, zin, cins):
        return zin[0] if self.zero_to_zero else torch.zeros(node.channels, dtype=torch.bool)

    def _linear_ok(self, node, what):
        if not self.identity_linearization:
            raise _refused(node, self.kind, what, f"{self.kind} has no linear stand-in (it saturates; "
                           "only ReLU and its relatives are linearized as the identity)")

    def linear(self, node, xs, m, *, bias=True, point=None):
        self._linear_ok(node, "linearization")
        return xs[0]

    def compose(self, node, ks, m, *, channels, point=None, dst_channels=None):
        self._linear_ok(node, "kernel composition")
        return ks[0]

    def bounds(self, node, ins, m):
        lo, hi = ins[0]
        flo, fhi = self.forward(node, [lo], m), self.forward(node, [hi], m)
        low, high = torch.minimum(flo, fhi), torch.maximum(flo, fhi)
        if self.minimum is not None:
            x0, y0 = self.minimum
            low = torch.where((lo <= x0) & (hi >= x0), torch.full_like(low, y0), low)
        return low, high


class ReLU6(_Pointwise):
    kind, fn = "relu6", "relu6"
    identity_interval = (0.0, 6.0)  # min(max(x, 0), 6) = x on [0, 6]


class SiLU(_Pointwise):
    # silu(x) = x sigmoid(x) is smallest at x = -1.27846, where it is -0.278465
    kind, fn, minimum = "silu", "silu", (-1.2784645, -0.2784647)


class Hardswish(_Pointwise):
    kind, fn, minimum = "hardswish", "hardswish", (-1.5, -0.375)
    identity_interval = (3.0, float("inf"))  # x relu6(x + 3) / 6 = x for x >= 3


class GELU(_Pointwise):
    # the exact (erf) GELU is smallest at x = -0.751791, where it is -0.16997121 (bounded below by -0.169972)
    kind, fn, minimum = "gelu", "gelu", (-0.7517915, -0.169972)


class Sigmoid(_Pointwise):
    kind, fn = "sigmoid", "sigmoid"
    identity_linearization = zero_to_zero = False


class Hardsigmoid(_Pointwise):
    kind, fn = "hardsigmoid", "hardsigmoid"
    identity_linearization = zero_to_zero = False


class Tanh(_Pointwise):
    kind, fn = "tanh", "tanh"
    identity_linearization = False


class Identity(_Identity):
    """The value passed on unchanged: dropout and stochastic depth in eval mode, and the
    output of a module (`layer2` after `layer2.1.relu_1`), so that it has its own name."""

    kind = "identity"
    keeps_channels = True
    channelwise = True
    passes_through = True

    def identity_on(self, node, lo, hi, m=None):
        return True

    def nonnegative_linearization(self, node):
        return True


class Add(Op):
    """Elementwise sum of same-shaped tensors (a residual connection)."""

    kind = "add"

    def receptive_field(self, node, ins, in_size, axis):
        return max(ins)

    def forward(self, node, xs, m):
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y

    def input_channels(self, node, out, m, cins):
        return [out for _ in cins]

    def zero_channels(self, node, m, zin, cins):
        z = zin[0]
        for t in zin[1:]:
            z = z & t
        return z

    def forward_channels(self, node, xs, prep, have, out, cins):
        return self.forward(node, [_gather(x, h, out) for x, h in zip(xs, have)], prep)

    def compose(self, node, ks, m, *, channels, point=None, dst_channels=None):
        present = [k for k in ks if k is not None]
        jumps = {j for _, j in present}
        if len(jumps) > 1:  # pragma: no cover - a sum of tensors of one shape has one grid
            raise _refused(node, self.kind, "kernel composition", f"its inputs are on different grids ({jumps})")
        kh = max(k.shape[-2] for k, _ in present)
        kw = max(k.shape[-1] for k, _ in present)
        total = pad_kernel(present[0][0], (kh, kw))
        for k, _ in present[1:]:
            total = total + pad_kernel(k, (kh, kw))
        return total, present[0][1]

    def support(self, node, ins):
        return max(r[0] for r in ins), max(r[1] for r in ins), ins[0][2]

    def identity_on(self, node, lo, hi, m=None):
        return len(node.inputs) == 1

    def nonnegative_linearization(self, node):
        return True  # itself: each input channel enters its output channel with weight 1

    def bounds(self, node, ins, m):
        lo, hi = ins[0]
        for a, b in ins[1:]:
            lo, hi = lo + a, hi + b
        return lo, hi


class Mul(Op):
    """Elementwise product of a map and a gate (squeeze-and-excitation: [N, C, H, W] times
    [N, C, 1, 1]). Nonlinear: both factors depend on the image."""

    kind = "mul"
    nonlinear = True

    def input_window(self, node, win, src_hw):
        return (0, 0, 0, 0) if tuple(src_hw) == (1, 1) else win  # a gate is read whole

    def forward(self, node, xs, m):
        return xs[0] * xs[1]

    def input_channels(self, node, out, m, cins):
        return [out for _ in cins]

    def zero_channels(self, node, m, zin, cins):
        return zin[0] | zin[1]

    def forward_channels(self, node, xs, prep, have, out, cins):
        return self.forward(node, [_gather(x, h, out) for x, h in zip(xs, have)], prep)

    def linearizable(self, node):
        return False

    def linear(self, node, xs, m, *, bias=True, point=None):
        raise _refused(node, self.kind, "linearization", "a product of two image-dependent tensors has no linear stand-in")

    def compose(self, node, ks, m, *, channels, point=None, dst_channels=None):
        raise _refused(node, self.kind, "kernel composition",
                       "a product of two image-dependent tensors has no linear stand-in")

    def bounds(self, node, ins, m):
        (a, b), (c, d) = ins
        p = torch.stack([a * c, a * d, b * c, b * d])
        return p.amin(0), p.amax(0)


class AdaptiveAvgPool(Op):
    """torch.nn.AdaptiveAvgPool2d to the fixed size `node.out_hw` (global pooling: (1, 1))."""

    kind = "adaptive_avg_pool2d"
    keeps_channels = True
    channelwise = True
    spatial = False

    def out_size(self, node, size, axis):
        return node.out_hw[axis]

    def receptive_field(self, node, ins, in_size, axis):
        # torch's windows [floor(i n / o), ceil((i + 1) n / o)): the widest one, their mean step
        size, jump, start = ins[0]
        o = node.out_hw[axis]
        widths = [-(-(i + 1) * in_size // o) - (i * in_size // o) for i in range(o)]
        step = max(in_size // o, 1)
        return size + (max(widths) - 1) * jump, jump * step, start + jump * (widths[0] - 1) / 2

    def forward(self, node, xs, m):
        return F.adaptive_avg_pool2d(xs[0], node.out_hw)

    def nonnegative_linearization(self, node):
        return True  # itself: an average over each window

    def compose(self, node, ks, m, *, channels, point=None, dst_channels=None):
        raise _refused(node, self.kind, "kernel composition", "its windows depend on the input size")

    def bounds(self, node, ins, m):
        return ins[0]


class Flatten(Op):
    """torch.flatten(x, 1): [N, C, H, W] -> [N, C * H * W] (before a classifier)."""

    kind = "flatten"
    spatial = False

    def out_size(self, node, size, axis):
        return 1

    def forward(self, node, xs, m):
        return torch.flatten(xs[0], 1)

    def bounds(self, node, ins, m):
        lo, hi = ins[0]
        k = node.channels // len(lo)
        return lo.repeat_interleave(k), hi.repeat_interleave(k)


class Opaque(Op):
    """Code the op table has no rule for, run as it is (`node.source` says what): its
    module (the tracer's) computes it, so hooks, caching, ablation and full forwards work;
    the cone, kernel composition, linearization and bounds across it are refused."""

    kind = "opaque"
    opaque = True

    def out_size(self, node, size, axis):
        # Its size as traced: the same as its first input's, or fixed (`out_hw`).
        return node.out_hw[axis] if node.out_hw is not None else size

    def forward(self, node, xs, m):
        return m(*xs)

    def _why(self, node) -> str:
        return f"it is an opaque node running {node.source or 'unknown code'}, which the op table has no rule for"

    def input_window(self, node, win, src_hw):
        raise _refused(node, self.kind, "the receptive-field cone", self._why(node))

    def forward_valid(self, node, xs, m):
        raise _refused(node, self.kind, "the receptive-field cone", self._why(node))

    def linearizable(self, node):
        return False

    def linear(self, node, xs, m, *, bias=True, point=None):
        raise _refused(node, self.kind, "linearization", self._why(node))

    def compose(self, node, ks, m, *, channels, point=None, dst_channels=None):
        raise _refused(node, self.kind, "kernel composition", self._why(node))

    def bounds(self, node, ins, m):
        raise _refused(node, self.kind, "interval bounds", self._why(node))


OPS: Mapping[str, Op] = {
    op.kind: op for op in (
        # TensorFlow's numerics (the declared InceptionV1 and InceptionV3)
        Input(), Conv(), ReLU(), MaxPool(), AvgPool(), LRN(), Concat(), Linear(), Softmax(),
        # PyTorch's (traced networks)
        TorchConv(), TorchMaxPool(), TorchAvgPool(), AdaptiveAvgPool(), Affine(), ReLU6(), SiLU(),
        Hardswish(), GELU(), Sigmoid(), Hardsigmoid(), Tanh(), Identity(), Add(), Mul(), Flatten(), Opaque(),
    )
}


def pad_kernel(k: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-pad a kernel [..., kh, kw] around its centre to `size` (both odd)."""
    py, px = (size[0] - k.shape[-2]) // 2, (size[1] - k.shape[-1]) // 2
    return F.pad(k, (px, px, py, py)) if py or px else k
