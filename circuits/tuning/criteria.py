"""What counts as a curve detector: the named thresholds of discovery and the sweep's defaults.

Kept apart from the sweep itself (`circuits.tuning.discover`) so that the command line can
show the defaults without importing torch.

Example:
    >>> Criteria().max_echo
    0.25
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the scores are defined where they are measured
    from circuits.tuning.discover import UnitScore

__all__ = ["Criteria", "DEFAULT_ORIENTATIONS", "DEFAULT_CURVATURES", "FAMILY_ALIAS", "ANGLE_OPENING"]

# 36 orientations (10-degree steps, finer than the narrowest published curve's FWHM of
# 28 degrees) x 4 curvatures from a quarter to a half circle.
DEFAULT_ORIENTATIONS = 36
DEFAULT_CURVATURES: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
FAMILY_ALIAS = "curves_found"
ANGLE_OPENING = 90.0  # degrees between the arms of the angle controls


@dataclass(frozen=True)
class Criteria:
    """The thresholds a unit must meet to count as a curve detector; defaults from "Curve Detectors".

    min_peak: the radial tuning curve's peak (post-ReLU, mean over curvature) must
        exceed this; 0 only excludes units that never respond to a curve.
    min_fwhm_deg: a response to a single orientation sample is not a range of
        orientations: the narrowest published mixed3b curve is 28 degrees wide, 20 is
        two samples of the default sweep. (Without it, 1 of 2400 units of five random
        networks passed, with FWHM 11: see experiments/bench_discover.py.)
    max_fwhm_deg: orientation selectivity. Published mixed3b curves have FWHM 28-69
        degrees; 120 admits twice the broadest while rejecting units that respond to
        a third of the circle or more.
    contiguous: the orientations at or above half the peak must form one arc (the
        article's "contiguous range of orientations").
    max_line_ratio: best straight-line response / curve peak. The article: lines
        excite curve detectors weakly; the published 3b curves and the hand-built
        ones give about 0.1. 0.5 asks only that a curve beats any line by 2x.
    max_sharp_angle_ratio: best sharp 90-degree angle / curve peak; below 1 means
        curves > sharp angles (the article: angles respond less, rounded ones more).
    max_edge_ratio: best straight edge / curve peak; curve detectors are not edge
        detectors (an edge is the limit of a filled curve of zero curvature). 1.0:
        the edge must not beat the curve.
    min_curvature_tolerance: at the preferred orientation, mean over curvatures of
        the response / the best curvature's. The article: curve detectors respond
        across radii ("fairly invariant"); 1 is flat, 1/len(curvatures) responds to
        one radius only. 0.5 rejects units tuned to one radius of four.
    max_echo: response within 45 degrees of the opposite orientation / peak. mixed3b
        curves have echoes <= 0.03, mixed3a's 0.13-0.53; 0.25 keeps 3b-like units.
        Set it to 1 to admit early curves with echoes.
    min_polarity: min(white-on-black, black-on-white) / max of their radial peaks.
        The article: curve detectors respond to both contrasts; 0.5 allows a factor 2.
    """

    min_peak: float = 0.0
    min_fwhm_deg: float = 20.0
    max_fwhm_deg: float = 120.0
    contiguous: bool = True
    max_line_ratio: float = 0.5
    max_sharp_angle_ratio: float = 1.0
    max_edge_ratio: float = 1.0
    min_curvature_tolerance: float = 0.5
    max_echo: float = 0.25
    min_polarity: float = 0.5

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "contiguous":
                if not isinstance(v, bool):
                    raise ValueError(f"Criteria.contiguous must be True or False, got {v!r}")
                continue
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0):
                raise ValueError(f"Criteria.{f.name} must be a finite number >= 0, got {v!r}")

    def failures(self, s: "UnitScore") -> list[str]:
        """Why `s` is not a curve detector (empty: it is), one short reason per failed criterion."""
        if not s.peak > self.min_peak:
            return [f"no response to curves (peak {s.peak:.3g} <= {self.min_peak:g})"]
        out = []

        def high(name, value, limit, what):
            if not value <= limit:  # NaN fails too
                out.append(f"{what} {name} {value:.2f} > {limit:g}")

        def low(name, value, limit, what):
            if not value >= limit:
                out.append(f"{what} {name} {value:.2f} < {limit:g}")

        high("fwhm", s.fwhm_deg, self.max_fwhm_deg, "broad:")
        low("fwhm", s.fwhm_deg, self.min_fwhm_deg, "narrow:")
        if self.contiguous and not s.contiguous:
            out.append(f"not contiguous: {s.n_lobes} orientation ranges above half max")
        high("line/curve", s.line_ratio, self.max_line_ratio, "lines:")
        high("angle/curve", s.sharp_angle_ratio, self.max_sharp_angle_ratio, "angles:")
        high("edge/curve", s.edge_ratio, self.max_edge_ratio, "edges:")
        low("curvature tolerance", s.curvature_tolerance, self.min_curvature_tolerance, "radius-specific:")
        high("echo", s.echo, self.max_echo, "echo:")
        low("polarity", s.polarity, self.min_polarity, "polarity:")
        return out
