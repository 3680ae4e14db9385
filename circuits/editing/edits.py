"""Reversible weight edits: rewrite, scale, zero or half-rectify the weights between units.

Every edit is an object. Apply it for a block (``with edit.applied(model):``) or
permanently (``model.apply_edit(edit)``); undo it bit-exactly (``edit.undo(model)``);
the model lists what is applied (``model.edits``, ``model.is_edited``). Edits compose:
apply several, undo them newest first, and every parameter is back bit for bit.

Two kinds of connection, and what is exact about each:

* **Direct** -- the source units are the input tensor of the convolution that
  computes the destination units (``conv2d1 -> conv2d2``, ``mixed3a -> mixed3b`` 1x1
  branch, ``mixed3a -> mixed3b_5x5_bottleneck``). The edit rewrites the real parameter
  slice ``weight[dst, src]`` (the original slice is saved). The edited network is
  *exactly* the network with those weights, and undo restores the saved slice.
* **Expanded** -- anything else (through a bottleneck, a pool, an LRN or several
  layers, e.g. ``mixed3a`` early curves -> ``mixed3b`` curves via the 5x5 branch's
  32-channel bottleneck). The edit acts on the *expanded weights* ``W`` of
  `circuits.analysis.expanded.weights_between` (the linear map of the linearized path) and is
  applied by a hook on the destination branch's pre-ReLU tensor::

      dst_pre_relu  +=  conv(src_activation, W_edited - W)     on the edited (dst, src) pairs

  where ``src_activation`` is the source layer's tensor from the same run (cached by
  a hook on it), convolved with the spatial layout of the expanded weights. With no
  change (``W_edited == W``) this is exactly the original network. Otherwise it is
  the change the edit makes to the *linearized* path (ReLUs as identity, max-pools as
  average pools, see `circuits.analysis.expanded`), added to the real, untouched rest: a
  linear approximation of "what if these expanded weights were different", exact
  only where the path's ReLUs are active and its pools and LRNs act linearly.
  Nothing in the bottleneck itself changes, so other units fed by it are unaffected.
  The expanded weights are those of `weights_between` with its defaults (LRN as
  identity, biases dropped); the delta is zero outside the source map.
* `Reexpress` replaces destination pre-ReLU units by their linearized path from a
  source layer (expanded weights plus the bias path). It reproduces the real units
  wherever the path's ReLUs are active (and its pools act linearly; near the map
  border, where zero padding enters, only for 1x1 bottleneck paths); together with
  expanded weight edits it gives "the destination recomputed from its expanded
  weights, edited".

The weights an expanded edit starts from (``W`` above) are the expanded weights of
the current parameters plus the deltas of expanded edits already applied on the same
units, so expanded edits compose like direct ones (scaling twice by 0.5 scales by
0.25). An expanded edit's delta is fixed when it is applied.

Undo rules: an edit undone twice, an edit that is not applied, or an edit that is
not the last one applied on one of the tensors it changed raises `EditError`, as
does undoing a direct edit whose weights were changed since by something else;
an edit that does not fit raises before anything is changed.

Example:
    >>> import weights
    >>> from circuits.editing.edits import drop_negative, keep_only_inputs
    >>> model = weights.model("random")
    >>> edit = drop_negative("mixed3a:early_curves", "mixed3b:curves")
    >>> with edit.applied(model):
    ...     model.is_edited
    True
    >>> model.is_edited
    False
    >>> model.apply_edit(keep_only_inputs("mixed3a:early_curves", "mixed3b:curves"))
    >>> model.edits      # doctest: +ELLIPSIS
    ['keep_only mixed3a:early_curves -> mixed3b:curves (...)']
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

import torch

from circuits.core import graph
from circuits.core.units import Unit, resolve_units

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
    "apply_edit",
    "undo_edit",
    "undo_all",
    "editing",
    "edit_log",
    "save_edited",
    "load_edited",
    "is_edited_file",
    "METADATA_KEY",
]

OPS = ("set", "scale", "zero", "drop_negative", "drop_positive")

# safetensors metadata key holding the JSON edit log; tensors an edit needs to be
# re-applied or undone after loading are stored under this key prefix.
METADATA_KEY = "circuits.edits"
TENSOR_PREFIX = "circuits_edits."
FORMAT_VERSION = 1


class EditError(ValueError):
    """An edit that does not fit the model, or cannot be undone."""


# --- where an edit acts ----------------------------------------------------


def _dst_conv(u: Unit) -> str:
    """The conv node whose output channel `u.branch_channel` computes unit `u`."""
    found = graph.INCEPTION_V1.conv_of(u.layer, u.channel)
    if found is not None:
        return found[0]
    n = graph.node(u.branch)
    raise EditError(
        f"unit {u.id} is computed by a {n.op} ({n.name}), which has no weights to edit; "
        "destination units must be outputs of a convolution (e.g. conv2d2:5, mixed3b:379, "
        "mixed3b_5x5_bottleneck:3)"
    )


def _direct_channel(conv: str, u: Unit) -> int | None:
    """Channel of `u` in the input of `conv` if `u` is read by `conv` directly, else None."""
    inp = graph.node(conv).inputs[0]
    if u.layer == inp:
        return u.channel
    # A unit named by its branch tensor (mixed3a_5x5:3) is channel offset+3 of the concat.
    for b, off, _ in graph.branches(inp):
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

    @property
    def param(self) -> str:
        return f"{graph.node(self.conv).param}.weight"

    @property
    def key(self) -> str:
        """The tensor this part changes: a parameter, or a (source, conv) expanded map."""
        return self.param if self.kind == "direct" else f"expanded:{self.src_layer}->{self.conv}"

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("kind", "conv", "src_layer", "dst_rows", "src_cols", "dst_idx", "src_idx")}


def _plan(src: Sequence[Unit], dst: Sequence[Unit]) -> list[_Part]:
    """Split (src x dst) into parts by destination conv and source layer."""
    groups: dict[tuple[str, str], _Part] = {}
    for r, d in enumerate(dst):
        conv = _dst_conv(d)
        for c, s in enumerate(src):
            ch = _direct_channel(conv, s)
            if ch is not None:
                kind, layer = "direct", graph.node(conv).inputs[0]
            else:
                if s.layer not in graph.ancestors(conv) or s.layer == conv:
                    raise EditError(
                        f"source unit {s.id} is not upstream of destination unit {d.id} "
                        f"({s.layer} does not feed {conv})"
                    )
                kind, layer, ch = "expanded", s.layer, s.channel
            part = groups.get((layer, conv))
            if part is None:
                part = groups[(layer, conv)] = _Part(kind, conv, layer, [], [], [], [])
            if r not in part.dst_rows:
                part.dst_rows.append(r)
                part.dst_idx.append(d.branch_channel)
            if c not in part.src_cols:
                part.src_cols.append(c)
                part.src_idx.append(ch)
    return list(groups.values())


def _units(spec, what: str) -> tuple[Unit, ...]:
    try:
        units = resolve_units(spec)
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

    Direct connections change the parameters; expanded ones are applied by hooks
    (see the module docstring for exactly what that means).

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
    ):
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
        self.parts = _plan(self.src, self.dst)

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
        return rec


def _grid(p: _Part) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(p.dst_idx)[:, None], torch.tensor(p.src_idx)[None, :]


def _param(model: "InceptionV1", p: _Part) -> torch.nn.Parameter:
    return getattr(model, graph.node(p.conv).param).weight


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
        graph.node(src_layer)
        self.src_layer = src_layer
        self.dst_spec = _spec_str(dst)
        self.dst = _units(dst, "destination")
        self.parts: list[_Part] = []
        by_conv: dict[str, _Part] = {}
        for r, d in enumerate(self.dst):
            conv = _dst_conv(d)
            if graph.node(conv).inputs[0] == src_layer:
                raise EditError(
                    f"{src_layer} feeds {conv} directly: the re-expression would be the conv itself; "
                    "re-express from a layer further upstream"
                )
            if src_layer not in graph.ancestors(conv) or src_layer == conv:
                raise EditError(f"{src_layer} is not upstream of destination unit {d.id} ({conv})")
            p = by_conv.setdefault(conv, _Part("expanded", conv, src_layer, [], [], [], []))
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


def set_weights(src, dst, values) -> WeightEdit:
    """Set the weights src -> dst to `values` (a number or a [dst, src, kh, kw] tensor).

    >>> set_weights("conv2d1:0", "conv2d2:5", 0.0).op
    'set'
    """
    return WeightEdit(src, dst, "set", values=values)


def scale_weights(src, dst, factor: float) -> WeightEdit:
    """Multiply the weights src -> dst by `factor`.

    >>> scale_weights("conv2d1:0", "conv2d2:5", 2).factor
    2.0
    """
    return WeightEdit(src, dst, "scale", factor=factor)


def zero_weights(src, dst) -> WeightEdit:
    """Set the weights src -> dst to zero.

    >>> zero_weights("conv2d1:0", "conv2d2:5").summary()
    'zero conv2d1:0 -> conv2d2:5'
    """
    return WeightEdit(src, dst, "zero")


def drop_negative(src, dst) -> WeightEdit:
    """Remove the negative part of the weights src -> dst (negative values -> 0).

    >>> drop_negative("mixed3a:early_curves", "mixed3b:curves").summary()
    'drop_negative mixed3a:early_curves -> mixed3b:curves'
    """
    return WeightEdit(src, dst, "drop_negative")


def drop_positive(src, dst) -> WeightEdit:
    """Remove the positive part of the weights src -> dst (positive values -> 0)."""
    return WeightEdit(src, dst, "drop_positive")


def ablate_connections(src, dst) -> WeightEdit:
    """Ablate the connections from one family (or units) to another: weights -> 0.

    >>> ablate_connections("mixed3a:early_curves", "mixed3b:curves").summary()
    'ablate mixed3a:early_curves -> mixed3b:curves'
    """
    return WeightEdit(src, dst, "zero", label="ablate")


def keep_only_inputs(sources, dst) -> WeightEdit:
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
    layers = sorted({u.layer for u in kept}, key=graph.index)
    if len(layers) != 1:
        raise EditError(f"the sources to keep must lie in one layer, got units of {', '.join(layers)}")
    layer = layers[0]
    keep = set(kept)
    others = [Unit(layer, c) for c in range(graph.node(layer).channels) if Unit(layer, c) not in keep]
    if not others:
        raise EditError(f"{_short(_spec_str(sources))} is every unit of {layer}: nothing to remove")
    return WeightEdit(others, dst, "zero", label="keep_only", shown_src=sources)


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
    rec = edit._prepare(model)  # may raise; nothing changed yet
    _install(model, rec)
    records.append(rec)


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
    """JSON-able descriptions of the applied edits, oldest first."""
    return [r.edit.describe() for r in _records(model)]


def _summary_with_kind(rec: _Record) -> str:
    kinds = sorted({i.part.kind for i in rec.items})
    via = ", ".join(sorted({f"{i.part.src_layer}->{i.part.conv}" for i in rec.items}))
    return f"{rec.edit.summary()} ({'+'.join(kinds)}: {via})"


def descriptions(model: "InceptionV1") -> list[str]:
    """One line per applied edit, oldest first (what `model.edits` shows)."""
    return [r.description for r in _records(model)]


# --- expanded paths (hooks) -------------------------------------------------

from circuits.editing import paths as _paths  # noqa: E402  (needs the classes above)


# --- saving and loading -----------------------------------------------------


def is_edited_file(path: str | os.PathLike) -> bool:
    """Whether `path` is a .safetensors file written by `save_edited` (with an edit log)."""
    if not str(path).endswith(".safetensors"):
        return False
    from weights.checkpoint import read_metadata

    return METADATA_KEY in read_metadata(path)


def save_edited(model: "InceptionV1", path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Save the model with its edits as .safetensors (written to a temp file, then renamed).

    The parameters are saved as they are (direct edits included); the edit log is
    JSON in the metadata under "circuits.edits"; the tensors needed to undo direct
    edits and to re-install expanded ones are stored under "circuits_edits.<i>.<j>.*"
    keys. Load with `load_edited`, which re-applies and checks them.

    >>> save_edited(m, "edited.safetensors")      # doctest: +SKIP
    """
    from safetensors.torch import save_file
    from weights.checkpoint import atomic_path

    path = os.fspath(path)
    if not path.endswith(".safetensors"):
        raise ValueError(f"edited models are saved as .safetensors, got {path!r}")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    log = []
    for i, rec in enumerate(_records(model)):
        entry = rec.edit.describe()
        if isinstance(rec.edit, WeightEdit) and rec.edit.values is not None:
            tensors[f"{TENSOR_PREFIX}{i}.values"] = rec.edit.values.contiguous()
        for j, item in enumerate(rec.items):
            pre = f"{TENSOR_PREFIX}{i}.{j}."
            if isinstance(item, _DirectItem):
                tensors[pre + "before"] = item.before.contiguous()
            elif isinstance(item, _ExpandedItem):
                tensors[pre + "delta"] = item.delta.contiguous()
        log.append(entry)
    meta = dict(metadata or {})
    meta[METADATA_KEY] = json.dumps({"version": FORMAT_VERSION, "edits": log})
    bad = {k: v for k, v in meta.items() if not (isinstance(k, str) and isinstance(v, str))}
    if bad:
        raise TypeError(f"safetensors metadata must map str to str, got {bad!r}")
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=meta)


class EditLogMismatch(EditError):
    """An edit log that does not match the weights it was saved with."""


def load_edited(path: str | os.PathLike) -> "InceptionV1":
    """An InceptionV1 with the weights and edits saved by `save_edited`.

    The log is checked against the weights: undoing the saved direct edits newest
    first (on a copy) must meet, at each step, exactly the values each edit wrote.
    Expanded edits are re-installed from their saved deltas. The loaded model can
    undo every edit. A file without an edit log loads as an unedited model.

    >>> m = load_edited("edited.safetensors")      # doctest: +SKIP
    """
    from safetensors.torch import load_file as st_load

    from weights.checkpoint import CheckpointError, read_metadata

    from circuits.core.model import InceptionV1, StateDictError, check_state_dict

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    meta = read_metadata(path)
    try:
        tensors = st_load(path, device="cpu")
    except Exception as e:  # safetensors raises its own error type
        raise CheckpointError(f"{path} is truncated or corrupt ({type(e).__name__}: {e})") from e
    params = {k: v for k, v in tensors.items() if not k.startswith(TENSOR_PREFIX)}
    extra = {k[len(TENSOR_PREFIX) :]: v for k, v in tensors.items() if k.startswith(TENSOR_PREFIX)}
    try:
        check_state_dict(params)
    except StateDictError as e:
        raise StateDictError(f"{path}: {e}") from None
    model = InceptionV1(params).eval()
    model.source = path
    if METADATA_KEY not in meta:
        if extra:
            raise EditLogMismatch(f"{path} holds edit tensors ({len(extra)}) but no edit log in its metadata")
        return model
    try:
        log = json.loads(meta[METADATA_KEY])
        entries = log["edits"]
        version = log.get("version")
    except (ValueError, KeyError, TypeError) as e:
        raise EditLogMismatch(f"{path}: the edit log in the metadata is not valid ({e})") from None
    if version != FORMAT_VERSION:
        raise EditLogMismatch(f"{path}: edit log format {version!r} is not supported (expected {FORMAT_VERSION})")
    records = [_rebuild(path, i, entry, extra) for i, entry in enumerate(entries)]
    used = {f"{i}.values" for i, r in enumerate(records) if getattr(r.edit, "values", None) is not None}
    for i, r in enumerate(records):
        for j, item in enumerate(r.items):
            if isinstance(item, _DirectItem):
                used.add(f"{i}.{j}.before")
            elif isinstance(item, _ExpandedItem):
                used.add(f"{i}.{j}.delta")
    unused = sorted(set(extra) - used)
    if unused:
        raise EditLogMismatch(f"{path}: edit tensors not referenced by the edit log: {', '.join(unused[:5])}")
    _check_direct_history(path, model, records)
    for rec in records:
        for item in rec.items:
            if not isinstance(item, _DirectItem):
                item.handles = _paths.install(model, item)
        model.applied_edits.append(rec)
    return model


def _rebuild(path: str, i: int, entry: dict, extra: dict) -> _Record:
    """The record of saved edit `i`, checked against the graph and the saved tensors."""

    def fail(why: str) -> EditLogMismatch:
        return EditLogMismatch(f"{path}: edit #{i} of the log does not match the model: {why}")

    try:
        kind = entry["type"]
        if kind == "WeightEdit":
            values = extra.get(f"{i}.values")
            edit = WeightEdit(
                entry["src"], entry["dst"], entry["op"], values=values, factor=entry.get("factor"),
                label=entry.get("label"), shown_src=entry.get("shown_src"),
            )
            edit.dst_spec = entry.get("dst_spec", edit.dst_spec)
        elif kind == "Reexpress":
            edit = Reexpress(entry["src_layer"], entry["dst"])
            edit.dst_spec = entry.get("dst_spec", edit.dst_spec)
        elif kind == "Implant":
            from circuits.editing.implant import Implant

            edit = Implant.from_description(entry)
            edit.dst_spec = entry.get("dst_spec", edit.dst_spec)
        else:
            raise fail(f"unknown edit type {kind!r}")
    except EditLogMismatch:
        raise
    except (KeyError, TypeError) as e:
        raise fail(f"missing or bad field {e}") from None
    except (ValueError, IndexError) as e:
        raise fail(str(e)) from None
    saved_parts = entry.get("parts")
    if saved_parts != [p.to_json() for p in edit.parts]:
        raise fail("its parts (which tensors and channels it changes) differ from what the graph gives")
    if hasattr(edit, "_record"):  # implants: hooks only, nothing saved but the log
        return edit._record()
    rec = _Record(edit)
    for j, p in enumerate(edit.parts):
        pre = f"{i}.{j}."
        if isinstance(edit, Reexpress):
            rec.items.append(_ReexpressItem(p))
        elif p.kind == "direct":
            before = extra.get(pre + "before")
            if before is None:
                raise fail(f"the saved original weights {TENSOR_PREFIX}{pre}before are missing")
            shape = graph.parameter_shapes()[p.param]
            want = (len(p.dst_idx), len(p.src_idx)) + shape[2:]
            if tuple(before.shape) != want:
                raise fail(f"saved original weights have shape {list(before.shape)}, expected {list(want)}")
            edit._kernel_shapes = [tuple(before.shape[-2:])]
            after = edit._transform(before, p)
            rec.items.append(_DirectItem(p, before, after))
        else:
            delta = extra.get(pre + "delta")
            if delta is None:
                raise fail(f"the saved expanded delta {TENSOR_PREFIX}{pre}delta is missing")
            want = (len(p.dst_idx), len(p.src_idx))
            if tuple(delta.shape[:2]) != want or delta.dim() != 4:
                raise fail(f"saved expanded delta has shape {list(delta.shape)}, expected {list(want)} + [kh, kw]")
            _paths.check_delta_shape(p, delta)
            rec.items.append(_ExpandedItem(p, delta))
    return rec


def _check_direct_history(path: str, model: "InceptionV1", records: list[_Record]) -> None:
    """Undo the direct edits newest first on a copy; each must find what it wrote."""
    work: dict[str, torch.Tensor] = {}
    for i in range(len(records) - 1, -1, -1):
        for item in reversed(records[i].items):
            if not isinstance(item, _DirectItem):
                continue
            key = item.part.param
            if key not in work:
                work[key] = _param(model, item.part).detach().clone()
            g = _grid(item.part)
            if not _same_bits(work[key][g], item.after):
                raise EditLogMismatch(
                    f"{path}: edit #{i} ({records[i].edit.summary()}) does not match the weights: "
                    f"{key} does not hold the values this edit writes (the log and the weights disagree)"
                )
            work[key][g] = item.before
