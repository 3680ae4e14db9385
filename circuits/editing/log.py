"""An edit log as data: the entries and tensors that describe a model's edits, and their replay.

No file format here (the weights side, `weights.edited`, stores both in a
.safetensors file). `edit_log(model)` (in `circuits.editing.edits`) gives the JSON-able
entries, `edit_tensors(model)` the tensors they need (``"<i>.values"`` for a "set"
edit's values, ``"<i>.<j>.before"`` for the original slice of a direct part,
``"<i>.<j>.delta"`` for an expanded part's change of expanded weights), and
`replay(model, entries, tensors)` puts them back on a model that holds the edited
parameters, checking that the log and the parameters agree.

Example:
    >>> import weights
    >>> from circuits.editing import edit_log, scale_weights
    >>> m = weights.model("random")
    >>> m.apply_edit(scale_weights("conv2d1:0", "conv2d2:5", 0.5, network=m))
    >>> entries, tensors = edit_log(m), edit_tensors(m)
    >>> sorted(tensors)
    ['0.0.before']
    >>> copy = weights.model("random")
    >>> with torch.no_grad():
    ...     copy.load_state_dict(m.state_dict())           # the edited parameters
    <All keys matched successfully>
    >>> replay(copy, entries, tensors)
    >>> copy.edits == m.edits
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping

import torch

from circuits.core import graph
from circuits.editing import paths as _paths
from circuits.editing.edits import Reexpress, WeightEdit, _reexpress_part
from circuits.editing.paths import _ExpandedItem, _ReexpressItem
from circuits.editing.records import _DirectItem, _grid, _param, _Record, _records, _same_bits
from circuits.editing.selection import EditError

if TYPE_CHECKING:  # pragma: no cover
    from circuits.core.model import InceptionV1

__all__ = ["EditLogMismatch", "edit_tensors", "replay"]

# How an implant's donor is rebuilt from the description its log entry records.
DonorLoader = Callable[[str], "InceptionV1"]


class EditLogMismatch(EditError):
    """An edit log that does not match the weights it was saved with."""


def edit_tensors(model: "InceptionV1") -> dict[str, torch.Tensor]:
    """The tensors the edit log of `model` needs to be replayed (see the module docstring)."""
    tensors: dict[str, torch.Tensor] = {}
    for i, rec in enumerate(_records(model)):
        if isinstance(rec.edit, WeightEdit) and rec.edit.values is not None:
            tensors[f"{i}.values"] = rec.edit.values.contiguous()
        for j, item in enumerate(rec.items):
            if isinstance(item, _DirectItem):
                tensors[f"{i}.{j}.before"] = item.before.contiguous()
            elif isinstance(item, _ExpandedItem):
                tensors[f"{i}.{j}.delta"] = item.delta.contiguous()
    return tensors


def replay(
    model: "InceptionV1",
    entries: list[dict],
    tensors: Mapping[str, torch.Tensor],
    *,
    donor: DonorLoader | None = None,
    where: str = "the edit log",
) -> None:
    """Re-apply the logged edits on `model`, which must hold the edited parameters.

    Checks, before changing anything: every entry rebuilds against the graph (same
    parts), every tensor it needs is there and every tensor given is used, and
    undoing the direct edits newest first (on a copy) meets at each step exactly the
    values each edit wrote. Expanded edits get their saved deltas back, so the
    replayed model computes bit for bit what the logged one did, and can undo
    every edit. `donor(description)` rebuilds an implant's donor; `where` names
    the log in errors (e.g. its file).
    """
    if model.applied_edits:
        raise EditError(f"replay needs a model without edits; this one has {len(model.applied_edits)}")
    records = [_rebuild(where, i, entry, tensors, donor, model.graph) for i, entry in enumerate(entries)]
    used = {f"{i}.values" for i, r in enumerate(records) if getattr(r.edit, "values", None) is not None}
    for i, r in enumerate(records):
        for j, item in enumerate(r.items):
            if isinstance(item, _DirectItem):
                used.add(f"{i}.{j}.before")
            elif isinstance(item, _ExpandedItem):
                used.add(f"{i}.{j}.delta")
    unused = sorted(set(tensors) - used)
    if unused:
        raise EditLogMismatch(f"{where}: edit tensors not referenced by the edit log: {', '.join(unused[:5])}")
    _check_direct_history(where, model, records)
    for rec in records:
        for item in rec.items:
            if not isinstance(item, _DirectItem):
                item.handles = _paths.install(model, item, rec.edit)
        model.applied_edits.append(rec)


def _rebuild(where: str, i: int, entry: dict, extra: Mapping, donor: DonorLoader | None,
             model_graph: graph.Graph) -> _Record:
    """The record of logged edit `i`, checked against the graph and the given tensors."""

    def fail(why: str) -> EditLogMismatch:
        return EditLogMismatch(f"{where}: edit #{i} of the log does not match the model: {why}")

    try:
        kind = entry["type"]
        if kind == "WeightEdit":
            values = extra.get(f"{i}.values")
            # Logs written before edits said what they are have no route: their
            # expanded parts were a linear correction on the real path, and are
            # replayed (and described) as exactly that.
            edit = WeightEdit(
                entry["src"], entry["dst"], entry["op"], values=values, factor=entry.get("factor"),
                label=entry.get("label"), shown_src=entry.get("shown_src"), route=entry.get("route", "legacy"),
                network=model_graph,
            )
            edit.dst_spec = entry.get("dst_spec", edit.dst_spec)
        elif kind == "Reexpress":
            edit = Reexpress(entry["src_layer"], entry["dst"], network=model_graph)
            edit.dst_spec = entry.get("dst_spec", edit.dst_spec)
        elif kind == "Implant":
            from circuits.editing.implant import Implant

            edit = Implant.from_description(entry, donor)
            edit.dst_spec = entry.get("dst_spec", edit.dst_spec)
        else:
            raise fail(f"unknown edit type {kind!r}")
    except EditLogMismatch:
        raise
    except (KeyError, TypeError) as e:
        raise fail(f"missing or bad field {e}") from None
    except (ValueError, IndexError) as e:
        raise fail(str(e)) from None
    if entry.get("parts") != [p.to_json() for p in edit.parts]:
        raise fail("its parts (which tensors and channels it changes) differ from what the graph gives")
    for p in edit.parts:
        if p.network is not model_graph:
            raise fail(f"its units are units of {p.network.name}, but the model is an {model_graph.name}")
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
                raise fail(f"the saved original weights {pre}before are missing")
            shape = p.network.parameter_shapes()[p.param]
            want = (len(p.dst_idx), len(p.src_idx)) + shape[2:]
            if tuple(before.shape) != want:
                raise fail(f"saved original weights have shape {list(before.shape)}, expected {list(want)}")
            edit._kernel_shapes = [tuple(before.shape[-2:])]
            after = edit._transform(before, p)
            rec.items.append(_DirectItem(p, before, after))
        else:
            delta = extra.get(pre + "delta")
            if delta is None:
                raise fail(f"the saved expanded delta {pre}delta is missing")
            want = (len(p.dst_idx), len(p.src_idx))
            if tuple(delta.shape[:2]) != want or delta.dim() != 4:
                raise fail(f"saved expanded delta has shape {list(delta.shape)}, expected {list(want)} + [kh, kw]")
            _paths.check_delta_shape(p, delta)
            rec.items.append(_ExpandedItem(p, delta))
    reexpressed = entry.get("reexpressed", [])
    if not isinstance(reexpressed, list) or any(
        not isinstance(j, int) or not 0 <= j < len(edit.parts) or edit.parts[j].kind != "expanded" for j in reexpressed
    ):
        raise fail(f"'reexpressed' must list indices of expanded parts, got {reexpressed!r}")
    rec.reexpressed = list(reexpressed)
    rec.items.extend(_ReexpressItem(_reexpress_part(edit.parts[j])) for j in rec.reexpressed)
    return rec


def _check_direct_history(where: str, model: "InceptionV1", records: list[_Record]) -> None:
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
                    f"{where}: edit #{i} ({records[i].edit.summary()}) does not match the weights: "
                    f"{key} does not hold the values this edit writes (the log and the weights disagree)"
                )
            work[key][g] = item.before
