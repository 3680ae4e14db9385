"""Benchmarks of InceptionV3 (issue 10); ratios against baselines run in the same process.

1. forward truncated at mixed2 vs the full forward to mixed10 (batch 8, 299 x 299);
2. load time of the weight source `nsfwjs-inception-v3` (read the cached package, check
   the topology, fold BN, build the model), wall and CPU, against the 5 s target; and the same
   broken down (package read / topology check / folding) to show where it goes.

The weights are the real ones when the package is cached, random otherwise (the
forward's cost does not depend on them).

Run: python experiments/bench_inception_v3.py [--batch 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from circuits import InceptionV3
from circuits.core.inception_v3 import INCEPTION_V3
from circuits.tuning.measure import _retain_freed_memory
from timing import best_of


def _random() -> InceptionV3:
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(s, generator=g) * (2.0 / max(1, int(torch.tensor(s[1:]).prod()))) ** 0.5
          for k, s in INCEPTION_V3.parameter_shapes().items()}
    return InceptionV3(sd).eval()


def _load_times() -> InceptionV3 | None:
    import weights
    from weights import nsfwjs, tfjs

    try:
        tfjs.locate_package()
    except tfjs.TfjsFormatError as e:
        print(f"2. nsfwjs@4.4.0 not available, load time not measured: {e}")
        return None
    weights.sources()  # the registry's own imports are not the source's load time
    t, cpu = time.perf_counter(), time.process_time()
    model = weights.model("nsfwjs-inception-v3")
    total, cpu = time.perf_counter() - t, time.process_time() - cpu
    t0 = time.perf_counter()
    m = tfjs.load()
    t1 = time.perf_counter()
    nsfwjs.check_topology(m)
    t2 = time.perf_counter()
    tfjs.folded_convs(m)
    t3 = time.perf_counter()
    # On a shared machine wall time includes waiting for a core; CPU time is this process's own work.
    print(f"2. weights.model('nsfwjs-inception-v3'): {total:.2f} s wall, {cpu:.2f} s CPU "
          f"(target < 5 s wall: {'met' if total < 5 else 'NOT met'}) | "
          f"package read {t1 - t0:.2f} s, topology check {t2 - t1:.3f} s, BN folding {t3 - t2:.2f} s")
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    _retain_freed_memory()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch} at 299x299, "
          f"best of {args.repeats}")
    model = _load_times() or _random()
    x = torch.rand(args.batch, 3, 299, 299) * 2 - 1
    with torch.inference_mode():
        full = best_of(lambda: model.run(x), args.repeats)
        trunc = best_of(lambda: model.run(x, until="mixed2"), args.repeats)
    print(f"1. full forward to mixed10 {full * 1e3:8.1f} ms | truncated at mixed2 {trunc * 1e3:8.1f} ms | "
          f"speed-up {full / trunc:.2f}x")


if __name__ == "__main__":
    main()
