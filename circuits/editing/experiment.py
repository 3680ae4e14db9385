"""The circuit-editing experiments of "Curve Circuits", on any model.

Three conditions, measured as radial tuning curves (post-ReLU centre response to curves,
averaged over curvature) of the curve units:

* ``unedited``;
* ``early curves only``: every input of the curves from the early curves' layer is
  zeroed except the early curves' (`keep_only_inputs`);
* ``positive early-curve weights only``: that, and the negative early curve -> curve
  weights removed as well (`drop_negative`). The article predicts the curves lose
  their echo-free tuning here: those negative weights are what removes the echo.

The families are given by name (``curves="mixed3b:curves"``,
``early_curves="mixed3a:early_curves"``), as `Family` objects or as lists of unit ids,
so another network's analogous families can be plugged in: they are resolved against
the model's network (an InceptionV3's units for an InceptionV3; units of another
network raise, naming both). How the edits are carried out is explicit, as `route`:

* ``"direct"``: the early curves are the input of the curves' own convolution (on the
  hand-built network: the early-curve copies in the 3b 5x5 bottleneck,
  ``mixed3b_5x5_bottleneck:hb_curve_relay``); the edits rewrite that convolution's
  real weights, so the edited network is exactly the network with those weights.
* ``"reexpress"``: the early curves lie further upstream (``mixed3a``); the curves are
  first re-expressed from that layer through their linearized path (`Reexpress`: ReLUs
  as identity, max-pools as average pools), and the edits act on the re-expressed
  model's expanded weights -- exact for the linearized model, which is what is edited.
  Every condition, ``unedited`` included, is then measured on the re-expressed model,
  and `linearization_gap` says how far its unedited curves are from the real ones.

Example:
    >>> import weights
    >>> exp = edit_experiment(weights.model("random"), early_curves="mixed3a:early_curves",
    ...                       n_angles=8, curvatures=[0.5], progress=False)
    >>> exp.route, [c for c in exp.conditions]
    ('reexpress', ['unedited', 'early curves only', 'positive early-curve weights only'])
    >>> exp.curves["unedited"].shape
    (10, 8)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from circuits.analysis.networks import WrongNetworkError, resolve
from circuits.editing.edits import Reexpress, drop_negative, editing, keep_only_inputs
from circuits.editing.selection import EditError, _dst_conv, _spec_str
from circuits.tuning.measure import DEFAULT_CURVATURES, radial_tuning
from circuits.tuning.metrics import curve_metrics

__all__ = ["CONDITIONS", "ROUTES", "EditExperiment", "edit_experiment", "condition_edits", "route_for"]

CONDITIONS = ("unedited", "early curves only", "positive early-curve weights only")
ROUTES = ("direct", "reexpress")


@dataclass
class EditExperiment:
    """Radial tuning of the curve units under each condition.

    curves[condition]: [units, angles] post-ReLU curves; units: ids in row order;
    route: how the edits were carried out (see the module docstring); edits[condition]:
    the applied edits' summaries; linearization_gap (reexpress route only): the largest
    |real - re-expressed| of the unedited curves over the largest real value (0: the
    re-expression is the real network on these stimuli).
    """

    units: list[str]
    angles_deg: np.ndarray
    curves: dict[str, np.ndarray]
    route: str
    curve_family: str
    early_family: str
    edits: dict[str, list[str]] = field(default_factory=dict)
    linearization_gap: float | None = None
    n_stimuli: int = 0

    @property
    def conditions(self) -> list[str]:
        return list(self.curves)

    def rows(self) -> list[dict[str, Any]]:
        """One row per condition and unit: peak, preferred angle, echo, FWHM (`circuits.tuning.metrics`)."""
        out = []
        for cond, cs in self.curves.items():
            for u, c in zip(self.units, cs):
                m = curve_metrics(c)
                out.append({"condition": cond, "route": self.route, "unit": u, "peak": m.peak,
                            "pref_deg": m.pref_deg, "echo": m.echo, "fwhm_deg": m.fwhm_deg})
        return out

    def summary(self) -> dict[str, dict[str, float]]:
        """Per condition: median peak, median and range of echo, median FWHM over units."""
        out = {}
        for cond in self.curves:
            rs = [r for r in self.rows() if r["condition"] == cond]
            echo = np.array([r["echo"] for r in rs])
            out[cond] = {"median_peak": float(np.median([r["peak"] for r in rs])),
                         "median_echo": float(np.median(echo)), "min_echo": float(echo.min()),
                         "max_echo": float(echo.max()),
                         "median_fwhm": float(np.nanmedian([r["fwhm_deg"] for r in rs]))}
        return out

    def table(self) -> str:
        """The rows as a fixed-width text table."""
        head = f"{'condition':35} {'unit':13} {'peak':>8} {'pref':>6} {'echo':>6} {'fwhm':>6}"
        lines = [f"route: {self.route} ({_ROUTE_WORDS[self.route]})", head, "-" * len(head)]
        for r in self.rows():
            lines.append(f"{r['condition']:35} {r['unit']:13} {r['peak']:8.1f} {_f(r['pref_deg'], 1):>6} "
                         f"{_f(r['echo'], 3):>6} {_f(r['fwhm_deg'], 1):>6}")
        if self.linearization_gap is not None:
            lines.append(f"re-expressed vs real (unedited): largest difference {self.linearization_gap:.3g} of the peak")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"route": self.route, "curves_family": self.curve_family, "early_curves_family": self.early_family,
                "units": list(self.units), "angles_deg": [float(a) for a in self.angles_deg],
                "curves": {c: {u: [float(v) for v in row] for u, row in zip(self.units, cs)}
                           for c, cs in self.curves.items()},
                "edits": self.edits, "linearization_gap": self.linearization_gap,
                "rows": self.rows(), "summary": self.summary(), "n_stimuli": int(self.n_stimuli)}


_ROUTE_WORDS = {
    "direct": "edits rewrite the real weights of the curves' convolution: exact",
    "reexpress": "curves re-expressed through their linearized path, edits on its expanded weights: "
                 "exact for the linearized model",
}


def _f(v: float, digits: int) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _resolve(spec, model, what: str):
    """The units of a family/unit spec, of `model`'s network when a model is given."""
    try:
        units = resolve(spec, model)
    except WrongNetworkError as e:
        raise EditError(f"bad {what} {_spec_str(spec)!r}: {e}") from None
    return units


def _convs(units) -> set[str]:
    """The convolutions computing `units` (their network's `conv_of`)."""
    return {_dst_conv(u) for u in units}


def route_for(curves, early_curves, model=None) -> str:
    """The route the edits between two families take: "direct" when the early curves are the
    input of the curves' convolution, else "reexpress".

    curves, early_curves: family ids, Family objects, unit ids or lists of them;
    model: the model (or Graph) they belong to (None only for resolved Units).

    >>> from circuits.core.graph import INCEPTION_V1
    >>> route_for("mixed3b:curves", "mixed3a:early_curves", INCEPTION_V1)
    'reexpress'
    """
    dst, src = _resolve(curves, model, "curves"), _resolve(early_curves, model, "early curves")
    if dst[0].network is not src[0].network:
        raise EditError(
            f"the curves ({dst[0].network.name}) and the early curves ({src[0].network.name}) are units "
            "of different networks"
        )
    g = dst[0].network
    convs = _convs(dst)
    src_layers = {u.layer for u in src}
    if len(src_layers) != 1:
        raise EditError(
            f"the early curves {_spec_str(early_curves)!r} must lie in one layer, got {', '.join(sorted(src_layers))}"
        )
    layer = src_layers.pop()
    if all(g.node(c).inputs[0] == layer for c in convs):
        return "direct"
    return "reexpress"


def condition_edits(condition: str, curves, early_curves, route: str, model=None) -> list:
    """The edits, in the order they are applied, that make `condition` on the given route.

    >>> from circuits.core.graph import INCEPTION_V1
    >>> [e.summary() for e in condition_edits("early curves only", "mixed3b:curves",
    ...                                        "mixed3a:early_curves", "reexpress", INCEPTION_V1)]
    ['reexpress mixed3b:curves from mixed3a', 'keep_only mixed3a:early_curves -> mixed3b:curves']
    """
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; the conditions are {', '.join(map(repr, CONDITIONS))}")
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r}; the routes are {', '.join(map(repr, ROUTES))}")
    # Resolved once (against the model's network when given), so family objects and ids
    # of any network reach the edits as units of that network.
    dst, src = _resolve(curves, model, "curves"), _resolve(early_curves, model, "early curves")
    shown_dst, shown_src = _spec_str(curves), _spec_str(early_curves)
    layer = src[0].layer
    first = [Reexpress(layer, dst)] if route == "reexpress" else []
    for e in first:
        e.dst_spec = shown_dst
    if condition == "unedited":
        return first
    keep = keep_only_inputs(src, dst)
    keep.shown_src, keep.dst_spec = shown_src, shown_dst
    edits = first + [keep]
    if condition == "positive early-curve weights only":
        drop = drop_negative(src, dst)
        drop.shown_src, drop.dst_spec = shown_src, shown_dst
        edits.append(drop)
    return edits


def _check_route(curves, early_curves, route: str | None, model=None) -> str:
    natural = route_for(curves, early_curves, model)
    if route is None:
        return natural
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r}; the routes are {', '.join(map(repr, ROUTES))} (or None: chosen)")
    if route != natural:
        layer = _resolve(early_curves, model, "early curves")[0].layer
        shown = _spec_str(early_curves)
        if route == "direct":
            dst = _resolve(curves, model, "curves")
            g = dst[0].network
            convs = sorted(_convs(dst), key=g.index)
            inputs = sorted({g.node(c).inputs[0] for c in convs})
            raise EditError(
                f"route 'direct' needs the early curves in the input of {', '.join(convs)} "
                f"({', '.join(inputs)}), but {shown!r} lies in {layer}; use route='reexpress', or early "
                f"curves in {', '.join(inputs)}"
            )
        raise EditError(
            f"route 'reexpress' needs the early curves upstream of the curves' convolution input, but "
            f"{shown!r} ({layer}) is that input: use route='direct' (an exact edit of the real weights)"
        )
    return route


def edit_experiment(
    model,
    curves="mixed3b:curves",
    early_curves="mixed3a:early_curves",
    *,
    route: str | None = None,
    conditions: Sequence[str] = CONDITIONS,
    n_angles: int = 72,
    curvatures: Sequence[float] = DEFAULT_CURVATURES,
    stimulus: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> EditExperiment:
    """Radial tuning of `curves` unedited, with only the `early_curves` inputs, and with only
    their positive weights (the "Curve Circuits" editing experiments).

    curves, early_curves: family ids, `Family` objects, unit ids or lists of them, of the
        model's network (the defaults are InceptionV1's; pass an InceptionV3's own).
    route: "direct" or "reexpress" (see the module docstring); None picks the one the
    families' layers allow. Every edit is undone afterwards, also on an exception.

    >>> import weights
    >>> m = weights.model("random")
    >>> edit_experiment(m, early_curves="mixed3a:early_curves", route="direct")
    Traceback (most recent call last):
    circuits.editing.EditError: route 'direct' needs the early curves in the input of mixed3b_5x5_pre_relu (mixed3b_5x5_bottleneck), but 'mixed3a:early_curves' lies in mixed3a; use route='reexpress', or early curves in mixed3b_5x5_bottleneck
    """
    route = _check_route(curves, early_curves, route, model)
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown or not conditions:
        raise ValueError(f"unknown conditions {unknown or list(conditions)!r}; choose from {', '.join(map(repr, CONDITIONS))}")
    if model.is_edited:
        raise EditError(f"the model already carries edits ({'; '.join(model.edits)}): undo them first, "
                        "so that 'unedited' means the model itself")
    units = _resolve(curves, model, "curves")
    kw = dict(n_angles=n_angles, curvatures=curvatures, stimulus=stimulus, progress=progress)
    out: dict[str, np.ndarray] = {}
    summaries: dict[str, list[str]] = {}
    angles = None
    n = 0
    for cond in conditions:
        edits = condition_edits(cond, curves, early_curves, route, model)
        with editing(model, *edits):
            rt = radial_tuning(model, units, **kw)
            summaries[cond] = list(model.edits)
        out[cond] = rt.curves
        angles = rt.angles_deg
        n += rt.n_stimuli
    gap = None
    if route == "reexpress" and "unedited" in out:
        real = radial_tuning(model, units, **kw)
        n += real.n_stimuli
        top = float(real.curves.max())
        gap = float(np.abs(real.curves - out["unedited"]).max() / top) if top > 0 else float(np.abs(out["unedited"]).max())
    return EditExperiment([u.id for u in units], angles, out, route, _family_str(curves), _family_str(early_curves),
                          summaries, gap, n)


def _family_str(spec) -> str:
    """The spec as one string for the result (a family id, or unit ids joined by commas)."""
    s = _spec_str(spec)
    return s if isinstance(s, str) else ", ".join(x if isinstance(x, str) else str(x) for x in s)
