"""InceptionV1 ("inception5h") as data: every tensor Lucid names, declared once.

`ARCHITECTURE` below is the single declaration of the network. Everything else --
the torch module (`circuits.core.model`), the hook names, the channel offsets inside each
concatenation, the receptive fields and the expected checkpoint shapes -- is derived
from it by the functions in this file.

Example:
    >>> from circuits import graph
    >>> graph.node("mixed3b_5x5_pre_relu").channels
    96
    >>> graph.branch_of("mixed3b", 379)
    ('mixed3b_5x5', 59)
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field

__all__ = [
    "Node",
    "NODES",
    "ARCHITECTURE",
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
    "UnknownNameError",
]

INPUT = "input"


@dataclass(frozen=True)
class Node:
    """One named tensor of the network and the op that produces it.

    op is one of: input, conv, relu, maxpool, lrn, concat, avgpool, linear, softmax.
    `param` is the checkpoint module name for ops with weights (conv, linear).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    kernel: int = 1
    stride: int = 1
    channels: int = 0
    param: str | None = None
    # Concatenations Lucid synthesizes for reading units pre-ReLU
    # (mixed3a_pre_relu) are not consumed by anything downstream.
    synthesized: bool = False


# --- the declaration -------------------------------------------------------
# Each entry below expands into the nodes Lucid names; each takes the previous
# entry's output as its input.


def _conv(name: str, k: int, s: int, c: int):
    return [("conv", f"{name}_pre_relu", k, s, c), ("relu", name)]


def _maxpool(name: str, k: int, s: int):
    return [("maxpool", name, k, s)]


def _lrn(name: str):
    return [("lrn", name)]


@dataclass(frozen=True)
class _Mixed:
    name: str
    c1x1: int
    c3x3_bottleneck: int
    c3x3: int
    c5x5_bottleneck: int
    c5x5: int
    pool_reduce: int


def _mixed(name, *channels):
    return [_Mixed(name, *channels)]


ARCHITECTURE = (
    _conv("conv2d0", 7, 2, 64)
    + _maxpool("maxpool0", 3, 2)
    + _lrn("localresponsenorm0")
    + _conv("conv2d1", 1, 1, 64)
    + _conv("conv2d2", 3, 1, 192)
    + _lrn("localresponsenorm1")
    + _maxpool("maxpool1", 3, 2)
    + _mixed("mixed3a", 64, 96, 128, 16, 32, 32)
    + _mixed("mixed3b", 128, 128, 192, 32, 96, 64)
    + _maxpool("maxpool4", 3, 2)
    + _mixed("mixed4a", 192, 96, 204, 16, 48, 64)
    + _mixed("mixed4b", 160, 112, 224, 24, 64, 64)
    + _mixed("mixed4c", 128, 128, 256, 24, 64, 64)
    + _mixed("mixed4d", 112, 144, 288, 32, 64, 64)
    + _mixed("mixed4e", 256, 160, 320, 32, 128, 128)
    + _maxpool("maxpool10", 3, 2)
    + _mixed("mixed5a", 256, 160, 320, 48, 128, 128)
    + _mixed("mixed5b", 384, 192, 384, 48, 128, 128)
    + [("avgpool", "avgpool0", 7, 1)]
    + [("linear", "softmax2_pre_activation", 1008)]
    + [("softmax", "softmax2")]
)

# Branches of a mixed block, in concatenation order.
BRANCH_SUFFIXES = ("1x1", "3x3", "5x5", "pool_reduce")


# --- expansion into nodes --------------------------------------------------


class UnknownNameError(KeyError):
    """A layer or hook name that the graph does not have."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


def _expand(arch) -> tuple[Node, ...]:
    nodes: list[Node] = [Node(INPUT, "input", (), channels=3)]
    channels = {INPUT: 3}

    def add(n: Node) -> str:
        nodes.append(n)
        channels[n.name] = n.channels
        return n.name

    prev = INPUT
    for entry in arch:
        if isinstance(entry, _Mixed):
            prev = _expand_mixed(entry, prev, add, channels)
            continue
        op, name, *args = entry
        if op == "conv":
            k, s, c = args
            prev = add(Node(name, "conv", (prev,), k, s, c, param=f"{name}_conv"))
        elif op in ("relu", "lrn", "softmax"):
            prev = add(Node(name, op, (prev,), channels=channels[prev]))
        elif op in ("maxpool", "avgpool"):
            k, s = args
            prev = add(Node(name, op, (prev,), k, s, channels[prev]))
        elif op == "linear":
            (c,) = args
            prev = add(Node(name, "linear", (prev,), channels=c, param=f"{name}_matmul"))
        else:  # pragma: no cover - the declaration above is fixed
            raise ValueError(f"unknown op {op!r} in ARCHITECTURE")
    return tuple(nodes)


def _expand_mixed(m: _Mixed, prev: str, add, channels) -> str:
    b = m.name

    def conv(name, src, k, c):
        add(Node(f"{name}_pre_relu", "conv", (src,), k, 1, c, param=f"{name}_pre_relu_conv"))
        return add(Node(name, "relu", (f"{name}_pre_relu",), channels=c))

    conv(f"{b}_1x1", prev, 1, m.c1x1)
    conv(f"{b}_3x3", conv(f"{b}_3x3_bottleneck", prev, 1, m.c3x3_bottleneck), 3, m.c3x3)
    conv(f"{b}_5x5", conv(f"{b}_5x5_bottleneck", prev, 1, m.c5x5_bottleneck), 5, m.c5x5)
    add(Node(f"{b}_pool", "maxpool", (prev,), 3, 1, channels[prev]))
    conv(f"{b}_pool_reduce", f"{b}_pool", 1, m.pool_reduce)
    total = m.c1x1 + m.c3x3 + m.c5x5 + m.pool_reduce
    pre = tuple(f"{b}_{s}_pre_relu" for s in BRANCH_SUFFIXES)
    post = tuple(f"{b}_{s}" for s in BRANCH_SUFFIXES)
    add(Node(f"{b}_pre_relu", "concat", pre, channels=total, synthesized=True))
    return add(Node(b, "concat", post, channels=total))


NODES: tuple[Node, ...] = _expand(ARCHITECTURE)
_BY_NAME = {n.name: n for n in NODES}
_INDEX = {n.name: i for i, n in enumerate(NODES)}


def names() -> list[str]:
    """All hook names in execution order (the input included)."""
    return [n.name for n in NODES]


def suggest(name: str, pool=None) -> str:
    pool = list(pool if pool is not None else _BY_NAME)
    close = difflib.get_close_matches(name, pool, n=5, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def node(name: str) -> Node:
    """The node called `name`; an unknown name raises with the close matches.

    >>> node("conv2d2_pre_relu").kernel
    3
    """
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise UnknownNameError(
            f"unknown layer or hook name {name!r}{suggest(str(name))} "
            f"(run `circuits layers` for the full list)"
        ) from None


def index(name: str) -> int:
    """Position of `name` in execution order."""
    node(name)
    return _INDEX[name]


@functools.lru_cache(maxsize=None)
def ancestors(name: str) -> frozenset[str]:
    """Every node `name` depends on, itself included."""
    out = {name}
    for i in node(name).inputs:
        out |= ancestors(i)
    return frozenset(out)


@functools.lru_cache(maxsize=None)
def branches(name: str) -> tuple[tuple[str, int, int], ...]:
    """(branch name, offset, channels) of each part of a concatenation.

    For a layer that is not a concatenation, the layer itself at offset 0.

    >>> branches("mixed3a")[2]
    ('mixed3a_5x5', 192, 32)
    """
    n = node(name)
    if n.op != "concat":
        return ((name, 0, n.channels),)
    out, offset = [], 0
    for i in n.inputs:
        c = node(i).channels
        out.append((i, offset, c))
        offset += c
    return tuple(out)


def branch_of(name: str, channel: int) -> tuple[str, int]:
    """The branch tensor holding `channel` of layer `name`, and the channel inside it."""
    n = node(name)
    if not 0 <= channel < n.channels:
        raise IndexError(
            f"channel {channel} is out of range for {name} "
            f"({n.channels} channels: 0..{n.channels - 1})"
        )
    for b, off, c in branches(name):
        if off <= channel < off + c:
            return b, channel - off
    raise AssertionError("unreachable")  # pragma: no cover


def parameter_shapes() -> dict[str, tuple[int, ...]]:
    """The state-dict keys and shapes of `inception5h.pth` (116 tensors), from the graph."""
    shapes: dict[str, tuple[int, ...]] = {}
    for n in NODES:
        if n.op == "conv":
            cin = node(n.inputs[0]).channels
            shapes[f"{n.param}.weight"] = (n.channels, cin, n.kernel, n.kernel)
            shapes[f"{n.param}.bias"] = (n.channels,)
        elif n.op == "linear":
            cin = node(n.inputs[0]).channels
            shapes[f"{n.param}.weight"] = (n.channels, cin)
            shapes[f"{n.param}.bias"] = (n.channels,)
    return shapes


# --- geometry --------------------------------------------------------------


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding (before, after) along one axis: the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _out_size(n: Node, size: int) -> int:
    if n.op in ("conv", "maxpool"):
        return -(-size // n.stride)
    if n.op == "avgpool":  # VALID, as in Lucid's graph
        return (size - n.kernel) // n.stride + 1
    if n.op in ("linear", "softmax"):
        return 1
    return size


def _as_hw(size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


@functools.lru_cache(maxsize=4096)
def _sizes(h: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in NODES:
        if n.op == "input":
            out[n.name] = h
        else:
            s = [out[i] for i in n.inputs]
            out[n.name] = _out_size(n, s[0])
    return out


def output_hw(name: str, input_size=224) -> tuple[int, int]:
    """Spatial size (H, W) of tensor `name` for an input of `input_size` (int or (H, W)).

    >>> output_hw("mixed3b", 224)
    (28, 28)
    """
    node(name)
    h, w = _as_hw(input_size)
    return _sizes(h)[name], _sizes(w)[name]


@functools.lru_cache(maxsize=None)
def min_input_size(name: str) -> int:
    """Smallest square input for which every tensor on the way to `name` is non-empty."""
    anc = ancestors(name)
    for size in range(1, 2048):
        s = _sizes(size)
        if all(s[a] >= 1 for a in anc):
            return size
    raise ValueError(f"{name} needs an input larger than 2048")  # pragma: no cover


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of a layer, in input pixels.

    size: side of the square of input pixels one unit sees (padding included).
    stride: input pixels between neighbouring units.
    first_centre: input coordinate (pixel-centre convention, (y, x)) of the centre
        of the unit at position (0, 0) for this input size; it can be negative
        because TensorFlow's SAME padding depends on the input size.
    """

    size: int
    stride: int
    first_centre: tuple[float, float] = field(default=(0.0, 0.0))

    def centre_of(self, y: int, x: int) -> tuple[float, float]:
        """Input coordinate of the centre of the unit at (y, x)."""
        return self.first_centre[0] + y * self.stride, self.first_centre[1] + x * self.stride


@functools.lru_cache(maxsize=4096)
def _rf(h: int) -> dict[str, tuple[int, int, float]]:
    sizes = _sizes(h)
    out: dict[str, tuple[int, int, float]] = {}
    for n in NODES:
        if n.op == "input":
            out[n.name] = (1, 1, 0.0)
            continue
        ins = [out[i] for i in n.inputs]
        if n.op == "concat":
            # Branches are aligned (stride-1 odd kernels), so the union is the largest.
            out[n.name] = max(ins)
            continue
        size, jump, start = ins[0]
        if n.op in ("conv", "maxpool", "avgpool"):
            k, s = n.kernel, n.stride
            before = same_padding(sizes[n.inputs[0]], k, s)[0] if n.op != "avgpool" else 0
            out[n.name] = (size + (k - 1) * jump, jump * s, start + jump * ((k - 1) / 2 - before))
        else:
            out[n.name] = (size, jump, start)
    return out


def receptive_field(name: str, input_size=224) -> ReceptiveField:
    """Receptive field of `name` (size and stride do not depend on the input size).

    >>> receptive_field("conv2d0").size, receptive_field("conv2d0").stride
    (7, 2)
    """
    node(name)
    h, w = _as_hw(input_size)
    sy, jy, cy = _rf(h)[name]
    _, _, cx = _rf(w)[name]
    return ReceptiveField(sy, jy, (cy, cx))


def centre_position(name: str, input_size=224) -> tuple[int, int]:
    """Lucid's "neuron" position: the middle of the map, (H // 2, W // 2)."""
    h, w = output_hw(name, input_size)
    return h // 2, w // 2


def check_input_size(name: str, hw: tuple[int, int]) -> None:
    """Raise if an input of size hw is too small to reach `name`."""
    sh, sw = output_hw(name, hw)
    if min(sh, sw) < 1 or any(min(output_hw(a, hw)) < 1 for a in ancestors(name)):
        need = min_input_size(name)
        raise ValueError(
            f"input of size {hw[0]}x{hw[1]} is too small to reach {name}: "
            f"it needs at least {need}x{need}"
        )


def describe(name: str) -> str:
    n = node(name)
    parts = [f"{n.name}: {n.op}"]
    if n.op in ("conv", "maxpool", "avgpool"):
        parts.append(f"{n.kernel}x{n.kernel}/{n.stride}")
    parts.append(f"{n.channels} channels")
    return " ".join(parts)


def layer_table(input_size: int = 224) -> list[dict]:
    """One row per hook name: op, channels, branch and offset, receptive field, output size."""
    parents: dict[str, tuple[str, int]] = {}
    for n in NODES:
        if n.op == "concat":
            for b, off, _ in branches(n.name):
                parents.setdefault(b, (n.name, off))
    rows = []
    for n in NODES:
        rf = receptive_field(n.name, input_size)
        parent = parents.get(n.name)
        rows.append(
            {
                "name": n.name,
                "op": n.op,
                "channels": n.channels,
                "kernel": n.kernel if n.op in ("conv", "maxpool", "avgpool") else None,
                "stride": n.stride if n.op in ("conv", "maxpool", "avgpool") else None,
                "concat": parent[0] if parent else None,
                "offset": parent[1] if parent else None,
                "rf_size": rf.size,
                "rf_stride": rf.stride,
                "output_hw": list(output_hw(n.name, input_size)),
            }
        )
    return rows
