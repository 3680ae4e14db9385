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
    ValueError: mixed3b:379 is a unit of InceptionV1, but the model is InceptionV3: give units of InceptionV3's layers (e.g. mixed0:0)
"""

from __future__ import annotations

from circuits.core.graph import Graph, UnknownNameError
from circuits.core.units import Unit

__all__ = ["graph_of", "resolve", "conv_table"]


def graph_of(model) -> Graph:
    """The graph of `model` (a model with `.graph`, or a `Graph` itself)."""
    return model if isinstance(model, Graph) else model.graph


def _layer_of(spec) -> str | None:
    if isinstance(spec, Unit):
        return spec.layer
    if isinstance(spec, str):
        return spec.split(":", 1)[0].strip()
    if isinstance(spec, tuple) and spec and isinstance(spec[0], str):
        return spec[0]
    return None


def _example(g: Graph) -> str:
    """A unit of the network's first block (mixed3a, mixed0), for the error message."""
    blocks = [t for t in g.trunk_layers if g.node(t).kind.joins_branches]
    layer = blocks[0] if blocks else g.names()[-1]
    return f"{layer}:0"


def resolve(units, model) -> list[Unit]:
    """`circuits.families.resolve_units` against the model's network, with a unit or family of
    another declared network refused by naming both networks (resolve_units names only the model's)."""
    from circuits.core.networks import graph_of_layer
    from circuits.families import resolve_units

    g = graph_of(model)
    single = isinstance(units, (str, Unit)) or (isinstance(units, tuple) and len(units) == 2
                                                 and isinstance(units[0], str))
    specs = [units] if single else list(units)
    out: list[Unit] = []
    for spec in specs:
        try:
            out.extend(resolve_units(spec, g))
        except UnknownNameError:
            layer = _layer_of(spec)
            try:
                other = graph_of_layer(layer) if layer else None
            except UnknownNameError:
                other = None
            if other is None or other is g:
                raise
            raise ValueError(f"{_spec_str(spec)} is a unit of {other.name}, but the model is {g.name}: "
                             f"give units of {g.name}'s layers (e.g. {_example(g)})") from None
    if not out:
        raise ValueError("empty list of units")
    return out


def _spec_str(spec) -> str:
    if isinstance(spec, Unit):
        return spec.id
    if isinstance(spec, tuple):
        return ":".join(str(s) for s in spec)
    return str(spec).strip()


def conv_table(units, model) -> list[tuple[str, str, int]]:
    """(unit id, pre-ReLU tensor, channel in it) per unit: the convolution of the model's graph
    that computes the unit (its output is the pre-activation the ReLU reads)."""
    g = graph_of(model)
    out = []
    for u in resolve(units, g):
        found = g.conv_of(u.layer, u.channel)
        if found is None:
            n = g.node(u.branch)
            raise ValueError(f"{u.id} is computed by a {n.op} ({n.name}) of {g.name}, not a convolution: it has "
                             f"no pre-ReLU value to scan; use a unit of a convolutional layer")
        out.append((u.id, found[0], found[1]))
    if len({t[0] for t in out}) != len(out):
        raise ValueError(f"units listed twice: {[t[0] for t in out]}")
    return out
