"""Weight files on disk: `.pth`/`.pt`, `.safetensors` and Lucid's GraphDef `.pb`.

Every loaded dict is checked against the graph (`circuits.core.model.check_state_dict`),
and files are written to a temporary file next to the target, then renamed, so a
failed save never leaves a half-written file.

Example:
    >>> import torch
    >>> from weights import checkpoint, registry
    >>> sd = registry.random_state_dict()
    >>> checkpoint.save_safetensors(sd, "/tmp/w.safetensors", {"source": "random"})
    >>> checkpoint.read_metadata("/tmp/w.safetensors")["source"]
    'random'
    >>> back = checkpoint.load_file("/tmp/w.safetensors")
    >>> all(torch.equal(back[k], sd[k]) for k in sd)
    True
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Callable, Mapping

import torch

from circuits.core.files import atomic_path  # noqa: F401  (re-exported)
from circuits.core.graph import INCEPTION_V1
from circuits.core.model import StateDictError, check_state_dict

__all__ = ["CheckpointError", "load_file", "save_safetensors", "read_metadata", "atomic_path", "SUFFIXES"]

StateDict = dict[str, torch.Tensor]

# Keys under which training scripts commonly wrap the real state dict.
_WRAPPER_KEYS = ("state_dict", "model")


class CheckpointError(ValueError):
    """A weight file that cannot be read (wrong format, truncated, corrupt or unsafe)."""


def _unwrap(obj: object, path: Path) -> Mapping[str, torch.Tensor]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict (a dict of tensors)")
    if not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                return obj[key]
    return obj


# What a file torch.save wrote starts with: a zip archive (the default since torch 1.6)
# or, in the legacy format, a pickle (protocol 2 or later opens with 0x80).
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"


def _sniff_torch(path: Path) -> None:
    """Refuse a file that is neither of torch.save's formats, saying what it is not."""
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        raise CheckpointError(f"{path} is empty (0 bytes): not a PyTorch checkpoint")
    if not (head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_MAGIC)):
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint: torch.save writes a zip archive (starting 'PK') or a pickle "
            f"(starting 0x80), and this file starts with bytes {head.hex(' ')}; is it another format, "
            "or damaged?"
        )


def _load_torch(path: Path) -> Mapping[str, torch.Tensor]:
    _sniff_torch(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" not in str(e):
            raise CheckpointError(f"{path} is truncated or corrupt ({_first_line(e)})") from e
        found = re.search(r"GLOBAL (\S+)", str(e))
        what = f" ({found.group(0)})" if found else ""
        raise CheckpointError(
            f"refused to load {path}: it contains pickled Python objects{what}, not only tensors, and "
            "unpickling them could run arbitrary code. .pth files are read with torch.load(weights_only=True); "
            "if you trust the file, re-save its state dict as .safetensors with save_safetensors()"
        ) from None
    except Exception as e:  # torch raises RuntimeError, EOFError, OSError, ... for damaged files
        raise CheckpointError(f"{path} is truncated or corrupt ({_first_line(e)})") from e
    return _unwrap(obj, path)


def _load_safetensors(path: Path) -> Mapping[str, torch.Tensor]:
    from safetensors.torch import load_file as st_load

    try:
        return st_load(path, device="cpu")
    except Exception as e:  # SafetensorError is not exported as a stable name
        raise CheckpointError(f"{path} is truncated or corrupt ({_first_line(e)})") from e


def _load_pb(path: Path) -> Mapping[str, torch.Tensor]:
    from .lucid_pb import load_pb

    return load_pb(path)


SUFFIXES: dict[str, Callable[[Path], Mapping[str, torch.Tensor]]] = {
    ".pth": _load_torch,
    ".pt": _load_torch,
    ".safetensors": _load_safetensors,
    ".pb": _load_pb,
}


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def load_file(path: str | os.PathLike) -> StateDict:
    """A checked state dict from a `.pth`/`.pt`, `.safetensors` or Lucid `.pb` file.

    A `.pth` may hold the state dict itself (as `inception5h.pth` does) or wrap it
    under "state_dict" or "model". Pickled code is refused.

    >>> sd = load_file("inception5h.pth")              # doctest: +SKIP
    >>> sd["conv2d0_pre_relu_conv.weight"].shape      # doctest: +SKIP
    torch.Size([64, 3, 7, 7])
    """
    path = Path(path)
    loader = SUFFIXES.get(path.suffix.lower())
    if loader is None:
        raise CheckpointError(
            f"cannot read {path}: unknown suffix {path.suffix!r}; accepted: {', '.join(SUFFIXES)}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"no such weight file: {path}")
    sd = dict(loader(path))
    try:
        check_state_dict(sd, INCEPTION_V1)
    except StateDictError as e:
        raise StateDictError(f"{path}: {e}") from None
    from .registry import NonFiniteWeightsError, check_finite

    try:
        check_finite(sd)
    except NonFiniteWeightsError as e:
        raise NonFiniteWeightsError(f"{path}: {e}") from None
    return sd


def save_safetensors(
    state_dict: Mapping[str, torch.Tensor],
    path: str | os.PathLike,
    metadata: dict[str, str] | None = None,
) -> None:
    """Write a checked state dict as `.safetensors`, atomically (temp file, then rename).

    >>> save_safetensors(weights.load("random"), "random.safetensors", {"seed": "0"})   # doctest: +SKIP
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"save_safetensors writes .safetensors files, got {path}")
    check_state_dict(state_dict, INCEPTION_V1)
    metadata = dict(metadata or {})
    bad = {k: v for k, v in metadata.items() if not (isinstance(k, str) and isinstance(v, str))}
    if bad:
        raise TypeError(f"safetensors metadata must map str to str, got {bad!r}")
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The str -> str metadata stored in a `.safetensors` file ({} if none)."""
    from safetensors import safe_open

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"only .safetensors files carry metadata, got {path}")
    try:
        with safe_open(path, framework="pt") as f:
            return dict(f.metadata() or {})
    except FileNotFoundError:
        raise
    except Exception as e:
        raise CheckpointError(f"{path} is truncated or corrupt ({_first_line(e)})") from e
