"""Networks as data: every named tensor, the op that makes it, and what derives from that.

A `Graph` is a network declared once, as a tuple of `Node`s; what each node's op
computes is in the op table (`circuits.core.ops.OPS`). Everything else -- the torch
module (`circuits.core.model`), the hook names, the channel offsets inside each
concatenation, the receptive fields, the expected checkpoint shapes and the unit facts
(which convolution computes a unit, its pre-ReLU tensor, the trunk layers) -- is
derived from the two by the methods of `Graph`.

`INCEPTION_V1` below is Lucid's InceptionV1 ("inception5h"), declared with Lucid's
tensor names; the module-level functions (`node`, `branches`, `receptive_field`, ...)
are its methods, for code that works on that network.

Example:
    >>> from circuits.core import graph
    >>> graph.node("mixed3b_5x5_pre_relu").channels
    96
    >>> graph.branch_of("mixed3b", 379)
    ('mixed3b_5x5', 59)
    >>> graph.INCEPTION_V1.conv_of("mixed3b", 379)
    ('mixed3b_5x5_pre_relu', 59)
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from circuits.core.ops import OPS, Op, same_padding

__all__ = [
    "Node",
    "Graph",
    "INCEPTION_V1",
    "NODES",
    "Builder",
    "node",
    "names",
    "branches",
    "branch_of",
    "output_hw",
    "receptive_field",
    "ReceptiveField",
    "min_input_size",
    "parameter_shapes",
    "ancestors",
    "same_padding",
    "UnknownNameError",
]

INPUT = "input"


@dataclass(frozen=True)
class Node:
    """One named tensor of a network and the op that produces it.

    op: a kind of the op table (`circuits.core.ops.OPS`): input, conv, relu, maxpool,
    avgpool, lrn, concat, linear, softmax. kernel is (height, width); padding is
    TensorFlow's "same" or "valid". `param` is the checkpoint module name for ops
    with weights (conv, linear).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    kernel: tuple[int, int] = (1, 1)
    stride: int = 1
    channels: int = 0
    param: str | None = None
    # Concatenations Lucid synthesizes for reading units pre-ReLU
    # (mixed3a_pre_relu) are not consumed by anything downstream.
    synthesized: bool = False
    padding: str = "same"
    # PyTorch's window ops (conv2d, max_pool2d, avg_pool2d): explicit symmetric padding
    # (rows, cols), dilation, groups, ceil_mode and count_include_pad, as torch.nn spells them.
    pad: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    ceil_mode: bool = False
    count_include_pad: bool = True
    # A fixed output size (H, W): adaptive pooling; an opaque op whose size was fixed when traced.
    out_hw: tuple[int, int] | None = None
    # What an opaque node runs (e.g. "torch.nn.LayerNorm" or "operator.getitem"), for errors.
    source: str | None = None

    @property
    def kind(self) -> Op:
        """This node's entry in the op table."""
        return OPS[self.op]


class UnknownNameError(KeyError):
    """A layer or hook name that the graph does not have."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


def suggest(name: str, pool: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(pool), n=5, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def _as_hw(size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of a layer, in input pixels.

    size: side of the square of input pixels one unit sees (padding included); for a
        non-square field (after a 1x7 kernel) the larger side, with `size_hw` both.
    stride: input pixels between neighbouring units.
    first_centre: input coordinate (pixel-centre convention, (y, x)) of the centre
        of the unit at position (0, 0) for this input size; it can be negative
        because TensorFlow's SAME padding depends on the input size.
    """

    size: int
    stride: int
    first_centre: tuple[float, float] = field(default=(0.0, 0.0))
    size_hw: tuple[int, int] | None = None

    def centre_of(self, y: int, x: int) -> tuple[float, float]:
        """Input coordinate of the centre of the unit at (y, x)."""
        return self.first_centre[0] + y * self.stride, self.first_centre[1] + x * self.stride


class Graph:
    """A network as data: its nodes in execution order, and everything derived from them.

    name: the network's name; input_range: (low, high) of the model input it expects;
    expanded_span: the first and last tensor that weights between units may span;
    default_input_size: the input side it was trained at; classes: the tensor of class
    probabilities (None for a trunk without its classifier).
    """

    def __init__(
        self,
        name: str,
        nodes: Sequence[Node],
        *,
        input_range: tuple[float, float],
        expanded_span: tuple[str, str],
        output: str | None = None,
        default_input_size: int = 224,
        classes: str | None = None,
        folded: Mapping[str, str] | None = None,
    ):
        self.name = name
        #: names that are no tensor of this graph because they were folded into one that is
        #: (a traced convolution into the batch norm after it), and the tensor that holds them
        self.folded = dict(folded or {})
        #: the input side the network was trained at (what commands use when not told)
        self.default_input_size = default_input_size
        #: the tensor of class probabilities, None for a trunk without its classifier
        self.classes = classes
        self.nodes: tuple[Node, ...] = tuple(nodes)
        self.input_range = input_range
        self._by_name = {n.name: n for n in self.nodes}
        self._index = {n.name: i for i, n in enumerate(self.nodes)}
        if len(self._by_name) != len(self.nodes):
            raise ValueError(f"{name}: duplicate node names")
        for n in self.nodes:
            if n.op not in OPS:
                raise ValueError(f"{name}: node {n.name} has unknown op {n.op!r} (known: {', '.join(OPS)})")
            for i in n.inputs:
                if self._index.get(i, len(self.nodes)) >= self._index[n.name]:
                    raise ValueError(f"{name}: node {n.name} reads {i!r}, which is not declared before it")
        self.output = output or self.nodes[-1].name
        self.expanded_span = expanded_span
        for t in expanded_span:
            self.node(t)
        if classes is not None:
            self.node(classes)
        # Per-instance caches (a cache on the methods would keep every graph alive).
        self.ancestors = functools.lru_cache(maxsize=None)(self._ancestors)
        self.branches = functools.lru_cache(maxsize=None)(self._branches)
        self._sizes = functools.lru_cache(maxsize=4096)(self._sizes_uncached)
        self._rf = functools.lru_cache(maxsize=4096)(self._rf_uncached)
        self.min_input_size = functools.lru_cache(maxsize=None)(self._min_input_size)

    def __repr__(self) -> str:
        return f"<Graph {self.name}: {len(self.nodes)} nodes>"

    # A graph is immutable data: a copied model shares its graph (and its units stay valid).
    def __copy__(self) -> "Graph":
        return self

    def __deepcopy__(self, memo) -> "Graph":
        return self

    # --- names -----------------------------------------------------------------

    def names(self) -> list[str]:
        """All hook names in execution order (the input included)."""
        return [n.name for n in self.nodes]

    def node(self, name: str) -> Node:
        """The node called `name`; an unknown name raises with the close matches.

        >>> INCEPTION_V1.node("conv2d2_pre_relu").kernel
        (3, 3)
        """
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            if isinstance(name, str) and name in self.folded:
                raise UnknownNameError(
                    f"{name} is no tensor of {self.name}: its batch norm is folded into it, so its value "
                    f"(normalized) is {self.folded[name]!r}; use that name"
                ) from None
            raise UnknownNameError(
                f"unknown layer or hook name {name!r} in {self.name}{suggest(str(name), self._by_name)} "
                f"(run `circuits layers` for the full list)"
            ) from None

    def index(self, name: str) -> int:
        """Position of `name` in execution order."""
        self.node(name)
        return self._index[name]

    def _ancestors(self, name: str) -> frozenset[str]:
        """Every node `name` depends on, itself included."""
        out = {name}
        for i in self.node(name).inputs:
            out |= self.ancestors(i)
        return frozenset(out)

    def _branches(self, name: str) -> tuple[tuple[str, int, int], ...]:
        """(branch name, offset, channels) of each part of a concatenation.

        For a layer that is not a concatenation, the layer itself at offset 0.

        >>> INCEPTION_V1.branches("mixed3a")[2]
        ('mixed3a_5x5', 192, 32)
        """
        n = self.node(name)
        if not n.kind.joins_branches:
            return ((name, 0, n.channels),)
        out, offset = [], 0
        for i in n.inputs:
            c = self.node(i).channels
            out.append((i, offset, c))
            offset += c
        return tuple(out)

    def branch_of(self, name: str, channel: int) -> tuple[str, int]:
        """The branch tensor holding `channel` of layer `name`, and the channel inside it."""
        n = self.node(name)
        if not 0 <= channel < n.channels:
            raise IndexError(
                f"channel {channel} is out of range for {name} "
                f"({n.channels} channels: 0..{n.channels - 1})"
            )
        for b, off, c in self.branches(name):
            if off <= channel < off + c:
                return b, channel - off
        raise AssertionError("unreachable")  # pragma: no cover

    # --- unit facts --------------------------------------------------------------

    def conv_of(self, name: str, channel: int) -> tuple[str, int] | None:
        """The convolution that computes channel `channel` of `name` (its pre-activation),
        and the channel there; None when no convolution computes it (a pool, an LRN).

        The branch holding the channel is resolved first (through nested concatenations),
        then a ReLU is followed back to the convolution it reads.

        >>> INCEPTION_V1.conv_of("mixed3a", 81)
        ('mixed3a_3x3_pre_relu', 17)
        >>> INCEPTION_V1.conv_of("maxpool1", 3) is None
        True
        """
        b, ch = self.branch_of(name, channel)
        n = self.node(b)
        while n.kind.passes_through:  # a module's output, dropout: the tensor it passes on
            n = self.node(n.inputs[0])
        if n.name != name and n.kind.joins_branches:  # a branch that is itself a concatenation (InceptionV3's mixed9)
            return self.conv_of(n.name, ch)
        if n.kind.is_activation:
            n = self.node(n.inputs[0])
        return (n.name, ch) if n.kind.has_kernel else None

    def pre_relu_of(self, name: str) -> str | None:
        """The pre-ReLU tensor of a layer: the conv a ReLU reads, the synthesized
        `<block>_pre_relu` concatenation of a block; None where there is none.

        >>> INCEPTION_V1.pre_relu_of("mixed3b"), INCEPTION_V1.pre_relu_of("conv2d2")
        ('mixed3b_pre_relu', 'conv2d2_pre_relu')
        """
        n = self.node(name)
        while n.kind.passes_through:
            n = self.node(n.inputs[0])
        if n.kind.is_activation and self.node(n.inputs[0]).kind.has_params:
            return n.inputs[0]
        if n.kind.joins_branches:
            pre = f"{name}_pre_relu"
            if pre in self._by_name and self._by_name[pre].synthesized:
                return pre
        return None

    @functools.cached_property
    def trunk_layers(self) -> tuple[str, ...]:
        """The unit layers every path of the whole network goes through, in order.

        A layer qualifies when no edge of the graph jumps over it (it is a cut of the
        network in execution order) and it is a ReLU output or a block concatenation.

        >>> INCEPTION_V1.trunk_layers[:4], INCEPTION_V1.trunk_layers[-1]
        (('conv2d0', 'conv2d1', 'conv2d2', 'mixed3a'), 'mixed5b')
        """
        real = [n for n in self.nodes if not n.synthesized]
        pos = {n.name: i for i, n in enumerate(real)}
        spans = [(pos[i], pos[n.name]) for n in real for i in n.inputs]
        return tuple(
            n.name for n in real
            if (n.kind.is_activation or n.kind.joins_branches) and not any(a < pos[n.name] < b for a, b in spans)
        )

    def in_expanded_span(self, name: str) -> bool:
        """Whether weights between units are defined at tensor `name`."""
        first, last = self.expanded_span
        return self.index(first) <= self.index(name) <= self.index(last)

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """The state-dict keys and shapes of the network's parameters, from the graph."""
        shapes: dict[str, tuple[int, ...]] = {}
        for n in self.nodes:
            if n.kind.has_params:
                cin = self.node(n.inputs[0]).channels
                for key, shape in n.kind.param_shapes(n, cin).items():
                    shapes[f"{n.param}.{key}"] = shape
        return shapes

    # --- geometry ----------------------------------------------------------------

    def _sizes_uncached(self, size: int, axis: int) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.nodes:
            out[n.name] = n.kind.out_size(n, out[n.inputs[0]], axis) if n.inputs else size
        return out

    def output_hw(self, name: str, input_size=224) -> tuple[int, int]:
        """Spatial size (H, W) of tensor `name` for an input of `input_size` (int or (H, W)).

        >>> INCEPTION_V1.output_hw("mixed3b", 224)
        (28, 28)
        """
        self.node(name)
        h, w = _as_hw(input_size)
        return self._sizes(h, 0)[name], self._sizes(w, 1)[name]

    def _min_input_size(self, name: str) -> int:
        """Smallest square input for which every tensor on the way to `name` is non-empty."""
        anc = self.ancestors(name)
        for size in range(1, 2048):
            if all(min(self.output_hw(a, size)) >= 1 for a in anc):
                return size
        raise ValueError(f"{name} needs an input larger than 2048")  # pragma: no cover

    def _rf_uncached(self, size: int, axis: int) -> dict[str, tuple[int, int, float]]:
        sizes = self._sizes(size, axis)
        out: dict[str, tuple[int, int, float]] = {}
        for n in self.nodes:
            if not n.inputs:
                out[n.name] = (1, 1, 0.0)
            else:
                ins = [out[i] for i in n.inputs]
                out[n.name] = n.kind.receptive_field(n, ins, sizes[n.inputs[0]], axis)
        return out

    def receptive_field(self, name: str, input_size=224) -> ReceptiveField:
        """Receptive field of `name` (size and stride do not depend on the input size).

        >>> INCEPTION_V1.receptive_field("conv2d0").size, INCEPTION_V1.receptive_field("conv2d0").stride
        (7, 2)
        """
        self.node(name)
        h, w = _as_hw(input_size)
        sy, jy, cy = self._rf(h, 0)[name]
        sx, _, cx = self._rf(w, 1)[name]
        return ReceptiveField(max(sy, sx), jy, (cy, cx), (sy, sx))

    def centre_position(self, name: str, input_size=224) -> tuple[int, int]:
        """Lucid's "neuron" position: the middle of the map, (H // 2, W // 2)."""
        h, w = self.output_hw(name, input_size)
        return h // 2, w // 2

    def check_input_size(self, name: str, hw: tuple[int, int]) -> None:
        """Raise if an input of size hw is too small to reach `name`."""
        if any(min(self.output_hw(a, hw)) < 1 for a in self.ancestors(name)):
            need = self.min_input_size(name)
            raise ValueError(
                f"input of size {hw[0]}x{hw[1]} is too small to reach {name}: "
                f"it needs at least {need}x{need}"
            )

    def describe(self, name: str) -> str:
        n = self.node(name)
        parts = [f"{n.name}: {n.op}"]
        if n.kind.windowed:
            parts.append(f"{n.kernel[0]}x{n.kernel[1]}/{n.stride}" + (" valid" if n.padding == "valid" else ""))
            extra = [f"{k} {v}" for k, v, plain in (("pad", n.pad, (0, 0)), ("dilation", n.dilation, (1, 1)),
                                                   ("groups", n.groups, 1)) if v != plain]
            parts += extra
        parts.append(f"{n.channels} channels")
        return " ".join(parts)

    def layer_table(self, input_size: int = 224) -> list[dict]:
        """One row per hook name: op, channels, branch and offset, receptive field, output size."""
        parents: dict[str, tuple[str, int]] = {}
        for n in self.nodes:
            if n.kind.joins_branches:
                for b, off, _ in self.branches(n.name):
                    parents.setdefault(b, (n.name, off))
        rows = []
        for n in self.nodes:
            rf = self.receptive_field(n.name, input_size)
            parent = parents.get(n.name)
            windowed = n.kind.windowed
            rows.append(
                {
                    "name": n.name,
                    "op": n.op,
                    "channels": n.channels,
                    "kernel": (n.kernel[0] if n.kernel[0] == n.kernel[1] else list(n.kernel)) if windowed else None,
                    "stride": n.stride if windowed else None,
                    "concat": parent[0] if parent else None,
                    "offset": parent[1] if parent else None,
                    "rf_size": rf.size,
                    "rf_stride": rf.stride,
                    "output_hw": list(self.output_hw(n.name, input_size)),
                }
            )
        return rows


# --- declaring a network ------------------------------------------------------------


class Builder:
    """Writes a network declaration line by line: each call appends the nodes it names,
    reading the previous call's output unless told otherwise (`src=`).

    >>> b = Builder()
    >>> b.conv("c", 3, 1, 8).maxpool("p", 3, 2).names()
    ['input', 'c_pre_relu', 'c', 'p']
    """

    def __init__(self, channels: int = 3):
        self.nodes: list[Node] = [Node(INPUT, "input", (), channels=channels)]

    @property
    def last(self) -> Node:
        return self.nodes[-1]

    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def _channels(self, name: str) -> int:
        return next(n.channels for n in reversed(self.nodes) if n.name == name)

    def add(self, node: Node) -> "Builder":
        self.nodes.append(node)
        return self

    def conv(self, name: str, kernel, stride: int, channels: int, *, src: str | None = None,
             pre: str | None = None, param: str | None = None, padding: str = "same") -> "Builder":
        """A convolution (tensor `pre`, default `<name>_pre_relu`) and its ReLU `name`."""
        k = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
        pre = pre or f"{name}_pre_relu"
        src = src or self.last.name
        self.add(Node(pre, "conv", (src,), k, stride, channels, param=param or f"{pre}_conv", padding=padding))
        return self.add(Node(name, "relu", (pre,), channels=channels))

    def pool(self, op: str, name: str, kernel, stride: int, *, src: str | None = None,
             padding: str = "same") -> "Builder":
        k = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
        src = src or self.last.name
        return self.add(Node(name, op, (src,), k, stride, self._channels(src), padding=padding))

    def maxpool(self, name: str, kernel, stride: int, **kw) -> "Builder":
        return self.pool("maxpool", name, kernel, stride, **kw)

    def avgpool(self, name: str, kernel, stride: int, **kw) -> "Builder":
        return self.pool("avgpool", name, kernel, stride, **kw)

    def elementwise(self, op: str, name: str, *, src: str | None = None) -> "Builder":
        src = src or self.last.name
        return self.add(Node(name, op, (src,), channels=self._channels(src)))

    def concat(self, name: str, inputs: Sequence[str], *, synthesized: bool = False) -> "Builder":
        total = sum(self._channels(i) for i in inputs)
        return self.add(Node(name, "concat", tuple(inputs), channels=total, synthesized=synthesized))

    def linear(self, name: str, channels: int, *, param: str | None = None) -> "Builder":
        return self.add(Node(name, "linear", (self.last.name,), channels=channels, param=param or f"{name}_matmul"))


# --- InceptionV1 (Lucid's "inception5h") ---------------------------------------------

# Branches of a mixed block, in concatenation order.
BRANCH_SUFFIXES = ("1x1", "3x3", "5x5", "pool_reduce")


def _v1_mixed(b: Builder, name: str, c1x1: int, c3x3_bottleneck: int, c3x3: int, c5x5_bottleneck: int,
              c5x5: int, pool_reduce: int) -> Builder:
    """One Inception block: four branches concatenated, and Lucid's synthesized
    `<name>_pre_relu` concatenation of the branches' pre-ReLU tensors."""
    prev = b.last.name
    b.conv(f"{name}_1x1", 1, 1, c1x1, src=prev)
    b.conv(f"{name}_3x3_bottleneck", 1, 1, c3x3_bottleneck, src=prev).conv(f"{name}_3x3", 3, 1, c3x3)
    b.conv(f"{name}_5x5_bottleneck", 1, 1, c5x5_bottleneck, src=prev).conv(f"{name}_5x5", 5, 1, c5x5)
    b.maxpool(f"{name}_pool", 3, 1, src=prev).conv(f"{name}_pool_reduce", 1, 1, pool_reduce)
    b.concat(f"{name}_pre_relu", [f"{name}_{s}_pre_relu" for s in BRANCH_SUFFIXES], synthesized=True)
    return b.concat(name, [f"{name}_{s}" for s in BRANCH_SUFFIXES])


def _inception_v1() -> tuple[Node, ...]:
    b = Builder()
    b.conv("conv2d0", 7, 2, 64).maxpool("maxpool0", 3, 2).elementwise("lrn", "localresponsenorm0")
    b.conv("conv2d1", 1, 1, 64).conv("conv2d2", 3, 1, 192).elementwise("lrn", "localresponsenorm1")
    b.maxpool("maxpool1", 3, 2)
    _v1_mixed(b, "mixed3a", 64, 96, 128, 16, 32, 32)
    _v1_mixed(b, "mixed3b", 128, 128, 192, 32, 96, 64)
    b.maxpool("maxpool4", 3, 2)
    _v1_mixed(b, "mixed4a", 192, 96, 204, 16, 48, 64)
    _v1_mixed(b, "mixed4b", 160, 112, 224, 24, 64, 64)
    _v1_mixed(b, "mixed4c", 128, 128, 256, 24, 64, 64)
    _v1_mixed(b, "mixed4d", 112, 144, 288, 32, 64, 64)
    _v1_mixed(b, "mixed4e", 256, 160, 320, 32, 128, 128)
    b.maxpool("maxpool10", 3, 2)
    _v1_mixed(b, "mixed5a", 256, 160, 320, 48, 128, 128)
    _v1_mixed(b, "mixed5b", 384, 192, 384, 48, 128, 128)
    b.avgpool("avgpool0", 7, 1, padding="valid").linear("softmax2_pre_activation", 1008)
    b.elementwise("softmax", "softmax2")
    return tuple(b.nodes)


INCEPTION_V1 = Graph(
    "InceptionV1",
    _inception_v1(),
    # RGB in [0, 255] minus 117 (Lucid's preprocessing)
    input_range=(-117.0, 138.0),
    expanded_span=("conv2d0_pre_relu", "mixed4a"),
    classes="softmax2",
)

# The default network's graph, as module functions.
NODES: tuple[Node, ...] = INCEPTION_V1.nodes
names = INCEPTION_V1.names
node = INCEPTION_V1.node
index = INCEPTION_V1.index
ancestors = INCEPTION_V1.ancestors
branches = INCEPTION_V1.branches
branch_of = INCEPTION_V1.branch_of
parameter_shapes = INCEPTION_V1.parameter_shapes
output_hw = INCEPTION_V1.output_hw
min_input_size = INCEPTION_V1.min_input_size
receptive_field = INCEPTION_V1.receptive_field
centre_position = INCEPTION_V1.centre_position
check_input_size = INCEPTION_V1.check_input_size
describe = INCEPTION_V1.describe
layer_table = INCEPTION_V1.layer_table
