"""Tuning with synthetic stimuli: the stimuli, the receptive-field cone, responses and
radial tuning curves, their metrics, the published reference curves and the comparison.

Example:
    >>> from circuits.tuning import radial_tuning, curve
"""

from circuits.tuning.measure import *  # noqa: F401,F403 - the public tuning API
from circuits.tuning.measure import __all__ as _measure_all
from circuits.tuning.stimuli import angle, curve, edge, line, rounded_angle

__all__ = [*_measure_all, "angle", "curve", "edge", "line", "rounded_angle"]
