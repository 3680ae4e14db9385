"""Activation factorization: non-negative matrix factorization of a layer's activations.

"Curve Detectors" ("Algorithmic Composition", after "Building Blocks") factors the
post-ReLU activations of a layer, a matrix A of positions x channels, into
A ≈ S D with S >= 0 (positions x K: where each factor is) and D >= 0 (K x channels:
each factor's group of neurons). For one image the K spatial maps segment it; jointly
over many images (their positions stacked as rows of one matrix) the K channel
directions are groups of neurons that respond to the same thing in all of them — the
article's butterfly neurons. A direction is an ordinary feature-visualization objective
(`Factorization.objective`: `circuits.optvis.objectives.direction`), and through it an
attribution target for the spline tracer (`circuits.dataset.extraction.attribution_map`).

The factorization is scikit-learn's `NMF` (coordinate descent, Frobenius loss, NNDSVDa
initialization, fixed seed). Factors are rescaled so every direction has unit L2 norm
(S absorbs the scale: the product is unchanged) and ordered by their share of S, largest
first, so that factor 0 is the one that explains most of the activation.

Example:
    >>> import torch, weights
    >>> model = weights.model("handbuilt")
    >>> img = torch.full((3, 96, 96), 255, dtype=torch.uint8)
    >>> img[:, 40:44, :] = 0                                    # a dark horizontal line
    >>> f = factorize(model, "mixed3a", [img], rank=2)
    >>> f.directions.shape[0], f.maps(0).shape[0]
    (2, 2)
    >>> bool(f.relative_error < 1)
    True
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from circuits.core.files import read_text
from circuits.core.networks import network_of

__all__ = ["Factorization", "factorize", "nmf", "activation_matrix", "load_factor", "visualize_factors", "FORMAT"]

FORMAT = "circuits-factorization/1"


def activation_matrix(model, layer: str, images: Sequence[torch.Tensor],
                      device: str | torch.device | None = None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The [positions, channels] matrix of `layer`'s activations over `images` (uint8 [3, H, W]
    each, any sizes), one image's positions after another (row-major), and each image's map size.

    The layer must be non-negative (a post-ReLU tensor, e.g. a trunk layer such as mixed3b or
    InceptionV3's mixed2): NMF has no meaning for negative values, so a pre-ReLU tensor is refused.

    >>> import weights
    >>> a, hw = activation_matrix(weights.model("handbuilt"), "conv2d0", [torch.zeros(3, 32, 32, dtype=torch.uint8)])
    >>> a.shape, hw
    ((256, 64), [(16, 16)])
    """
    g = network_of(model)
    g.node(layer)  # an unknown layer raises with close matches
    if not images:
        raise ValueError("factorize needs at least one image")
    rows, shapes = [], []
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    for img in images:
        if not isinstance(img, torch.Tensor) or img.dim() != 3 or img.shape[0] != 3:
            raise ValueError(f"each image must be a [3, H, W] tensor, got {getattr(img, 'shape', type(img))}")
        x = model.to_input(img[None]).to(dev)
        with torch.no_grad():
            a = model.run(x, until=layer)[0]
        if float(a.min()) < 0:
            raise ValueError(
                f"{layer} has negative values ({float(a.min()):.4g}): NMF needs a post-ReLU tensor; use a layer "
                f"such as {', '.join(g.trunk_layers[3:6])} (`circuits layers` lists them)")
        shapes.append(tuple(a.shape[-2:]))
        rows.append(a.flatten(1).T.double().cpu().numpy())
    return np.concatenate(rows), shapes


@dataclass
class Factorization:
    """A rank-K NMF of `layer`'s activations over named images.

    spatial: [positions, K] (all images' positions stacked; `maps(i)` is image i's [K, h, w]);
    directions: [K, channels], each of unit L2 norm; error: the Frobenius norm ||A - S D||;
    relative_error: error / ||A||.
    """

    layer: str
    network: str
    names: list[str]
    shapes: list[tuple[int, int]]
    spatial: np.ndarray
    directions: np.ndarray
    error: float
    relative_error: float
    n_iter: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def rank(self) -> int:
        return int(self.directions.shape[0])

    def maps(self, i: int) -> np.ndarray:
        """Image i's spatial maps [K, h, w]."""
        if not 0 <= i < len(self.shapes):
            raise IndexError(f"image {i} is out of range: the factorization holds {len(self.shapes)} images")
        start = sum(h * w for h, w in self.shapes[:i])
        h, w = self.shapes[i]
        return self.spatial[start : start + h * w].T.reshape(self.rank, h, w)

    def direction(self, k: int) -> np.ndarray:
        """Factor k's channel direction [channels] (unit L2 norm)."""
        if not 0 <= k < self.rank:
            raise IndexError(f"factor {k} is out of range: rank {self.rank} has factors 0..{self.rank - 1}")
        return self.directions[k]

    def top_channels(self, k: int, n: int = 5) -> list[tuple[int, float]]:
        """The n channels with the largest weight in factor k: (channel, weight)."""
        d = self.direction(k)
        idx = np.argsort(-d, kind="stable")[:n]
        return [(int(c), float(d[c])) for c in idx if d[c] > 0]

    def objective(self, k: int, model=None):
        """Factor k's channel direction as a feature-visualization / attribution objective."""
        from circuits.optvis.objectives import direction

        obj = direction(self.layer, torch.as_tensor(self.direction(k), dtype=torch.float32), model=model)
        obj.description = f"Factor({self.layer}, {k} of {self.rank})"
        return obj

    def to_json(self) -> dict:
        return {
            "format": FORMAT, "layer": self.layer, "network": self.network, "rank": self.rank,
            "reconstruction_error": self.error, "relative_error": self.relative_error, "n_iter": self.n_iter,
            "images": [{"name": n, "map_hw": list(s)} for n, s in zip(self.names, self.shapes)],
            "factors": [{"index": k, "top_channels": [{"unit": f"{self.layer}:{c}", "weight": w}
                                                      for c, w in self.top_channels(k, 8)],
                         "share": float(self.spatial[:, k].sum() / max(self.spatial.sum(), 1e-300)),
                         "direction": self.directions[k].tolist()} for k in range(self.rank)],
            "spatial": [self.maps(i).tolist() for i in range(len(self.names))],
            **({"meta": self.meta} if self.meta else {}),
        }

    @classmethod
    def from_json(cls, d: dict) -> "Factorization":
        if d.get("format") != FORMAT:
            raise ValueError(f"not a `circuits factorize --json` result (format {d.get('format')!r}, expected {FORMAT})")
        shapes = [tuple(im["map_hw"]) for im in d["images"]]
        spatial = np.concatenate([np.asarray(m, dtype=np.float64).reshape(len(d["factors"]), -1).T for m in d["spatial"]])
        return cls(d["layer"], d["network"], [im["name"] for im in d["images"]], shapes, spatial,
                   np.asarray([f["direction"] for f in d["factors"]], dtype=np.float64), float(d["reconstruction_error"]),
                   float(d["relative_error"]), int(d.get("n_iter", 0)), d.get("meta", {}))


def nmf(a: np.ndarray, rank: int, *, seed: int = 0, max_iter: int = 500,
        tol: float = 1e-4) -> tuple[np.ndarray, np.ndarray, int]:
    """A ≈ S D for a non-negative [n, m] matrix: (S [n, rank], D [rank, m], iterations), by scikit-learn's
    NMF; D's rows have unit L2 norm (S takes the scale) and are ordered by their column sum of S,
    largest first.

    >>> s, d, _ = nmf(np.outer([1.0, 2.0, 3.0], [0.0, 3.0, 4.0]), 1)
    >>> np.round(d, 3).tolist(), np.round(s[:, 0], 3).tolist()
    ([[0.0, 0.6, 0.8]], [5.0, 10.0, 15.0])
    """
    import warnings

    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or not np.isfinite(a).all() or (a.size and a.min() < 0):
        raise ValueError(f"NMF needs a finite, non-negative 2-D matrix, got shape {a.shape}")
    model = NMF(n_components=rank, init="nndsvda", solver="cd", beta_loss="frobenius", max_iter=max_iter, tol=tol,
                random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # n_iter is reported; max_iter is the caller's to raise
        s = model.fit_transform(a)
    d = model.components_
    norms = np.linalg.norm(d, axis=1)
    norms[norms == 0] = 1.0
    d, s = d / norms[:, None], s * norms[None, :]
    order = np.argsort(-s.sum(0), kind="stable")
    return s[:, order], d[order], int(model.n_iter_)


def factorize(model, layer: str, images: Sequence[torch.Tensor], rank: int, names: Sequence[str] | None = None, *,
              seed: int = 0, max_iter: int = 500, tol: float = 1e-4,
              device: str | torch.device | None = None) -> Factorization:
    """Rank-`rank` NMF of `layer`'s post-ReLU activations over `images` (jointly if several).

    images: uint8 [3, H, W] tensors (each at its own size); names: one per image (default
    image0, image1, ...). Runs scikit-learn's NMF on the stacked [positions, channels] matrix.
    """
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"rank must be a positive int, got {rank!r}")
    names = [f"image{i}" for i in range(len(images))] if names is None else list(names)
    if len(names) != len(images):
        raise ValueError(f"{len(names)} names for {len(images)} images")
    a, shapes = activation_matrix(model, layer, images, device)
    live = int((a.max(0) > 0).sum())
    if rank > min(a.shape[0], live):
        raise ValueError(f"rank {rank} is more than the matrix supports: {a.shape[0]} positions, {live} channels of "
                         f"{layer} active on these images; use rank <= {min(a.shape[0], live)}")
    s, d, n_iter = nmf(a, rank, seed=seed, max_iter=max_iter, tol=tol)
    err = float(np.linalg.norm(a - s @ d))
    total = float(np.linalg.norm(a))
    return Factorization(layer, network_of(model).name, names, shapes, s, d, err, err / total if total else 0.0,
                         n_iter)


def load_factor(spec: str) -> tuple[Factorization, int]:
    """`FILE.json:K` -> (the factorization `circuits factorize --json` wrote, K), K checked.

    >>> load_factor("nofile.json")
    Traceback (most recent call last):
    ...
    ValueError: a factor is FILE.json:K (e.g. factors.json:0), got 'nofile.json'
    """
    path, _, k = spec.rpartition(":")
    if not path or not path.lower().endswith(".json") or not k.isdigit():
        raise ValueError(f"a factor is FILE.json:K (e.g. factors.json:0), got {spec!r}")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"factor file {path} does not exist (write one with `circuits factorize --json`)")
    try:
        f = Factorization.from_json(json.loads(read_text(p, "factor file")))
    except json.JSONDecodeError as e:
        raise ValueError(f"factor file {path} is not JSON: {e}") from None
    f.direction(int(k))  # out of range: raises naming the rank
    return f, int(k)


def visualize_factors(model, fact: Factorization, size: int = 96, steps: int = 128, seed: int = 0,
                      progress: bool = False) -> list[torch.Tensor]:
    """A feature visualization ([3, size, size] in [0, 1]) of each factor's channel direction,
    rendered by `circuits.optvis` (Lucid's Fourier parameterization and transforms).

    >>> visualize_factors(model, f, steps=64)        # doctest: +SKIP
    """
    from circuits.optvis import param, render

    if network_of(model).name != fact.network:
        raise ValueError(f"the factorization is of {fact.network}'s {fact.layer}, the model is {network_of(model).name}")
    out = []
    for k in range(fact.rank):
        r = render(model, fact.objective(k, model), param.image(size, seed=seed), steps=steps, seed=seed,
                   progress=progress)
        out.append(r.final[0].detach().cpu())
    return out
