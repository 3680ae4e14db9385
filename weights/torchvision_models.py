"""torchvision's classifiers as weight sources: ``torchvision:NAME[:random[:SEED] | :FILE]``.

- ``torchvision:resnet50``: torchvision's pretrained weights (its default ImageNet set),
  through torchvision's own download and cache (``torch.hub.get_dir()``); offline, and
  not cached, a clear error says how to use a local file instead.
- ``torchvision:resnet50:random`` (``:random:SEED``): torchvision's own random
  initialisation, seeded (seed 0 by default), for tests and baselines.
- ``torchvision:resnet50:FILE.pth`` (the command line's ``--weights FILE.pth --arch
  torchvision:resnet50``): a checkpoint of that architecture (a fine-tuned model), a
  state dict loaded strictly into torchvision's module.

The module is traced (`circuits.core.trace.trace`) with the architecture's own
preprocessing (its weights' transforms: ImageNet mean and std; GoogLeNet's and
InceptionV3's ``transform_input`` folded into it), so the network takes RGB in
[0, 1] and stimuli, feature visualization and dataset scans render into what the
module expects. Every source of one architecture shares one graph (traced once), so
units resolved against ``graph("resnet50")`` are units of every such model.

Example:
    >>> m = model("torchvision:resnet18:random")      # doctest: +SKIP
    >>> m.unit("layer3:17").layer, m.input_range      # doctest: +SKIP
    ('layer3', (0.0, 1.0))
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

__all__ = ["PREFIX", "Spec", "parse", "is_torchvision", "graph", "model", "preprocessing", "OfflineError"]

PREFIX = "torchvision:"


class OfflineError(RuntimeError):
    """torchvision's pretrained weights could not be downloaded (and are not cached)."""


@dataclass(frozen=True)
class Spec:
    """A parsed ``torchvision:`` source: the architecture and where its weights come from."""

    arch: str
    kind: str  # "pretrained", "random" or "file"
    seed: int = 0
    path: str | None = None


def is_torchvision(source) -> bool:
    return isinstance(source, str) and source.startswith(PREFIX)


def _architectures() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def parse(source: str) -> Spec:
    """The architecture and weights a ``torchvision:`` source names.

    >>> parse("torchvision:resnet18:random:3")
    Spec(arch='resnet18', kind='random', seed=3, path=None)
    >>> parse("torchvision:resnet18:ft.pth").kind
    'file'
    """
    rest = source[len(PREFIX):] if is_torchvision(source) else source
    arch, _, tail = rest.partition(":")
    if not arch:
        raise ValueError(f"bad weight source {source!r}: expected torchvision:NAME, e.g. torchvision:resnet50")
    known = _architectures()
    if arch not in known:
        import difflib

        close = difflib.get_close_matches(arch, known, n=4)
        raise ValueError(f"unknown torchvision architecture {arch!r} in {source!r}"
                         + (f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known)}"))
    if not tail:
        return Spec(arch, "pretrained")
    if tail == "random" or tail.startswith("random:"):
        seed = tail.partition(":")[2] or "0"
        if not seed.isdigit():
            raise ValueError(f"bad seed {seed!r} in {source!r}: expected torchvision:{arch}:random:SEED (an integer)")
        return Spec(arch, "random", int(seed))
    return Spec(arch, "file", path=tail)


def _weights_enum(arch: str):
    import torchvision

    return torchvision.models.get_model_weights(arch).DEFAULT


def preprocessing(arch: str) -> tuple[tuple[float, ...], tuple[float, ...], int]:
    """(mean, std, crop size) of the architecture's default weights' transforms.

    >>> preprocessing("inception_v3")
    ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 299)
    """
    t = _weights_enum(arch).transforms()
    return tuple(t.mean), tuple(t.std), int(t.crop_size[0])


# Architectures whose builder needs these to build without (or before) their weights.
_BUILD = {"googlenet": {"aux_logits": False, "init_weights": True}, "inception_v3": {"aux_logits": False, "init_weights": True}}


def _module(spec: Spec):
    """The torchvision module (eval mode) with the spec's weights."""
    import torch
    import torchvision

    if spec.kind == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            return torchvision.models.get_model(spec.arch, weights=None, **_BUILD.get(spec.arch, {})).eval()
    if spec.kind == "pretrained":
        w = _weights_enum(spec.arch)
        try:
            return torchvision.models.get_model(spec.arch, weights=w).eval()
        except (OSError, RuntimeError) as e:  # URLError is an OSError
            if not isinstance(e, OSError) and "download" not in str(e).lower() and "url" not in str(e).lower():
                raise
            cache = os.path.join(torch.hub.get_dir(), "checkpoints")
            raise OfflineError(
                f"cannot download torchvision's {spec.arch} weights ({w.url}): {type(e).__name__}: {e}. "
                f"Without internet, fetch that file elsewhere and either put it in {cache} (torchvision's cache, "
                f"used from then on) or pass it: --weights {os.path.basename(w.url)} --arch {PREFIX}{spec.arch} "
                f"(in Python: weights.model('{PREFIX}{spec.arch}:FILE.pth'))"
            ) from None
    path = spec.path
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint file {path!r} for {PREFIX}{spec.arch} (a .pth state dict is expected)")
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]  # a training checkpoint that wraps the state dict
    if not isinstance(sd, dict):
        raise ValueError(f"{path} holds a {type(sd).__name__}, not a state dict of {spec.arch}")
    module = torchvision.models.get_model(spec.arch, weights=None, **_checkpoint_build(spec.arch, sd))
    try:
        module.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path} is not a checkpoint of torchvision's {spec.arch}: {e}") from None
    return module.eval()


def _checkpoint_build(arch: str, sd: dict) -> dict:
    """Builder options matching a checkpoint (GoogLeNet/InceptionV3 saved with or without aux heads)."""
    if arch == "googlenet":
        return {"aux_logits": any(k.startswith("aux1.") for k in sd), "init_weights": False}
    if arch == "inception_v3":
        return {"aux_logits": any(k.startswith("AuxLogits.") for k in sd), "init_weights": False}
    return {}


def _trace(module, arch: str, graph_=None, source: str | None = None):
    from circuits.core.trace import trace

    mean, std, size = preprocessing(arch)
    if getattr(module, "transform_input", False):
        # GoogLeNet/InceptionV3 re-normalize ImageNet-normalized input to (x - 0.5) / 0.5
        # inside forward (with channel slicing that would trace to opaque nodes): the
        # whole preprocessing is then that one affine map.
        module.transform_input = False
        mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    return trace(module, name=arch, input_size=size, normalize=(mean, std), graph=graph_, source=source)


@functools.lru_cache(maxsize=None)
def graph(arch: str):
    """The graph every ``torchvision:ARCH`` model shares (traced once, from a random module)."""
    return _trace(_module(Spec(arch, "random")), arch).graph


@functools.lru_cache(maxsize=4)
def _traced(spec: Spec, stamp, source: str):
    return _trace(_module(spec), spec.arch, graph(spec.arch), source)


def model(source: str):
    """A traced network (eval mode) for a ``torchvision:`` source; its graph is `graph(arch)`.

    Each call returns a new model (a copy of the one traced for this source, which is
    kept: tracing takes seconds; a checkpoint file is re-read when it changes)."""
    import copy

    spec = parse(source)
    stamp = None
    if spec.kind == "file" and os.path.isfile(spec.path):
        st = os.stat(spec.path)
        stamp = (st.st_mtime_ns, st.st_size)
    return copy.deepcopy(_traced(spec, stamp, source))
