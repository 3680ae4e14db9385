"""The weight source `nsfwjs-inception-v3`: the InceptionV3 trunk of npm's nsfwjs@4.4.0.

`weights.tfjs` reads the package (Keras topology and dequantized weights); this module
checks that topology layer by layer against the declaration
(`circuits.core.inception_v3.INCEPTION_V3`), folds every batch norm into its conv, and
returns a state dict with the declaration's keys (`conv2d_N.weight`, `conv2d_N.bias`).

What is checked, by Keras layer name (never by position: the file lists layers in
another order than their numbers): every declared tensor has its Keras layer of the
right class; each conv's kernel, strides, padding, filters and input layer; each pool's
size, strides, padding and input; each concatenation's inputs in order; each ReLU reads
the batch norm of its conv, which reads that conv; and no Keras layer that `mixed10`
depends on is left undeclared. The classifier head after mixed10 (average_pooling2d_10,
flatten_1, dense_1..3, dropout_2..3: a 5-class NSFW classifier, not ImageNet) is not
part of the network and is ignored.

Example:
    >>> import weights
    >>> sd = weights.load("nsfwjs-inception-v3")          # doctest: +SKIP
    >>> sd["conv2d_1.weight"].shape                       # doctest: +SKIP
    torch.Size([32, 3, 3, 3])
    >>> model = weights.model("nsfwjs-inception-v3")      # doctest: +SKIP
"""

from __future__ import annotations

import os

import torch

from circuits.core.graph import Graph, Node
from circuits.core.inception_v3 import INCEPTION_V3
from circuits.core.model import check_state_dict

from . import tfjs

__all__ = ["TopologyMismatch", "check_topology", "state_dict", "frozen_convs"]

# Keras layer class of each declared op kind.
_KERAS_CLASS = {
    "conv": "Conv2D",
    "relu": "Activation",
    "maxpool": "MaxPooling2D",
    "avgpool": "AveragePooling2D",
    "concat": "Concatenate",
}
_KERAS_INPUT = "input_1"


class TopologyMismatch(tfjs.TfjsFormatError):
    """The Keras model in the package is not the declared InceptionV3 (names the layer)."""


def _declared_name(keras_name: str) -> str:
    """The declared tensor a Keras layer's output is: BN outputs are the folded convs."""
    if keras_name == _KERAS_INPUT:
        return "input"
    if keras_name.startswith("batch_normalization_"):
        return "conv2d_" + keras_name.removeprefix("batch_normalization_")
    return keras_name


def _fail(layer: str, what: str, got, want) -> TopologyMismatch:
    return TopologyMismatch(
        f"Keras layer {layer}: {what} is {got!r}, but the InceptionV3 declaration "
        f"(circuits/core/inception_v3.py) has {want!r}"
    )


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _check_window(n: Node, layer: tfjs.Layer, size_key: str) -> None:
    c = layer.config
    for what, got, want in (
        (size_key, _pair(c.get(size_key)), n.kernel),
        ("strides", _pair(c.get("strides")), (n.stride, n.stride)),
        ("padding", c.get("padding"), n.padding),
        ("data_format", c.get("data_format", "channels_last"), "channels_last"),
    ):
        if got != want:
            raise _fail(layer.name, what, got, want)


def _check_node(n: Node, ls: dict[str, tfjs.Layer]) -> None:
    layer = ls.get(n.name)
    want_class = _KERAS_CLASS.get(n.op)
    if layer is None:
        raise TopologyMismatch(f"declared {n.op} {n.name} has no Keras layer of that name in the package")
    if layer.class_name != want_class:
        raise _fail(n.name, "the class", layer.class_name, want_class)
    c = layer.config
    # Per kind, the Keras config keys that carry what the declaration states.
    if n.op == "conv":
        _check_window(n, layer, "kernel_size")
        if c.get("filters") != n.channels:
            raise _fail(n.name, "filters", c.get("filters"), n.channels)
        if _pair(c.get("dilation_rate", 1)) != (1, 1) or c.get("activation", "linear") != "linear":
            raise _fail(n.name, "dilation/activation", (c.get("dilation_rate"), c.get("activation")), ((1, 1), "linear"))
    elif n.op in ("maxpool", "avgpool"):
        _check_window(n, layer, "pool_size")
    elif n.op == "relu" and c.get("activation") != "relu":
        raise _fail(n.name, "activation", c.get("activation"), "relu")
    elif n.op == "concat" and c.get("axis", -1) not in (-1, 3):
        raise _fail(n.name, "axis", c.get("axis"), -1)
    got = tuple(_declared_name(i) for i in layer.inbound)
    if got != n.inputs:
        raise _fail(n.name, "the input", ",".join(layer.inbound), ",".join(n.inputs))
    if n.op == "relu":
        # activation_N <- batch_normalization_N <- conv2d_N: the folded conv is the BN's output.
        bn = ls.get(layer.inbound[0])
        conv = n.inputs[0]
        if bn is None or bn.class_name != "BatchNormalization" or bn.inbound != (conv,):
            raise _fail(layer.inbound[0], "the layer between the conv and the ReLU",
                        bn and f"{bn.class_name} <- {','.join(bn.inbound)}", f"BatchNormalization <- {conv}")
        if bn.config.get("axis") not in (-1, 3, [3], [-1]):
            raise _fail(bn.name, "axis", bn.config.get("axis"), -1)


def check_topology(model: tfjs.TfjsModel, network: Graph = INCEPTION_V3) -> None:
    """Raise TopologyMismatch naming the first Keras layer that differs from `network`.

    >>> check_topology(tfjs.load())                       # doctest: +SKIP
    """
    ls = {l.name: l for l in tfjs.layers(model)}
    declared = set()
    for n in network.nodes:
        if n.synthesized or not n.inputs:
            continue
        _check_node(n, ls)
        declared.add(n.name)
    # Everything the last declared tensor depends on in Keras must be declared too.
    todo, seen = [network.output], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        layer = ls.get(name)
        if layer is None:
            raise TopologyMismatch(f"Keras layer {name} (an input of the trunk) is missing from the package")
        if layer.class_name not in ("InputLayer", "BatchNormalization") and name not in declared:
            raise TopologyMismatch(
                f"Keras layer {name} ({layer.summary()}) feeds {network.output} but is not in the declaration"
            )
        todo.extend(layer.inbound)


def frozen_convs(model: tfjs.TfjsModel) -> list[str]:
    """The convs that were frozen (trainable=false) while nsfwjs fine-tuned its head:
    keras.applications' ImageNet weights.

    >>> frozen_convs(tfjs.load())[-2:]                    # doctest: +SKIP
    ['conv2d_50', 'conv2d_55']
    """
    return sorted(
        (l.name for l in tfjs.layers(model) if l.class_name == "Conv2D" and not l.trainable),
        key=lambda s: int(s.rsplit("_", 1)[1]),
    )


def state_dict(path: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """The checked state dict of `INCEPTION_V3` from the package (`tfjs.locate_package(path)`).

    Without the package and without npm (or offline), `weights.tfjs` raises saying how
    to get it (`npm pack nsfwjs@4.4.0`).
    """
    model = tfjs.load(path)
    check_topology(model)
    folded = tfjs.folded_convs(model)
    sd: dict[str, torch.Tensor] = {}
    for n in INCEPTION_V3.nodes:
        if n.param is None:
            continue
        w, b = folded[n.param]
        sd[f"{n.param}.weight"] = torch.from_numpy(w)
        sd[f"{n.param}.bias"] = torch.from_numpy(b)
    check_state_dict(sd, INCEPTION_V3)
    return sd
