"""Benchmark: feature-visualization steps per second, truncated run vs the whole network.

Renders mixed3b:379 (Fourier image, Lucid's standard transforms, Adam) with the same
render loop (`circuits.optvis.render`) three ways:

1. ours: the objective reads mixed3b_5x5 (the unit's branch), so each step runs
   only that branch's ancestors;
2. truncated at mixed3b: the objective also asks for the whole mixed3b concatenation;
3. baseline, what other libraries do: the whole network is run every step. At 128 px
   (about 128-154 px after the transforms) the classifier head cannot run (avgpool0 is
   a VALID 7x7 pool: it needs 193-224 px input), so the baseline stops at mixed5b, as
   Lucent does when it catches the classifier's size error; with --no-transforms and
   --size between 193 and 224 it goes on to softmax2.

Each configuration runs --steps steps after one warm-up step; repeats are interleaved
so that other load on the machine affects all of them alike; the best is reported.

Run: python experiments/bench_render.py [--size 128] [--steps 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

import weights
from circuits import graph
from circuits.optvis import objectives, param, render


def steps_per_second(model, objective, size: int, steps: int, transforms) -> float:
    render(model, objective, param.image(size), steps=1, transforms=transforms, progress=False)  # warm-up
    t = time.perf_counter()
    render(model, objective, param.image(size), steps=steps, transforms=transforms, progress=False)
    return steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--unit", default="mixed3b:379")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-transforms", action="store_true")
    ap.add_argument("--weights", default="random", help="weights (speed does not depend on their values)")
    args = ap.parse_args()

    model = weights.model(args.weights)
    layer, ch = args.unit.split(":")
    ours = objectives.channel(layer, int(ch))
    transforms = [] if args.no_transforms else None
    full_target = "softmax2" if args.no_transforms and 193 <= args.size <= 224 else "mixed5b"

    def reading(extra: str) -> objectives.Objective:
        # The same objective value; it only declares one more tensor, so the loop runs further.
        return objectives.Objective(ours.fn, ours.hooks | {extra}, f"{ours.description} + run to {extra}", ours.min_size)

    configs = {
        f"ours (to {ours.last_hook})": ours,
        f"truncated at {layer}": reading(layer),
        f"whole network (to {full_target})": reading(full_target),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.unit} at {args.size}x{args.size}, "
          f"{'no transforms' if args.no_transforms else 'standard transforms'}, {args.steps} steps, best of {args.repeats}")
    best = {k: 0.0 for k in configs}
    for _ in range(args.repeats):
        for name, obj in configs.items():
            best[name] = max(best[name], steps_per_second(model, obj, args.size, args.steps, transforms))
    base = best[f"whole network (to {full_target})"]
    for name, v in best.items():
        print(f"{name:34} {v:8.2f} steps/s   {v / base:6.2f}x the whole network")
    if full_target == "mixed5b":
        print(f"(softmax2 needs 193-224 px input; at {args.size} px the whole-network baseline stops at mixed5b, "
              f"i.e. {graph.index('mixed5b') + 1} of {len(graph.NODES)} tensors; the classifier head is a 7x7 pool "
              "and a 1024x1008 matmul, a negligible share of the work)")


if __name__ == "__main__":
    main()
