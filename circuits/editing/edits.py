"""Reversible weight edits: rewrite, scale, zero or half-rectify the weights between units.

Every edit is an object. Apply it for a block (``with edit.applied(model):``) or
permanently (``model.apply_edit(edit)``); undo it bit-exactly (``edit.undo(model)``);
the model lists what is applied (``model.edits``, ``model.is_edited``). Edits compose:
apply several, undo them newest first, and every parameter is back bit for bit.

Every edit says what it is: ``model.edits`` and the edit log give, for each part,
"exact" (the real network with those parameters) or "linearized model" (the
re-expressed units, see `Reexpress`). There is no silent approximation.

* **Direct** -- the source units are the input tensor of the convolution that
  computes the destination units (``conv2d1 -> conv2d2``, ``mixed3a -> mixed3b`` 1x1
  branch, ``mixed3a -> mixed3b_5x5_bottleneck``). The edit rewrites the real parameter
  slice ``weight[dst, src]`` (the original slice is saved). *Exact*: the edited
  network is the network with those weights, and undo restores the saved slice.
* **Channel-wise paths** -- the conv reads the sources through ops that act on each
  channel alone (max-pools, ReLUs, concatenations: ``mixed3a -> mixed3b`` pool branch,
  ``mixed3b -> mixed4a`` through ``maxpool4``). The expanded weights of a pair are the
  conv's slice composed with a non-negative kernel, ``W[d, s] = K[d, t] * L``, so
  "scale"/"zero" of ``W[d, s]`` is the same op on ``K[d, t]``, and so are
  "drop_negative"/"drop_positive" when K is 1x1 (one sign per pair). These are
  done as direct edits of K. *Exact* in the same sense: the real network with
  those weights, whose expanded weights are the edited ones; the max-pool stays a
  max-pool. ("set" on such a path is no edit of K: refused like the next case.)
* **Linear paths** -- every nonlinearity on the path is a ReLU that is the identity
  for every input: its input's interval lower bound (`circuits.core.bounds`, with the
  current parameters, over the whole input range) is >= 0, e.g. the hand-built
  network's 3b 5x5 bottleneck, whose units copy post-ReLU early curves with positive
  weights and no bias. The path is then linear, its expanded weights are the real map,
  and the edit's hook (``dst_pre_relu += conv(src, W_edited - W)``, below) is *exact*
  on the real network ("exact (linear path)").
* **Through nonlinearities** -- anything else (a bottleneck conv and a ReLU that can
  clip, an LRN, several layers; e.g. ``mixed3a`` early curves -> ``mixed3b`` curves via
  the 5x5 branch's bottleneck of a trained network). No network has the edited expanded weights with its
  other weights unchanged, so the edit is **refused** (`EditError` naming the
  nonlinearities on the path) unless the destination units are re-expressed from
  the source layer: after ``Reexpress(src_layer, dst)``, or with
  ``route="linearized"`` (the edit re-expresses them itself, and undoes that with
  itself). It then acts on the *linearized model* -- exactly: the re-expressed units
  are linear in the source, ``dst_pre_relu = conv(src, W) + bias_path``, and the edit
  adds ``conv(src, W_edited - W)`` (a hook on the destination's pre-ReLU tensor, fed
  by the source activation of the same run), giving ``conv(src, W_edited) +
  bias_path``. ``W`` is `circuits.analysis.expanded.weights_between` with its defaults
  (ReLU and LRN as identity, max-pool as average pool, biases dropped). Nothing in
  the bottleneck changes, so other units fed by it are unaffected.
  The exact real-network alternative for bottleneck branches is `each_conv`: the
  op on each convolution of the path (e.g. drop the negative part of both), which
  is a different edit (the expanded weights become ``D+ * A+``) and also changes the
  other units that read the bottleneck.
* `Reexpress` replaces destination pre-ReLU units by their linearized path from a
  source layer (expanded weights plus the bias path). It reproduces the real units
  wherever the path's ReLUs are active (and its pools act linearly; near the map
  border, where zero padding enters, only for 1x1 bottleneck paths).

The weights an expanded edit starts from (``W`` above) are the expanded weights of
the current parameters plus the deltas of expanded edits already applied on the same
units, so expanded edits compose like direct ones (scaling twice by 0.5 scales by
0.25). An expanded edit's delta is fixed when it is applied.

Networks: an edit is made of units of one network (InceptionV1, InceptionV3, ...);
every graph fact it uses (which conv computes a unit, the path, its nonlinearities)
is that network's (the units' graph), and applying it to a model of another network
raises `EditError` naming both before anything changes.

Undo rules: an edit undone twice, an edit that is not applied, or an edit that is
not the last one applied on one of the tensors it changed raises `EditError`, as
does undoing a direct edit whose weights were changed since by something else;
an edit that does not fit raises before anything is changed.

Example:
    >>> import weights
    >>> from circuits.editing.edits import drop_negative, keep_only_inputs
    >>> model = weights.model("random")
    >>> edit = drop_negative("mixed3a:early_curves", "mixed3b:curves", route="linearized")
    >>> with edit.applied(model):
    ...     model.edits
    ['drop_negative mixed3a:early_curves -> mixed3b:curves (linearized model: expanded mixed3a->mixed3b_5x5_pre_relu)']
    >>> model.is_edited
    False
    >>> model.apply_edit(drop_negative("mixed3a:early_curves", "mixed3b:curves"))   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    circuits.editing.edits.EditError: cannot edit the expanded weights ... mixed3b_5x5_bottleneck (relu) is on the path and active ...
    >>> model.apply_edit(keep_only_inputs("mixed3a:early_curves", "mixed3b:420"))
    >>> model.edits
    ['keep_only mixed3a:early_curves -> mixed3b:420 (exact: direct mixed3b_pool->mixed3b_pool_reduce_pre_relu)']
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

import torch

from circuits.analysis.networks import WrongNetworkError, common_network, network_of, resolve, units_in
from circuits.core import graph
from circuits.core.bounds import always_identity_relus, interval_bounds
from circuits.core.units import Unit

if TYPE_CHECKING:  # pragma: no cover
    from circuits.core.model import InceptionV1

__all__ = [
    "Edit",
    "WeightEdit",
    "Reexpress",
    "EditError",
    "OPS",
    "set_weights",
    "scale_weights",
    "zero_weights",
    "drop_negative",
    "drop_positive",
    "ablate_connections",
    "keep_only_inputs",
    "each_conv",
    "ROUTES",
    "apply_edit",
    "undo_edit",
    "undo_all",
    "editing",
    "edit_log",
]

OPS = ("set", "scale", "zero", "drop_negative", "drop_positive")

class EditError(ValueError):
    """An edit that does not fit the model, or cannot be undone."""


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
    g = u.network
    t = g.node(conv).inputs[0]
    while t != u.layer and g.node(t).kind.channelwise:
        t = g.node(t).inputs[0]
    if t == u.layer:
        return u.channel
    if g.node(t).kind.joins_branches:
        for b, off, _ in g.branches(t):
            if b == u.layer:
                return off + u.channel
    return None


def _nonlinearities(src_layer: str, conv: str, g: graph.Graph = graph.INCEPTION_V1) -> list[str]:
    """'name (op)' of each nonlinear node on the paths from `src_layer` to `conv` in network `g`."""
    anc = g.ancestors(conv)
    return [
        f"{n.name} ({n.op})"
        for n in g.nodes
        if n.name in anc and n.name != src_layer and src_layer in g.ancestors(n.name) and n.kind.nonlinear
    ]


def _plan(src: Sequence[Unit], dst: Sequence[Unit], op: str = "scale", route: str = "auto") -> list[_Part]:
    """Split (src x dst) into parts by destination conv and source layer.

    A pair is "direct" when the conv reads the source channel (possibly through
    channel-wise pools/ReLUs, when `op` scales each pair by one number: see
    `_realisable_channelwise`), else "expanded". Route "legacy" (logs written before
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
                ch = _channelwise_channel(conv, s)
                if ch is not None and not _realisable_channelwise(op, conv, g):
                    ch = None  # stays expanded; refused unless re-expressed (see _prepare)
            if ch is not None:
                kind, layer = "direct", g.node(conv).inputs[0]
            else:
                if s.layer not in g.ancestors(conv) or s.layer == conv:
                    raise EditError(
                        f"source unit {s.id} is not upstream of destination unit {d.id} "
                        f"({s.layer} does not feed {conv})"
                    )
                kind, layer, ch = "expanded", s.layer, s.channel
            part = groups.get((layer, conv))
            if part is None:
                part = groups[(layer, conv)] = _Part(kind, conv, layer, [], [], [], [], g)
            if r not in part.dst_rows:
                part.dst_rows.append(r)
                part.dst_idx.append(d.branch_channel)
            if c not in part.src_cols:
                part.src_cols.append(c)
                part.src_idx.append(ch)
    return list(groups.values())


def _realisable_channelwise(op: str, conv: str, g: graph.Graph = graph.INCEPTION_V1) -> bool:
    """Whether `op` on expanded weights through a channel-wise path is the same op on the conv.

    Through channel-wise ops the expanded weights of a pair are the conv's slice
    composed with a non-negative kernel L (max-pool -> average pool, ReLU -> identity):
    W[d, s] = K[d, t] * L. Scaling or zeroing W[d, s] is scaling or zeroing K[d, t];
    keeping W's positive (negative) part is keeping K's only for a 1x1 K (then W is
    K times L >= 0, one sign per pair). Setting W to given values is no conv edit.
    """
    if op in ("scale", "zero"):
        return True
    if op in ("drop_negative", "drop_positive"):
        return g.node(conv).kernel == (1, 1)
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


# --- the edits ---------------------------------------------------------------


class Edit:
    """Base class: something applied to a model and undone bit-exactly.

    Subclasses implement `_prepare(model) -> _Record` (compute everything, change
    nothing) and `describe() -> dict` (JSON-able, enough to rebuild the edit).
    """

    def apply(self, model: "InceptionV1") -> None:
        """Apply permanently (until `undo`); raises before changing anything if it does not fit."""
        apply_edit(model, self)

    def undo(self, model: "InceptionV1") -> None:
        """Undo the most recent application of this edit to `model`."""
        undo_edit(model, self)

    @contextlib.contextmanager
    def applied(self, model: "InceptionV1") -> Iterator["Edit"]:
        """Apply for the duration of the block; undone also when the block raises."""
        with editing(model, self):
            yield self

    def describe(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def summary(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prepare(self, model: "InceptionV1") -> "_Record":  # pragma: no cover - abstract
        raise NotImplementedError

    def __str__(self) -> str:
        return self.summary()


class WeightEdit(Edit):
    """Change the weights from `src` units to `dst` units.

    src, dst: unit ids, family ids (``"mixed3a:early_curves"``) or lists of them.
    op: "set" (to `values`: a number, or a tensor of the full shape
        [len(dst), len(src), kh, kw]), "scale" (by `factor`), "zero",
        "drop_negative" (negative weights -> 0) or "drop_positive".
    label: a name for the log (e.g. "keep_only"); defaults to `op`.

    route: "auto" -- direct and channel-wise connections change the parameters
        (exact); an expanded one through nonlinearities acts on the linearized model
        if its units are re-expressed (`Reexpress`), else raises `EditError`;
        "linearized" -- the same, but the edit re-expresses those units itself.
        The module docstring says exactly what each case computes.

    >>> e = WeightEdit("mixed3a:early_curves", "mixed3b:curves", "scale", factor=0.5)
    >>> e.summary()
    'scale x0.5 mixed3a:early_curves -> mixed3b:curves'
    """

    def __init__(
        self,
        src,
        dst,
        op: str,
        *,
        values: torch.Tensor | float | None = None,
        factor: float | None = None,
        label: str | None = None,
        shown_src=None,
        route: str = "auto",
    ):
        if route not in (*ROUTES, "legacy"):
            raise EditError(f"unknown route {route!r}; use one of {', '.join(ROUTES)}")
        if op not in OPS:
            import difflib

            close = difflib.get_close_matches(str(op), OPS, n=2)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise EditError(f"unknown edit op {op!r}{hint}; use one of {', '.join(OPS)}")
        if op == "scale":
            if factor is None or isinstance(factor, bool):
                raise EditError("op 'scale' needs factor= (a number)")
            factor = float(factor)
            if factor != factor or factor in (float("inf"), float("-inf")):
                raise EditError(f"scale factor must be finite, got {factor}")
        elif factor is not None:
            raise EditError(f"factor= is only used by op 'scale', not {op!r}")
        if op == "set":
            if values is None:
                raise EditError("op 'set' needs values= (a number or a [dst, src, kh, kw] tensor)")
            values = torch.as_tensor(values, dtype=torch.float32).detach().clone()
            if not torch.isfinite(values).all():
                raise EditError("values for op 'set' must be finite")
        elif values is not None:
            raise EditError(f"values= is only used by op 'set', not {op!r}")
        self.shown_src = _spec_str(src if shown_src is None else shown_src)
        self.dst_spec = _spec_str(dst)
        self.src = _units(src, "source")
        self.dst = _units(dst, "destination")
        self.op = op
        self.values = values
        self.factor = factor
        self.label = label or op
        self.route = route
        self.parts = _plan(self.src, self.dst, op, route)

    # -- description --

    def summary(self) -> str:
        what = f"scale x{self.factor:g}" if self.op == "scale" else self.label
        if self.op == "set":
            shape = self.values.shape
            what = f"set to {self.values.item():g}" if not shape else f"set to {list(shape)} values"
        return f"{what} {_short(self.shown_src)} -> {_short(self.dst_spec)}"

    def kinds(self) -> str:
        """Each part: "direct"/"expanded" and the source layer -> conv it changes."""
        return ", ".join(f"{p.kind} {p.src_layer}->{p.conv}" for p in self.parts)

    def describe(self) -> dict:
        return {
            "type": "WeightEdit",
            "op": self.op,
            "label": self.label,
            "shown_src": self.shown_src,
            "dst_spec": self.dst_spec,
            "src": [u.id for u in self.src],
            "dst": [u.id for u in self.dst],
            "factor": self.factor,
            "values_shape": None if self.values is None else list(self.values.shape),
            "route": self.route,
            "parts": [p.to_json() for p in self.parts],
        }

    def __repr__(self) -> str:
        return f"<WeightEdit {self.summary()} ({self.kinds()})>"

    # -- the weights --

    def _transform(self, w: torch.Tensor, part: _Part) -> torch.Tensor:
        """The new values of the slice `w` ([dst, src, kh, kw]) of `part`."""
        if self.op == "scale":
            return w * self.factor
        if self.op == "zero":
            return torch.zeros_like(w)
        if self.op == "drop_negative":
            return torch.where(w < 0, torch.zeros_like(w), w)
        if self.op == "drop_positive":
            return torch.where(w > 0, torch.zeros_like(w), w)
        # set
        v = self.values.to(w.dtype)
        if v.dim() == 0:
            return v.expand_as(w).clone()
        full = (len(self.dst), len(self.src)) + tuple(w.shape[-2:])
        if tuple(v.shape) != full:
            kernels = set(getattr(self, "_kernel_shapes", ()))
            extra = (
                f"; the destination units span convolutions with different kernels {sorted(kernels)}: "
                "edit each branch separately or set a single number"
                if len(kernels) > 1
                else ""
            )
            raise EditError(
                f"values of shape {list(v.shape)} do not fit the weights {_short(self.shown_src)} -> "
                f"{_short(self.dst_spec)}: expected {list(full)} ([dst, src, kh, kw]) or a single number{extra}"
            )
        rows = torch.tensor(part.dst_rows)
        cols = torch.tensor(part.src_cols)
        return v[rows[:, None], cols[None, :]].clone()

    def _prepare(self, model: "InceptionV1") -> "_Record":
        rec = _Record(self)
        self._kernel_shapes = []
        current = {}
        for j, p in enumerate(self.parts):
            if p.kind == "expanded" and not _reexpressed(model, p):
                active = _active_nonlinearities(model, p) if self.route != "linearized" else None
                if active == []:
                    # Every ReLU on the path is the identity for every input (its input is
                    # provably >= 0) and nothing else is nonlinear: the path is linear, so
                    # the expanded weights are the real map and their edit is exact.
                    rec.linear_paths.append(j)
                    continue
                if self.route != "linearized":
                    raise EditError(_refusal(self, p, active))
                _paths.check_supported(p)
                rec.reexpressed.append(j)
        for p in self.parts:
            if p.kind == "direct":
                w = _param(model, p)
                before = w.detach()[_grid(p)].clone()
            else:
                try:
                    before = _paths.current_expanded(model, p)
                except ValueError as e:
                    raise EditError(f"cannot edit {self.summary()!r} ({p.src_layer} -> {p.conv}): {e}") from None
            self._kernel_shapes.append(tuple(before.shape[-2:]))
            current[id(p)] = before
        for p in self.parts:
            before = current[id(p)]
            after = self._transform(before, p)
            if after.shape != before.shape:  # pragma: no cover - _transform keeps shapes
                raise EditError(f"edit produced shape {list(after.shape)} for a {list(before.shape)} slice")
            if p.kind == "direct":
                rec.items.append(_DirectItem(p, before, after))
            else:
                rec.items.append(_ExpandedItem(p, after - before))
        # After the parts' items, so that item j is still part j (the saved tensors'
        # names use j); the re-expression hooks go first on their tensor anyway.
        rec.items.extend(_ReexpressItem(_reexpress_part(self.parts[j])) for j in rec.reexpressed)
        return rec


def _reexpress_part(p: _Part) -> _Part:
    return _Part("expanded", p.conv, p.src_layer, list(p.dst_rows), [], list(p.dst_idx), [], p.network)


def _reexpressed(model: "InceptionV1", p: _Part) -> bool:
    """Whether every destination channel of `p` is re-expressed from `p.src_layer` on `model`."""
    covered: set[int] = set()
    for rec in _records(model):
        for item in rec.items:
            if isinstance(item, _ReexpressItem) and item.part.key == p.key:
                covered.update(item.part.dst_idx)
    return set(p.dst_idx) <= covered


def _active_nonlinearities(model: "InceptionV1", p: _Part) -> list[str]:
    """'name (op)' of each nonlinearity on the paths of `p` that is not the identity for
    every input: all of them but the ReLUs whose input's interval lower bound is >= 0
    (`circuits.core.bounds`, with the model's current parameters)."""
    nonlin = _nonlinearities(p.src_layer, p.conv, p.network)
    if not nonlin:
        return []
    identity = always_identity_relus(interval_bounds(model, p.conv), p.network)
    return [n for n in nonlin if n.split(" ")[0] not in identity]


def _refusal(edit: "WeightEdit", p: _Part, nonlin: list[str]) -> str:
    """Why an expanded edit across nonlinearities is refused, and the exact alternatives."""
    what = ", ".join(nonlin[:4]) + (", ..." if len(nonlin) > 4 else "")
    verb = "is" if len(nonlin) == 1 else "are"
    src, dst = _short(edit.shown_src), _short(edit.dst_spec)
    alt = [
        f"on the linearized model: apply Reexpress({p.src_layer!r}, {dst!r}) first, or pass "
        f"route='linearized' (which re-expresses those units from {p.src_layer}, then edits)"
    ]
    op = "keep_only" if edit.label == "keep_only" else edit.op
    if op in EACH_CONV_OPS and _conv_chain(p.src_layer, p.conv, p.network) is not None:
        alt.append(
            f"on the real network: the op on each convolution of the path, "
            f"editing(model, *each_conv({op!r}, {src!r}, {dst!r}))"
        )
    elif _channelwise_channel(p.conv, edit.src[p.src_cols[0]]) is not None:
        alt.append(f"on the real network: op 'scale' or 'zero' (which are edits of {p.conv} itself)")
    return (
        f"cannot edit the expanded weights {edit.summary()!r} ({p.src_layer} -> {p.conv}) exactly: "
        f"{what} {verb} on the path and active (not the identity for every input), so no network has "
        "those expanded weights with its other weights unchanged, and a linear correction added to the "
        "real path would be wrong. Exact alternatives: " + "; ".join(f"({i + 1}) {a}" for i, a in enumerate(alt))
    )


def _grid(p: _Part) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(p.dst_idx)[:, None], torch.tensor(p.src_idx)[None, :]


def _param(model: "InceptionV1", p: _Part) -> torch.nn.Parameter:
    return getattr(model, p.network.node(p.conv).param).weight


class Reexpress(Edit):
    """Recompute destination units from a source layer through their linearized path.

    dst pre-ReLU := expanded(src layer) + bias path (the linearized network of
    `circuits.analysis.expanded`: ReLU -> identity, max-pool -> average pool), replacing what
    the real path computed. Exact wherever the path's ReLUs are active and its pools
    act linearly; expanded `WeightEdit`s on the same units then edit this
    re-expression. The source must not feed the destination's conv directly, and
    every path to the destination must start at it (a whole layer, not one branch).
    The expanded weights are taken when the edit is applied; the bias path is
    computed from the parameters at run time.

    >>> Reexpress("mixed3a", "mixed3b:curves").summary()
    'reexpress mixed3b:curves from mixed3a'
    """

    def __init__(self, src_layer: str, dst):
        self.dst_spec = _spec_str(dst)
        self.dst = _units(dst, "destination")
        g = self.dst[0].network
        try:
            g.node(src_layer)
        except KeyError as e:
            raise EditError(f"bad source layer {src_layer!r} for units of {g.name}: {e}") from None
        self.src_layer = src_layer
        self.parts: list[_Part] = []
        by_conv: dict[str, _Part] = {}
        for r, d in enumerate(self.dst):
            conv = _dst_conv(d)
            if g.node(conv).inputs[0] == src_layer:
                raise EditError(
                    f"{src_layer} feeds {conv} directly: the re-expression would be the conv itself; "
                    "re-express from a layer further upstream"
                )
            if src_layer not in g.ancestors(conv) or src_layer == conv:
                raise EditError(f"{src_layer} is not upstream of destination unit {d.id} ({conv})")
            p = by_conv.setdefault(conv, _Part("expanded", conv, src_layer, [], [], [], [], g))
            p.dst_rows.append(r)
            p.dst_idx.append(d.branch_channel)
        self.parts = list(by_conv.values())

    def summary(self) -> str:
        return f"reexpress {_short(self.dst_spec)} from {self.src_layer}"

    def describe(self) -> dict:
        return {
            "type": "Reexpress",
            "src_layer": self.src_layer,
            "dst_spec": self.dst_spec,
            "dst": [u.id for u in self.dst],
            "parts": [p.to_json() for p in self.parts],
        }

    def __repr__(self) -> str:
        return f"<Reexpress {self.summary()}>"

    def _prepare(self, model: "InceptionV1") -> "_Record":
        rec = _Record(self)
        for p in self.parts:
            _paths.check_supported(p)
            rec.items.append(_ReexpressItem(p))
        return rec


# --- convenience constructors ----------------------------------------------


def set_weights(src, dst, values, *, route: str = "auto") -> WeightEdit:
    """Set the weights src -> dst to `values` (a number or a [dst, src, kh, kw] tensor).

    >>> set_weights("conv2d1:0", "conv2d2:5", 0.0).op
    'set'
    """
    return WeightEdit(src, dst, "set", values=values, route=route)


def scale_weights(src, dst, factor: float, *, route: str = "auto") -> WeightEdit:
    """Multiply the weights src -> dst by `factor`.

    >>> scale_weights("conv2d1:0", "conv2d2:5", 2).factor
    2.0
    """
    return WeightEdit(src, dst, "scale", factor=factor, route=route)


def zero_weights(src, dst, *, route: str = "auto") -> WeightEdit:
    """Set the weights src -> dst to zero.

    >>> zero_weights("conv2d1:0", "conv2d2:5").summary()
    'zero conv2d1:0 -> conv2d2:5'
    """
    return WeightEdit(src, dst, "zero", route=route)


def drop_negative(src, dst, *, route: str = "auto") -> WeightEdit:
    """Remove the negative part of the weights src -> dst (negative values -> 0).

    >>> drop_negative("mixed3a:early_curves", "mixed3b:curves").summary()
    'drop_negative mixed3a:early_curves -> mixed3b:curves'
    """
    return WeightEdit(src, dst, "drop_negative", route=route)


def drop_positive(src, dst, *, route: str = "auto") -> WeightEdit:
    """Remove the positive part of the weights src -> dst (positive values -> 0)."""
    return WeightEdit(src, dst, "drop_positive", route=route)


def ablate_connections(src, dst, *, route: str = "auto") -> WeightEdit:
    """Ablate the connections from one family (or units) to another: weights -> 0.

    >>> ablate_connections("mixed3a:early_curves", "mixed3b:curves").summary()
    'ablate mixed3a:early_curves -> mixed3b:curves'
    """
    return WeightEdit(src, dst, "zero", label="ablate", route=route)


def keep_only_inputs(sources, dst, *, route: str = "auto") -> WeightEdit:
    """Zero the weights into `dst` from every unit of the sources' layer except `sources`.

    "Keep only early curves as inputs to the 3b curves":
    ``keep_only_inputs("mixed3a:early_curves", "mixed3b:curves")``. The sources must
    lie in one layer; inputs from other layers (e.g. through other branches) are
    not touched.

    >>> e = keep_only_inputs("mixed3a:early_curves", "mixed3b:curves")
    >>> len(e.src), e.summary()
    (245, 'keep_only mixed3a:early_curves -> mixed3b:curves')
    """
    kept = _units(sources, "sources to keep")
    g = kept[0].network
    layers = sorted({u.layer for u in kept}, key=g.index)
    if len(layers) != 1:
        raise EditError(f"the sources to keep must lie in one layer, got units of {', '.join(layers)}")
    layer = layers[0]
    keep = set(kept)
    others = [u for u in units_in(g, layer) if u not in keep]
    if not others:
        raise EditError(f"{_short(_spec_str(sources))} is every unit of {layer}: nothing to remove")
    return WeightEdit(others, dst, "zero", label="keep_only", shown_src=sources, route=route)


def _conv_chain(src_layer: str, conv: str, g: graph.Graph = graph.INCEPTION_V1) -> tuple[str, str] | None:
    """(first conv, its ReLU) when the path is src_layer -> conv -> ReLU -> `conv`, else None.

    That is the shape of every bottleneck branch (mixed3a -> mixed3b_5x5_bottleneck
    -> mixed3b_5x5_pre_relu): the two convolutions `each_conv` edits.
    """
    try:
        nodes = _paths.path_nodes(src_layer, conv, g)
    except ValueError:
        return None
    bottleneck = len(nodes) == 3 and nodes[0].kind.has_params and nodes[1].kind.is_activation and nodes[2].kind.has_params
    if bottleneck and nodes[0].inputs[0] == src_layer:
        return nodes[0].name, nodes[1].name
    return None


EACH_CONV_OPS = ("drop_negative", "zero", "keep_only")


def each_conv(op: str, src, dst, *, label: str | None = None) -> list[WeightEdit]:
    """The exact real-network counterpart of an expanded edit through a bottleneck.

    For src -> bottleneck conv A -> ReLU -> conv D (the 3x3 and 5x5 branches),
    the direct edits (exact: the network with those weights):

    * "drop_negative": the negative part of A[:, src] (all of A's channels) and of
      D[dst, :] removed -- "drop the negative weights of both convolutions", which
      keeps every source -> destination route excitatory (the expanded weights then
      are D+ * A+, not the positive part of D * A);
    * "zero": A[:, src] zeroed, so the sources no longer reach the bottleneck (the
      expanded weights src -> dst become exactly 0, and so does the ReLU's share of
      them);
    * "keep_only": "zero" of every other unit of the sources' layer (`keep_only_inputs`).

    Either also changes the other units that read those bottleneck channels (A is
    shared by the branch). Apply them with `editing(model, *each_conv(...))`.

    >>> [e.summary() for e in each_conv("drop_negative", "mixed3a:early_curves", "mixed3b:curves")]
    ['drop_negative mixed3a:early_curves -> mixed3b_5x5_bottleneck', 'drop_negative mixed3b_5x5_bottleneck -> mixed3b:curves']
    """
    if op not in EACH_CONV_OPS:
        raise EditError(f"each_conv does op {op!r} on no convolution; use one of {', '.join(EACH_CONV_OPS)}")
    shown_src, shown_dst = _spec_str(src), _spec_str(dst)
    if op == "keep_only":
        keep = keep_only_inputs(src, dst)  # checks one layer, and that something is left to remove
        src, op, label = keep.src, "zero", label or "keep_only"
    src_u, dst_u = _units(src, "source"), _units(dst, "destination")
    by_relu: dict[str, list[Unit]] = {}
    for d in dst_u:
        conv = _dst_conv(d)
        chains = {_conv_chain(s.layer, conv, d.network) for s in src_u}
        if None in chains or len(chains) != 1:
            raise EditError(
                f"each_conv needs every path from the sources to {d.id} to be source -> conv -> ReLU -> "
                f"{conv} (a bottleneck branch); {_short(shown_src)} -> {d.id} is not"
            )
        by_relu.setdefault(chains.pop()[1], []).append(d)
    edits = []
    for relu, ds in by_relu.items():
        mids = units_in(dst_u[0].network, relu)
        dst_shown = shown_dst if len(by_relu) == 1 else [u.id for u in ds]
        edits.append(WeightEdit(src_u, mids, op, label=label, shown_src=shown_src))
        edits[-1].dst_spec = relu
        if op == "drop_negative":
            edits.append(WeightEdit(mids, ds, op, label=label, shown_src=relu))
            edits[-1].dst_spec = _spec_str(dst_shown)
    return edits


# --- records of applied edits ---------------------------------------------


@dataclass(eq=False)
class _DirectItem:
    part: _Part
    before: torch.Tensor  # the original slice
    after: torch.Tensor  # what the edit wrote


@dataclass(eq=False)
class _ExpandedItem:
    part: _Part
    delta: torch.Tensor  # [dst, src, kh, kw], added to the expanded weights
    handles: list = field(default_factory=list)


@dataclass(eq=False)
class _ReexpressItem:
    part: _Part
    handles: list = field(default_factory=list)


@dataclass(eq=False)
class _Record:
    edit: Edit
    items: list = field(default_factory=list)
    # Parts (indices) whose destination units this edit re-expressed itself
    # (route="linearized"); their _ReexpressItems follow the parts' items.
    reexpressed: list = field(default_factory=list)
    # Parts (indices) acting through a path whose nonlinearities are all the identity for
    # every input: their expanded-weight hooks are exact on the real network.
    linear_paths: list = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return [i.part.key for i in self.items]

    @property
    def description(self) -> str:
        """One line: what the edit does and the paths it acts through (`model.edits`)."""
        return _summary_with_kind(self)


def _records(model: "InceptionV1") -> list[_Record]:
    recs = getattr(model, "applied_edits", None)
    if recs is None:
        raise TypeError(f"edits apply to a circuits InceptionV1, got {type(model).__name__}")
    return recs


def _bits(t: torch.Tensor) -> torch.Tensor:
    """Integer view of a float tensor: equality of bits (NaN and -0.0 included)."""
    return t.contiguous().view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(_bits(a), _bits(b))


def apply_edit(model: "InceptionV1", edit: Edit) -> None:
    """Apply `edit` permanently (until undone). Nothing changes if it does not fit.

    >>> import weights
    >>> m = weights.model("random")
    >>> apply_edit(m, zero_weights("conv2d1:0", "conv2d2:5"))
    >>> m.is_edited, float(m.conv2d2_pre_relu_conv.weight[5, 0].detach().abs().sum())
    (True, 0.0)
    """
    if not isinstance(edit, Edit):
        raise TypeError(f"expected an Edit (e.g. WeightEdit, Reexpress), got {type(edit).__name__}")
    records = _records(model)
    check_network(model, edit)
    rec = edit._prepare(model)  # may raise; nothing changed yet
    _install(model, rec)
    records.append(rec)


def check_network(model, edit: Edit) -> None:
    """Raise EditError unless `edit`'s units are of `model`'s network (checked before any change)."""
    nets = {id(p.network): p.network for p in getattr(edit, "parts", ())}
    g = network_of(model)
    for net in nets.values():
        if net is not g:
            raise EditError(
                f"cannot apply {edit.summary()!r}: its units are units of {net.name}, but the model is an "
                f"{g.name}; build the edit from units of {g.name}'s layers"
            )


def _install(model: "InceptionV1", rec: _Record) -> None:
    done: list = []
    try:
        for item in rec.items:
            if isinstance(item, _DirectItem):
                with torch.no_grad():
                    _param(model, item.part)[_grid(item.part)] = item.after
            else:
                item.handles = _paths.install(model, item)
            done.append(item)
    except BaseException:
        _uninstall(model, done)
        raise


def _uninstall(model: "InceptionV1", items: list) -> None:
    for item in reversed(items):
        if isinstance(item, _DirectItem):
            with torch.no_grad():
                _param(model, item.part)[_grid(item.part)] = item.before
        else:
            for h in item.handles:
                model.hook_points[h.name].remove(h)
            item.handles = []


def undo_edit(model: "InceptionV1", edit: Edit | None = None) -> None:
    """Undo `edit` (its most recent application), or the last edit applied if None.

    Raises EditError, changing nothing, if the edit is not applied (e.g. undone
    already), if a later edit changed one of the same tensors (undo that first), or
    if its weights were changed since by something other than an edit.
    """
    records = _records(model)
    if edit is None and not records:
        raise EditError("cannot undo: the model has no edits applied")
    if edit is None:
        rec = records[-1]
    else:
        found = [r for r in records if r.edit is edit]
        if not found:
            raise EditError(
                f"cannot undo {edit.summary()!r}: it is not applied to this model (undone already?); "
                f"applied: {[r.edit.summary() for r in records]}"
            )
        rec = found[-1]
    pos = records.index(rec)
    for later in records[pos + 1 :]:
        shared = sorted(set(later.keys) & set(rec.keys))
        if shared:
            raise EditError(
                f"cannot undo {rec.edit.summary()!r}: {later.edit.summary()!r}, applied after it, also "
                f"changes {', '.join(shared)}; undo that edit first (edits on a tensor are undone newest first)"
            )
    for item in rec.items:
        if isinstance(item, _DirectItem):
            now = _param(model, item.part).detach()[_grid(item.part)]
            if not _same_bits(now, item.after):
                raise EditError(
                    f"cannot undo {rec.edit.summary()!r} bit-exactly: {item.part.param} was changed "
                    "since the edit was applied, by something other than an edit"
                )
    _uninstall(model, rec.items)
    records.pop(pos)


def undo_all(model: "InceptionV1") -> None:
    """Undo every applied edit, newest first."""
    while _records(model):
        undo_edit(model)


@contextlib.contextmanager
def editing(model: "InceptionV1", *edits: Edit) -> Iterator["InceptionV1"]:
    """Apply `edits` in order for the block; undone newest first, also on an exception.

    >>> import weights, torch
    >>> m = weights.model("random")
    >>> with editing(m, zero_weights("conv2d1:0", "conv2d2:5"), scale_weights("conv2d1:1", "conv2d2:5", 2)):
    ...     len(m.edits)
    2
    >>> m.edits
    []
    """
    if len(edits) == 1 and not isinstance(edits[0], Edit) and isinstance(edits[0], Iterable):
        edits = tuple(edits[0])
    applied: list[Edit] = []
    try:
        for e in edits:
            apply_edit(model, e)
            applied.append(e)
        yield model
    finally:
        for e in reversed(applied):
            undo_edit(model, e)


def edit_log(model: "InceptionV1") -> list[dict]:
    """JSON-able descriptions of the applied edits, oldest first.

    Each entry is the edit's `describe()` plus "realised": for each part, "exact"
    (real parameters, or an implant's donor values), "exact (linear path)" (expanded
    weights through ReLUs that are the identity for every input), "linearized model" (on units
    re-expressed from the source layer) or "linear correction (not exact)" (only in
    logs saved before edits said what they are), and "reexpressed": the parts whose
    units the edit re-expressed itself (route="linearized").
    """
    return [_log_entry(r) for r in _records(model)]


def _log_entry(rec: _Record) -> dict:
    entry = rec.edit.describe()
    entry["realised"] = [_realised(rec, j) for j in range(len(rec.edit.parts))]
    if rec.reexpressed:
        entry["reexpressed"] = list(rec.reexpressed)
    return entry


def _realised(rec: "_Record", j: int) -> str:
    """How part `j` of the record's edit acts: see `edit_log`."""
    edit, p = rec.edit, rec.edit.parts[j]
    if p.kind != "expanded":
        return "exact"
    if j in rec.linear_paths:
        return "exact (linear path)"
    if getattr(edit, "route", None) == "legacy":
        return "linear correction (not exact)"
    return "linearized model"


def _summary_with_kind(rec: _Record) -> str:
    how: dict[str, list[str]] = {}
    for j, p in enumerate(rec.edit.parts):
        how.setdefault(_realised(rec, j), []).append(f"{p.kind} {p.src_layer}->{p.conv}")
    parts = "; ".join(f"{k}: {', '.join(v)}" for k, v in how.items())
    return f"{rec.edit.summary()} ({parts})"


def descriptions(model: "InceptionV1") -> list[str]:
    """One line per applied edit, oldest first (what `model.edits` shows)."""
    return [r.description for r in _records(model)]


# --- expanded paths (hooks) -------------------------------------------------

from circuits.editing import paths as _paths  # noqa: E402  (needs the classes above)
