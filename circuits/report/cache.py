"""The report's cache: each computation's result on disk, keyed by the weights and its settings.

A result is a JSON-able dict whose numpy arrays are stored beside it in an ``.npz``;
both are written atomically (`circuits.core.files.atomic_path`), the JSON last, so a
result is either whole or absent: an interrupted run recomputes only what it had not
finished. The key is a hash of the computation's name, the weights' fingerprint
(`fingerprint`: the network's name and every parameter's name, shape, dtype and bytes)
and the settings it reads; a cached result is used only if its recorded key matches.

Example:
    >>> import tempfile, numpy as np
    >>> c = Cache(tempfile.mkdtemp(), "f00d")
    >>> c.get("demo", {"n": 1}, lambda: {"x": np.arange(3), "label": "a"})["x"].tolist()
    [0, 1, 2]
    >>> c.computed, c.reused
    (['demo'], [])
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from circuits.core.files import atomic_path

__all__ = ["Cache", "fingerprint", "key_of", "VERSIONS"]

# Part of every key: a computation's version is raised when what it stores changes, so older
# results are recomputed (2 for any computation not listed).
VERSIONS = {"weights": 3, "heatmap": 3, "vis": 3}


def fingerprint(model) -> str:
    """A hash of the model's network name and its parameters' names, shapes, dtypes and values.

    >>> import weights
    >>> fingerprint(weights.model("random")) == fingerprint(weights.model("random"))
    True
    """
    import torch

    h = hashlib.blake2b(digest_size=16)
    h.update(model.graph.name.encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(f"|{name}|{tuple(t.shape)}|{t.dtype}|".encode())
        t = t.detach().cpu().contiguous()
        h.update((t.float() if t.dtype == torch.bfloat16 else t).numpy().tobytes())
    return h.hexdigest()


def key_of(name: str, weights: str, settings: Any) -> str:
    """The cache key of computation `name` on weights `weights` with `settings` (JSON-able)."""
    text = json.dumps({"name": name, "weights": weights, "settings": settings, "version": VERSIONS.get(name, 2)}, sort_keys=True,
                      default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _split(obj, arrays: dict, path: str = "a"):
    """JSON-able copy of `obj` with every numpy array replaced by a reference into `arrays`."""
    if isinstance(obj, np.ndarray):
        arrays[path] = obj
        return {"__array__": path}
    if isinstance(obj, dict):
        return {str(k): _split(v, arrays, f"{path}.{i}") for i, (k, v) in enumerate(obj.items())}
    if isinstance(obj, (list, tuple)):
        return [_split(v, arrays, f"{path}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


def _join(obj, arrays):
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return arrays[obj["__array__"]]
        return {k: _join(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, arrays) for v in obj]
    return obj


class Cache:
    """Results under `root` (a folder), for the weights with fingerprint `weights`."""

    def __init__(self, root: str | os.PathLike, weights: str):
        self.root = Path(root)
        self.weights = weights
        self.computed: list[str] = []
        self.reused: list[str] = []

    def _paths(self, name: str, key: str) -> tuple[Path, Path]:
        stem = f"{name.replace(':', '_').replace('/', '_')}-{key}"
        return self.root / f"{stem}.json", self.root / f"{stem}.npz"

    def get(self, name: str, settings: Any, compute: Callable[[], dict]) -> dict:
        """The cached result of `name` for `settings`, or `compute()`'s, stored first."""
        key = key_of(name, self.weights, settings)
        jpath, npath = self._paths(name, key)
        if jpath.is_file():
            try:
                rec = json.loads(jpath.read_text())
                if rec.get("key") == key:
                    arrays = {}
                    if rec.get("arrays"):
                        with np.load(npath, allow_pickle=False) as z:
                            arrays = {k: z[k] for k in z.files}
                    self.reused.append(name)
                    return _join(rec["result"], arrays)
            except (OSError, ValueError, KeyError):
                pass  # unreadable or foreign: recompute and overwrite
        result = compute()
        arrays: dict[str, np.ndarray] = {}
        body = _split(result, arrays)
        if arrays:
            buf = io.BytesIO()
            np.savez_compressed(buf, **arrays)
            with atomic_path(npath) as tmp:
                tmp.write_bytes(buf.getvalue())
        rec = {"key": key, "name": name, "weights": self.weights, "settings": settings, "arrays": bool(arrays),
               "result": body}
        with atomic_path(jpath) as tmp:
            tmp.write_text(json.dumps(rec, allow_nan=True))
        self.computed.append(name)
        return result
