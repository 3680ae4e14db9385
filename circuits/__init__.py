"""Circuit-level interpretability of Lucid's InceptionV1.

Example:
    >>> import weights
    >>> from circuits import ablate
    >>> model = weights.model("handbuilt")                   # doctest: +SKIP
    >>> with model.hooks(ablate("mixed3b:379")):             # doctest: +SKIP
    ...     out = model.run(x, until="mixed4a")
"""

import os

# With 2 cores shared with other work, OpenMP threads that spin while waiting make
# every convolution 5-20x slower and erratic; passive waiting costs nothing when the
# cores are free. Only effective if torch is not imported yet; a user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from circuits.core import graph  # noqa: E402
from circuits.analysis.ablation import ablate  # noqa: E402
from circuits.core.inputs import from_model_input, to_model_input  # noqa: E402
from circuits.core.model import InceptionV1, InceptionV3, StateDictError, check_state_dict  # noqa: E402
from circuits.core.units import Unit, parse_unit, resolve_units  # noqa: E402

__all__ = [
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
]
