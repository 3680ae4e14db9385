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
from typing import Callable

import torch

from circuits import graph
from circuits.core.model import InceptionV1, Network, check_state_dict

__all__ = ["DEFAULT", "register", "sources", "load", "model", "network_of"]

DEFAULT = "handbuilt"

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Source:
    name: str
    fn: Callable[[], StateDict]
    description: str
    # The model class the state dict is for (its graph checks the keys and shapes).
    network: type[Network] = InceptionV1


_SOURCES: dict[str, Source] = {}

# Modules that register built-in sources when first needed (kept lazy so that
# importing `weights` stays cheap and free of cycles).
_BUILTIN_MODULES = ("weights.builtin",)


def register(name: str, fn: Callable[[], StateDict], description: str = "",
             network: type[Network] = InceptionV1) -> None:
    """Register a weight source: `fn()` returns a state dict with the keys of `network`'s graph."""
    if not name or os.sep in name or name.endswith((".pth", ".pt", ".safetensors", ".pb")):
        raise ValueError(f"bad source name {name!r}: names are short words, files are given by path")
    _SOURCES[name] = Source(name, fn, description, network)


def _ensure_builtins() -> None:
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)


def sources() -> dict[str, str]:
    """Registered names and their descriptions."""
    _ensure_builtins()
    return {s.name: s.description for s in _SOURCES.values()}


def load(source: str | os.PathLike = DEFAULT) -> StateDict:
    """A checked state dict from a registered name or a file path.

    >>> sd = load("random")
    >>> len(sd)
    116
    """
    _ensure_builtins()
    key = os.fspath(source)
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
            f"unknown weight source {key!r}: not a registered name ({', '.join(sorted(_SOURCES))}) "
            f"and no such file.{hint} A file is an inception5h.pth, a .safetensors or Lucid's .pb"
        )
    check_state_dict(sd, network_of(key).graph)
    return sd


def network_of(source: str | os.PathLike) -> type[Network]:
    """The model class a source's weights are for (files: InceptionV1).

    >>> network_of("random").__name__
    'InceptionV1'
    """
    _ensure_builtins()
    s = _SOURCES.get(os.fspath(source))
    return s.network if s else InceptionV1


def model(source: str | os.PathLike = DEFAULT) -> Network:
    """A ready model (eval mode) with the weights of `source`: the source's network class
    (InceptionV1 unless it was registered with another).

    An edited model saved by `weights.edited.save_edited` comes back with its edits.
    """
    key = os.fspath(source)
    if os.path.isfile(key) and key not in _SOURCES:
        from .edited import is_edited_file, load_edited

        if is_edited_file(key):
            return load_edited(key)
    m = network_of(source)(load(source)).eval()
    m.source = os.fspath(source)
    return m


def random_state_dict(seed: int = 0, scale: float = 1.0) -> StateDict:
    """Deterministic random weights (He-scaled normal), for tests and baselines."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in graph.parameter_shapes().items():
        if k.endswith(".bias"):
            out[k] = torch.zeros(shape)
        else:
            fan_in = int(torch.tensor(shape[1:]).prod())
            out[k] = torch.randn(shape, generator=g) * scale * (2.0 / fan_in) ** 0.5
    return out
