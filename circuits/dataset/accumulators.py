"""Mergeable summaries of a stream of (crop id, pre-activation) pairs.

Every accumulator gives the same result whatever order the values arrive in and
however the stream is split: `a.merge(b)` of two halves equals one pass over the
whole. That is what makes a scan resumable (a checkpoint is a state) and
distributable (each rank scans a shard, the states merge).

- `Histogram`: counts on a fixed grid of bins of width `width` (bin i is
  [i*width, (i+1)*width)), stored sparsely so no range is needed in advance; the
  sum and sum of squares are kept as integers in fixed point (2**-32 and 2**-16
  resolution), so the mean does not depend on the order of addition.
- `TopK`: the k largest (or smallest) values, ties broken by crop id.
- `BinReservoir`: a uniform sample of up to `size` crops per coarse activation bin,
  chosen by a hash of the crop id (a bottom-k sample), so it is exact to merge.

Example:
    >>> h = Histogram(width=1.0)
    >>> h.add([0.5, 1.5, -0.5, 2.0])
    >>> h.n, h.counts, h.mean, h.firing_rate
    (4, {-1: 1, 0: 1, 1: 1, 2: 1}, 0.875, 0.75)
"""

from __future__ import annotations

import hashlib
import heapq
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

__all__ = ["Histogram", "TopK", "BinReservoir", "sample_key"]

_SUM_SCALE = 2.0**32
_SQ_SCALE = 2.0**16


def _as_values(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size and not np.isfinite(v).all():
        bad = v[~np.isfinite(v)][0]
        raise ValueError(f"pre-activations must be finite, got {bad}")
    return v


@dataclass
class Histogram:
    """Counts per bin of width `width`, and exact (order-independent) sums."""

    width: float
    counts: dict[int, int] = field(default_factory=dict)
    n: int = 0
    n_positive: int = 0
    sum_fixed: int = 0  # sum of round(x * 2**32)
    sumsq_fixed: int = 0  # sum of round(x**2 * 2**16)

    def __post_init__(self):
        if not (isinstance(self.width, (int, float)) and math.isfinite(self.width) and self.width > 0):
            raise ValueError(f"bin width must be a positive number, got {self.width!r}")

    def add(self, values) -> None:
        v = _as_values(values)
        if not v.size:
            return
        idx, cnt = np.unique(np.floor(v / self.width).astype(np.int64), return_counts=True)
        for i, c in zip(idx.tolist(), cnt.tolist()):
            self.counts[i] = self.counts.get(i, 0) + c
        self.n += int(v.size)
        self.n_positive += int((v > 0).sum())
        # Python ints: exact, so addition order cannot change the result.
        self.sum_fixed += sum(int(x) for x in np.round(v * _SUM_SCALE).astype(object))
        self.sumsq_fixed += sum(int(x) for x in np.round(v * v * _SQ_SCALE).astype(object))

    def merge(self, other: "Histogram") -> "Histogram":
        if other.width != self.width:
            raise ValueError(f"cannot merge histograms with bin widths {self.width} and {other.width}")
        out = Histogram(self.width, dict(self.counts), self.n + other.n, self.n_positive + other.n_positive,
                        self.sum_fixed + other.sum_fixed, self.sumsq_fixed + other.sumsq_fixed)
        for i, c in other.counts.items():
            out.counts[i] = out.counts.get(i, 0) + c
        return out

    @property
    def mean(self) -> float:
        return self.sum_fixed / _SUM_SCALE / self.n if self.n else math.nan

    @property
    def std(self) -> float:
        if not self.n:
            return math.nan
        var = self.sumsq_fixed / _SQ_SCALE / self.n - self.mean**2
        return math.sqrt(max(var, 0.0))

    @property
    def firing_rate(self) -> float:
        """Fraction of values > 0 (those a ReLU lets through)."""
        return self.n_positive / self.n if self.n else math.nan

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """(edges [B+1], counts [B]) over the occupied range, empty bins included."""
        if not self.counts:
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        lo, hi = min(self.counts), max(self.counts)
        counts = np.array([self.counts.get(i, 0) for i in range(lo, hi + 1)], dtype=np.int64)
        edges = np.arange(lo, hi + 2, dtype=np.float64) * self.width
        return edges, counts

    def state(self) -> dict:
        return {"width": self.width, "counts": {str(k): v for k, v in sorted(self.counts.items())}, "n": self.n,
                "n_positive": self.n_positive, "sum_fixed": str(self.sum_fixed), "sumsq_fixed": str(self.sumsq_fixed)}

    @classmethod
    def from_state(cls, s: dict) -> "Histogram":
        return cls(float(s["width"]), {int(k): int(v) for k, v in s["counts"].items()}, int(s["n"]),
                   int(s["n_positive"]), int(s["sum_fixed"]), int(s["sumsq_fixed"]))


@dataclass
class TopK:
    """The k entries with the largest values (`largest=False`: the smallest); ties by crop id."""

    k: int
    largest: bool = True
    items: list[tuple[float, str]] = field(default_factory=list)  # (value, crop id)

    def __post_init__(self):
        if not isinstance(self.k, int) or self.k < 0:
            raise ValueError(f"k must be a non-negative int, got {self.k!r}")

    def _key(self, item):
        v, cid = item
        return (-v, cid) if self.largest else (v, cid)

    def add(self, values, ids: Sequence[str]) -> None:
        v = _as_values(values)
        if len(ids) != v.size:
            raise ValueError(f"{v.size} values but {len(ids)} crop ids")
        if not self.k or not v.size:
            return
        # Only the k best of this batch can enter: preselect with numpy, keeping every value tied
        # with the k-th (the tie-break is by crop id, which numpy does not see).
        s = -v if self.largest else v
        order = np.nonzero(s <= np.partition(s, self.k - 1)[self.k - 1])[0] if v.size > self.k else range(v.size)
        cand = self.items + [(float(v[i]), ids[i]) for i in order]
        self.items = heapq.nsmallest(self.k, cand, key=self._key)

    def merge(self, other: "TopK") -> "TopK":
        if (other.k, other.largest) != (self.k, self.largest):
            raise ValueError("cannot merge top-k lists of different k or direction")
        return TopK(self.k, self.largest, heapq.nsmallest(self.k, self.items + other.items, key=self._key))

    def state(self) -> dict:
        return {"k": self.k, "largest": self.largest, "items": [[v, c] for v, c in self.items]}

    @classmethod
    def from_state(cls, s: dict) -> "TopK":
        return cls(int(s["k"]), bool(s["largest"]), [(float(v), str(c)) for v, c in s["items"]])


def sample_key(seed: int, name: str, crop_id: str) -> int:
    """A 64-bit pseudo-random key fixed by (seed, unit, crop id): the reservoir keeps the smallest."""
    # surrogateescape: a file name that is not UTF-8 hashes as its bytes (UTF-8 ones are unchanged)
    h = hashlib.blake2b(f"{seed}|{name}|{crop_id}".encode("utf-8", "surrogateescape"), digest_size=8)
    return int.from_bytes(h.digest(), "big")


@dataclass
class BinReservoir:
    """Up to `size` crops per bin of width `width`, a uniform sample of each bin.

    Each crop gets the key `sample_key(seed, name, crop_id)`; a bin keeps the crops
    with the `size` smallest keys, which is a uniform sample without replacement
    and the same whichever order or shards the crops came in.
    """

    width: float
    size: int
    seed: int = 0
    name: str = ""
    bins: dict[int, list[tuple[int, str, float]]] = field(default_factory=dict)  # bin -> [(key, id, value)]

    def __post_init__(self):
        if not (math.isfinite(self.width) and self.width > 0):
            raise ValueError(f"reservoir bin width must be positive, got {self.width!r}")
        if not isinstance(self.size, int) or self.size < 0:
            raise ValueError(f"reservoir size must be a non-negative int, got {self.size!r}")

    def add(self, values, ids: Sequence[str]) -> None:
        v = _as_values(values)
        if len(ids) != v.size:
            raise ValueError(f"{v.size} values but {len(ids)} crop ids")
        if not self.size:
            return
        b = np.floor(v / self.width).astype(np.int64)
        new: dict[int, list] = {}
        for i in range(v.size):
            new.setdefault(int(b[i]), []).append((sample_key(self.seed, self.name, ids[i]), ids[i], float(v[i])))
        for k, items in new.items():
            self.bins[k] = heapq.nsmallest(self.size, self.bins.get(k, []) + items)

    def merge(self, other: "BinReservoir") -> "BinReservoir":
        if (other.width, other.size, other.seed, other.name) != (self.width, self.size, self.seed, self.name):
            raise ValueError("cannot merge reservoirs with different bins, sizes, seeds or units")
        out = BinReservoir(self.width, self.size, self.seed, self.name, {k: list(v) for k, v in self.bins.items()})
        for k, items in other.bins.items():
            out.bins[k] = heapq.nsmallest(self.size, out.bins.get(k, []) + items)
        return out

    def samples(self) -> dict[int, list[tuple[str, float]]]:
        """bin index -> [(crop id, value)], bins ascending, each in key order (a random order)."""
        return {k: [(c, v) for _, c, v in self.bins[k]] for k in sorted(self.bins)}

    def state(self) -> dict:
        return {"width": self.width, "size": self.size, "seed": self.seed, "name": self.name,
                "bins": {str(k): [[str(key), c, v] for key, c, v in items] for k, items in sorted(self.bins.items())}}

    @classmethod
    def from_state(cls, s: dict) -> "BinReservoir":
        bins = {int(k): [(int(key), str(c), float(v)) for key, c, v in items] for k, items in s["bins"].items()}
        return cls(float(s["width"]), int(s["size"]), int(s["seed"]), str(s["name"]), bins)
