"""Expanded weights: kernel composition vs autograd, timed in the same process.

Cases (from the issue):
  - all 256 mixed3a channels -> the 10 mixed3b curves (through the 5x5 bottleneck);
  - the 33 conv2d2 lines -> the 10 mixed3b curves (LRN, maxpool1, mixed3a, bottleneck).
Prints the best-of-N wall time of each method, the ratio autograd / compose, and the
largest difference between the two results relative to the largest weight.

Usage:
    python experiments/bench_expanded.py [--weights random] [--repeats 5] [--dtype float32]
"""

from __future__ import annotations

import argparse
import time

import torch

import weights
from circuits import families
from circuits.analysis.expanded import weights_between

CASES = [
    ("all mixed3a -> 3b curves", [f"mixed3a:{c}" for c in range(256)], "mixed3b:curves"),
    ("conv2d2 lines -> 3b curves", "conv2d2:lines", "mixed3b:curves"),
]


def best_time(fn, repeats: int) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="random", help="weight source (default random: timing does not depend on values)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    model = weights.model(args.weights)
    print(f"weights {args.weights}, dtype {args.dtype}, torch threads {torch.get_num_threads()}, best of {args.repeats}")
    print(f"{'case':28} {'shape':>18} {'compose ms':>11} {'autograd ms':>12} {'ratio a/c':>10} {'max rel diff':>13}")
    for label, src, dst in CASES:
        weights_between(model, src, dst, dtype=dtype)  # warm-up (route cache, allocator)
        tc, a = best_time(lambda: weights_between(model, src, dst, method="compose", dtype=dtype), args.repeats)
        ta, b = best_time(lambda: weights_between(model, src, dst, method="autograd", dtype=dtype), args.repeats)
        rel = float((a - b).abs().max() / a.abs().max())
        shape = "x".join(map(str, a.shape))
        print(f"{label:28} {shape:>18} {tc * 1e3:11.2f} {ta * 1e3:12.2f} {ta / tc:10.2f} {rel:13.2e}")
    assert len(families.family("conv2d2:lines")) == 33


if __name__ == "__main__":
    main()
