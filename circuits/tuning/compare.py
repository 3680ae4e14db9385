"""Hand-built vs trained vs published: the checks of "Curve Circuits", as one function.

`compare_tuning` measures the radial tuning curve of every unit of a family in each
given model (`circuits.tuning.measure.radial_tuning`: post-ReLU centre response to curves,
720 orientations x 8 curvatures, averaged over curvature) and compares each with the
published curve of the same unit when ``../shared/reference`` is present: preferred-
angle error, Pearson correlation of the 720-sample curves, FWHM ratio and echo ratio.
`stimulus_checks` measures, at each unit's preferred orientation, how the response
changes with contrast polarity, colour and filling, and how it falls off from curves
to rounded angles, sharp angles and straight lines.

Example:
    >>> import weights
    >>> cmp = compare_tuning({"hand-built": weights.model("handbuilt")}, "mixed3b:curves",
    ...                      n_angles=72, curvatures=[0.5, 1.0], progress=False)   # doctest: +SKIP
    >>> print(cmp.table())                                                         # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from circuits.tuning import reference
from circuits.tuning.stimuli import angle, curve, line
from circuits.tuning.measure import DEFAULT_CURVATURES, RadialTuning, default_curve_params, input_size_for, radial_tuning, responses
from circuits.tuning.metrics import compare_curves, curve_metrics
from circuits.families import units_of

__all__ = ["TARGETS", "Targets", "UnitRow", "TuningComparison", "compare_tuning", "stimulus_checks", "StimulusChecks"]


@dataclass(frozen=True)
class Targets:
    """What a hand-built unit must achieve against its published curve (None: not required)."""

    angle_error_deg: float
    correlation: float | None = None
    echo: float | None = None


# Issue 5's targets: the ten 3b curves like the published ones, without echoes; the 3a
# early curves (which have echoes in the original) at the right orientation.
TARGETS: dict[str, Targets] = {
    "mixed3b": Targets(angle_error_deg=5.0, correlation=0.9, echo=0.05),
    "mixed3a": Targets(angle_error_deg=10.0),
}


@dataclass
class UnitRow:
    """One unit of one model, with its published counterpart when there is one."""

    model: str
    unit: str
    pref_deg: float
    peak: float
    fwhm_deg: float
    echo: float
    published_pref_deg: float | None = None
    angle_error: float | None = None
    correlation: float | None = None
    width_ratio: float | None = None
    published_echo: float | None = None
    meets_targets: bool | None = None
    failures: list[str] = field(default_factory=list)


@dataclass
class TuningComparison:
    """Radial tuning of each model, the published curves, and the per-unit comparison."""

    units: list[str]
    tunings: dict[str, RadialTuning]
    published: dict[str, np.ndarray]
    rows: list[UnitRow]

    def rows_of(self, model: str) -> list[UnitRow]:
        return [r for r in self.rows if r.model == model]

    def failures(self, model: str) -> list[str]:
        """Every target a model's units miss, as readable lines (empty: all met)."""
        return [f"{r.unit}: {f}" for r in self.rows_of(model) for f in r.failures]

    def table(self) -> str:
        """A plain-text table, one line per model and unit."""
        head = f"{'model':12} {'unit':12} {'pref':>6} {'pub':>6} {'err':>5} {'corr':>6} {'fwhm':>6} {'w/pub':>6} {'echo':>6} {'ok':>3}"
        lines = [head, "-" * len(head)]

        def f(v, fmt):
            return format(v, fmt) if v is not None else "-"

        for r in self.rows:
            ok = "" if r.meets_targets is None else ("yes" if r.meets_targets else "NO")
            lines.append(
                f"{r.model:12} {r.unit:12} {r.pref_deg:6.1f} {f(r.published_pref_deg, '6.1f'):>6} "
                f"{f(r.angle_error, '5.1f'):>5} {f(r.correlation, '6.3f'):>6} {r.fwhm_deg:6.1f} "
                f"{f(r.width_ratio, '6.2f'):>6} {r.echo:6.3f} {ok:>3}"
            )
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "units": self.units,
            "rows": [asdict(r) for r in self.rows],
            "tunings": {m: t.to_json() for m, t in self.tunings.items()},
            "published_available": bool(self.published),
        }


def compare_tuning(
    models: Mapping[str, Any],
    units="mixed3b:curves",
    *,
    n_angles: int = 720,
    curvatures: Sequence[float] = DEFAULT_CURVATURES,
    targets: Mapping[str, Targets] = TARGETS,
    progress: bool = True,
) -> TuningComparison:
    """Measure each model's radial tuning of `units` and compare with the published curves.

    models: {label: model}, e.g. {"hand-built": ..., "trained": ...}: models of one
        network (InceptionV1 or InceptionV3), since the units must be theirs.
    Published curves are used when ``../shared/reference`` is present (otherwise the
    published columns stay empty and no target is judged).
    """
    if not models:
        raise ValueError("give at least one model to compare, e.g. {'hand-built': weights.model('handbuilt')}")
    # Every model must have the units: resolved against each one's graph (a unit of
    # another network raises naming both), the first one's kept.
    us = [units_of(units, m) for m in models.values()][0]
    ids = [u.id for u in us]
    published: dict[str, np.ndarray] = {}
    table: dict[str, dict] = {}
    if reference.available():
        table = reference.tuning_table()
        for u in us:
            c = reference.published_curve(u)  # the Unit: its network says whether it has one
            if c is not None:
                published[u.id] = c
    tunings = {
        label: radial_tuning(m, us, n_angles=n_angles, curvatures=curvatures, progress=progress)
        for label, m in models.items()
    }
    rows = []
    for label, t in tunings.items():
        for u, c in zip(t.units, t.curves):
            m = curve_metrics(c)
            row = UnitRow(label, u, m.pref_deg, m.peak, m.fwhm_deg, m.echo)
            if u in published:
                pub = published[u]
                pm = curve_metrics(pub)
                cc = compare_curves(c, pub)
                row.published_pref_deg = table.get(u, {}).get("pref_deg", pm.pref_deg)
                row.angle_error = cc["angle_error"]
                row.correlation = cc["correlation"]
                row.width_ratio = m.fwhm_deg / pm.fwhm_deg if pm.fwhm_deg > 0 else None
                row.published_echo = pm.echo
                tg = targets.get(u.split(":")[0])
                if tg is not None:
                    row.failures = _judge(row, tg)
                    row.meets_targets = not row.failures
            rows.append(row)
    return TuningComparison(ids, tunings, published, rows)


def _judge(row: UnitRow, tg: Targets) -> list[str]:
    out = []
    if row.angle_error > tg.angle_error_deg:
        out.append(f"preferred angle {row.pref_deg:.1f} is {row.angle_error:.1f} deg from the published "
                   f"{row.published_pref_deg} (target <= {tg.angle_error_deg:g})")
    if tg.correlation is not None and not row.correlation >= tg.correlation:
        out.append(f"correlation with the published curve {row.correlation:.3f} (target >= {tg.correlation:g})")
    if tg.echo is not None and row.echo > tg.echo:
        out.append(f"echo ratio {row.echo:.3f} (target <= {tg.echo:g})")
    return out


# --- stimulus checks -----------------------------------------------------------------

# Colour pair for the colour-invariance check: a dark, saturated stroke on a light,
# saturated background of the complementary hue.
COLOUR_PAIR = ((40, 40, 200), (240, 220, 60))
ANGLE_OPENING = 90.0  # degrees between the arms of the angle stimuli


@dataclass
class StimulusChecks:
    """Responses at each unit's preferred orientation, relative to a black-on-white curve.

    variants: {"white on black", "colour pair", "filled"} -> [U] ratios to black on white.
    shapes: {"curve", "rounded angle", "sharp angle", "line"} -> [U] mean responses.
    """

    units: list[str]
    pref_deg: np.ndarray
    baseline: np.ndarray
    variants: dict[str, np.ndarray]
    shapes: dict[str, np.ndarray]

    def table(self) -> str:
        cols = list(self.variants) + list(self.shapes)
        head = f"{'unit':12} {'b/w resp':>9} " + " ".join(f"{c:>14}" for c in cols)
        lines = [head, "-" * len(head)]
        for i, u in enumerate(self.units):
            vals = [self.variants[c][i] for c in self.variants] + [
                self.shapes[c][i] / self.shapes["curve"][i] if self.shapes["curve"][i] > 0 else float("nan")
                for c in self.shapes
            ]
            lines.append(f"{u:12} {self.baseline[i]:9.1f} " + " ".join(f"{v:14.3f}" for v in vals))
        lines.append("(variants: response / black-on-white response; shapes: response / curve response)")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "units": self.units,
            "pref_deg": self.pref_deg.tolist(),
            "black_on_white": self.baseline.tolist(),
            "variants": {k: v.tolist() for k, v in self.variants.items()},
            "shapes": {k: v.tolist() for k, v in self.shapes.items()},
        }


def stimulus_checks(
    model, units, pref_deg: Sequence[float], *, curvatures: Sequence[float] = DEFAULT_CURVATURES
) -> StimulusChecks:
    """Invariance and fall-off checks at each unit's preferred orientation.

    For each unit (all in one layer), at its preferred orientation `pref_deg[i]`:
    curves of every curvature in `curvatures` as black on white, white on black, a
    colour pair, and filled (mean over curvature); a 90-degree angle rounded with a
    corner radius of a quarter of the arm, the same angle sharp, and a straight line
    of the same length. A unit whose preferred orientation is NaN (it never
    responded) gets NaN everywhere.
    """
    us = units_of(units, model)
    if len({u.layer for u in us}) != 1:
        raise ValueError("stimulus_checks takes units of one layer")
    if len(pref_deg) != len(us):
        raise ValueError(f"one preferred orientation per unit: {len(us)} units, {len(pref_deg)} orientations")
    size = input_size_for(us, model)
    centre = us[0].centre_in_input(size)
    p = default_curve_params(us[0].layer, model)
    # Drawn in the model's input range (white is 138 for InceptionV1, 1 for InceptionV3).
    rng = model.input_range
    length, width = p["arc_length"], p["width"]
    arm = length / 2
    cv = torch.as_tensor(list(curvatures), dtype=torch.float32)
    nc = len(cv)

    def curves(theta, **kw):
        return curve(torch.full((nc,), float(theta)), cv, arc_length=length, width=width, size=size, centre=centre,
                     input_range=rng, **kw)

    base, variants = [], {"white on black": [], "colour pair": [], "filled": []}
    shapes: dict[str, list] = {"curve": [], "rounded angle": [], "sharp angle": [], "line": []}
    for i, theta in enumerate(pref_deg):
        if not np.isfinite(theta):  # a unit with no response has no preferred orientation
            base.append(float("nan"))
            for d in (variants, shapes):
                for k in d:
                    d[k].append(float("nan"))
            continue
        batches = {
            "base": curves(theta),
            "white on black": curves(theta, fg="white", bg="black"),
            "colour pair": curves(theta, fg=COLOUR_PAIR[0], bg=COLOUR_PAIR[1]),
            "filled": curves(theta, filled=True),
            "rounded angle": angle(theta, ANGLE_OPENING, arm_length=arm, corner_radius=arm / 4, width=width,
                                   size=size, centre=centre, input_range=rng),
            "sharp angle": angle(theta, ANGLE_OPENING, arm_length=arm, width=width, size=size, centre=centre,
                                 input_range=rng),
            "line": line(theta + 90.0, length=length, width=width, size=size, centre=centre, input_range=rng),
        }
        x = torch.cat(list(batches.values()))
        r = responses(model, [us[i]], x)[:, 0]  # post-ReLU, centre position
        parts = dict(zip(batches, torch.split(r, [len(b) for b in batches.values()])))
        b = float(parts["base"].mean())
        base.append(b)
        for k in variants:
            variants[k].append(float(parts[k].mean()) / b if b > 0 else float("nan"))
        shapes["curve"].append(b)
        for k in ("rounded angle", "sharp angle", "line"):
            shapes[k].append(float(parts[k].mean()))
    return StimulusChecks(
        [u.id for u in us],
        np.asarray(pref_deg, dtype=float),
        np.asarray(base),
        {k: np.asarray(v) for k, v in variants.items()},
        {k: np.asarray(v) for k, v in shapes.items()},
    )
