"""Unit ids: `"layer:channel"` (Lucid's convention) and where a unit lives.

A unit id like ``"mixed3b:379"`` or ``("mixed3b", 379)`` resolves to its layer, the
branch tensor that computes it inside a concatenation (``mixed3b_5x5``), its channel
inside that branch (59) and its spatial centre for a given input size.

A unit belongs to one network's graph: `parse_unit(spec, graph)` validates against
that graph (InceptionV1's when none is given) and the unit keeps it, so its branch,
centre and receptive field are that network's. Pass ``model.graph`` (or use
``model.unit(spec)``) for any other network.

Example:
    >>> u = parse_unit("mixed3b:379")
    >>> u.branch, u.branch_channel
    ('mixed3b_5x5', 59)
    >>> from circuits.core.inception_v3 import INCEPTION_V3
    >>> parse_unit("mixed2:67", INCEPTION_V3).branch
    'activation_22'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional, Union

from circuits.core import graph

__all__ = ["Unit", "parse_unit", "UnitSpec", "WrongNetworkError", "wrong_network"]

# Layer names are words, dotted for a traced network's modules (``layer2.1.relu_1``).
_UNIT_RE = re.compile(r"^\s*([A-Za-z0-9_][A-Za-z0-9_.]*)\s*:\s*(-?\d+)\s*$")


@dataclass(frozen=True, order=True)
class Unit:
    """One channel of one named tensor of one network.

    `graph` is the network's declaration (None: InceptionV1); it is not part of
    equality or ordering, so ``Unit("mixed3b", 379)`` equals a parsed ``"mixed3b:379"``.
    """

    layer: str
    channel: int
    graph: Optional[graph.Graph] = field(default=None, compare=False, repr=False)

    @property
    def network(self) -> graph.Graph:
        """The graph this unit belongs to."""
        return self.graph if self.graph is not None else graph.INCEPTION_V1

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


def parse_unit(spec: UnitSpec, graph_: Optional[graph.Graph] = None) -> Unit:
    """A Unit of network `graph_` from ``"layer:channel"``, ``(layer, channel)`` or a
    Unit; validated against that network.

    Without `graph_`, the network is the declared one that has the layer
    (`circuits.core.networks.graph_of_layer`: the names do not collide); a Unit passed
    without a graph keeps its own network, and with one it must belong to it.

    >>> parse_unit(("mixed3a", 81)).id
    'mixed3a:81'
    """
    if isinstance(spec, Unit):
        layer, channel = spec.layer, spec.channel
        if graph_ is None:
            graph_ = spec.graph
        elif spec.network is not graph_:
            raise wrong_network(spec.id, spec.network, graph_)
    elif isinstance(spec, str):
        m = _UNIT_RE.match(spec)
        if not m:
            raise ValueError(f"bad unit id {spec!r}: expected 'layer:channel', e.g. 'mixed3b:379'")
        layer, channel = m.group(1), int(m.group(2))
    elif isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        layer, channel = spec
        try:
            channel = int(channel)
        except (TypeError, ValueError):
            raise ValueError(f"bad unit {spec!r}: the channel must be an integer") from None
    else:
        raise ValueError(f"bad unit {spec!r}: expected 'layer:channel' or (layer, channel), e.g. 'mixed3b:379'")
    if graph_ is None:
        from circuits.core.networks import graph_of_layer  # the declared networks import this module's users

        g = graph_of_layer(layer) if isinstance(layer, str) else graph.INCEPTION_V1
    else:
        g = graph_
        if isinstance(layer, str) and layer not in g._by_name:
            from circuits.core.networks import DECLARED

            owner = next((o for o in DECLARED.values() if layer in o._by_name), None)
            if owner is not None:
                raise wrong_network(f"{layer}:{channel}", owner, g)
    g.node(layer)  # unknown layer: raises with close matches
    g.branch_of(layer, channel)  # out of range: raises with the valid range
    return Unit(layer, channel, None if g is graph.INCEPTION_V1 else g)
