"""The declared networks, and which one a layer name belongs to.

Layer names of the declared networks do not collide (InceptionV1's ``conv2d0`` ..
``mixed5b`` against InceptionV3's Keras names ``conv2d_1`` .. ``mixed10``), so a unit
or family id given without a model still names one network. The input tensor is the
one shared name; it resolves to InceptionV1, the default.

Example:
    >>> graph_of_layer("mixed2").name, graph_of_layer("mixed3b").name
    ('InceptionV3', 'InceptionV1')
"""

from __future__ import annotations

from circuits.core.graph import INCEPTION_V1, Graph, UnknownNameError, suggest
from circuits.core.inception_v3 import INCEPTION_V3

__all__ = ["DECLARED", "graph_of_layer", "graph_named", "network_of"]

#: every declared network by name, the default first
DECLARED: dict[str, Graph] = {g.name: g for g in (INCEPTION_V1, INCEPTION_V3)}


def graph_of_layer(layer: str) -> Graph:
    """The declared network that has a tensor called `layer` (InceptionV1 first).

    An unknown name raises with the close matches from every network.
    """
    for g in DECLARED.values():
        if layer in g._by_name:
            return g
    pool = [n for g in DECLARED.values() for n in g._by_name]
    raise UnknownNameError(
        f"unknown layer or hook name {layer!r}{suggest(str(layer), pool)} "
        f"(declared networks: {', '.join(DECLARED)}; run `circuits layers` for the full list)"
    )


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
