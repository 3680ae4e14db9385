"""How far a loaded network computes anything: derived from its weights, not declared.

A network "ends" at layer X when every conv (and the classifier) after X has all-zero
weights and biases: everything past X is 0 for every input (softmax2 is uniform). The
hand-built network ends at mixed3b. X is the first layer at or after the last
parameterized op with a non-zero value that is a cut of the graph (no edge jumps over
it) and not a pre-ReLU tensor, i.e. the layer whose output carries everything computed.

Example:
    >>> import weights
    >>> last_live_layer(weights.model("handbuilt"))
    'mixed3b'
    >>> last_live_layer(weights.model("random"))
    'softmax2'
"""

from __future__ import annotations

from typing import Iterable

from circuits.core.graph import Graph

__all__ = ["last_live_layer", "check_reaches", "NetworkEndsError"]


class NetworkEndsError(ValueError):
    """A command asked for a layer past the last one the network computes anything in."""


def _is_cut(g: Graph, i: int) -> bool:
    """No edge of the graph goes from before node i to after it."""
    for n in g.nodes[i + 1 :]:
        if any(g.index(src) < i for src in n.inputs):
            return False
    return True


def last_live_layer(model) -> str | None:
    """The last layer with a non-zero value for some input (see the module docstring); None if none."""
    g = model.graph
    last = None
    for n in g.nodes:
        if n.param is None or not n.kind.has_params:  # an opaque node's module is the code it runs
            continue
        m = getattr(model, n.param)
        if bool(m.weight.detach().any()) or (m.bias is not None and bool(m.bias.detach().any())):
            last = g.index(n.name)
    if last is None:
        return None
    for i in range(last, len(g.nodes)):
        n = g.nodes[i]
        # a parameterized op's output is the pre-activation of the layer that follows it
        if not n.kind.has_params and not n.synthesized and _is_cut(g, i):
            return n.name
    return g.nodes[-1].name  # pragma: no cover - the output is always a cut


def check_reaches(model, layers: Iterable[str], what: str) -> None:
    """Raise NetworkEndsError if `what` would read one of `layers` past the network's end.

    >>> import weights
    >>> check_reaches(weights.model("handbuilt"), ["mixed4a"], "ablate --layer")
    Traceback (most recent call last):
    ...
    circuits.core.extent.NetworkEndsError: ablate --layer reads mixed4a, but the network handbuilt has nothing past mixed3b (every conv after it has all-zero weights and biases), so mixed4a is 0 for every input; ask for a layer up to mixed3b, or use trained weights (--weights lucid)
    """
    g = model.graph
    end = last_live_layer(model)
    source = getattr(model, "source", "") or "given"
    for layer in layers:
        g.node(layer)
        if end is None:
            raise NetworkEndsError(
                f"{what} reads {layer}, but every weight of the network {source} is zero: it computes nothing"
            )
        if g.index(layer) > g.index(end):
            raise NetworkEndsError(
                f"{what} reads {layer}, but the network {source} has nothing past {end} (every conv after it "
                f"has all-zero weights and biases), so {layer} is 0 for every input; ask for a layer up to "
                f"{end}, or use trained weights (--weights lucid)"
            )
