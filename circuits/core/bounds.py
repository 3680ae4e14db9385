"""Interval bounds of every tensor for any input in the network's input range.

Each op's entry in the op table bounds its output from bounds of its inputs (a conv
adds each weight times its input's bound at the weight's sign; ReLU and pools keep
bounds; an LRN can only shrink a value). The bounds are sound, not tight: a ReLU whose
input's lower bound is >= 0 is the identity for every input (each op says on which
interval it is the identity: `Op.identity_on`), which makes a path through
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

from circuits.core import walk
from circuits.core.graph import INPUT, Graph

__all__ = ["interval_bounds", "graph_bounds", "always_identity_relus"]

Bounds = dict[str, tuple[torch.Tensor, torch.Tensor]]


def graph_bounds(network: Graph, params: Callable[[str], object], until: str,
                 input_range: tuple[float, float] | None = None) -> Bounds:
    """Per-channel (lower, upper) bounds of every tensor up to `until`.

    params(name): the parameter module of node `name` (anything with .weight and .bias).
    input_range: the range of every input value (default: the network's).
    """
    lo_in, hi_in = input_range or network.input_range
    c = network.node(INPUT).channels
    seed = {INPUT: (torch.full((c,), float(lo_in), dtype=torch.float64),
                    torch.full((c,), float(hi_in), dtype=torch.float64))}
    # Every tensor up to `until` (not only its ancestors: the dead-unit check reads them all).
    targets = tuple(network.names()[1 : network.index(until) + 1]) or (INPUT,)

    def step(n, ins):
        return n.kind.bounds(n, ins, params(n.param) if n.param else None)

    return walk.forward(network, targets, seed, step, free=False)


def interval_bounds(model, until: str, input_range: tuple[float, float] | None = None) -> Bounds:
    """`graph_bounds` of a model's graph with its current parameters."""
    return graph_bounds(model.graph, lambda p: getattr(model, p), until, input_range)


def always_identity_relus(bounds: Mapping[str, tuple[torch.Tensor, torch.Tensor]], network: Graph) -> set[str]:
    """The nonlinear nodes of `bounds` that are the identity for every input: their op says
    so of their input's interval (`Op.identity_on`: a ReLU whose input is >= 0, a ReLU6
    whose input lies in [0, 6], a hardswish whose input is >= 3).

    >>> from circuits.core.graph import INCEPTION_V1 as g
    >>> b = {"conv2d0_pre_relu": (torch.zeros(64), torch.ones(64)), "conv2d0": (torch.zeros(64), torch.ones(64))}
    >>> always_identity_relus(b, g)
    {'conv2d0'}
    """
    out = set()
    for name in bounds:
        n = network.node(name)
        if n.kind.nonlinear and n.inputs and n.inputs[0] in bounds:
            if n.kind.identity_on(n, *bounds[n.inputs[0]]):
                out.add(name)
    return out
