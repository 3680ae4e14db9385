"""Circuit-level interpretability of Lucid's InceptionV1.

Example:
    >>> import weights
    >>> from circuits import ablate
    >>> model = weights.model("handbuilt")                   # doctest: +SKIP
    >>> with model.hooks(ablate("mixed3b:379", model=model)):             # doctest: +SKIP
    ...     out = model.run(x, until="mixed4a")
"""

import os

#: The version of the distribution (circuits-vision): pyproject.toml reads it from here.
__version__ = "0.1.0"

# With 2 cores shared with other work, OpenMP threads that spin while waiting make
# every convolution 5-20x slower and erratic; passive waiting costs nothing when the
# cores are free. Only effective if torch is not imported yet; a user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Names are imported on first use (PEP 562), so that `import circuits` (and the
# command line's --help, `layers`, `unit`, `families`) does not import torch.
_EXPORTS = {
    "graph": ("circuits.core.graph", None),
    "ablate": ("circuits.analysis.ablation", "ablate"),
    "from_model_input": ("circuits.core.inputs", "from_model_input"),
    "to_model_input": ("circuits.core.inputs", "to_model_input"),
    "Network": ("circuits.core.model", "Network"),
    "InceptionV1": ("circuits.core.model", "InceptionV1"),
    "InceptionV3": ("circuits.core.model", "InceptionV3"),
    "StateDictError": ("circuits.core.model", "StateDictError"),
    "check_state_dict": ("circuits.core.model", "check_state_dict"),
    "Unit": ("circuits.core.units", "Unit"),
    "parse_unit": ("circuits.core.units", "parse_unit"),
    "resolve_units": ("circuits.families", "resolve_units"),
    "trace": ("circuits.core.trace", "trace"),
}


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        module, attr = _EXPORTS[name]
        value = importlib.import_module(module)
        value = value if attr is None else getattr(value, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'circuits' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "__version__",
    "graph",
    "InceptionV1",
    "InceptionV3",
    "StateDictError",
    "check_state_dict",
    "Unit",
    "parse_unit",
    "resolve_units",
    "ablate",
    "to_model_input",
    "from_model_input",
    "trace",
]
