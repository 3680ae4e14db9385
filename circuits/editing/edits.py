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

Networks: an edit is made of units of one network (InceptionV1, InceptionV3, a traced
one), given as ``network=`` (the model, whose own families count, or its graph) unless
the units are resolved already (`Unit` objects know their network); every graph fact it uses (which conv computes a unit, the path, its nonlinearities)
is that network's (the units' graph), and applying it to a model of another network
raises `EditError` naming both before anything changes.

Undo rules: an edit undone twice, an edit that is not applied, or an edit that is
not the last one applied on one of the tensors it changed raises `EditError`, as
does undoing a direct edit whose weights were changed since by something else;
an edit that does not fit raises before anything is changed.

Hooks: the hooks of expanded edits, re-expressions and implants are the edit's own
(`HookPoint.edit_hooks`, listed by ``model.edit_hooks``), kept apart from the user's:
``model.clear_hooks()``, ``model.hooks(...)`` blocks (also ending in an exception) and
``model.remove_hook`` never remove them, so a model that says it is edited computes
the edited network; only undoing the edit removes them. They run before the user's
hooks on a tensor (which see the edited value), and the hook that reads an edit's
source activation runs after them (the edited path sees what the real path sees).

Example:
    >>> import weights
    >>> from circuits.editing.edits import drop_negative, keep_only_inputs
    >>> model = weights.model("random")
    >>> edit = drop_negative("mixed3a:early_curves", "mixed3b:curves", route="linearized", network=model)
    >>> with edit.applied(model):
    ...     model.edits
    ['drop_negative mixed3a:early_curves -> mixed3b:curves (linearized model: expanded mixed3a->mixed3b_5x5_pre_relu)']
    >>> model.is_edited
    False
    >>> model.apply_edit(drop_negative("mixed3a:early_curves", "mixed3b:curves", network=model))   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    circuits.editing.EditError: cannot edit the expanded weights ... mixed3b_5x5_bottleneck (relu) is on the path and active ...
    >>> model.apply_edit(keep_only_inputs("mixed3a:early_curves", "mixed3b:420", network=model))
    >>> model.edits
    ['keep_only mixed3a:early_curves -> mixed3b:420 (exact: direct mixed3b_pool->mixed3b_pool_reduce_pre_relu)']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from circuits.analysis.networks import units_in
from circuits.core import graph
from circuits.core.bounds import always_identity_relus, interval_bounds
from circuits.core.units import Unit
from circuits.editing import paths as _paths
from circuits.editing.paths import _ExpandedItem, _ReexpressItem
from circuits.editing.records import (  # noqa: F401 - re-exported: the public edit API
    Edit,
    _bits,
    _DirectItem,
    _grid,
    _param,
    _Record,
    _records,
    apply_edit,
    descriptions,
    edit_log,
    editing,
    undo_all,
    undo_edit,
)
from circuits.editing.selection import (  # noqa: F401 - re-exported: the public edit API
    OPS,
    ROUTES,
    EditError,
    _channelwise_channel,
    _dst_conv,
    _nonlinearities,
    _Part,
    _plan,
    _short,
    _spec_str,
    _units,
)

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

    >>> e = WeightEdit("mixed3a:early_curves", "mixed3b:curves", "scale", factor=0.5, network=graph.INCEPTION_V1)
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
        network=None,
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
        self.src = _units(src, "source", network)
        self.dst = _units(dst, "destination", network if network is not None else self.src[0].network)
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
                    before = current_expanded(model, p)
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
        f"on the linearized model: apply Reexpress({p.src_layer!r}, {dst!r}, network=model) first, or pass "
        f"route='linearized' (which re-expresses those units from {p.src_layer}, then edits)"
    ]
    op = "keep_only" if edit.label == "keep_only" else edit.op
    if op in EACH_CONV_OPS and _conv_chain(p.src_layer, p.conv, p.network) is not None:
        alt.append(
            f"on the real network: the op on each convolution of the path, "
            f"editing(model, *each_conv({op!r}, {src!r}, {dst!r}, network=model))"
        )
    elif _channelwise_channel(p.conv, edit.src[p.src_cols[0]]) is not None:
        alt.append(f"on the real network: op 'scale' or 'zero' (which are edits of {p.conv} itself)")
    return (
        f"cannot edit the expanded weights {edit.summary()!r} ({p.src_layer} -> {p.conv}) exactly: "
        f"{what} {verb} on the path and active (not the identity for every input), so no network has "
        "those expanded weights with its other weights unchanged, and a linear correction added to the "
        "real path would be wrong. Exact alternatives: " + "; ".join(f"({i + 1}) {a}" for i, a in enumerate(alt))
    )


def current_expanded(model: "InceptionV1", part: _Part) -> torch.Tensor:
    """Expanded weights of the parameters plus the deltas of expanded edits already applied."""
    w = _paths.expanded_weights(model, part).clone()
    rows = {c: i for i, c in enumerate(part.dst_idx)}
    cols = {c: j for j, c in enumerate(part.src_idx)}
    for rec in _records(model):
        for item in rec.items:
            if isinstance(item, _ExpandedItem) and item.part.key == part.key:
                for a, d in enumerate(item.part.dst_idx):
                    if d not in rows:
                        continue
                    for b, s in enumerate(item.part.src_idx):
                        if s in cols:
                            w[rows[d], cols[s]] += item.delta[a, b]
    return w


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

    >>> Reexpress("mixed3a", "mixed3b:curves", network=graph.INCEPTION_V1).summary()
    'reexpress mixed3b:curves from mixed3a'
    """

    def __init__(self, src_layer: str, dst, *, network=None):
        self.dst_spec = _spec_str(dst)
        self.dst = _units(dst, "destination", network)
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


def set_weights(src, dst, values, *, route: str = "auto", network=None) -> WeightEdit:
    """Set the weights src -> dst to `values` (a number or a [dst, src, kh, kw] tensor).

    >>> set_weights("conv2d1:0", "conv2d2:5", 0.0, network=graph.INCEPTION_V1).op
    'set'
    """
    return WeightEdit(src, dst, "set", values=values, route=route, network=network)


def scale_weights(src, dst, factor: float, *, route: str = "auto", network=None) -> WeightEdit:
    """Multiply the weights src -> dst by `factor`.

    >>> scale_weights("conv2d1:0", "conv2d2:5", 2, network=graph.INCEPTION_V1).factor
    2.0
    """
    return WeightEdit(src, dst, "scale", factor=factor, route=route, network=network)


def zero_weights(src, dst, *, route: str = "auto", network=None) -> WeightEdit:
    """Set the weights src -> dst to zero.

    >>> zero_weights("conv2d1:0", "conv2d2:5", network=graph.INCEPTION_V1).summary()
    'zero conv2d1:0 -> conv2d2:5'
    """
    return WeightEdit(src, dst, "zero", route=route, network=network)


def drop_negative(src, dst, *, route: str = "auto", network=None) -> WeightEdit:
    """Remove the negative part of the weights src -> dst (negative values -> 0).

    >>> drop_negative("mixed3a:early_curves", "mixed3b:curves", network=graph.INCEPTION_V1).summary()
    'drop_negative mixed3a:early_curves -> mixed3b:curves'
    """
    return WeightEdit(src, dst, "drop_negative", route=route, network=network)


def drop_positive(src, dst, *, route: str = "auto", network=None) -> WeightEdit:
    """Remove the positive part of the weights src -> dst (positive values -> 0)."""
    return WeightEdit(src, dst, "drop_positive", route=route, network=network)


def ablate_connections(src, dst, *, route: str = "auto", network=None) -> WeightEdit:
    """Ablate the connections from one family (or units) to another: weights -> 0.

    >>> ablate_connections("mixed3a:early_curves", "mixed3b:curves", network=graph.INCEPTION_V1).summary()
    'ablate mixed3a:early_curves -> mixed3b:curves'
    """
    return WeightEdit(src, dst, "zero", label="ablate", route=route, network=network)


def keep_only_inputs(sources, dst, *, route: str = "auto", network=None) -> WeightEdit:
    """Zero the weights into `dst` from every unit of the sources' layer except `sources`.

    "Keep only early curves as inputs to the 3b curves":
    ``keep_only_inputs("mixed3a:early_curves", "mixed3b:curves")``. The sources must
    lie in one layer; inputs from other layers (e.g. through other branches) are
    not touched.

    >>> e = keep_only_inputs("mixed3a:early_curves", "mixed3b:curves", network=graph.INCEPTION_V1)
    >>> len(e.src), e.summary()
    (245, 'keep_only mixed3a:early_curves -> mixed3b:curves')
    """
    kept = _units(sources, "sources to keep", network)
    g = kept[0].network
    layers = sorted({u.layer for u in kept}, key=g.index)
    if len(layers) != 1:
        raise EditError(f"the sources to keep must lie in one layer, got units of {', '.join(layers)}")
    layer = layers[0]
    keep = set(kept)
    others = [u for u in units_in(g, layer) if u not in keep]
    if not others:
        raise EditError(f"{_short(_spec_str(sources))} is every unit of {layer}: nothing to remove")
    return WeightEdit(others, dst, "zero", label="keep_only", shown_src=sources, route=route, network=network)


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


def each_conv(op: str, src, dst, *, label: str | None = None, network=None) -> list[WeightEdit]:
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

    >>> [e.summary() for e in each_conv("drop_negative", "mixed3a:early_curves", "mixed3b:curves", network=graph.INCEPTION_V1)]
    ['drop_negative mixed3a:early_curves -> mixed3b_5x5_bottleneck', 'drop_negative mixed3b_5x5_bottleneck -> mixed3b:curves']
    """
    if op not in EACH_CONV_OPS:
        raise EditError(f"each_conv does op {op!r} on no convolution; use one of {', '.join(EACH_CONV_OPS)}")
    shown_src, shown_dst = _spec_str(src), _spec_str(dst)
    if op == "keep_only":
        keep = keep_only_inputs(src, dst, network=network)  # checks one layer, and that something is left to remove
        src, op, label = keep.src, "zero", label or "keep_only"
    src_u = _units(src, "source", network)
    dst_u = _units(dst, "destination", network if network is not None else src_u[0].network)
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

