"""Implants: units of one network replaced by the same units of another (a donor).

"Curve Circuits" replaced InceptionV1's mixed3b curve detectors by hand-built ones and
measured what the model still did. `Implant` does that for any units: on every run of
the target model, the donor network runs on the same input (only up to the tensors it
must provide), and the target's pre-activations of those units are replaced by the
donor's. Everything else in the target is untouched, and the ReLU, concatenation and
all downstream layers see the donor's values.

An implant is an `circuits.editing.edits.Edit`: applied in a `with` block or permanently,
listed in the edit log, undone exactly (its hooks are removed), saved with
`save_edited` when the donor is a weight source by name or path (the donor is
rebuilt from it on load).

Example:
    >>> import weights
    >>> from circuits.editing.implant import Implant
    >>> trained = weights.model("random")            # a user would load "lucid"
    >>> with Implant("mixed3b:curves", donor="handbuilt").applied(trained):  # doctest: +SKIP
    ...     probs = trained(x)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from circuits.core import graph
from circuits.editing.edits import Edit, EditError, _dst_conv, _Part, _Record, _short, _spec_str, _units

if TYPE_CHECKING:  # pragma: no cover
    from circuits.core.model import InceptionV1

__all__ = ["Implant"]


@dataclass(eq=False)
class _SpliceItem:
    part: _Part  # kind "implant": conv whose output channels dst_idx are replaced
    donor: "InceptionV1"
    store: dict  # the donor's tensors of the current run, shared by the item's hooks
    first: bool  # this item's input hook runs the donor for all parts
    convs: tuple[str, ...]
    handles: list = field(default_factory=list)

    def install(self, model: "InceptionV1") -> list:
        handles = []
        if self.first:
            donor, store, convs = self.donor, self.store, self.convs

            def run_donor(x, hook):
                store.clear()
                store.update(donor.run_with_cache(x, convs, detach=not torch.is_grad_enabled()))
                return None

            run_donor.__qualname__ = f"implant_donor({', '.join(convs)})"
            handles.append(model.add_hook(graph.INPUT, run_donor))
        idx = torch.tensor(self.part.dst_idx)
        conv, store = self.part.conv, self.store

        def splice(x, hook):
            src = store.get(conv)
            if src is None or src.shape != x.shape:
                raise RuntimeError(f"implant on {conv}: the donor did not run on this input")  # pragma: no cover
            x = x.clone()
            x[:, idx] = src[:, idx].to(x.dtype)
            return x

        splice.__qualname__ = f"implant({conv}: {len(self.part.dst_idx)} channels)"
        handles.append(model.add_hook(conv, splice))
        return handles


class Implant(Edit):
    """Replace `units` of the model by the same units computed by `donor`.

    units: unit ids, family ids or a list (each must be the output of a convolution,
        e.g. ``mixed3b:curves``; its pre-activation is replaced, so the ReLU after it
        and everything downstream see the donor's value).
    donor: a weight source (registered name such as "handbuilt", or a file path),
        or an InceptionV1. Only a source by name or path can be saved in an edit log.

    >>> Implant("mixed3b:curves", donor="handbuilt").summary()
    'implant mixed3b:curves from handbuilt'
    """

    def __init__(self, units, donor="handbuilt"):
        from circuits.core.model import InceptionV1

        self.dst_spec = _spec_str(units)
        self.dst = _units(units, "implanted units")
        if isinstance(donor, InceptionV1):
            self.donor_source = getattr(donor, "source", None)
            self._donor = donor
        elif isinstance(donor, (str, os.PathLike)):
            self.donor_source = os.fspath(donor)
            self._donor = None
        else:
            raise TypeError(f"donor must be a weight source name, a file path or an InceptionV1, got {type(donor).__name__}")
        by_conv: dict[str, _Part] = {}
        for r, u in enumerate(self.dst):
            conv = _dst_conv(u)
            p = by_conv.setdefault(conv, _Part("implant", conv, graph.INPUT, [], [], [], []))
            p.dst_rows.append(r)
            p.dst_idx.append(u.branch_channel)
        self.parts = sorted(by_conv.values(), key=lambda p: graph.index(p.conv))

    @property
    def donor(self) -> "InceptionV1":
        if self._donor is None:
            import weights

            self._donor = weights.model(self.donor_source)
        return self._donor

    def summary(self) -> str:
        return f"implant {_short(self.dst_spec)} from {self.donor_source or 'a donor model'}"

    def describe(self) -> dict:
        return {
            "type": "Implant",
            "dst_spec": self.dst_spec,
            "dst": [u.id for u in self.dst],
            "donor": self.donor_source,
            "parts": [p.to_json() for p in self.parts],
        }

    def __repr__(self) -> str:
        return f"<Implant {self.summary()}>"

    def _prepare(self, model: "InceptionV1") -> _Record:
        donor = self.donor
        if donor is model:
            raise EditError("an implant's donor must be another model (implanting a model into itself changes nothing)")
        return self._record()

    def _record(self) -> _Record:
        rec = _Record(self)
        store: dict = {}
        convs = tuple(p.conv for p in self.parts)
        for i, p in enumerate(self.parts):
            rec.items.append(_SpliceItem(p, self.donor, store, i == 0, convs))
        return rec

    @classmethod
    def from_description(cls, entry: dict) -> "Implant":
        if not entry.get("donor"):
            raise EditError("this implant's donor was a model in memory, not a weight source: it cannot be rebuilt")
        return cls(entry["dst"], donor=entry["donor"])
