"""Finding curve detectors by their behaviour: sweep every channel of a layer, score, group.

"Curve Detectors" defines curve neurons by what they do, not by where they are: a
response to curves over one contiguous range of orientations, tolerance of the
curve's radius, invariance to contrast polarity, curves > rounded angles > sharp
angles > lines, and (in mixed3b) no echo at the opposite orientation. `discover`
measures each of these for every channel of a layer with one batched sweep at the
centre position (the same readout as `circuits.tuning.measure.radial_tuning`):

* curves: every orientation x curvature, black on white (the radial tuning curve is
  their post-ReLU response averaged over curvature, as the article's);
* the same curves white on black (polarity);
* controls of the same length and stroke: straight lines, sharp 90-degree angles,
  the same angles rounded (corner radius a quarter of the arm, as
  `circuits.tuning.compare.stimulus_checks`), and straight edges, each over all
  orientations (a control's response is its best orientation's, so a unit cannot
  pass by merely preferring a control at another orientation).

A unit is accepted when every criterion in `Criteria` holds; the table says which
failed. Accepted units form the family, ordered by preferred orientation, with the
orientation coverage (union of the half-maximum ranges) and its gaps.

Example:
    >>> import weights
    >>> d = discover(weights.model("random"), "conv2d2", n_orientations=8,
    ...              curvatures=[0.5, 1.0], register=False, progress=False)
    >>> len(d.scores), d.n_stimuli
    (192, 64)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from circuits.core import graph
from circuits.tuning.measure import default_curve_params, input_size_for, responses
from circuits.tuning.metrics import angles_for, echo_ratio, fwhm
from circuits.tuning.stimuli import Stimuli, curve_sweep

__all__ = [
    "Criteria",
    "UnitScore",
    "Discovery",
    "discover",
    "DEFAULT_CURVATURES",
    "DEFAULT_ORIENTATIONS",
    "FAMILY_ALIAS",
    "coverage",
    "sweep_stimuli",
    "feature_visualizations",
]

from circuits.tuning.criteria import ANGLE_OPENING, DEFAULT_CURVATURES, DEFAULT_ORIENTATIONS, FAMILY_ALIAS, Criteria

@dataclass
class UnitScore:
    """One unit's measured criteria (ratios are to the curve peak; NaN when it never responds)."""

    unit: str
    peak: float
    pref_deg: float
    fwhm_deg: float
    n_lobes: int
    contiguous: bool
    line_ratio: float
    sharp_angle_ratio: float
    rounded_angle_ratio: float
    edge_ratio: float
    curvature_tolerance: float
    echo: float
    polarity: float
    ordered: bool  # curves > rounded angles > sharp angles > lines
    accepted: bool = False
    reasons: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """Why it is in (every criterion met) or out (the failed ones)."""
        return "curve detector: every criterion met" if self.accepted else "; ".join(self.reasons)

    @property
    def n_failed(self) -> int:
        return len(self.reasons)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reason"] = self.reason
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _lobes(curve: np.ndarray) -> int:
    """Number of circular runs of samples at or above half the peak."""
    above = curve >= curve.max() / 2
    if above.all():
        return 1
    # Runs start where a sample is above and its predecessor (circularly) is not.
    return int(np.sum(above & ~np.roll(above, 1)))


def coverage(pref_deg: Sequence[float], fwhm_deg: Sequence[float]) -> tuple[float, list[tuple[float, float]]]:
    """Degrees of the circle inside some unit's half-maximum range, and the uncovered gaps.

    Each unit covers [pref - fwhm/2, pref + fwhm/2]; gaps are (start, end) in degrees,
    clockwise, start in [0, 360).

    >>> coverage([0, 90], [60, 60])
    (120.0, [(30.0, 60.0), (120.0, 330.0)])
    >>> coverage([0, 120, 240], [130, 130, 130])[0]
    360.0
    """
    spans: list[tuple[float, float]] = []
    for p, w in zip(pref_deg, fwhm_deg):
        if not (math.isfinite(p) and math.isfinite(w)) or w <= 0:
            continue
        if w >= 360.0:
            return 360.0, []
        a = (p - w / 2) % 360.0
        b = a + w
        # An arc that wraps past 360 is two intervals on [0, 360).
        spans += [(a, 360.0), (0.0, b - 360.0)] if b > 360.0 else [(a, b)]
    merged: list[list[float]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1] + 1e-9:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    total = float(sum(b - a for a, b in merged))
    if not merged:
        return 0.0, [(0.0, 360.0)]
    gaps = [(merged[i][1], merged[i + 1][0]) for i in range(len(merged) - 1)]
    # The gap across 0/360: from the last interval's end round to the first one's start.
    first, last = merged[0][0], merged[-1][1]
    if last < 360.0 - 1e-9 or first > 1e-9:
        gaps.append((last % 360.0, first if first > 1e-9 else 360.0))
    return round(total, 6), sorted((round(a, 6), round(b, 6)) for a, b in gaps)


@dataclass
class Discovery:
    """The result of `discover`: every unit's scores, the family and its coverage.

    scores: one `UnitScore` per channel, ranked (accepted first, then by fewest failed
    criteria, then by curve peak). family: accepted unit ids ordered by preferred
    orientation. angles_deg / curves: radial tuning curves [U, A] of every unit in
    channel order (post-ReLU, mean over curvature).
    """

    layer: str
    criteria: Criteria
    angles_deg: np.ndarray
    curvatures: np.ndarray
    curves: dict[str, np.ndarray]
    scores: list[UnitScore]
    stimulus: dict[str, Any]
    n_stimuli: int
    weights: str | None = None
    #: the network measured (its units and families are that network's)
    network: graph.Graph | None = field(default=None, compare=False, repr=False)

    @property
    def family(self) -> list[str]:
        acc = [s for s in self.scores if s.accepted]
        return [s.unit for s in sorted(acc, key=lambda s: (s.pref_deg, s.unit))]

    def score(self, unit: str) -> UnitScore:
        for s in self.scores:
            if s.unit == unit:
                return s
        raise KeyError(f"{unit} was not measured (layer {self.layer}, units {self.layer}:0..{len(self.scores) - 1})")

    def coverage(self) -> tuple[float, list[tuple[float, float]]]:
        """Degrees covered by the family's half-maximum ranges, and the gaps (see `coverage`)."""
        acc = [self.score(u) for u in self.family]
        return coverage([s.pref_deg for s in acc], [s.fwhm_deg for s in acc])

    def register(self, model, alias: str = FAMILY_ALIAS):
        """Register the family on `model` as ``layer:<alias>`` (replacing an earlier one); None if it is empty."""
        from circuits.families import register_family

        if not self.family:
            return None
        return register_family(model, self.layer, alias.replace("_", " "), self.family, aliases=[alias], replace=True)

    def table(self, limit: int | None = None) -> str:
        """The ranked table: each criterion's value and the reason the unit is in or out."""
        head = (f"{'rank':>4} {'unit':14} {'in':2} {'peak':>8} {'pref':>6} {'fwhm':>6} {'line':>5} {'sharp':>5} "
                f"{'round':>5} {'edge':>5} {'curv':>5} {'echo':>5} {'polar':>5}  reason")
        lines = [head, "-" * len(head)]
        for i, s in enumerate(self.scores[:limit] if limit else self.scores, 1):
            def f(v, fmt):
                return "nan" if not math.isfinite(v) else format(v, fmt)
            lines.append(
                f"{i:4d} {s.unit:14} {'*' if s.accepted else ' ':2} {f(s.peak, '8.3g')} {f(s.pref_deg, '6.1f')} "
                f"{f(s.fwhm_deg, '6.1f')} {f(s.line_ratio, '5.2f')} {f(s.sharp_angle_ratio, '5.2f')} "
                f"{f(s.rounded_angle_ratio, '5.2f')} {f(s.edge_ratio, '5.2f')} {f(s.curvature_tolerance, '5.2f')} "
                f"{f(s.echo, '5.2f')} {f(s.polarity, '5.2f')}  {s.reason}"
            )
        return "\n".join(lines)

    def summary(self) -> str:
        cov, gaps = self.coverage()
        fam = self.family
        lines = [f"{self.layer}: {len(fam)} of {len(self.scores)} units pass every criterion "
                 f"({self.n_stimuli} stimuli per unit)"]
        if fam:
            prefs = ", ".join(f"{u.split(':')[1]} ({self.score(u).pref_deg:g})" for u in fam)
            lines.append(f"family {self.layer}:{FAMILY_ALIAS} by preferred orientation (deg): {prefs}")
            gap_text = ", ".join(f"{a:g}-{b:g}" for a, b in gaps) or "none"
            lines.append(f"orientation coverage {cov:g} deg of 360; gaps: {gap_text}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A family record (see `circuits.families.files`) plus every unit's scores and curves."""
        cov, gaps = self.coverage()
        return {
            "layer": self.layer,
            **({"network": self.network.name} if self.network is not None else {}),
            "name": FAMILY_ALIAS.replace("_", " "),
            "aliases": [FAMILY_ALIAS],
            "family": self.family,
            "coverage_deg": cov,
            "gaps_deg": [list(g) for g in gaps],
            "units": {s.unit: s.as_dict() for s in self.scores},
            "ranked": [s.unit for s in self.scores],
            "criteria": asdict(self.criteria),
            "angles_deg": [float(a) for a in self.angles_deg],
            "curvatures": [float(c) for c in self.curvatures],
            "curves": {u: [float(v) for v in c] for u, c in self.curves.items() if u in set(self.family)},
            "stimulus": self.stimulus,
            "n_stimuli": int(self.n_stimuli),
            "weights": self.weights,
        }

    def save(self, path) -> Any:
        """Write `to_json()` as a family file that `circuits.families.files.load_family` reads back."""
        from circuits.families.files import save_family

        return save_family(path, self.to_json(), self.network)


def _check_args(network: graph.Graph, layer: str, n_orientations, curvatures) -> tuple[np.ndarray, np.ndarray]:
    network.node(layer)  # unknown layer (or one of another network): raises with close matches
    if not isinstance(n_orientations, (int, np.integer)) or isinstance(n_orientations, bool) or n_orientations < 8:
        raise ValueError(f"n_orientations must be an integer >= 8 (FWHM and echo need a sampled circle), "
                         f"got {n_orientations!r}")
    c = np.asarray(curvatures, dtype=np.float64).reshape(-1)
    if c.size == 0 or not np.isfinite(c).all() or c.min() <= 0 or c.max() > 1:
        raise ValueError(f"curvatures must be fractions of a half circle in (0, 1] (0 would be a line, which is "
                         f"a control here), got {c.tolist()}")
    return angles_for(int(n_orientations)), c


def sweep_stimuli(layer: str, angles: np.ndarray, curvatures: np.ndarray, model) -> tuple[dict[str, Stimuli], dict]:
    """The stimulus sets of a discovery sweep, sized to `layer`'s receptive field (see the module doc).

    model: the model (or graph) that has `layer`.
    """
    p = default_curve_params(layer, model)
    length, width = p["arc_length"], p["width"]
    arm = length / 2
    a = torch.as_tensor(angles, dtype=torch.float64)
    sets = {
        "curve": curve_sweep(angles, curvatures, arc_length=length, width=width),
        "inverted": curve_sweep(angles, curvatures, arc_length=length, width=width, fg="white", bg="black"),
        # A line's orientation is along it: at θ + 90 it is the chord of the curve at θ.
        "line": Stimuli("line", {"orientation": a + 90.0}, {"length": length, "width": width}),
        "sharp_angle": Stimuli("angle", {"orientation": a}, {"opening": ANGLE_OPENING, "arm_length": arm,
                                                              "width": width}),
        "rounded_angle": Stimuli("angle", {"orientation": a}, {"opening": ANGLE_OPENING, "arm_length": arm,
                                                                "corner_radius": arm / 4, "width": width}),
        "edge": Stimuli("edge", {"orientation": a}),
    }
    used = {"arc_length": length, "width": width, "arm_length": arm, "corner_radius": arm / 4,
            "opening": ANGLE_OPENING, "fg": "black", "bg": "white", "inverted": {"fg": "white", "bg": "black"}}
    return sets, used


def _score(uid: str, r: dict[str, np.ndarray], j: int, n_a: int, n_c: int) -> UnitScore:
    grid = np.maximum(r["curve"][:, j].reshape(n_c, n_a), 0.0)  # post-ReLU [curvature, orientation]
    radial = grid.mean(0)
    inv = np.maximum(r["inverted"][:, j].reshape(n_c, n_a), 0.0).mean(0)
    peak = float(radial.max())
    nan = math.nan
    if not peak > 0:
        return UnitScore(uid, peak, nan, nan, 0, False, nan, nan, nan, nan, nan, nan, nan, False)
    p = int(np.argmax(radial))
    best = {k: float(np.maximum(r[k][:, j], 0.0).max()) for k in ("line", "sharp_angle", "rounded_angle", "edge")}
    at_pref = grid[:, p]
    lobes = _lobes(radial)
    ratio = {k: v / peak for k, v in best.items()}
    ipk = float(inv.max())
    return UnitScore(
        unit=uid,
        peak=peak,
        pref_deg=float(angles_for(n_a)[p]),
        fwhm_deg=float(fwhm(radial)),
        n_lobes=lobes,
        contiguous=lobes == 1,
        line_ratio=ratio["line"],
        sharp_angle_ratio=ratio["sharp_angle"],
        rounded_angle_ratio=ratio["rounded_angle"],
        edge_ratio=ratio["edge"],
        curvature_tolerance=float(at_pref.mean() / at_pref.max()),
        echo=float(echo_ratio(radial)),
        polarity=float(min(ipk, peak) / max(ipk, peak)),
        ordered=bool(1.0 > ratio["rounded_angle"] > ratio["sharp_angle"] > ratio["line"]),
    )


def discover(
    model,
    layer: str,
    *,
    n_orientations: int = DEFAULT_ORIENTATIONS,
    curvatures: Sequence[float] = DEFAULT_CURVATURES,
    criteria: Criteria | None = None,
    channels: Sequence[int] | None = None,
    register: bool = True,
    batch_size: int | None = None,
    progress: bool = True,
) -> Discovery:
    """Sweep every channel of `layer` (or `channels`) and find its curve detectors.

    n_orientations x len(curvatures) curves in each polarity plus n_orientations of
    each control (line, sharp angle, rounded angle, edge), centred on the layer's
    receptive field at the centre position; each unit scored by `criteria`.
    register: register the family as ``layer:curves_found`` (if it is not empty).

    >>> import weights
    >>> d = discover(weights.model("handbuilt"), "mixed3b", progress=False)   # doctest: +SKIP
    >>> d.family[:3]                                                          # doctest: +SKIP
    ['mixed3b:343', 'mixed3b:388', 'mixed3b:324']
    """
    network = model.graph
    angles, curv = _check_args(network, layer, n_orientations, curvatures)
    criteria = Criteria() if criteria is None else criteria
    if not isinstance(criteria, Criteria):
        raise TypeError(f"criteria must be a circuits.tuning.discover.Criteria, got {type(criteria).__name__}")
    n_channels = network.node(layer).channels
    chans = list(range(n_channels)) if channels is None else [int(c) for c in channels]
    bad = [c for c in chans if not 0 <= c < n_channels]
    if bad or not chans:
        raise ValueError(f"channels must be in 0..{n_channels - 1} for {layer}, got {bad or 'none'}")
    units = [model.unit((layer, c)) for c in chans]
    sets, used = sweep_stimuli(layer, angles, curv, model)
    size = input_size_for(units, model)
    r = {}
    for name, stim in sets.items():
        r[name] = responses(model, units, stim, size=size, batch_size=batch_size, progress=progress).double().numpy()
    n_a, n_c = len(angles), len(curv)
    scores = []
    curves = {}
    for j, u in enumerate(units):
        s = _score(u.id, r, j, n_a, n_c)
        s.reasons = criteria.failures(s)
        s.accepted = not s.reasons
        scores.append(s)
        curves[u.id] = np.maximum(r["curve"][:, j].reshape(n_c, n_a), 0.0).mean(0)
    # Accepted first; then the near misses (fewest failed criteria); units silent to curves last.
    scores.sort(key=lambda s: (not s.accepted, not s.peak > 0, s.n_failed, -s.peak if s.peak > 0 else 0.0))
    d = Discovery(layer, criteria, angles, curv, curves, scores, used, sum(len(s) for s in sets.values()),
                  model.source, model.graph)
    if register:
        d.register(model)
    return d


def feature_visualizations(
    model, units: Sequence[str], *, size: int | None = None, steps: int = 256, seed: int = 0, progress: bool = True
) -> torch.Tensor:
    """Feature visualizations [N, 3, H, W] in [0, 1] of units of one layer (centre neuron objectives).

    One batched render (`circuits.optvis.render`): image i maximizes unit i at the
    centre position, as the article's neuron visualizations. size: default the
    smallest input that holds the layer's receptive field.

    >>> import weights
    >>> feature_visualizations(weights.model("random"), ["conv2d2:3", "conv2d2:4"], steps=2,
    ...                        progress=False).shape
    torch.Size([2, 3, 48, 48])
    """
    from circuits.families import units_of
    from circuits.optvis import objectives, param, render

    us = units_of(list(units), model)
    if not us:
        raise ValueError("no units to visualize")
    if len({u.layer for u in us}) != 1:
        raise ValueError(f"units must share one layer, got {sorted({u.layer for u in us})}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    # 48 px at least: the standard transforms jitter and scale by several pixels.
    side = max(48, input_size_for(us, model)) if size is None else int(size)
    obj = sum(objectives.neuron(u, u.channel, batch=i) for i, u in enumerate(us))
    # Redirected ReLU for the first steps (as Lucid): a unit silent on the initial near-uniform
    # image (the hand-built network gives exactly 0 there) would otherwise get no gradient.
    r = render(model, obj, param.image(side, batch=len(us), seed=seed), steps=steps, seed=seed,
               redirected_relu=True, progress=progress)
    return r.final
