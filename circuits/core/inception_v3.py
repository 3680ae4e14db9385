"""InceptionV3 (keras.applications.inception_v3) declared as data, with Keras's tensor names.

The declaration follows the order of keras.applications' `InceptionV3` code, so Keras's
automatic layer numbers come out the same as in the saved model (nsfwjs@4.4.0, saved by
Keras 2.2.4, numbers from 1):

- ``conv2d_N`` is Keras's convolution *with its batch norm folded in*: the value of
  Keras's ``batch_normalization_N`` output, i.e. the pre-ReLU tensor (Keras's convs have
  no bias; BN has eps 0.001 and no gamma; `circuits.core.ops.fold_batchnorm` /
  `weights.tfjs.fold_batchnorm`). Its state-dict module is also ``conv2d_N``.
- ``activation_N`` is its ReLU; ``max_pooling2d_N`` / ``average_pooling2d_N`` the pools
  (SAME average pools exclude the padding from the mean, as TensorFlow does);
  ``mixed0`` ... ``mixed10``, ``mixed9_0``, ``mixed9_1``, ``concatenate_1``,
  ``concatenate_2`` the concatenations.
- ``<block>_pre_relu`` (synthesized, as Lucid's InceptionV1 has) concatenates the
  pre-ReLU conv tensors of a block whose every branch ends in a conv, so that
  ``mixed2:67`` can be read before its ReLU. mixed3 and mixed8 have a max-pool-only
  branch and get none. In mixed9/mixed10 two branches are themselves concatenations
  (``mixed9_0``, ``concatenate_1``), which get their own ``_pre_relu`` twins.

The graph ends at ``mixed10`` (2048 channels, 8x8 at 299 px). Keras's classifier head
is left out on purpose: the weights this network is used with (npm's nsfwjs@4.4.0)
carry a task-specific 5-class head (dense 256 -> 128 -> 5), not ImageNet's 1000-way
softmax, so the trunk is the part that is a general vision network. Of that trunk only
the layers through ``conv2d_55`` / ``activation_55`` (mixed0-mixed5 and one branch of
mixed6) were frozen at keras.applications' ImageNet weights; the rest was fine-tuned.

Input: RGB in [-1, 1] (Keras's preprocess_input: x / 127.5 - 1), any size >= 75 px.

Example:
    >>> from circuits.core.inception_v3 import INCEPTION_V3
    >>> INCEPTION_V3.node("mixed2").channels, INCEPTION_V3.output_hw("mixed2", 299)
    (288, (35, 35))
    >>> INCEPTION_V3.branch_of("mixed2", 67)
    ('activation_22', 3)
    >>> INCEPTION_V3.conv_of("mixed2", 67), INCEPTION_V3.pre_relu_of("mixed2")
    (('conv2d_22', 3), 'mixed2_pre_relu')
    >>> INCEPTION_V3.min_input_size("mixed10")
    75
"""

from __future__ import annotations

from typing import Sequence

from circuits.core.graph import Builder, Graph, Node

__all__ = ["INCEPTION_V3", "MIXED_CHANNELS", "FROZEN_LAST_CONV"]

#: channels of every concatenation, as in Keras's model summary
MIXED_CHANNELS = {
    "mixed0": 256, "mixed1": 288, "mixed2": 288, "mixed3": 768, "mixed4": 768, "mixed5": 768,
    "mixed6": 768, "mixed7": 768, "mixed8": 1280, "mixed9": 2048, "mixed10": 2048,
}
#: the last conv of nsfwjs's frozen (trainable=false) ImageNet trunk
FROZEN_LAST_CONV = "conv2d_55"


class _V3Builder(Builder):
    """A Builder that numbers convs and pools as Keras does (in creation order)."""

    def __init__(self):
        super().__init__()
        self.count = {"conv2d": 0, "max_pooling2d": 0, "average_pooling2d": 0, "concatenate": 0}

    def _next(self, kind: str) -> int:
        self.count[kind] += 1
        return self.count[kind]

    def cbr(self, filters: int, kh: int, kw: int, *, src: str | None = None, stride: int = 1,
            padding: str = "same") -> str:
        """keras.applications' conv2d_bn: conv (BN folded) -> ReLU; returns the ReLU's name."""
        n = self._next("conv2d")
        self.conv(f"activation_{n}", (kh, kw), stride, filters, src=src, pre=f"conv2d_{n}",
                  param=f"conv2d_{n}", padding=padding)
        return self.last.name

    def max3x3s2(self, src: str) -> str:
        self.maxpool(f"max_pooling2d_{self._next('max_pooling2d')}", 3, 2, src=src, padding="valid")
        return self.last.name

    def avg3x3(self, src: str) -> str:
        self.avgpool(f"average_pooling2d_{self._next('average_pooling2d')}", 3, 1, src=src)
        return self.last.name

    def block(self, name: str, branches: Sequence[str]) -> str:
        """The concatenation `name`, after its synthesized `_pre_relu` twin where every
        branch has a pre-ReLU tensor."""
        pres = [self._pre_relu(b) for b in branches]
        if all(pres):
            self.concat(f"{name}_pre_relu", pres, synthesized=True)
        self.concat(name, branches)
        return name

    def _pre_relu(self, name: str) -> str | None:
        n = next(n for n in reversed(self.nodes) if n.name == name)
        if n.kind.is_activation:
            return n.inputs[0]
        pre = f"{name}_pre_relu"
        return pre if any(m.name == pre for m in self.nodes) else None


def _inception_v3() -> tuple[Node, ...]:
    b = _V3Builder()
    # Stem: 299 -> 149 -> 147 -> 147 -> 73 -> 73 -> 71 -> 35
    x = b.cbr(32, 3, 3, stride=2, padding="valid")
    x = b.cbr(32, 3, 3, padding="valid")
    x = b.cbr(64, 3, 3)
    x = b.max3x3s2(x)
    x = b.cbr(80, 1, 1, padding="valid")
    x = b.cbr(192, 3, 3, padding="valid")
    x = b.max3x3s2(x)

    # mixed0, mixed1, mixed2: 35 x 35
    for i, pool_filters in enumerate((32, 64, 64)):
        b1 = b.cbr(64, 1, 1, src=x)
        b5 = b.cbr(64, 5, 5, src=b.cbr(48, 1, 1, src=x))
        d = b.cbr(96, 3, 3, src=b.cbr(96, 3, 3, src=b.cbr(64, 1, 1, src=x)))
        bp = b.cbr(pool_filters, 1, 1, src=b.avg3x3(x))
        x = b.block(f"mixed{i}", [b1, b5, d, bp])

    # mixed3: 17 x 17 (reduction)
    b3 = b.cbr(384, 3, 3, src=x, stride=2, padding="valid")
    d = b.cbr(96, 3, 3, src=b.cbr(96, 3, 3, src=b.cbr(64, 1, 1, src=x)), stride=2, padding="valid")
    bp = b.max3x3s2(x)
    x = b.block("mixed3", [b3, d, bp])

    # mixed4 .. mixed7: 17 x 17, factorized 7x7 convs
    for i, c in zip(range(4, 8), (128, 160, 160, 192)):
        b1 = b.cbr(192, 1, 1, src=x)
        b7 = b.cbr(192, 7, 1, src=b.cbr(c, 1, 7, src=b.cbr(c, 1, 1, src=x)))
        d = b.cbr(c, 1, 1, src=x)
        d = b.cbr(c, 7, 1, src=d)
        d = b.cbr(c, 1, 7, src=d)
        d = b.cbr(c, 7, 1, src=d)
        d = b.cbr(192, 1, 7, src=d)
        bp = b.cbr(192, 1, 1, src=b.avg3x3(x))
        x = b.block(f"mixed{i}", [b1, b7, d, bp])

    # mixed8: 8 x 8 (reduction)
    b3 = b.cbr(320, 3, 3, src=b.cbr(192, 1, 1, src=x), stride=2, padding="valid")
    d = b.cbr(192, 1, 1, src=x)
    d = b.cbr(192, 1, 7, src=d)
    d = b.cbr(192, 7, 1, src=d)
    d = b.cbr(192, 3, 3, src=d, stride=2, padding="valid")
    bp = b.max3x3s2(x)
    x = b.block("mixed8", [b3, d, bp])

    # mixed9, mixed10: 8 x 8, expanded filter banks
    for i in range(2):
        b1 = b.cbr(320, 1, 1, src=x)
        t = b.cbr(384, 1, 1, src=x)
        b3 = b.block(f"mixed9_{i}", [b.cbr(384, 1, 3, src=t), b.cbr(384, 3, 1, src=t)])
        t = b.cbr(384, 3, 3, src=b.cbr(448, 1, 1, src=x))
        d = b.block(f"concatenate_{b._next('concatenate')}", [b.cbr(384, 1, 3, src=t), b.cbr(384, 3, 1, src=t)])
        bp = b.cbr(192, 1, 1, src=b.avg3x3(x))
        x = b.block(f"mixed{9 + i}", [b1, b3, d, bp])
    return tuple(b.nodes)


INCEPTION_V3 = Graph(
    "InceptionV3",
    _inception_v3(),
    # Keras's preprocess_input for InceptionV3: RGB x / 127.5 - 1
    input_range=(-1.0, 1.0),
    # Weights between units through the 35x35 and 17x17 stages (the factorized 7x7s
    # included); mixed7 is the last block before the 8x8 reduction.
    expanded_span=("conv2d_1", "mixed7"),
    default_input_size=299,
)
