"""Unit ids: `"layer:channel"` (Lucid's convention) and where a unit lives.

A unit id like ``"mixed3b:379"`` or ``("mixed3b", 379)`` resolves to its layer, the
branch tensor that computes it inside a concatenation (``mixed3b_5x5``), its channel
inside that branch (59) and its spatial centre for a given input size.

A unit belongs to one network's graph from the moment it is parsed:
`parse_unit(spec, network)` validates against that network (a model or its graph)
and the unit keeps it, so its branch, centre and receptive field are that network's.
There is no lookup by layer name across networks (every ResNet has a ``layer2``):
the network is always given, usually as ``model.unit(spec)``.

Example:
    >>> from circuits.core.graph import INCEPTION_V1
    >>> u = parse_unit("mixed3b:379", INCEPTION_V1)
    >>> u.branch, u.branch_channel
    ('mixed3b_5x5', 59)
    >>> from circuits.core.inception_v3 import INCEPTION_V3
    >>> parse_unit("mixed2:67", INCEPTION_V3).branch
    'activation_22'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

from circuits.core import graph

__all__ = ["Unit", "parse_unit", "UnitSpec", "WrongNetworkError", "wrong_network"]

# Layer names are words, dotted for a traced network's modules (``layer2.1.relu_1``).
_UNIT_RE = re.compile(r"^\s*([A-Za-z0-9_][A-Za-z0-9_.]*)\s*:\s*(-?\d+)\s*$")


@dataclass(frozen=True, order=True)
class Unit:
    """One channel of one named tensor of one network.

    `graph` is the network's declaration, always given, and part of equality: two
    ResNets both have a ``layer2:5``, and they are different units. (Graphs compare by
    identity; ordering sorts by layer name and channel, the graph breaking no tie.)
    """

    layer: str
    channel: int
    graph: graph.Graph = field(compare=False, repr=False)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Unit):
            return NotImplemented
        return (self.layer, self.channel) == (other.layer, other.channel) and self.graph is other.graph

    def __hash__(self) -> int:
        return hash((self.layer, self.channel, id(self.graph)))

    def __post_init__(self) -> None:
        if not isinstance(self.graph, graph.Graph):
            raise TypeError(
                f"Unit({self.layer!r}, {self.channel!r}) needs the network it belongs to (a Graph), got "
                f"{type(self.graph).__name__}; use model.unit('{self.layer}:{self.channel}')"
            )

    @property
    def network(self) -> graph.Graph:
        """The graph this unit belongs to."""
        return self.graph

    @property
    def id(self) -> str:
        return f"{self.layer}:{self.channel}"

    @property
    def branch(self) -> str:
        """The tensor that computes this channel (the layer itself outside concatenations)."""
        return self.network.branch_of(self.layer, self.channel)[0]

    @property
    def branch_channel(self) -> int:
        return self.network.branch_of(self.layer, self.channel)[1]

    def centre(self, input_size=224) -> tuple[int, int]:
        """Lucid's neuron position (H // 2, W // 2) of the layer's map."""
        return self.network.centre_position(self.layer, input_size)

    def centre_in_input(self, input_size=224) -> tuple[float, float]:
        """Input-pixel coordinate (y, x) of the centre of this unit's receptive field at `centre()`."""
        return self.network.receptive_field(self.layer, input_size).centre_of(*self.centre(input_size))

    def __str__(self) -> str:
        return self.id


UnitSpec = Union[str, tuple, Unit]


class WrongNetworkError(ValueError):
    """A unit, family or edit of one declared network used with a model (or graph) of another."""


def wrong_network(what: str, owner: graph.Graph, expected: graph.Graph, kind: str = "unit") -> WrongNetworkError:
    """The error for `what` (an id; a "unit" or "family") of network `owner` used where
    `expected`'s units are needed."""
    blocks = [t for t in expected.trunk_layers if expected.node(t).kind.joins_branches]
    example = f"{(blocks or expected.trunk_layers)[0]}:0"
    return WrongNetworkError(
        f"{what} is a {kind} of {owner.name}, not of {expected.name} (the model's network); "
        f"use units of {expected.name}'s layers, e.g. {example} (`circuits layers` lists them)"
    )


def parse_unit(spec: UnitSpec, network) -> Unit:
    """A Unit of `network` (a model or its Graph) from ``"layer:channel"``, ``(layer,
    channel)`` or a Unit; validated against that network (a Unit of another network is
    refused, naming both).

    >>> from circuits.core.graph import INCEPTION_V1
    >>> parse_unit(("mixed3a", 81), INCEPTION_V1).id
    'mixed3a:81'
    """
    from circuits.core.networks import DECLARED, network_of

    g = network_of(network)
    if g is None:
        raise TypeError(f"parse_unit({spec!r}) needs the network the unit belongs to (a model or a Graph)")
    if isinstance(spec, Unit):
        if spec.graph is not g:
            raise wrong_network(spec.id, spec.graph, g)
        return spec
    if isinstance(spec, str):
        m = _UNIT_RE.match(spec)
        if not m:
            raise ValueError(f"bad unit id {spec!r}: expected 'layer:channel', e.g. 'mixed3b:379'")
        layer, channel = m.group(1), int(m.group(2))
    elif isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        layer, channel = spec
        if isinstance(channel, bool):
            raise ValueError(f"bad unit {spec!r}: the channel must be an integer")
        try:
            channel = int(channel)
        except (TypeError, ValueError):
            raise ValueError(f"bad unit {spec!r}: the channel must be an integer") from None
    else:
        raise ValueError(f"bad unit {spec!r}: expected 'layer:channel' or (layer, channel), e.g. 'mixed3b:379'")
    if layer not in g._by_name:
        # Only to name the right network in the error: a unit of a declared network used on another.
        owner = next((o for o in DECLARED.values() if layer in o._by_name), None)
        if owner is not None:
            raise wrong_network(f"{layer}:{channel}", owner, g)
    g.node(layer)  # unknown layer: raises with close matches
    g.branch_of(layer, channel)  # out of range: raises with the valid range
    return Unit(layer, channel, g)
