"""One walk over a graph: the node order, the environment and its freeing, written once.

Everything that evaluates a network node by node -- the forward (`circuits.core.model`),
the receptive-field cone (`circuits.tuning.cone`: windows, channels, values), interval
bounds (`circuits.core.bounds`), the linearized forward (`circuits.editing.paths`) and
kernel composition and autograd (`circuits.analysis.expanded`) -- is this walk with a
different step. The caller says what to do at one node (a callable that asks one op-table
method); the walk owns which nodes run, in which order, what each step is given, and when a
value can be dropped.

- `plan(network, targets, start)`: the nodes a read of `targets` needs, in execution order,
  each with the values that can be freed after it; cached per (graph, targets, start).
  From the network's input by default; from another tensor (`start`), only the nodes that
  depend on it (the others contribute nothing that flows from it).
- `forward(...)`: runs a step per node, feeding it its inputs' values (None for an input
  that does not depend on `start`), and frees each value after its last use unless kept.
- `backward(...)`: the same nodes in reverse, each step given its own value and returning
  one contribution per input, merged into the input's value (the cone's windows and
  channels: what a read needs, walked back to the input).

Example:
    >>> from circuits.core.graph import INCEPTION_V1 as g
    >>> p = plan(g, ("conv2d1",))
    >>> [n.name for n in p.nodes]
    ['conv2d0_pre_relu', 'conv2d0', 'maxpool0', 'localresponsenorm0', 'conv2d1_pre_relu', 'conv2d1']
    >>> forward(g, ("conv2d1",), {"input": 0}, lambda node, ins: ins[0] + 1)["conv2d1"]
    6
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from circuits.core.graph import INPUT, Graph, Node

__all__ = ["Plan", "plan", "forward", "backward"]

Step = Callable[[Node, list], Any]


@dataclass(frozen=True)
class Plan:
    """The nodes to run for `targets` from `start` (excluded: its value is given), in
    execution order; `free[i]`: the values no node after `nodes[i]` reads (targets excluded)."""

    start: str
    targets: tuple[str, ...]
    nodes: tuple[Node, ...]
    free: tuple[tuple[str, ...], ...]
    #: per node, its inputs' names (the order the step receives their values in)
    inputs: tuple[tuple[str, ...], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)


def plan(network: Graph, targets: Iterable[str] | str, start: str | None = None) -> Plan:
    """The walk for `targets` (names of `network`) from `start` (default the input).

    Raises ValueError naming the target when `start` is given and a target does not depend
    on it (a read that nothing from `start` reaches).

    >>> from circuits.core.graph import INCEPTION_V1 as g
    >>> plan(g, "mixed3b_5x5_pre_relu", start="mixed3a").names
    ('mixed3b_5x5_bottleneck_pre_relu', 'mixed3b_5x5_bottleneck', 'mixed3b_5x5_pre_relu')
    """
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    return _plan(network, targets, INPUT if start is None else start)


@functools.lru_cache(maxsize=1024)
def _plan(network: Graph, targets: tuple[str, ...], start: str) -> Plan:
    network.node(start)
    if not targets:
        raise ValueError("a walk needs at least one target tensor")
    needed: set[str] = set()
    for t in targets:
        anc = network.ancestors(t)
        if start not in anc:
            raise ValueError(f"{t} does not depend on {start}: nothing computed from {start} reaches it")
        needed |= anc
    last = max(network.index(t) for t in targets)
    order = [n for n in network.nodes[network.index(start) + 1 : last + 1]
             if n.name in needed and start in network.ancestors(n.name)]
    last_use: dict[str, int] = {}
    for i, n in enumerate(order):
        for src in n.inputs:
            last_use[src] = i
    keep = set(targets)
    free: list[list[str]] = [[] for _ in order]
    for name, i in last_use.items():
        if name not in keep:
            free[i].append(name)
    return Plan(start, targets, tuple(order), tuple(tuple(f) for f in free), tuple(n.inputs for n in order))


def forward(network: Graph, targets: Iterable[str] | str, seed: Mapping[str, Any], step: Step, *,
            start: str | None = None, keep: Iterable[str] = (), free: bool = True) -> dict[str, Any]:
    """Run `step(node, input values)` at every node of `plan(network, targets, start)`.

    seed: the value of `start` (and of any other tensor known beforehand). An input that
    does not depend on `start` is passed as None. A step may return None for a node it
    skips (its readers then see None). free: drop each value after its last use, the
    seed's included (the targets and `keep` stay); False keeps every value (walks whose
    result is every tensor's value: bounds, zero masks).

    Returns the environment: the targets' values (and what was kept).
    """
    p = plan(network, targets, start)
    env: dict[str, Any] = dict(seed)
    if p.start not in env:
        raise ValueError(f"the walk from {p.start} needs its value in seed (got {', '.join(map(str, seed)) or 'none'})")
    keep = set(keep)
    get = env.get
    if not free:
        for n, ins in zip(p.nodes, p.inputs):
            env[n.name] = step(n, [get(i) for i in ins])
        return env
    for n, ins, drop in zip(p.nodes, p.inputs, p.free):
        env[n.name] = step(n, [get(i) for i in ins])
        for f in drop:
            if f not in keep:
                env.pop(f, None)
    return env


def backward(network: Graph, targets: Iterable[str] | str, seed: Mapping[str, Any],
             step: Callable[[Node, Any], Sequence[Any]], merge: Callable[[Any, Any], Any], *,
             start: str | None = None) -> dict[str, Any]:
    """Walk the nodes of `plan(network, targets, start)` in reverse: `step(node, value)` gives
    one contribution per input of the node (None: nothing), which `merge(old, new)` joins
    into that input's value (`old` None the first time). Nodes no read reached (absent from
    the environment) are skipped.

    seed: the targets' values (what is read of them). Returns every reached tensor's value.

    >>> from circuits.core.graph import INCEPTION_V1 as g
    >>> sorted(backward(g, "conv2d0", {"conv2d0": 1}, lambda n, v: [v + 1] * len(n.inputs), max).items())
    [('conv2d0', 1), ('conv2d0_pre_relu', 2), ('input', 3)]
    """
    p = plan(network, targets, start)
    env: dict[str, Any] = dict(seed)
    for n, ins in zip(reversed(p.nodes), reversed(p.inputs)):
        if n.name not in env:
            continue
        for src, c in zip(ins, step(n, env[n.name])):
            if c is not None:
                old = env.get(src)
                env[src] = c if old is None else merge(old, c)
    return env
