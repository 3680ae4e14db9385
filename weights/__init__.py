"""Where weight sets come from, with one API for each.

`load(source)` returns a checked state dict; `model(source)` a ready InceptionV1.
A source is a registered name (`lucid`, `lucid-pb`, `handbuilt`, ...) or a path to an
`inception5h.pth`, a `.safetensors` file with the same keys, or Lucid's GraphDef `.pb`.

Example:
    >>> import weights
    >>> sorted(weights.sources())                    # doctest: +SKIP
    ['handbuilt', 'lucid', 'lucid-pb', 'random']
    >>> m = weights.model("handbuilt")               # doctest: +SKIP
"""

from .registry import DEFAULT, load, model, register, sources

__all__ = ["DEFAULT", "load", "model", "register", "sources"]
