"""The published measurements of the original InceptionV1, when they are on this machine.

They live outside the project, in ``../shared/reference/`` next to the repository
(see its README.md): radial tuning curves of the mixed3a and mixed3b curve families
(``radial_tuning_curves.npz``) and their summary table (``tuning_table.csv``). The
environment variable ``CIRCUITS_REFERENCE`` points elsewhere. Nothing is copied into
the project; when the folder is absent every loader raises `ReferenceNotAvailable`
saying where it looked.

Example:
    >>> from circuits.tuning import reference
    >>> if reference.available():                                  # doctest: +SKIP
    ...     curve = reference.published_curve("mixed3b:379")      # 720 values, 0.5 degree steps
"""

from __future__ import annotations

import csv
import functools
import os
from pathlib import Path

import numpy as np

from circuits.core.graph import INCEPTION_V1
from circuits.core.units import Unit, parse_unit

__all__ = [
    "ReferenceNotAvailable",
    "reference_dir",
    "available",
    "published_angles",
    "published_curves",
    "published_curve",
    "published_units",
    "tuning_table",
    "compare_to_published",
]

CURVES_FILE = "radial_tuning_curves.npz"
TABLE_FILE = "tuning_table.csv"


class ReferenceNotAvailable(FileNotFoundError):
    """The published reference data is not on this machine."""


def reference_dir() -> Path:
    """Where the reference data is looked for: $CIRCUITS_REFERENCE, else ../shared/reference from the repository."""
    env = os.environ.get("CIRCUITS_REFERENCE")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "reference"


def _file(name: str) -> Path:
    path = reference_dir() / name
    if not path.is_file():
        raise ReferenceNotAvailable(
            f"published reference data is not available: {path} does not exist "
            "(it is looked for in ../shared/reference next to the repository, or in $CIRCUITS_REFERENCE)"
        )
    return path


def available() -> bool:
    """Whether the published curves and table can be loaded."""
    d = reference_dir()
    return (d / CURVES_FILE).is_file() and (d / TABLE_FILE).is_file()


@functools.lru_cache(maxsize=4)
def _load_curves(path: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    with np.load(path) as z:
        angles = np.asarray(z["angles_deg"], dtype=np.float64)
        curves: dict[str, np.ndarray] = {}
        for key in z.files:
            if key.endswith("_neurons"):
                layer = key[: -len("_neurons")]
                rows = np.asarray(z[f"{layer}_curves"], dtype=np.float64)
                for ch, row in zip(z[key].tolist(), rows):
                    curves[f"{layer}:{int(ch)}"] = row
    return angles, curves


def published_angles() -> np.ndarray:
    """Orientations of the published curves (degrees: 0, 0.5, ..., 359.5)."""
    return _load_curves(str(_file(CURVES_FILE)))[0].copy()


def published_curves(layer: str | None = None) -> dict[str, np.ndarray]:
    """{unit id: curve} of every published unit (of `layer` only, if given), in file order."""
    curves = _load_curves(str(_file(CURVES_FILE)))[1]
    return {k: v.copy() for k, v in curves.items() if layer is None or k.split(":")[0] == layer}


def published_units() -> list[str]:
    """Ids of the units with a published curve."""
    return list(_load_curves(str(_file(CURVES_FILE)))[1])


def published_curve(unit: str | Unit) -> np.ndarray | None:
    """The published radial tuning curve of `unit`, or None if that unit has none.

    The published curves are InceptionV1's: a unit of another network has none.
    Raises ReferenceNotAvailable when the reference data is not on this machine.
    """
    u = unit if isinstance(unit, Unit) else parse_unit(unit, INCEPTION_V1)  # an id here is InceptionV1's
    if u.network is not INCEPTION_V1:
        return None
    uid = u.id
    curve = _load_curves(str(_file(CURVES_FILE)))[1].get(uid)
    return None if curve is None else curve.copy()


@functools.lru_cache(maxsize=4)
def _load_table(path: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            uid = f"{row['layer']}:{int(row['neuron'])}"
            out[uid] = {
                "pref_deg": float(row["pref_deg"]),
                "peak": float(row["peak"]),
                "fwhm_deg": float(row["fwhm_deg"]),
                "echo": float(row["echo_max_rel_pm45"]),
            }
    return out


def tuning_table() -> dict[str, dict[str, float]]:
    """{unit id: {"pref_deg", "peak", "fwhm_deg", "echo"}} as published (tuning_table.csv)."""
    return {k: dict(v) for k, v in _load_table(str(_file(TABLE_FILE))).items()}


def compare_to_published(curves) -> dict[str, dict[str, float]]:
    """Each measured curve against the published one of the same unit, where there is one.

    curves: a `circuits.tuning.measure.RadialTuning` or {unit id: curve over the full circle}.
    Returns {unit id: {"pref_deg", "published_pref_deg", "angle_error", "correlation"}}
    (see `circuits.tuning.metrics`); units without a published curve are left out.

    >>> compare_to_published({"mixed3b:379": published_curve("mixed3b:379")})["mixed3b:379"]["correlation"]  # doctest: +SKIP
    1.0
    """
    from circuits.tuning.metrics import compare_curves, preferred_orientation

    if hasattr(curves, "units") and hasattr(curves, "curves"):
        if getattr(curves, "network", None) not in (None, INCEPTION_V1):
            return {}  # the published curves are InceptionV1's
        curves = dict(zip(curves.units, curves.curves))
    out: dict[str, dict[str, float]] = {}
    for unit, c in curves.items():
        ref = published_curve(unit)
        if ref is None:
            continue
        out[parse_unit(unit, INCEPTION_V1).id] = {
            "pref_deg": preferred_orientation(c),
            "published_pref_deg": preferred_orientation(ref),
            **compare_curves(c, ref),
        }
    return out
