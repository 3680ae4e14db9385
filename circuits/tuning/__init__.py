"""Tuning with synthetic stimuli: the stimuli, the receptive-field cone, responses and
radial tuning curves, their metrics, the published reference curves and the comparison.

The names below are imported on first use (PEP 562), so that importing a light module
of the package (e.g. `circuits.tuning.criteria` for the command line) does not import torch.

Example:
    >>> from circuits.tuning import radial_tuning, curve
"""

import importlib

_MEASURE = (
    "DEFAULT_CURVATURES", "responses", "radial_tuning", "response_map", "orientation_curvature_map",
    "RadialTuning", "ResponseMap", "input_size_for", "check_receptive_field", "default_curve_params", "read_name",
)
_STIMULI = ("angle", "curve", "edge", "line", "rounded_angle")

__all__ = [*_MEASURE, *_STIMULI]


def __getattr__(name: str):
    if name in _MEASURE or name in _STIMULI:
        module = importlib.import_module("circuits.tuning." + ("measure" if name in _MEASURE else "stimuli"))
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'circuits.tuning' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
