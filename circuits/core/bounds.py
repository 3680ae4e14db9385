"""Interval bounds of every tensor for any input in the network's input range.

Each op's entry in the op table bounds its output from bounds of its inputs (a conv
adds each weight times its input's bound at the weight's sign; ReLU and pools keep
bounds; an LRN can only shrink a value). The bounds are sound, not tight: a ReLU whose
input's lower bound is >= 0 is the identity for every input, which makes a path through
it linear (`circuits.editing`), and a unit whose upper bound is <= 0 never fires (the
hand-built compiler's dead-unit check).

Example:
    >>> import torch
    >>> from circuits.core.model import InceptionV1
    >>> b = interval_bounds(InceptionV1(), "conv2d0")      # zero weights: everything is 0
    >>> float(b["conv2d0"][0].min()), float(b["conv2d0"][1].max())
    (0.0, 0.0)
"""

from __future__ import annotations

from typing import Callable, Mapping

import torch

from circuits.core.graph import Graph

__all__ = ["interval_bounds", "graph_bounds", "always_identity_relus"]

Bounds = dict[str, tuple[torch.Tensor, torch.Tensor]]


def graph_bounds(network: Graph, params: Callable[[str], object], until: str,
                 input_range: tuple[float, float] | None = None) -> Bounds:
    """Per-channel (lower, upper) bounds of every tensor up to `until`.

    params(name): the parameter module of node `name` (anything with .weight and .bias).
    input_range: the range of every input value (default: the network's).
    """
    lo_in, hi_in = input_range or network.input_range
    out: Bounds = {}
    for n in network.nodes[: network.index(until) + 1]:
        if not n.inputs:
            c = n.channels
            out[n.name] = torch.full((c,), float(lo_in), dtype=torch.float64), torch.full((c,), float(hi_in), dtype=torch.float64)
            continue
        out[n.name] = n.kind.bounds(n, [out[i] for i in n.inputs], params(n.param) if n.param else None)
    return out


def interval_bounds(model, until: str, input_range: tuple[float, float] | None = None) -> Bounds:
    """`graph_bounds` of a model's graph with its current parameters."""
    return graph_bounds(model.graph, lambda p: getattr(model, p), until, input_range)


def always_identity_relus(bounds: Mapping[str, tuple[torch.Tensor, torch.Tensor]], network: Graph) -> set[str]:
    """The ReLUs (activations) of `bounds` whose input is >= 0 for every input."""
    return {
        name for name in bounds
        if network.node(name).kind.is_activation and bool((bounds[network.node(name).inputs[0]][0] >= 0).all())
    }
