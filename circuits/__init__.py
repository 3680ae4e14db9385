"""Circuit-level interpretability of Lucid's InceptionV1.

Example:
    >>> import weights
    >>> from circuits import ablate
    >>> model = weights.model("handbuilt")                   # doctest: +SKIP
    >>> with model.hooks(ablate("mixed3b:379")):             # doctest: +SKIP
    ...     out = model.run(x, until="mixed4a")
"""

from . import graph
from .ablation import ablate
from .inputs import from_model_input, to_model_input
from .model import InceptionV1, StateDictError, check_state_dict
from .units import Unit, parse_unit, resolve_units

__all__ = [
    "graph",
    "InceptionV1",
    "StateDictError",
    "check_state_dict",
    "Unit",
    "parse_unit",
    "resolve_units",
    "ablate",
    "to_model_input",
    "from_model_input",
]
