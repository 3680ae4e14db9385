"""The records of applied edits (`model.applied_edits`, shown by `model.edits`): apply, undo, log.

`apply_edit` asks the edit for a `_Record` (everything computed, nothing changed),
then installs it: direct items write their parameter slices, the others add their
hooks, owned by the edit (`circuits.core.hooks`: the user's `clear_hooks()` and hook
blocks never remove them). `undo_edit` takes them off again, bit-exactly.

Example:
    >>> import weights
    >>> from circuits.editing.edits import zero_weights
    >>> from circuits.editing.records import editing, edit_log
    >>> m = weights.model("random")
    >>> with editing(m, zero_weights("conv2d1:0", "conv2d2:5", network=m)):
    ...     edit_log(m)[0]["realised"]
    ['exact']
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Iterator

import torch

from circuits.analysis.networks import network_of
from circuits.editing import paths as _paths
from circuits.editing.selection import EditError, _Part

if TYPE_CHECKING:  # pragma: no cover
    from circuits.core.model import InceptionV1

__all__ = ["Edit", "apply_edit", "undo_edit", "undo_all", "editing", "edit_log", "descriptions"]


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


def _grid(p: _Part) -> tuple[torch.Tensor, torch.Tensor]:
    """The indices of a direct part's slice of its weight. A grouped convolution stores each
    group's inputs from 0 ([C, Cin / groups, kh, kw]); a part lies in one group
    (`selection._plan`), so its input channels are taken modulo the group's width."""
    src = torch.tensor(p.src_idx)
    n = p.network.node(p.conv)
    if n.groups > 1:
        src = src % (p.network.node(n.inputs[0]).channels // n.groups)
    return torch.tensor(p.dst_idx)[:, None], src[None, :]


def _param(model: "InceptionV1", p: _Part) -> torch.nn.Parameter:
    return getattr(model, p.network.node(p.conv).param).weight



@dataclass(eq=False)
class _DirectItem:
    part: _Part
    before: torch.Tensor  # the original slice
    after: torch.Tensor  # what the edit wrote



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
    >>> from circuits.editing import zero_weights
    >>> m = weights.model("random")
    >>> apply_edit(m, zero_weights("conv2d1:0", "conv2d2:5", network=m))
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
                item.handles = _paths.install(model, item, rec.edit)
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

    >>> import weights
    >>> from circuits.editing import scale_weights, zero_weights
    >>> m = weights.model("random")
    >>> with editing(m, zero_weights("conv2d1:0", "conv2d2:5", network=m), scale_weights("conv2d1:1", "conv2d2:5", 2, network=m)):
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

