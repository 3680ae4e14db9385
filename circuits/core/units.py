"""Unit ids: `"layer:channel"` (Lucid's convention) and where a unit lives.

A unit id like ``"mixed3b:379"`` or ``("mixed3b", 379)`` resolves to its layer, the
branch tensor that computes it inside a concatenation (``mixed3b_5x5``), its channel
inside that branch (59) and its spatial centre for a given input size.

Example:
    >>> u = parse_unit("mixed3b:379")
    >>> u.branch, u.branch_channel
    ('mixed3b_5x5', 59)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

from circuits.core import graph

__all__ = ["Unit", "parse_unit", "UnitSpec"]

_UNIT_RE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*:\s*(-?\d+)\s*$")


@dataclass(frozen=True, order=True)
class Unit:
    """One channel of one named tensor."""

    layer: str
    channel: int

    @property
    def id(self) -> str:
        return f"{self.layer}:{self.channel}"

    @property
    def branch(self) -> str:
        """The tensor that computes this channel (the layer itself outside concatenations)."""
        return graph.branch_of(self.layer, self.channel)[0]

    @property
    def branch_channel(self) -> int:
        return graph.branch_of(self.layer, self.channel)[1]

    def centre(self, input_size=224) -> tuple[int, int]:
        """Lucid's neuron position (H // 2, W // 2) of the layer's map."""
        return graph.centre_position(self.layer, input_size)

    def centre_in_input(self, input_size=224) -> tuple[float, float]:
        """Input-pixel coordinate (y, x) of the centre of this unit's receptive field at `centre()`."""
        return graph.receptive_field(self.layer, input_size).centre_of(*self.centre(input_size))

    def __str__(self) -> str:
        return self.id


UnitSpec = Union[str, tuple, Unit]


def parse_unit(spec: UnitSpec) -> Unit:
    """A Unit from ``"layer:channel"``, ``(layer, channel)`` or a Unit; validated.

    >>> parse_unit(("mixed3a", 81)).id
    'mixed3a:81'
    """
    if isinstance(spec, Unit):
        layer, channel = spec.layer, spec.channel
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
    graph.node(layer)  # unknown layer: raises with close matches
    graph.branch_of(layer, channel)  # out of range: raises with the valid range
    return Unit(layer, channel)
