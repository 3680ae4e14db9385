"""Curve families side by side: hand-built, trained (any network) and published.

`circuits.tuning.compare` compares units one to one with the published unit of the
same id. Families of different networks have no such correspondence (InceptionV3's
curves are other channels of another layer), so they are compared as families: each
unit's behaviour is measured with the same sweep as `circuits.tuning.discover`
(curves of every orientation x curvature in both polarities, lines, sharp and rounded
angles), plus the colour pair of `stimulus_checks`, and every criterion is summarised
per family (median and range).

Published numbers are what "Curve Detectors" released for InceptionV1 (the radial
curves in ``../shared/reference``): their width and echo are computed from those
curves with the same `fwhm` / `echo_ratio` as the measured ones; the criteria the
articles show only as figures (angles, lines, polarity, colour) are "not published"
(NaN), never guessed.

`orientation_weights` bins the expanded weights from a family of the layer below
(early curves) into a curve family by the difference of their preferred orientations:
"Curve Circuits" finds excitation for similar orientations and inhibition for the
opposite one.

Example:
    >>> import weights
    >>> p = measure_family(weights.model("handbuilt"), "mixed3b:curves", label="hand-built",
    ...                    n_orientations=36, progress=False)          # doctest: +SKIP
    >>> round(float(np.median(p.values["echo"])), 2)                     # doctest: +SKIP
    0.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from circuits.families import units_of
from circuits.tuning.criteria import DEFAULT_CURVATURES, Criteria
from circuits.tuning.metrics import echo_ratio, fwhm, preferred_orientation

__all__ = ["METRICS", "FamilyProfile", "measure_family", "published_family", "FamilyComparison",
           "compare_families", "orientation_weights"]

#: metric -> (column title, what it is); every value is per unit
METRICS: dict[str, tuple[str, str]] = {
    "fwhm_deg": ("FWHM", "full width at half maximum of the radial tuning curve, degrees"),
    "echo": ("echo", "largest response within ±45° of the opposite orientation / peak"),
    "curvature_tolerance": ("curv tol", "mean / max response over curvatures at the preferred orientation"),
    "polarity": ("polarity", "white-on-black / black-on-white peak (the smaller over the larger)"),
    "colour": ("colour", "colour-pair curve / black-on-white curve at the preferred orientation"),
    "rounded_angle_ratio": ("rounded", "best rounded 90° angle / curve peak"),
    "sharp_angle_ratio": ("sharp", "best sharp 90° angle / curve peak"),
    "line_ratio": ("line", "best straight line / curve peak"),
}


@dataclass
class FamilyProfile:
    """One family's measured (or published) behaviour, unit by unit.

    values: metric (`METRICS`) -> [U] per-unit values (NaN where not measured/published);
    radial: [U, A] post-ReLU radial tuning curves at `angles`.
    """

    label: str
    network: str
    layer: str
    units: list[str]
    angles: np.ndarray
    radial: np.ndarray
    pref_deg: np.ndarray
    values: dict[str, np.ndarray]
    source: str = "measured"
    notes: list[str] = field(default_factory=list)

    def summary(self, metric: str) -> tuple[float, float, float]:
        """(median, min, max) of a metric over the units where it is known (NaNs if none)."""
        v = self.values[metric]
        v = v[np.isfinite(v)]
        if not v.size:
            return math.nan, math.nan, math.nan
        return float(np.median(v)), float(v.min()), float(v.max())

    @property
    def ordered_fraction(self) -> float:
        """Share of units with curves > rounded angles > sharp angles > lines (NaN if not measured)."""
        r, s, ln = (self.values[k] for k in ("rounded_angle_ratio", "sharp_angle_ratio", "line_ratio"))
        ok = np.isfinite(r) & np.isfinite(s) & np.isfinite(ln)
        if not ok.any():
            return math.nan
        return float(np.mean((1.0 > r[ok]) & (r[ok] > s[ok]) & (s[ok] > ln[ok])))

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label, "network": self.network, "layer": self.layer, "source": self.source,
            "units": self.units, "pref_deg": self.pref_deg.tolist(),
            "values": {k: v.tolist() for k, v in self.values.items()},
            "summary": {k: dict(zip(("median", "min", "max"), self.summary(k))) for k in self.values},
            "ordered_fraction": self.ordered_fraction, "notes": self.notes,
            "angles_deg": self.angles.tolist(), "radial": self.radial.tolist(),
        }


def measure_family(
    model,
    units,
    *,
    label: str,
    n_orientations: int = 72,
    curvatures: Sequence[float] = DEFAULT_CURVATURES,
    colour: bool = True,
    progress: bool = True,
) -> FamilyProfile:
    """Measure every criterion of `METRICS` for a family (units of one layer) of `model`.

    The sweep is `discover`'s, restricted to these channels; `colour` adds the colour
    pair of `stimulus_checks` at each unit's preferred orientation.

    >>> import weights
    >>> p = measure_family(weights.model("handbuilt"), "mixed3b:379,mixed3b:406", label="hb",
    ...                    n_orientations=36, colour=False, progress=False)
    >>> p.units, bool(p.values["echo"].max() < 0.05)
    (['mixed3b:379', 'mixed3b:406'], True)
    """
    from circuits.tuning.compare import stimulus_checks
    from circuits.tuning.discover import discover

    us = units_of(units.split(",") if isinstance(units, str) and "," in units else units, model)
    layers = sorted({u.layer for u in us})
    if len(layers) != 1:
        raise ValueError(f"a family holds units of one layer; got units of {', '.join(layers)}")
    d = discover(model, layers[0], channels=[u.channel for u in us], n_orientations=n_orientations,
                 curvatures=curvatures, criteria=Criteria(), register=False, progress=progress)
    by_id = {s.unit: s for s in d.scores}
    ids = [u.id for u in us]
    scores = [by_id[i] for i in ids]
    values = {k: np.array([getattr(s, k) for s in scores], dtype=float) for k in METRICS if k != "colour"}
    pref = np.array([s.pref_deg for s in scores], dtype=float)
    if colour:
        values["colour"] = stimulus_checks(model, us, pref, curvatures=curvatures).variants["colour pair"]
    else:
        values["colour"] = np.full(len(us), math.nan)
    values = {k: values[k] for k in METRICS}
    radial = np.stack([d.curves[i] for i in ids])
    return FamilyProfile(label, model.graph.name, layers[0], ids, np.asarray(d.angles_deg, dtype=float), radial, pref,
                         values, source=f"measured ({getattr(model, 'source', None) or 'given weights'})")


def published_family(layer: str = "mixed3b", label: str = "published InceptionV1") -> FamilyProfile:
    """The published curve family of `layer` ("mixed3b" or "mixed3a") from ../shared/reference.

    Width and echo are computed from the published radial curves; the other criteria
    were not published as numbers and are NaN. Raises FileNotFoundError where the
    reference folder is absent.
    """
    from circuits.tuning import reference

    if not reference.available():
        raise FileNotFoundError(f"published curves not found ({reference.reference_dir()})")
    curves = reference.published_curves(layer)
    if not curves:
        raise ValueError(f"no published curves for layer {layer!r}; published: mixed3a, mixed3b")
    ids = list(curves)
    radial = np.stack([np.asarray(curves[i], dtype=float) for i in ids])
    values = {k: np.full(len(ids), math.nan) for k in METRICS}
    values["fwhm_deg"] = np.array([fwhm(c) for c in radial])
    values["echo"] = np.array([echo_ratio(c) for c in radial])
    pref = np.array([preferred_orientation(c) for c in radial])
    return FamilyProfile(label, "InceptionV1", layer, ids, np.asarray(reference.published_angles(), dtype=float),
                         radial, pref, values, source="published (Curve Detectors)",
                         notes=["angles, lines, polarity, colour and curvature tolerance: not published as numbers"])


@dataclass
class FamilyComparison:
    """Several `FamilyProfile`s, with the table and JSON of their summaries."""

    profiles: list[FamilyProfile]
    weights: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        head = f"{'criterion':12} " + " ".join(f"{p.label[:26]:>26}" for p in self.profiles)
        lines = [head, "-" * len(head)]
        lines.append(f"{'network':12} " + " ".join(f"{p.network + ' ' + p.layer:>26}" for p in self.profiles))
        lines.append(f"{'units':12} " + " ".join(f"{len(p.units):>26d}" for p in self.profiles))
        for k, (title, _) in METRICS.items():
            cells = []
            for p in self.profiles:
                med, lo, hi = p.summary(k)
                cells.append(f"{'not published' if not math.isfinite(med) else f'{med:.3g} [{lo:.3g}, {hi:.3g}]':>26}")
            lines.append(f"{title:12} " + " ".join(cells))
        cells = []
        for p in self.profiles:
            f = p.ordered_fraction
            cells.append(f"{'not published' if not math.isfinite(f) else f'{f:.0%} of units':>26}")
        lines.append(f"{'c>r>s>l':12} " + " ".join(cells))
        lines.append("(median [min, max] over the family's units; c>r>s>l: curves > rounded > sharp angles > lines)")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"metrics": {k: v[1] for k, v in METRICS.items()},
                "families": [p.to_json() for p in self.profiles], "weights": self.weights}


def compare_families(profiles: Sequence[FamilyProfile]) -> FamilyComparison:
    """A table of several families' criteria (see `FamilyComparison.table`)."""
    profiles = list(profiles)
    if not profiles:
        raise ValueError("compare_families needs at least one family")
    return FamilyComparison(profiles)


def orientation_weights(
    model,
    early: FamilyProfile,
    curves: FamilyProfile,
    *,
    bin_width: float = 45.0,
) -> dict[str, Any]:
    """Expanded weights from an early family into a curve family, by orientation difference.

    Each (early unit, curve unit) pair's weight is the sum of its expanded-weight
    kernel (`circuits.analysis.expanded.weights_between`), binned by the difference of
    the units' preferred orientations (curve - early, in [-180, 180)); units without a
    preferred orientation (silent to curves) are left out.

    Returns {"centres_deg", "mean", "counts", "normalised"} ("normalised": mean / max |mean|).
    """
    from circuits.analysis.expanded import weight_by_orientation_difference, weights_between

    ok_e = np.isfinite(early.pref_deg)
    ok_c = np.isfinite(curves.pref_deg)
    if not ok_e.any() or not ok_c.any():
        raise ValueError("orientation_weights needs units with a preferred orientation in both families")
    src = [u for u, k in zip(early.units, ok_e) if k]
    dst = [u for u, k in zip(curves.units, ok_c) if k]
    w = weights_between(model, units_of(src, model), units_of(dst, model))
    prof = weight_by_orientation_difference(w, early.pref_deg[ok_e], curves.pref_deg[ok_c], period=360.0,
                                            bin_width=bin_width)
    mean = prof.mean.numpy()
    scale = np.nanmax(np.abs(mean)) if np.isfinite(mean).any() else math.nan
    return {
        "early": f"{early.layer} ({len(src)} units)", "curves": f"{curves.layer} ({len(dst)} units)",
        "network": curves.network, "label": curves.label,
        "centres_deg": prof.centres.numpy().tolist(), "mean": mean.tolist(), "counts": prof.counts.numpy().tolist(),
        "normalised": (mean / scale).tolist() if scale and math.isfinite(scale) else mean.tolist(),
    }

