"""Lucid's TensorFlow GraphDef (`InceptionV1.pb`, a.k.a. inception5h) as a state dict.

The GraphDef is parsed by `weights.graphdef`, a pure-Python reader of the few
protobuf fields that hold Const tensors (both `tensor_content` and the `float_val`
list form), so neither TensorFlow nor protobuf nor tensorboard is needed.

Lucid stores each layer's parameters as Const nodes named after the layer:
`conv2d0_w` / `conv2d0_b` for the conv whose output Lucid calls `conv2d0_pre_relu`,
`mixed3a_3x3_bottleneck_w` for `mixed3a_3x3_bottleneck_pre_relu`, and
`softmax2_w` / `softmax2_b` for `softmax2_pre_activation`. Conv kernels are in
TensorFlow's HWIO layout (converted to PyTorch's OIHW here) and `softmax2_w` is
(in, out) = (1024, 1008) (transposed to nn.Linear's (out, in)).

The graph also holds the two auxiliary classifier heads used in training
(`head0_bottleneck_*`, `nn0_*`, `softmax0_*`, `head1_*`, `nn1_*`, `softmax1_*`).
They are not part of InceptionV1's forward pass and are ignored unless
`aux=True`, which returns them separately (see `load_pb`).

Example:
    >>> from weights.lucid_pb import load_pb, const_names
    >>> const_names()["mixed3b_5x5_pre_relu_conv.weight"]
    'mixed3b_5x5_w'
    >>> sd = load_pb("InceptionV1.pb")                   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import einops
import numpy as np
import torch

from circuits import graph
from circuits.core.graph import INCEPTION_V1
from circuits.core.model import check_state_dict

__all__ = ["AUX_PREFIXES", "const_names", "read_consts", "convert", "load_pb"]

StateDict = dict[str, torch.Tensor]

# Auxiliary training heads in Lucid's graph (not on the path to softmax2).
AUX_PREFIXES = ("head0_", "nn0_", "softmax0_", "head1_", "nn1_", "softmax1_")

# Lucid's suffix on the tensor a parameterized op produces; stripping it gives the
# layer name that prefixes the op's Const nodes.
_OUTPUT_SUFFIX = {"conv": "_pre_relu", "linear": "_pre_activation"}


@functools.lru_cache(maxsize=None)
def const_names() -> dict[str, str]:
    """State-dict key -> Lucid Const node name, derived from `circuits.core.graph`.

    >>> const_names()["softmax2_pre_activation_matmul.bias"]
    'softmax2_b'
    """
    out = {}
    for n in graph.NODES:
        if n.op in _OUTPUT_SUFFIX:
            layer = n.name.removesuffix(_OUTPUT_SUFFIX[n.op])
            out[f"{n.param}.weight"] = f"{layer}_w"
            out[f"{n.param}.bias"] = f"{layer}_b"
    return out


def _to_torch_layout(a: np.ndarray) -> np.ndarray:
    """HWIO conv kernel -> OIHW, (in, out) matrix -> (out, in); biases unchanged."""
    if a.ndim == 4:
        return einops.rearrange(a, "h w i o -> o i h w")
    if a.ndim == 2:
        return a.T
    return a


def _tf_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape Lucid stores for the tensor that has `shape` in the state dict."""
    if len(shape) == 4:
        o, i, h, w = shape
        return (h, w, i, o)
    if len(shape) == 2:
        return shape[::-1]
    return shape


def read_consts(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every floating-point Const node of a GraphDef file, by node name (pure Python, see `weights.graphdef`)."""
    from .checkpoint import CheckpointError
    from .graphdef import GraphDefError, read_float_consts

    path = Path(path)
    try:
        return read_float_consts(path.read_bytes())
    except GraphDefError as e:
        raise CheckpointError(f"{path} is truncated or corrupt (not a TensorFlow GraphDef: {e})") from e


def convert(
    consts: dict[str, np.ndarray], aux: bool = False, source: str = "GraphDef"
) -> StateDict | tuple[StateDict, StateDict]:
    """Lucid Const arrays -> InceptionV1 state dict (PyTorch layouts, float32 copies).

    With `aux=True`, also the auxiliary heads as a second dict keyed
    `<lucid layer>.weight` / `.bias` (e.g. `nn0.weight`), in PyTorch layout:
    conv kernels OIHW, dense matrices (out, in). Note that `nn0`/`nn1` take the
    4x4x128 head map flattened in TensorFlow's (h, w, c) order.
    """
    expected = graph.parameter_shapes()
    missing, wrong, sd = [], [], {}
    for key, name in const_names().items():
        want = _tf_shape(expected[key])
        if name not in consts:
            missing.append(name)
        elif consts[name].shape != want:
            wrong.append(f"{name}: {consts[name].shape} (expected {want})")
        else:
            sd[key] = torch.from_numpy(np.ascontiguousarray(_to_torch_layout(consts[name]), dtype=np.float32))
    problems = [
        f"{len(items)} {label} Const ({', '.join(items[:6])}{', ...' if len(items) > 6 else ''})"
        for label, items in (("missing", missing), ("misshapen", wrong))
        if items
    ]
    if problems:
        from .checkpoint import CheckpointError

        raise CheckpointError(f"{source} is not Lucid's InceptionV1: " + "; ".join(problems))
    check_state_dict(sd, INCEPTION_V1)
    if not aux:
        return sd
    heads = {}
    for name, a in consts.items():
        if name.startswith(AUX_PREFIXES) and name.endswith(("_w", "_b")):
            param = "weight" if name.endswith("_w") else "bias"
            heads[f"{name[:-2]}.{param}"] = torch.from_numpy(
                np.ascontiguousarray(_to_torch_layout(a), dtype=np.float32)
            )
    return sd, heads


def load_pb(path: str | os.PathLike, aux: bool = False) -> StateDict | tuple[StateDict, StateDict]:
    """Convert Lucid's `InceptionV1.pb` into an InceptionV1 state dict.

    `aux=True` returns `(state_dict, aux_heads)`; see `convert`.

    >>> sd, heads = load_pb("InceptionV1.pb", aux=True)   # doctest: +SKIP
    >>> heads["softmax0.weight"].shape                    # doctest: +SKIP
    torch.Size([1008, 1024])
    """
    return convert(read_consts(path), aux=aux, source=str(path))
