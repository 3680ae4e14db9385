"""The model's network, as the dataset package reads it: its units and their pre-ReLU tensors.

Everything the scan, the extraction and the attribution quilt need about a network
comes from `model.graph` (InceptionV1, InceptionV3, ...): unit ids are resolved
against it, a unit's pre-activation is the convolution its graph says computes it,
crop sizes are its receptive fields, and images enter in its input range. A unit of
another declared network is refused with an error that names both.

Example:
    >>> from circuits.core.inception_v3 import INCEPTION_V3
    >>> conv_table("mixed2:67", INCEPTION_V3)
    [('mixed2:67', 'conv2d_22', 3)]
    >>> conv_table("mixed3b:379", INCEPTION_V3)
    Traceback (most recent call last):
    ...
    circuits.core.units.WrongNetworkError: mixed3b:379 is a unit of InceptionV1, not of InceptionV3 (the model's network); use units of InceptionV3's layers, e.g. mixed0:0 (`circuits layers` lists them)
"""

from __future__ import annotations

from circuits.analysis.networks import resolve
from circuits.core.networks import network_of

__all__ = ["resolve", "conv_table"]


def conv_table(units, model) -> list[tuple[str, str, int]]:
    """(unit id, pre-ReLU tensor, channel in it) per unit: the convolution of the model's graph
    that computes the unit (its output is the pre-activation the ReLU reads)."""
    g = network_of(model)
    out = []
    for u in resolve(units, model):
        found = g.conv_of(u.layer, u.channel)
        if found is None:
            n = g.node(u.branch)
            raise ValueError(f"{u.id} is computed by a {n.op} ({n.name}) of {g.name}, not a convolution: it has "
                             f"no pre-ReLU value to scan; use a unit of a convolutional layer")
        out.append((u.id, found[0], found[1]))
    if len({t[0] for t in out}) != len(out):
        raise ValueError(f"units listed twice: {[t[0] for t in out]}")
    return out
