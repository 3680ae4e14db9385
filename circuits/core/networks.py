"""The declared networks, and the network of a model.

`DECLARED` lists the networks declared by hand (InceptionV1, InceptionV3); a traced
network (`circuits.trace`) has its own graph, made at run time. Nothing here maps a
layer name to a network: a unit or family id is always read against the network it
is used with (`circuits.core.units.parse_unit(spec, model)`), because layer names are
not unique across networks (every ResNet has a ``layer2``). `DECLARED` serves error
messages ("mixed2:67 is a unit of InceptionV3, not of InceptionV1") and the network
names written in files.

Example:
    >>> graph_named("InceptionV3").name
    'InceptionV3'
"""

from __future__ import annotations

from circuits.core.graph import INCEPTION_V1, Graph
from circuits.core.inception_v3 import INCEPTION_V3

__all__ = ["DECLARED", "graph_named", "network_of"]

#: every declared network by name, the default first
DECLARED: dict[str, Graph] = {g.name: g for g in (INCEPTION_V1, INCEPTION_V3)}


def graph_named(name: str) -> Graph:
    """A declared network's graph by its name (``"InceptionV3"``)."""
    try:
        return DECLARED[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; declared: {', '.join(DECLARED)}") from None


def network_of(model_or_graph) -> Graph | None:
    """The graph of a model (its ``.graph``), a Graph itself, or None for None.

    >>> network_of(INCEPTION_V3) is INCEPTION_V3, network_of(None)
    (True, None)
    """
    if model_or_graph is None or isinstance(model_or_graph, Graph):
        return model_or_graph
    g = getattr(model_or_graph, "graph", None)
    if not isinstance(g, Graph):
        raise TypeError(f"expected a circuits model (with a .graph) or a Graph, got {type(model_or_graph).__name__}")
    return g
