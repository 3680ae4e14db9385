"""Implants: units of one network replaced by the same units of another (a donor).

"Curve Circuits" replaced InceptionV1's mixed3b curve detectors by hand-built ones and
measured what the model still did. `Implant` does that for any units: on every run of
the target model, the donor network runs on the same input (only up to the tensors it
must provide), and the target's pre-activations of those units are replaced by the
donor's. Everything else in the target is untouched, and the ReLU, concatenation and
all downstream layers see the donor's values.

An implant is an `circuits.editing.edits.Edit`: applied in a `with` block or permanently,
listed in the edit log, undone exactly (its hooks are removed). The donor is a
model; the log records `donor_source`, a description of how to rebuild it (a weight
source name or file, e.g. "handbuilt"), so that the weights side
(`weights.edited.save_edited` / `load_edited`) can save the edit and rebuild the
donor on load. This module loads no weights itself.

Example:
    >>> import weights
    >>> from circuits.editing.implant import Implant
    >>> trained, donor = weights.model("random"), weights.model("handbuilt")   # a user would load "lucid"
    >>> with Implant("mixed3b:curves", donor=donor, donor_source="handbuilt").applied(trained):
    ...     trained.edits
    ['implant mixed3b:curves from handbuilt (exact: implant input->mixed3b_5x5_pre_relu)']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch

from circuits.core import graph
from circuits.editing.records import Edit, _Record
from circuits.editing.selection import EditError, _dst_conv, _Part, _short, _spec_str, _units

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

    def install(self, model: "InceptionV1", owner: object) -> list:
        """Add the item's hooks, owned by the implant `owner`; returns their handles."""
        handles = []
        if self.first:
            donor, store, convs = self.donor, self.store, self.convs

            def run_donor(x, hook):
                store.clear()
                store.update(donor.run_with_cache(x, convs, detach=not torch.is_grad_enabled()))
                return None

            run_donor.__qualname__ = f"implant_donor({', '.join(convs)})"
            # The donor reads the input the model computes on (after the user's hooks on it).
            handles.append(model.hook_points[graph.INPUT].add_owned(run_donor, owner, reads_output=True))
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
        handles.append(model.hook_points[conv].add_owned(splice, owner))
        return handles


class Implant(Edit):
    """Replace `units` of the model by the same units computed by `donor`.

    units: unit ids, family ids or a list (each must be the output of a convolution,
        e.g. ``mixed3b:curves``; its pre-activation is replaced, so the ReLU after it
        and everything downstream see the donor's value).
    donor: the model whose units are implanted: a model of the units' network
        (an InceptionV1 for InceptionV1 units, an InceptionV3 for InceptionV3 units).
    donor_source: how to rebuild the donor, recorded in the edit log (a weight
        source name such as "handbuilt", or a file path; default: the donor's
        `source` attribute, which `weights.model` sets). Without one the edit works
        but a saved log cannot rebuild it.

    >>> import weights
    >>> Implant("mixed3b:curves", donor=weights.model("random"), donor_source="random").summary()
    'implant mixed3b:curves from random'
    """

    def __init__(self, units, donor: "InceptionV1", donor_source: str | None = None):
        from circuits.core.model import Network

        self.dst_spec = _spec_str(units)
        if not isinstance(donor, Network):
            raise TypeError(
                f"donor must be an InceptionV1 model, got {type(donor).__name__} {donor!r:.60} "
                "(or a model of the implanted units' network, e.g. an InceptionV3 for its units); "
                "load one first, e.g. donor=weights.model('handbuilt')"
            )
        # The units are the donor's network's (a unit of another network raises, naming both).
        self.dst = _units(units, "implanted units", donor)
        if donor_source is None:
            donor_source = getattr(donor, "source", None)
        if donor_source is not None and not isinstance(donor_source, str):
            raise TypeError(f"donor_source must be a str (a weight source name or file), got {type(donor_source).__name__}")
        self.donor_source = donor_source
        self._donor = donor
        g = donor.graph
        by_conv: dict[str, _Part] = {}
        for r, u in enumerate(self.dst):
            conv = _dst_conv(u)
            p = by_conv.setdefault(conv, _Part("implant", conv, graph.INPUT, [], [], [], [], g))
            p.dst_rows.append(r)
            p.dst_idx.append(u.branch_channel)
        self.parts = sorted(by_conv.values(), key=lambda p: g.index(p.conv))

    @property
    def donor(self) -> "InceptionV1":
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
    def from_description(cls, entry: dict, donor: Callable[[str], "InceptionV1"] | None = None) -> "Implant":
        """The implant of a log entry; `donor(description)` rebuilds the donor model."""
        source = entry.get("donor")
        if not source:
            raise EditError("this implant's donor was a model in memory, not a weight source: it cannot be rebuilt")
        if donor is None:
            raise EditError(
                f"this implant needs its donor {source!r} rebuilt: replay the log with donor= a function "
                "from the description to a model (weights.edited.load_edited passes weights.model)"
            )
        return cls(entry["dst"], donor=donor(source), donor_source=source)
