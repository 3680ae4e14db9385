"""Check an InceptionV1 weight set by what it computes: its mixed3b curve detectors.

A file can load cleanly and still be the wrong network, or a right file can be read
wrongly (kernels transposed, channels in another order): checksums and shape checks
cannot see that. "Curve Detectors" published the preferred orientation of the ten
mixed3b curve units; a weight set passes when each of them, measured here with the
radial tuning of `circuits.tuning` (post-ReLU, averaged over curvature), prefers its
published orientation within `TOLERANCE_DEG`. Downloads (`weights.download.fetch`)
are checked this way before they are cached; ``circuits weights --verify FILE``
checks any local file.

Example:
    >>> import weights
    >>> from weights.verify import verify_model
    >>> report = verify_model(weights.model("handbuilt"), n_angles=36)
    >>> report.passed, report.worst_error_deg <= TOLERANCE_DEG
    (True, True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = [
    "PUBLISHED_CURVE_ORIENTATIONS", "TOLERANCE_DEG", "N_ANGLES", "VerificationError", "UnitCheck", "Verification",
    "verify_model", "verify_state_dict", "verify_file",
]

#: Preferred orientations (degrees, the article's convention: 0 = ")", 90 = "∪") of the ten
#: mixed3b curve units, as "Curve Detectors" published them (its tuning table; the test
#: compares these with the reference data where it is on the machine).
PUBLISHED_CURVE_ORIENTATIONS: dict[str, float] = {
    "mixed3b:379": 243.0, "mixed3b:406": 268.5, "mixed3b:385": 290.0, "mixed3b:343": 358.0,
    "mixed3b:342": 22.5, "mixed3b:388": 66.5, "mixed3b:324": 91.5, "mixed3b:340": 110.0,
    "mixed3b:330": 145.0, "mixed3b:349": 181.0,
}
#: Largest accepted difference between a measured and the published orientation (degrees).
TOLERANCE_DEG = 10.0
#: Orientations swept (5 degree steps: sampling adds at most 2.5 degrees of error).
N_ANGLES = 72

#: How to use a file that fails anyway (the explicit opt-outs), said by every failure.
OPT_OUT = (
    "To use it anyway: weights.download.fetch('lucid', verify=False) (or 'lucid-pb') caches a download "
    "unchecked, after which --weights lucid loads it; a local file loads unchecked with --weights FILE or "
    "weights.model(FILE)"
)


class VerificationError(ValueError):
    """A weight set whose curve detectors do not prefer the published orientations."""


@dataclass(frozen=True)
class UnitCheck:
    """One curve unit: measured and published preferred orientation, and their difference."""

    unit: str
    published_deg: float
    measured_deg: float
    error_deg: float
    peak: float

    @property
    def passed(self) -> bool:
        return self.peak > 0 and self.error_deg <= TOLERANCE_DEG

    def line(self) -> str:
        if self.peak <= 0:
            return f"{self.unit}: no response to any curve (published {self.published_deg:g} deg)"
        return (f"{self.unit}: measured {self.measured_deg:g} deg, published {self.published_deg:g} deg "
                f"(off by {self.error_deg:g})")


@dataclass(frozen=True)
class Verification:
    """The result of `verify_model`: one `UnitCheck` per published curve unit."""

    units: tuple[UnitCheck, ...]
    n_angles: int

    @property
    def passed(self) -> bool:
        return all(u.passed for u in self.units)

    @property
    def failed(self) -> tuple[UnitCheck, ...]:
        return tuple(u for u in self.units if not u.passed)

    @property
    def worst_error_deg(self) -> float:
        return max(u.error_deg for u in self.units)

    def table(self) -> str:
        rows = [f"{'unit':12} {'published':>9} {'measured':>9} {'error':>6}  result"]
        for u in self.units:
            ok = "ok" if u.passed else ("no response" if u.peak <= 0 else f"FAIL (> {TOLERANCE_DEG:g})")
            rows.append(f"{u.unit:12} {u.published_deg:9g} {u.measured_deg:9g} {u.error_deg:6g}  {ok}")
        return "\n".join(rows)

    def raise_if_failed(self, what: str, opt_out: str = OPT_OUT) -> None:
        """Raise `VerificationError` naming every failing unit, its measured and published orientation."""
        if self.passed:
            return
        bad = "; ".join(u.line() for u in self.failed)
        raise VerificationError(
            f"{what} does not compute InceptionV1's curve detectors: {len(self.failed)} of {len(self.units)} "
            f"mixed3b curve units do not prefer their published orientation within {TOLERANCE_DEG:g} degrees "
            f"({bad}). It is a different network, a corrupted file, or a file read wrongly. {opt_out}"
        )


def verify_model(model, *, n_angles: int = N_ANGLES) -> Verification:
    """Measure the ten mixed3b curve units of an InceptionV1 model against the published orientations.

    Returns a `Verification` (it does not raise: see `Verification.raise_if_failed`).

    >>> import weights
    >>> verify_model(weights.model("random"), n_angles=36).passed
    False
    """
    from circuits.tuning.measure import radial_tuning
    from circuits.tuning.metrics import peak_angle_error

    if model.graph.name != "InceptionV1":
        raise ValueError(
            f"verification measures InceptionV1's published mixed3b curve units; this model is {model.graph.name}"
        )
    units = list(PUBLISHED_CURVE_ORIENTATIONS)
    rt = radial_tuning(model, units, n_angles=n_angles, progress=False)
    metrics = rt.metrics()
    checks = []
    for uid, published in PUBLISHED_CURVE_ORIENTATIONS.items():
        m = metrics[uid]
        checks.append(UnitCheck(uid, published, float(m.pref_deg), peak_angle_error(m.pref_deg, published), float(m.peak)))
    return Verification(tuple(checks), n_angles)


def verify_state_dict(
    state_dict, what: str = "this weight set", *, n_angles: int = N_ANGLES, opt_out: str = OPT_OUT
) -> Verification:
    """`verify_model` on an InceptionV1 built from `state_dict`; raises `VerificationError` on a mismatch.

    >>> import handbuilt
    >>> verify_state_dict(handbuilt.state_dict(), n_angles=36).passed
    True
    """
    from circuits.core.model import InceptionV1

    report = verify_model(InceptionV1(state_dict).eval(), n_angles=n_angles)
    report.raise_if_failed(what, opt_out)
    return report


def verify_file(path: str | os.PathLike, *, n_angles: int = N_ANGLES) -> Verification:
    """Load an InceptionV1 weight file (.pth, .safetensors, Lucid's .pb, an edited model) and verify it.

    Returns the `Verification` whether it passed or not (the CLI prints its table).

    >>> verify_file("inception5h.pth").passed       # doctest: +SKIP
    True
    """
    from .registry import graph_of, model

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such weight file: {path}")
    g = graph_of(path)
    if g.name != "InceptionV1":
        raise ValueError(
            f"{path} holds {g.name} weights; verification measures InceptionV1's published mixed3b curve units"
        )
    return verify_model(model(path), n_angles=n_angles)
