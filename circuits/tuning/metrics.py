"""Numbers that summarize a radial tuning curve, and how two curves compare.

A tuning curve is a 1-D array of responses sampled at equally spaced orientations
over the full circle, starting at 0 degrees (720 samples = 0.5 degree steps, as in the
published curves). Definitions (they reproduce ../shared/reference/tuning_table.csv
from the published curves exactly):

* preferred orientation: the angle of the largest sample (argmax; the first on ties;
  NaN for a constant curve, e.g. a unit that never fires).
* FWHM: width of the main lobe at half the peak: walk from the peak both ways to the
  first sample below half the peak, interpolate the crossing linearly between that
  sample and the one before it, and add the two half-widths. 360 if the curve never
  falls below half its peak.
* echo ratio: the largest value within ±45 degrees of the preferred orientation + 180,
  divided by the peak (3b curve detectors: <= 0.03; 3a early curves: 0.13-0.53).
* correlation: the Pearson correlation of two curves over their samples on the circle
  (each sample is one orientation, all weighted equally). It ignores the curves'
  scales and offsets, so a hand-built curve can be compared with a published one
  measured in other units. A constant curve has no defined correlation: NaN.
* peak-angle error: the difference of two preferred orientations, wrapped to [0, 180].

Example:
    >>> import numpy as np
    >>> a = np.deg2rad(np.arange(720) * 0.5)
    >>> curve = np.exp(20 * (np.cos(a - np.pi / 2) - 1))    # von Mises bump at 90 degrees
    >>> m = curve_metrics(curve)        # FWHM = 2 arccos(1 - ln 2 / 20) = 30.26 degrees
    >>> m.pref_deg, round(m.fwhm_deg, 2), round(m.echo, 6)
    (90.0, 30.26, 0.0)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "TuningMetrics",
    "angles_for",
    "preferred_orientation",
    "fwhm",
    "echo_ratio",
    "circular_correlation",
    "peak_angle_error",
    "curve_metrics",
    "compare_curves",
]

ECHO_WINDOW_DEG = 45.0


def _curve(curve) -> np.ndarray:
    c = np.asarray(curve, dtype=np.float64)
    if c.ndim != 1 or c.size < 4:
        raise ValueError(f"a tuning curve is a 1-D array of at least 4 samples over 360 degrees, got shape {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("a tuning curve must be finite (it has NaN or inf values)")
    return c


def angles_for(n: int) -> np.ndarray:
    """The orientations (degrees) of n equally spaced samples starting at 0: 0, 360/n, ...

    >>> angles_for(4).tolist()
    [0.0, 90.0, 180.0, 270.0]
    """
    return np.arange(n) * (360.0 / n)


def preferred_orientation(curve) -> float:
    """Orientation (degrees) of the largest sample; NaN for a constant curve (no preference)."""
    c = _curve(curve)
    if c.max() == c.min():
        return math.nan
    return float(angles_for(c.size)[int(np.argmax(c))])


def fwhm(curve) -> float:
    """Full width at half maximum of the main lobe, degrees (NaN for a curve whose peak is <= 0)."""
    c = _curve(curve)
    n, step = c.size, 360.0 / c.size
    p = int(np.argmax(c))
    peak = c[p]
    if peak <= 0:
        return math.nan
    half = peak / 2

    def half_width(direction: int) -> float | None:
        prev = peak
        for k in range(1, n):
            v = c[(p + direction * k) % n]
            if v < half:
                return (k - 1 + (prev - half) / (prev - v)) * step
            prev = v
        return None

    right, left = half_width(1), half_width(-1)
    if right is None or left is None:
        return 360.0
    return float(min(right + left, 360.0))


def echo_ratio(curve, window_deg: float = ECHO_WINDOW_DEG) -> float:
    """Largest value within ±window_deg of the preferred orientation + 180, over the peak (NaN if peak <= 0)."""
    c = _curve(curve)
    ang = angles_for(c.size)
    p = int(np.argmax(c))
    if c[p] <= 0:
        return math.nan
    opposite = (ang[p] + 180.0) % 360.0
    dist = np.abs((ang - opposite + 180.0) % 360.0 - 180.0)
    return float(max(c[dist <= window_deg + 1e-9].max(), 0.0) / c[p])


def circular_correlation(a, b) -> float:
    """Pearson correlation of two curves sampled at the same orientations (NaN if either is constant).

    >>> circular_correlation([0, 1, 2, 1], [0, 2, 4, 2])
    1.0
    """
    x, y = _curve(a), _curve(b)
    if x.size != y.size:
        raise ValueError(f"curves must have the same number of samples to be compared, got {x.size} and {y.size}")
    x, y = x - x.mean(), y - y.mean()
    den = math.sqrt(float((x * x).sum()) * float((y * y).sum()))
    if den == 0:
        return math.nan
    return float(np.clip((x * y).sum() / den, -1.0, 1.0))


def peak_angle_error(a, b) -> float:
    """Angle (degrees, in [0, 180]) between the preferred orientations of two curves.

    Either argument may be a curve or an angle in degrees.

    >>> peak_angle_error(350.0, 10.0)
    20.0
    """
    pa = float(a) if np.ndim(a) == 0 else preferred_orientation(a)
    pb = float(b) if np.ndim(b) == 0 else preferred_orientation(b)
    return float(abs((pa - pb + 180.0) % 360.0 - 180.0))


@dataclass(frozen=True)
class TuningMetrics:
    """Summary of one tuning curve (see the module docstring for the definitions)."""

    pref_deg: float
    peak: float
    fwhm_deg: float
    echo: float

    def as_dict(self) -> dict:
        return asdict(self)


def curve_metrics(curve) -> TuningMetrics:
    """Preferred orientation, peak, FWHM and echo ratio of one curve."""
    c = _curve(curve)
    return TuningMetrics(preferred_orientation(c), float(c.max()), fwhm(c), echo_ratio(c))


def compare_curves(curve, reference) -> dict[str, float]:
    """{"angle_error": degrees in [0, 180], "correlation": Pearson r} of `curve` against `reference`.

    Curves of different lengths are compared after resampling `curve` to the
    reference's orientations (linear interpolation on the circle).
    """
    c, r = _curve(curve), _curve(reference)
    if c.size != r.size:
        c = resample(c, r.size)
    return {"angle_error": peak_angle_error(c, r), "correlation": circular_correlation(c, r)}


def resample(curve, n: int) -> np.ndarray:
    """A curve resampled to n equally spaced orientations (linear interpolation on the circle)."""
    c = _curve(curve)
    src = angles_for(c.size)
    return np.interp(angles_for(n), np.append(src, 360.0), np.append(c, c[0]))
