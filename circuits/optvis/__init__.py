"""Feature visualization for the declared networks (InceptionV1, InceptionV3), laid out like Lucid's `optvis`.

- `param`: image parameterizations (pixel, Fourier with 1/f scaling, colour decorrelation);
- `transform`: random pad/jitter/scale/rotate, Lucid's standard set;
- `objectives`: channel, neuron, direction, diversity, family, attribution; composable;
- `render`: the Adam loop, truncated at the objective's layer, hooks always removed;
  images in [0, 1] are converted to the model's input range (`model.input_range`).

Example:
    >>> import weights
    >>> from circuits import optvis
    >>> model = weights.model("random")
    >>> obj = optvis.objectives.neuron("mixed3a", 81, model=model)
    >>> r = optvis.render(model, obj, optvis.param.image(64), steps=2, progress=False)
    >>> r.final.shape
    torch.Size([1, 3, 64, 64])
"""

from . import objectives, param, transform
from .objectives import Objective, as_objective
from .param import image
from .render import NonFiniteObjectiveError, RenderResult, evaluate, render, save_png

__all__ = [
    "objectives",
    "param",
    "transform",
    "Objective",
    "as_objective",
    "image",
    "render",
    "evaluate",
    "RenderResult",
    "NonFiniteObjectiveError",
    "save_png",
]
