"""The synthetic heat maps of "Curve Detectors", in standard deviations of the dataset.

The article draws every synthetic map in standard deviations from the unit's mean
activation over the dataset ("up to 24 standard deviations above the average dataset
activation"). A `Baseline` holds, per unit, the mean and standard deviation of its
pre-ReLU activation over receptive-field crops of real images: the JSON `circuits
dataset --json` writes (`mean_pre_relu`, `std_pre_relu`, `n_crops`; exact, from the
scan's mergeable fixed-point sums). Maps are measured pre-ReLU, the same quantity, and
expressed as (response - mean) / std.

The maps (`KINDS`), each rows x columns of stimulus parameters, orientation always
across (the article's convention: clockwise on screen, 0 = ``)``, 90 = ``∪``):

* ``curves``: orientation x curvature (fraction of a half circle);
* ``angles``: orientation x radius (each arm's length from the vertex, px), opening 90°;
* ``series``: the same angles made rounder step by step to curves: the corner rounded
  with a radius of f * arm * tan(opening / 2) for f = 0, 0.25, ..., 1 (f = 1: one arc);
* ``fill``: the curves map with each arc filled to its chord;
* ``colour``: the curves map in colour pairs (red on green, blue on yellow, white on black).

Sizes follow the layer's receptive field (`default_curve_params`): arcs half the field
long, radii from a tenth to half of it.

Example:
    >>> b = Baseline({"mixed3b:379": -60.0}, {"mixed3b:379": 110.0})
    >>> b.scale(["mixed3b:379"], np.array([[50.0, 160.0]])).tolist()
    [[1.0, 2.0]]
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from circuits.core.files import read_text

__all__ = ["Baseline", "HeatMaps", "heatmaps", "KINDS", "ROUNDNESS", "COLOUR_PAIRS"]

KINDS = ("curves", "angles", "series", "fill", "colour")
ROUNDNESS = (0.0, 0.25, 0.5, 0.75, 1.0)
COLOUR_PAIRS = (("red", "green"), ("blue", "yellow"), ("white", "black"))
SCAN_FORMAT = "circuits-dataset-scan/1"  # what `circuits dataset --json` writes (circuits.dataset.scan.FORMAT)


@dataclass(frozen=True)
class Baseline:
    """Per unit id, the mean and standard deviation of the pre-ReLU activation over a dataset.

    n: crops per unit (informative); network: the scanned network's name, if known;
    source: where the numbers come from (for the record).
    """

    mean: Mapping[str, float]
    std: Mapping[str, float]
    n: Mapping[str, int] = field(default_factory=dict)
    network: str | None = None
    source: str = ""

    def __post_init__(self):
        for u in self.mean:
            s = self.std.get(u)
            if s is None or not (math.isfinite(s) and s > 0) or not math.isfinite(self.mean[u]):
                raise ValueError(f"the baseline of {u} has mean {self.mean[u]!r} and std {s!r}: "
                                 "a finite mean and a positive std are needed to express values in std units")

    @classmethod
    def from_scan(cls, scan: Mapping | str | os.PathLike) -> "Baseline":
        """From the JSON of `circuits dataset --json` (a dict, or its path).

        >>> Baseline.from_scan({"format": "circuits-dataset-scan/1", "network": "InceptionV1", "units": {
        ...     "mixed3b:379": {"mean_pre_relu": -61.5, "std_pre_relu": 113.4, "n_crops": 7293}}}).std
        {'mixed3b:379': 113.4}
        """
        where = "the scan"
        if not isinstance(scan, Mapping):
            where = str(scan)
            p = Path(scan)
            if not p.is_file():
                raise FileNotFoundError(f"no scan file {p} (write one with `circuits dataset UNITS --images ... --json F`)")
            try:
                scan = json.loads(read_text(p, "baseline scan"))
            except json.JSONDecodeError as e:
                raise ValueError(f"{p} is not JSON ({e})") from None
        if scan.get("format") != SCAN_FORMAT or not isinstance(scan.get("units"), Mapping):
            raise ValueError(f"{where} is not the JSON of `circuits dataset --json` (format {scan.get('format')!r}, "
                             f"expected {SCAN_FORMAT!r})")
        mean, std, n = {}, {}, {}
        for uid, rec in scan["units"].items():
            if "std_pre_relu" not in rec:
                raise ValueError(f"{where} has no std_pre_relu for {uid} (written by an older version): "
                                 "rerun `circuits dataset` to get it")
            mean[uid], std[uid], n[uid] = float(rec["mean_pre_relu"]), float(rec["std_pre_relu"]), int(rec["n_crops"])
        return cls(mean, std, n, scan.get("network"), where)

    @classmethod
    def from_samples(cls, samples: Mapping[str, Sequence[float]], network: str | None = None) -> "Baseline":
        """From activation samples per unit (population mean and std, as a scan computes them)."""
        mean = {u: float(np.mean(v)) for u, v in samples.items()}
        std = {u: float(np.std(v)) for u, v in samples.items()}
        return cls(mean, std, {u: len(v) for u, v in samples.items()}, network, "samples")

    def check(self, units: Sequence[str], network: str | None = None) -> None:
        """Raise unless every unit has a baseline, of the same network."""
        if network and self.network and network != self.network:
            raise ValueError(f"the baseline is a scan of {self.network}, the units are of {network}")
        missing = [u for u in units if u not in self.mean]
        if missing:
            raise ValueError(f"the baseline ({self.source or 'given'}) has no statistics for {', '.join(missing)}; "
                             f"it has {', '.join(self.mean) or 'none'}")

    def scale(self, units: Sequence[str], values: np.ndarray) -> np.ndarray:
        """(values - mean) / std, row i of `values` (shape [U, ...]) being unit i."""
        self.check(units)
        v = np.asarray(values, dtype=np.float64)
        if v.shape[0] != len(units):
            raise ValueError(f"{v.shape[0]} rows of values for {len(units)} units")
        m = np.array([self.mean[u] for u in units]).reshape(-1, *([1] * (v.ndim - 1)))
        s = np.array([self.std[u] for u in units]).reshape(-1, *([1] * (v.ndim - 1)))
        return (v - m) / s

    def to_json(self) -> dict:
        return {"mean_pre_relu": dict(self.mean), "std_pre_relu": dict(self.std), "n_crops": dict(self.n),
                "network": self.network, "source": self.source}


@dataclass
class HeatMaps:
    """Named maps (`circuits.tuning.measure.ResponseMap`, scale "std" when a baseline was given)."""

    units: list[str]
    maps: dict[str, object]
    baseline: Baseline | None = None
    stimuli: dict[str, dict] = field(default_factory=dict)  # map name -> the fixed stimulus parameters

    @property
    def scale(self) -> str:
        return "std" if self.baseline is not None else "activation"

    def largest(self, unit: str | None = None) -> dict[str, float]:
        """The largest value of each map (of one unit, or over all units)."""
        out = {}
        for name, m in self.maps.items():
            v = m.values if unit is None else m.of(unit)
            out[name] = float(np.max(v))
        return out

    def up_to(self, unit: str) -> tuple[float, str]:
        """(largest value over every map, the map it is in): the article's "up to N standard deviations"."""
        best = self.largest(unit)
        name = max(best, key=best.get)
        return best[name], name

    def to_json(self) -> dict:
        maps = {}
        for name, m in self.maps.items():
            maps[name] = {"kind": m.kind, "row_name": m.row_name, "rows": [float(r) for r in m.rows],
                          "col_name": m.col_name, "cols": [float(c) for c in m.cols], "scale": m.scale,
                          "pre_relu": m.pre_relu, "stimulus": self.stimuli.get(name, {}),
                          "values": {u: np.round(m.of(u), 4).tolist() for u in self.units}}
        return {"units": list(self.units), "scale": self.scale,
                "baseline": self.baseline.to_json() if self.baseline is not None else None,
                "up_to": {u: dict(zip(("value", "map"), self.up_to(u))) for u in self.units},
                "largest": {u: self.largest(u) for u in self.units}, "maps": maps}


def _kinds(kinds) -> list[str]:
    ks = list(KINDS) if kinds is None else [kinds] if isinstance(kinds, str) else list(kinds)
    bad = [k for k in ks if k not in KINDS]
    if bad or not ks:
        raise ValueError(f"unknown heat map kind(s) {bad or ks}: use any of {', '.join(KINDS)}")
    return ks


def heatmaps(
    model,
    units,
    *,
    baseline: Baseline | None = None,
    kinds: Sequence[str] | str | None = None,
    orientations: Sequence[float] | None = None,
    curvatures: Sequence[float] = tuple(np.linspace(0.0, 1.0, 11)),
    radii: Sequence[float] | None = None,
    opening: float = 90.0,
    roundness: Sequence[float] = ROUNDNESS,
    colours: Sequence[tuple[str, str]] = COLOUR_PAIRS,
    batch_size: int | None = None,
    progress: bool = True,
) -> HeatMaps:
    """The article's synthetic heat maps of `units` (one layer), pre-ReLU, in baseline std units.

    baseline: the dataset statistics (`Baseline.from_scan`); None: raw pre-ReLU values.
    kinds: which maps (`KINDS`, default all). orientations: degrees (default every 5).
    curvatures: rows of the curve maps. radii: rows of the angle maps, px (default a
    tenth to half of the receptive field, 9 steps). opening: the angles' opening.
    roundness: the series' steps (0 sharp, 1 one arc). colours: (fg, bg) pairs.

    >>> import weights
    >>> hm = heatmaps(weights.model("handbuilt"), "mixed3b:379", kinds="angles",
    ...               orientations=range(0, 360, 90), radii=[20, 40], progress=False)
    >>> hm.maps["angles"].values.shape
    (1, 2, 4)
    """
    from circuits.families import units_of
    from circuits.tuning.measure import ResponseMap, default_curve_params, responses
    from circuits.tuning.stimuli import Stimuli

    ks = _kinds(kinds)
    us = units_of(units, model)
    if len({u.layer for u in us}) != 1:
        raise ValueError(f"heat maps read units of one layer, got {sorted({u.layer for u in us})}")
    ids = [u.id for u in us]
    if baseline is not None:
        baseline.check(ids, model.graph.name)
    orient = np.asarray(list(range(0, 360, 5)) if orientations is None else orientations, dtype=float).reshape(-1)
    curv = np.asarray(curvatures, dtype=float).reshape(-1)
    if curv.size == 0 or curv.min() < 0 or curv.max() > 1:
        raise ValueError(f"curvatures are fractions of a half circle in [0, 1], got {curv.tolist()}")
    layer = us[0].layer
    base = default_curve_params(layer, model)
    rf = model.graph.receptive_field(layer).size
    rad = np.asarray(np.linspace(0.1, 0.5, 9) * rf if radii is None else radii, dtype=float).reshape(-1)
    if rad.size == 0 or not (rad > 0).all():
        raise ValueError(f"radii (arm lengths) must be positive pixels, got {rad.tolist()}")
    if not 0 < opening < 180:
        raise ValueError(f"opening must be in (0, 180) degrees, got {opening}")
    rnd = np.asarray(roundness, dtype=float).reshape(-1)
    if rnd.size == 0 or rnd.min() < 0 or rnd.max() > 1:
        raise ValueError(f"roundness steps are fractions in [0, 1] (0 sharp, 1 one arc), got {rnd.tolist()}")
    stroke = {"width": base["width"], "fg": base["fg"], "bg": base["bg"]}

    # (name, stimulus kind, row name, rows, extra per-row params, fixed params)
    plan = []
    if "curves" in ks:
        plan.append(("curves", "curve", "curvature", curv, None, dict(base)))
    if "angles" in ks:
        plan.append(("angles", "angle", "radius", rad, None, {**stroke, "opening": opening}))
    if "series" in ks:
        for f in rnd:
            corner = lambda arm, f=f: f * arm * math.tan(math.radians(opening) / 2)  # noqa: E731
            plan.append((f"series_{f:g}", "rounded-angle", "radius", rad, corner, {**stroke, "opening": opening}))
    if "fill" in ks:
        plan.append(("fill", "curve", "curvature", curv, None, {**base, "filled": True}))
    if "colour" in ks:
        for fg, bg in colours:
            plan.append((f"colour_{fg}_on_{bg}", "curve", "curvature", curv, None, {**base, "fg": fg, "bg": bg}))

    from tqdm.auto import tqdm

    maps, stimuli = {}, {}
    for name, kind, row_name, rows, corner, fixed in tqdm(plan, desc="heat maps", unit="map", disable=not progress):
        rr, oo = np.meshgrid(rows, orient, indexing="ij")
        param = "curvature" if row_name == "curvature" else "arm_length"
        batched = {"orientation": oo.ravel(), param: rr.ravel()}
        if corner is not None:
            # Exact at f = 1 is the largest radius the arms allow; stay a hair below it.
            batched["corner_radius"] = np.minimum(corner(rr.ravel()), rr.ravel() * math.tan(math.radians(opening) / 2)
                                                  * (1 - 1e-9))
        stim = Stimuli(kind, batched, fixed)
        r = responses(model, us, stim, pre_relu=True, batch_size=batch_size)
        values = r.double().numpy().T.reshape(len(us), len(rows), len(orient))
        scale = "activation"
        if baseline is not None:
            values = baseline.scale(ids, values)
            scale = "std"
        maps[name] = ResponseMap(ids, kind, row_name, rows, "orientation", orient, values, True, scale)
        stimuli[name] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in fixed.items()}
        if corner is not None:
            stimuli[name]["roundness"] = float(name.split("_")[1])
    return HeatMaps(ids, maps, baseline, stimuli)
