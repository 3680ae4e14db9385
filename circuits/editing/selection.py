"""Which weights an edit changes: units resolved, split into parts by destination conv and source layer.

A `_Part` is the piece of an edit between one source layer and one destination
convolution: "direct" when the conv reads the source channels (possibly through
channel-wise ops), "expanded" when it reaches them through other layers (see
`circuits.editing.edits` for what each computes). Nothing here touches a model.

Example:
    >>> from circuits.core.graph import INCEPTION_V1 as v1
    >>> from circuits.editing.selection import _plan, _units
    >>> [(p.kind, p.src_layer, p.conv) for p in _plan(_units("conv2d1:0", "source", v1), _units("conv2d2:5", "destination", v1))]
    [('direct', 'conv2d1', 'conv2d2_pre_relu')]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from circuits.analysis.networks import WrongNetworkError, common_network, resolve
from circuits.core import graph, walk
from circuits.core.units import Unit

__all__ = ["EditError", "OPS", "ROUTES"]

OPS = ("set", "scale", "zero", "drop_negative", "drop_positive")

class EditError(ValueError):
    """An edit that does not fit the model, or cannot be undone."""


EditError.__module__ = "circuits.editing"  # its public name, shown in tracebacks


# --- where an edit acts ----------------------------------------------------


def _dst_conv(u: Unit) -> str:
    """The conv node whose output channel `u.branch_channel` computes unit `u` (in its network)."""
    g = u.network
    found = g.conv_of(u.layer, u.channel)
    if found is not None:
        return found[0]
    n = g.node(u.branch)
    examples = "conv2d2:5, mixed3b:379, mixed3b_5x5_bottleneck:3" if g is graph.INCEPTION_V1 else "mixed2:67, conv2d_22:3"
    raise EditError(
        f"unit {u.id} is computed by a {n.op} ({n.name}), which has no weights to edit; "
        f"destination units must be outputs of a convolution (e.g. {examples})"
    )


def _direct_channel(conv: str, u: Unit) -> int | None:
    """Channel of `u` in the input of `conv` if `u` is read by `conv` directly, else None."""
    g = u.network
    inp = g.node(conv).inputs[0]
    if u.layer == inp:
        return u.channel
    # A unit named by its branch tensor (mixed3a_5x5:3) is channel offset+3 of the concat.
    for b, off, _ in g.branches(inp):
        if b == u.layer and b != inp:
            return off + u.channel
    return None


@dataclass
class _Part:
    """The piece of an edit between one source layer and one destination conv."""

    kind: str  # "direct" | "expanded"
    conv: str  # conv node computing the destination units
    src_layer: str  # tensor the source channels index (conv input when direct)
    dst_rows: list[int]  # positions in the edit's dst list
    src_cols: list[int]  # positions in the edit's src list
    dst_idx: list[int]  # output channels of `conv`
    src_idx: list[int]  # channels of `src_layer`
    # The network whose tensors these are (not in the JSON: the unit ids name it).
    network: graph.Graph = field(default=graph.INCEPTION_V1, repr=False)

    @property
    def param(self) -> str:
        return f"{self.network.node(self.conv).param}.weight"

    @property
    def key(self) -> str:
        """The tensor this part changes: a parameter, or a (source, conv) expanded map."""
        return self.param if self.kind == "direct" else f"expanded:{self.src_layer}->{self.conv}"

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("kind", "conv", "src_layer", "dst_rows", "src_cols", "dst_idx", "src_idx")}


ROUTES = ("auto", "linearized")
# A path made only of channel-wise ops (the op table's `channelwise`: ReLU, pools) and
# concatenations keeps every channel of the conv's input a function of one source
# channel, so an edit that scales whole (dst, src) pairs is a real parameter edit.


def _channelwise_channel(conv: str, u: Unit) -> int | None:
    """Channel of `conv`'s input that is a channel-wise function of `u` alone, else None.

    E.g. mixed3a:81 -> mixed3b_pool_reduce_pre_relu reads it through the max-pool
    mixed3b_pool: channel 81 of mixed3b_pool depends on mixed3a:81 only.
    """
    found = _channelwise_route(conv, u)
    return None if found is None else found[0]


def _channelwise_route(conv: str, u: Unit) -> tuple[int, tuple[graph.Node, ...]] | None:
    """(channel of `conv`'s input that is a channel-wise function of `u` alone, the nodes
    between them), else None."""
    g = u.network
    t = g.node(conv).inputs[0]
    between: list[graph.Node] = []
    while t != u.layer and g.node(t).kind.channelwise:
        between.append(g.node(t))
        t = g.node(t).inputs[0]
    if t == u.layer:
        return u.channel, tuple(between)
    if g.node(t).kind.joins_branches:
        for b, off, _ in g.branches(t):
            if b == u.layer:
                return off + u.channel, (*between, g.node(t))
    return None


def _nonlinearities(src_layer: str, conv: str, g: graph.Graph = graph.INCEPTION_V1) -> list[str]:
    """'name (op)' of each nonlinear node on the paths from `src_layer` to `conv` in network `g`."""
    return [f"{n.name} ({n.op})" for n in walk.plan(g, (conv,), start=src_layer).nodes if n.kind.nonlinear]


def _plan(src: Sequence[Unit], dst: Sequence[Unit], op: str = "scale", route: str = "auto") -> list[_Part]:
    """Split (src x dst) into parts by destination conv and source layer.

    A pair is "direct" when the conv reads the source channel (possibly through
    channel-wise pools/ReLUs, when `op` scales each pair by one number: see
    `_realisable_channelwise`), else "expanded". A grouped convolution's direct parts
    are split by group (each a rectangle of one group's weight); pairs across groups have
    no weight (`_group`). Route "legacy" (logs written before
    edits said what they are) plans every non-direct pair as expanded.
    """
    try:
        g = common_network([*src, *dst], "source and destination units")
    except WrongNetworkError as e:
        raise EditError(str(e)) from None
    groups: dict[tuple[str, str], _Part] = {}
    for r, d in enumerate(dst):
        conv = _dst_conv(d)
        for c, s in enumerate(src):
            ch = _direct_channel(conv, s)
            if ch is None and route == "auto":
                found = _channelwise_route(conv, s)
                ch = None if found is None else found[0]
                if ch is not None and not _realisable_channelwise(op, conv, g, found[1]):
                    ch = None  # stays expanded; refused unless re-expressed (see _prepare)
            group = None
            if ch is not None:
                kind, layer = "direct", g.node(conv).inputs[0]
                group = _group(g, conv, d.branch_channel, ch, op, s, d)
                if group is False:
                    continue  # across groups: no weight, and the op leaves the absent one 0
            else:
                if s.layer not in g.ancestors(conv) or s.layer == conv:
                    raise EditError(
                        f"source unit {s.id} is not upstream of destination unit {d.id} "
                        f"({s.layer} does not feed {conv})"
                    )
                kind, layer, ch = "expanded", s.layer, s.channel
            part = groups.get((layer, conv, group))
            if part is None:
                part = groups[(layer, conv, group)] = _Part(kind, conv, layer, [], [], [], [], g)
            if r not in part.dst_rows:
                part.dst_rows.append(r)
                part.dst_idx.append(d.branch_channel)
            if c not in part.src_cols:
                part.src_cols.append(c)
                part.src_idx.append(ch)
    if not groups:  # every pair crosses the groups of a grouped convolution
        conv = _dst_conv(dst[0])
        raise EditError(
            f"no weight connects the source units to the destination units: {conv} "
            f"({g.node(conv).op}) is a grouped convolution ({g.node(conv).groups} groups) and every pair "
            "lies across its groups"
        )
    return list(groups.values())


def _group(g: graph.Graph, conv: str, out: int, inp: int, op: str, s: Unit, d: Unit) -> int | None | bool:
    """The group of a direct pair (output channel `out`, input channel `inp`) of a grouped
    convolution, so that each part is a rectangle of one group's weight; None for an
    ungrouped one. A pair across groups has no weight: False for the ops that leave a zero
    weight zero (scale, zero, drop_*), and an EditError naming the node for "set"."""
    n = g.node(conv)
    if n.groups == 1:
        return None
    out_group = out // (n.channels // n.groups)
    if inp // (g.node(n.inputs[0]).channels // n.groups) == out_group:
        return out_group
    if op == "set":
        raise EditError(
            f"cannot set the weight {s.id} -> {d.id}: {conv} ({n.op}) is a grouped convolution "
            f"({n.groups} groups), whose output channel {out} does not read input channel {inp}, so there "
            "is no such weight; set only weights within a group (for a depthwise convolution, a channel's own)"
        )
    return False


def _realisable_channelwise(op: str, conv: str, g: graph.Graph = graph.INCEPTION_V1,
                            path: Sequence[graph.Node] = ()) -> bool:
    """Whether `op` on expanded weights through the channel-wise ops `path` is the same op on the conv.

    Through channel-wise ops the expanded weights of a pair are the conv's slice
    composed with the ops' linear stand-ins L: W[d, s] = K[d, t] * L. Scaling or
    zeroing W[d, s] is scaling or zeroing K[d, t] whenever every op of the path has a
    linear stand-in (`Op.linearizable`; a sigmoid or a gate has none, so W is not
    defined). Keeping W's positive (negative) part is keeping K's only for a 1x1 K and
    an L with no negative tap (`Op.nonnegative_linearization`: max-pool -> average pool,
    ReLU -> identity; not an affine map, whose scale may be negative): then W is K times
    L >= 0, one sign per pair. Setting W to given values is no conv edit, unless every
    op of the path copies its input (`passes_through`, `joins_branches`: a module's output,
    a concatenation), where W is K itself and every op on W is the same op on K.
    """
    if all(n.kind.passes_through or n.kind.joins_branches for n in path):
        return True
    if op in ("scale", "zero"):
        return all(n.kind.linearizable(n) for n in path)
    if op in ("drop_negative", "drop_positive"):
        return g.node(conv).kernel == (1, 1) and all(n.kind.nonnegative_linearization(n) for n in path)
    return False


def _units(spec, what: str, network=None) -> tuple[Unit, ...]:
    """The units of `spec`, all of one network (`network`'s, a model or Graph, when given)."""
    try:
        units = resolve(spec, network)
    except WrongNetworkError as e:
        raise EditError(f"bad {what} {_short(spec)}: {e}") from None
    except (KeyError, IndexError) as e:
        raise EditError(f"bad {what} {spec!r}: {e}") from None
    seen: set[Unit] = set()
    dup = [u.id for u in units if u in seen or seen.add(u)]
    if dup:
        raise EditError(f"{what} lists {', '.join(dup[:5])} more than once; each unit may appear once")
    return tuple(units)


def _spec_str(spec) -> str | list:
    """A JSON-able form of a unit/family spec, as the user gave it."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Unit):
        return spec.id
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        return f"{spec[0]}:{spec[1]}"
    if hasattr(spec, "id") and hasattr(spec, "units"):  # a Family
        return spec.id
    return [_spec_str(s) for s in spec]


def _short(spec) -> str:
    s = _spec_str(spec)
    if isinstance(s, str):
        return s
    flat = ", ".join(x if isinstance(x, str) else "[...]" for x in s[:4])
    return f"[{flat}{', ...' if len(s) > 4 else ''}]"

