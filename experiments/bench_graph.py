"""Benchmarks of the layer graph (issue 2); ratios against baselines run in the same process.

1. forward truncated at mixed3b vs the full forward to softmax2 (batch 16, 224 x 224);
2. overhead of the hook graph: the model's full forward with no hooks vs the same ops
   called directly in a plain function (no hook points, no plan, no checks);
3. caching 10 hook points vs none.

Run: python experiments/bench_graph.py [--batch 16] [--repeats 5]
"""

from __future__ import annotations

import argparse

import torch

from circuits import InceptionV1, graph
from circuits.tuning.measure import _retain_freed_memory
from timing import best_of
from weights.registry import random_state_dict


_ORDER = [n for n in graph.NODES[1:] if not n.synthesized]
# Where each tensor is used last, so the plain function frees intermediates as a
# hand-written forward does (keeping them all would cost it memory traffic).
_LAST = {src: i for i, n in enumerate(_ORDER) for src in n.inputs}


def plain_forward(model: InceptionV1, x: torch.Tensor) -> torch.Tensor:
    """Each node's op-table forward called directly: the no-framework baseline (no hook
    points, no plan, no input checks)."""
    env = {"input": x}
    for i, n in enumerate(_ORDER):
        params = getattr(model, n.param) if n.param else None
        env[n.name] = n.kind.forward(n, [env[s] for s in n.inputs], params)
        for src in n.inputs:
            if _LAST[src] == i:
                del env[src]
    return env["softmax2"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    # Keep freed blocks in the process (as sweeps do): without it, page faults from
    # glibc returning memory to the OS dominate the noise on a VM.
    _retain_freed_memory()
    torch.manual_seed(0)
    model = InceptionV1(random_state_dict(0)).eval()
    x = torch.rand(args.batch, 3, 224, 224) * 255 - 117
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch} at 224x224, best of {args.repeats}")

    with torch.inference_mode():
        full = best_of(lambda: model.run(x), args.repeats)
        trunc = best_of(lambda: model.run(x, until="mixed3b"), args.repeats)
        print(f"1. full forward {full * 1e3:8.1f} ms | truncated at mixed3b {trunc * 1e3:8.1f} ms | "
              f"speed-up {full / trunc:.2f}x")

        # Alternate the two, round after round, so both see the same machine state;
        # run-to-run noise on a shared 2-core VM is ~10%, so report the median ratio.
        plain_t, graph_t, ratios = [], [], []
        for _ in range(max(args.repeats, 9)):
            a = best_of(lambda: plain_forward(model, x), 1)
            b = best_of(lambda: model.run(x), 1)
            plain_t.append(a)
            graph_t.append(b)
            ratios.append(b / a)
        assert torch.allclose(plain_forward(model, x), model.run(x))
        med = sorted(ratios)[len(ratios) // 2]
        print(f"2. plain function {min(plain_t) * 1e3:8.1f} ms | hook graph {min(graph_t) * 1e3:8.1f} ms (best) | "
              f"overhead: median of {len(ratios)} paired rounds {100 * (med - 1):+.2f}%, "
              f"of the best times {100 * (min(graph_t) / min(plain_t) - 1):+.2f}%")

        names = ["conv2d0", "conv2d1", "conv2d2", "maxpool1", "mixed3a", "mixed3a_pre_relu",
                 "mixed3b_5x5_bottleneck", "mixed3b", "mixed4a", "softmax2"]
        none = best_of(lambda: model.run(x), args.repeats)
        cached = best_of(lambda: model.run_with_cache(x, names), args.repeats)
        print(f"3. no cache {none * 1e3:8.1f} ms | caching 10 hook points {cached * 1e3:8.1f} ms | "
              f"ratio {cached / none:.3f}")


if __name__ == "__main__":
    main()
