"""Which network a model, a unit or a family belongs to, for the analysis and editing code.

Every analysis (weights between units, attribution, circuit graphs, ablations, edits)
reads the facts of one network's graph (`circuits.core.graph.Graph`): the model's
(``model.graph``), or, without a model, the network of the units themselves (a
`Unit` keeps its graph; an id names its network by its layer). These helpers resolve
unit and family specs against that graph and turn "a unit of the other network"
into an error that names both networks, instead of an unknown-name KeyError.

Example:
    >>> from circuits.core.inception_v3 import INCEPTION_V3
    >>> [u.id for u in resolve("mixed2:67", INCEPTION_V3)]
    ['mixed2:67']
    >>> resolve("mixed3b:379", INCEPTION_V3)
    Traceback (most recent call last):
    ...
    circuits.core.units.WrongNetworkError: mixed3b:379 is a unit of InceptionV1, not of InceptionV3 (the model's network); use units of InceptionV3's layers, e.g. mixed0:0 (`circuits layers` lists them)
"""

from __future__ import annotations

from typing import Iterable, Sequence

from circuits.core.graph import Graph
from circuits.core.networks import network_of
from circuits.core.units import Unit, WrongNetworkError
from circuits.families import Family, units_of

__all__ = ["WrongNetworkError", "network_of", "resolve", "one_unit", "common_network", "units_in"]


def resolve(spec, network=None) -> list[Unit]:
    """Units of `spec` (unit ids, family ids, Units, a Family or a list) of `network`
    (a model, whose own families count, or a Graph; None only for resolved Units or a
    Family, which know their network, all of one).

    A unit or family of another declared network raises `WrongNetworkError` naming both
    networks (`circuits.families.resolve_units`); a name no network has raises the
    usual unknown-name error.
    """
    # A Family is its units: `units_of` checks resolved Units against `network` (or the first's).
    return units_of(list(spec.units) if isinstance(spec, Family) else spec, network)


def common_network(units: Iterable[Unit], what: str = "units") -> Graph:
    """The one network of `units`; raises `WrongNetworkError` if they mix networks."""
    units = list(units)
    if not units:
        raise ValueError(f"no {what} given")
    nets = {id(u.network): u for u in units}
    if len(nets) > 1:
        a, b = list(nets.values())[:2]
        raise WrongNetworkError(
            f"the {what} mix networks: {a.id} is a unit of {a.network.name}, {b.id} of {b.network.name}; "
            "give units of one network"
        )
    return units[0].network


def units_in(network: Graph, layer: str, channels: Sequence[int] | None = None) -> list[Unit]:
    """Units of `layer` of `network` (every channel, or `channels`), carrying the graph."""
    n = network.node(layer)
    return [Unit(layer, c, network) for c in (range(n.channels) if channels is None else channels)]


def one_unit(spec, network=None) -> Unit:
    """The one unit `spec` names (a unit id, ``(layer, channel)`` or a Unit) in `network`."""
    if isinstance(spec, str) and ":" in spec and not spec.split(":", 1)[1].strip().lstrip("-").isdigit():
        raise ValueError(f"expected one unit ('layer:channel', e.g. 'mixed3b:379'), got the family id {spec!r}")
    units = resolve(spec, network)
    if len(units) != 1:  # pragma: no cover - a unit spec names one unit
        raise ValueError(f"expected one unit, got {len(units)} from {spec!r}")
    return units[0]
