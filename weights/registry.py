"""Registered weight sources by name, and files by path.

Example:
    >>> from weights import registry
    >>> registry.register("zeros", lambda: {k: torch.zeros(s) for k, s in graph.parameter_shapes().items()},
    ...                   "all-zero weights")   # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import importlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from circuits.core import graph

if TYPE_CHECKING:  # torch is imported where weights are built, not to list sources
    from circuits.core.model import Network

__all__ = [
    "DEFAULT", "register", "sources", "load", "model", "network_of", "graph_of", "source_families", "check_finite",
    "NonFiniteWeightsError",
]

DEFAULT = "handbuilt"

class NonFiniteWeightsError(ValueError):
    """A weight set with NaN or infinite values (refused at load, naming the tensors)."""


@dataclass(frozen=True)
class Source:
    name: str
    fn: Callable[[], dict]
    description: str
    # Registers and returns the families this network defines (its own banks), if any.
    families: Callable[[], list] | None = None
    # The model class (of circuits.core.model) the state dict is for; its graph checks
    # the keys and shapes. A name, so that listing sources does not import torch.
    network: str = "InceptionV1"


_SOURCES: dict[str, Source] = {}

# Modules that register built-in sources when first needed (kept lazy so that
# importing `weights` stays cheap and free of cycles).
_BUILTIN_MODULES = ("weights.builtin",)


def register(
    name: str, fn: Callable[[], dict], description: str = "", *, families: Callable[[], list] | None = None,
    network: str = "InceptionV1",
) -> None:
    """Register a weight source: `fn()` returns a state dict with the keys of `network`'s graph
    (`network`: a model class of circuits.core.model, e.g. "InceptionV3").

    families: a function that returns the families the network defines (made with
    `circuits.families.make_family(..., source=name)`); it is
    called when the source's model is loaded, or when a command needs its family
    names before that (`source_families`).
    """
    if not isinstance(name, str) or not name or os.sep in name or name.endswith((".pth", ".pt", ".safetensors", ".pb")):
        raise ValueError(f"bad source name {name!r}: names are short words, files are given by path")
    _SOURCES[name] = Source(name, fn, description, families, network)


def _is_torchvision(key: str) -> bool:
    return key.startswith("torchvision:")


def _key(source) -> str:
    """The source as a string key; a clear TypeError for anything that is neither name nor path."""
    if isinstance(source, (str, os.PathLike)):
        key = os.fspath(source)
        if isinstance(key, str):
            return key
    raise TypeError(
        f"weight source must be a registered name or a file path (str or os.PathLike), "
        f"got {type(source).__name__} {source!r}; e.g. weights.model('handbuilt')"
    )


def source_families(source: str | os.PathLike = DEFAULT) -> list:
    """The families that the network of `source` defines (new Family objects each call), e.g.
    the hand-built banks ``mixed3a:hb_early_curve_bank``; the model built from the source
    holds them. Published families belong to their graph; files and sources without
    families of their own give [].

    >>> [f.id for f in source_families("handbuilt")][-1]
    'mixed3b:hb_curves'
    >>> source_families("random")
    []
    """
    _ensure_builtins()
    s = _SOURCES.get(_key(source))
    if s is None or s.families is None:
        return []
    return list(s.families())


def check_finite(state_dict) -> None:
    """Raise NonFiniteWeightsError naming every tensor that holds NaN or infinity.

    >>> import torch
    >>> check_finite({"conv2d0_pre_relu_conv.bias": torch.tensor([0.0, float("nan")])})
    Traceback (most recent call last):
    ...
    weights.registry.NonFiniteWeightsError: refused: non-finite weights (NaN or inf) in conv2d0_pre_relu_conv.bias (1 of 2 values); a network with them computes NaN everywhere
    """
    import torch

    bad = []
    for k, v in state_dict.items():
        if torch.is_tensor(v) and torch.is_floating_point(v):
            n = int((~torch.isfinite(v)).sum())
            if n:
                bad.append(f"{k} ({n} of {v.numel()} values)")
    if bad:
        shown = ", ".join(bad[:6]) + (f", and {len(bad) - 6} more" if len(bad) > 6 else "")
        raise NonFiniteWeightsError(
            f"refused: non-finite weights (NaN or inf) in {shown}; a network with them computes NaN everywhere"
        )


def _ensure_builtins() -> None:
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)


def sources() -> dict[str, str]:
    """Registered names and their descriptions."""
    _ensure_builtins()
    return {s.name: s.description for s in _SOURCES.values()}


def load(source: str | os.PathLike = DEFAULT) -> dict:
    """A checked state dict from a registered name or a file path.

    >>> sd = load("random")
    >>> len(sd)
    116
    """
    _ensure_builtins()
    key = _key(source)
    if _is_torchvision(key):
        return dict(model(key).state_dict())
    if key in _SOURCES:
        sd = _SOURCES[key].fn()
    elif os.path.isfile(key):
        from .checkpoint import load_file
        from .edited import is_edited_file

        if is_edited_file(key):
            raise ValueError(
                f"{key} is an edited model (it carries an edit log): load it with weights.model({key!r}) "
                "or weights.edited.load_edited, which re-apply and check its edits"
            )
        sd = load_file(key)
    else:
        close = difflib.get_close_matches(key, list(_SOURCES), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise FileNotFoundError(
            f"unknown weight source {key!r}: not a registered name ({', '.join(sorted(_SOURCES))}), "
            f"not torchvision:NAME[:random] and no such file.{hint} A file is an inception5h.pth, a "
            ".safetensors or Lucid's .pb (a torchvision checkpoint: FILE.pth with --arch torchvision:NAME)"
        )
    from circuits.core.model import check_state_dict

    check_state_dict(sd, network_of(key).graph)
    try:
        check_finite(sd)
    except NonFiniteWeightsError as e:
        raise NonFiniteWeightsError(f"{key}: {e}") from None
    return sd


def network_of(source: str | os.PathLike) -> type["Network"]:
    """The model class a source's weights are for (files: InceptionV1).

    >>> network_of("random").__name__, network_of("nsfwjs-inception-v3").__name__
    ('InceptionV1', 'InceptionV3')
    """
    from circuits.core import model as models

    _ensure_builtins()
    key = _key(source)
    s = _SOURCES.get(key)
    return getattr(models, s.network if s else _file_network(key))


#: the .safetensors metadata key that names the network a file's weights are for
NETWORK_KEY = "circuits.network"


def _file_network(path: str) -> str:
    """The network a weight file is for: its .safetensors metadata says so (`NETWORK_KEY`,
    written with edited models), otherwise InceptionV1. Reads only the header (no torch)."""
    import json
    import struct

    if not (path.endswith(".safetensors") and os.path.isfile(path)):
        return "InceptionV1"
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(min(n, 100_000_000)))
        return str(header.get("__metadata__", {}).get(NETWORK_KEY, "InceptionV1"))
    except (OSError, ValueError, struct.error, AttributeError):
        return "InceptionV1"  # a corrupt file: the loader reports it properly


def graph_of(source: str | os.PathLike):
    """The graph of the network a source's weights are for, without importing torch
    (except for ``torchvision:`` sources, whose graph is traced once per architecture).

    >>> graph_of("nsfwjs-inception-v3").name
    'InceptionV3'
    """
    from circuits.core.networks import graph_named

    _ensure_builtins()
    key = _key(source)
    if _is_torchvision(key):
        from . import torchvision_models

        return torchvision_models.graph(torchvision_models.parse(key).arch)
    s = _SOURCES.get(key)
    return graph_named(s.network if s else _file_network(key))


def model(source: str | os.PathLike = DEFAULT) -> "Network":
    """A ready model (eval mode) with the weights of `source`: the source's network class
    (InceptionV1 unless it was registered with another).

    An edited model saved by `weights.edited.save_edited` comes back with its edits.
    ``torchvision:NAME`` (pretrained), ``torchvision:NAME:random[:SEED]`` and
    ``torchvision:NAME:FILE.pth`` are torchvision's classifiers, traced
    (`weights.torchvision_models`).
    """
    key = _key(source)
    if _is_torchvision(key):
        from . import torchvision_models

        return torchvision_models.model(key)
    _ensure_builtins()
    if os.path.isfile(key) and key not in _SOURCES:
        from .edited import is_edited_file, load_edited

        if is_edited_file(key):
            return load_edited(key)
    # The families this network defines: they label its channels (circuits.families.labels).
    return network_of(key)(load(key), families=source_families(key), source=key).eval()


def random_state_dict(seed: int = 0, scale: float = 1.0, network=None) -> dict:
    """Deterministic random weights (He-scaled normal, zero biases) for `network`'s graph
    (InceptionV1 if None), for tests and baselines."""
    import torch

    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in (network or graph.INCEPTION_V1).parameter_shapes().items():
        if k.endswith(".bias"):
            out[k] = torch.zeros(shape)
        else:
            fan_in = int(torch.tensor(shape[1:]).prod())
            out[k] = torch.randn(shape, generator=g) * scale * (2.0 / fan_in) ** 0.5
    return out
