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
    circuits.analysis.networks.WrongNetworkError: mixed3b:379 is a unit of InceptionV1, but the model is an InceptionV3; use units of InceptionV3's layers (e.g. mixed0:67; run `circuits layers` for the names)
"""

from __future__ import annotations

from typing import Iterable, Sequence

from circuits.core.graph import INCEPTION_V1, Graph, UnknownNameError
from circuits.core.units import Unit
from circuits.families import Family, resolve_units

__all__ = ["WrongNetworkError", "network_of", "resolve", "one_unit", "common_network", "units_in"]


class WrongNetworkError(ValueError):
    """A unit, family or edit of one network used with a model of another."""


def network_of(model_or_graph) -> Graph | None:
    """The graph of a model (its ``.graph``), a Graph itself, or None for None."""
    if model_or_graph is None or isinstance(model_or_graph, Graph):
        return model_or_graph
    g = getattr(model_or_graph, "graph", None)
    if not isinstance(g, Graph):
        raise TypeError(f"expected a circuits model (with a .graph) or a Graph, got {type(model_or_graph).__name__}")
    return g


def _example(g: Graph) -> str:
    """A unit id of `g` for error messages (the first block's first channel)."""
    layer = next((n for n in g.trunk_layers if g.node(n).kind.joins_branches), g.trunk_layers[0])
    return f"{layer}:{min(67, g.node(layer).channels - 1)}"


def _mismatch(what: str, owner: Graph, g: Graph) -> WrongNetworkError:
    return WrongNetworkError(
        f"{what} is a unit of {owner.name}, but the model is an {g.name}; use units of {g.name}'s layers "
        f"(e.g. {_example(g)}; run `circuits layers` for the names)"
    )


def resolve(spec, network=None) -> list[Unit]:
    """Units of `spec` (unit ids, family ids, Units, a Family or a list) of `network`
    (a model or a Graph; None: each id's own network, which must be one for all).

    A unit or family of another declared network raises `WrongNetworkError` naming both
    networks; a name no network has raises the usual unknown-name error.
    """
    g = network_of(network)
    if isinstance(spec, Family):
        units = list(spec.units)
    else:
        try:
            units = resolve_units(spec, g)
        except UnknownNameError:
            if g is None:
                raise
            try:  # is it a name of another declared network?
                own = resolve_units(spec)
            except (KeyError, ValueError, IndexError):
                raise  # the original unknown-name error (close matches in this network)
            bad = next((u for u in own if u.network is not g), None)
            if bad is None:  # pragma: no cover - resolving without a graph found the same network
                raise
            raise _mismatch(bad.id, bad.network, g) from None
        except ValueError as e:
            if g is not None and " not of " in str(e):  # a Unit or Family object of another network
                own = resolve_units(spec)
                bad = next((u for u in own if u.network is not g), None)
                if bad is not None:
                    raise _mismatch(bad.id, bad.network, g) from None
            raise
    if g is not None:
        for u in units:
            if u.network is not g:
                raise _mismatch(u.id, u.network, g)
        # Units resolved against g carry it (InceptionV1's units carry None).
        return [u if u.network is g else Unit(u.layer, u.channel, None if g is INCEPTION_V1 else g) for u in units]
    common_network(units)
    return units


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
    g = None if network is INCEPTION_V1 else network
    return [Unit(layer, c, g) for c in (range(n.channels) if channels is None else channels)]


def one_unit(spec, network=None) -> Unit:
    """The one unit `spec` names (a unit id, ``(layer, channel)`` or a Unit) in `network`."""
    if isinstance(spec, str) and ":" in spec and not spec.split(":", 1)[1].strip().lstrip("-").isdigit():
        raise ValueError(f"expected one unit ('layer:channel', e.g. 'mixed3b:379'), got the family id {spec!r}")
    units = resolve(spec, network)
    if len(units) != 1:  # pragma: no cover - a unit spec names one unit
        raise ValueError(f"expected one unit, got {len(units)} from {spec!r}")
    return units[0]
