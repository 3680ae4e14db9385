"""Benchmark: the one walk over the graph (circuits.core.walk) against a hand-written loop.

The model's forward is a step handed to `walk.forward`; the baseline is the interpreter
loop it replaced (the same plan, the same op calls and hook points, the environment kept
and freed inline), run in the same process, interleaved, on the same traced network. At a
small input the time is mostly Python overhead per node, so this is where the walk's extra
call per node would show; at 224 px the convolutions dominate.

Run: python experiments/bench_walk.py [--arch resnet50] [--threads 2] [--repeats 30]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torchvision

from circuits.core import graph, walk
from circuits.core.trace import trace


def hand_written(net, x: torch.Tensor, targets: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The interpreter loop before the walk (model.py's `_execute`), verbatim but for the plan's source."""
    p = walk.plan(net.graph, targets)
    env = {graph.INPUT: net.hook_points[graph.INPUT](x)}
    for n, free in zip(p.nodes, p.free):
        params = getattr(net, n.param) if n.param else None
        env[n.name] = net.hook_points[n.name](n.kind.forward(n, [env[i] for i in n.inputs], params))
        for f in free:
            del env[f]
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = trace(getattr(torchvision.models, args.arch)(weights=None).eval(), input_size=64)
    out = (net.graph.output,)
    print(f"torch {torch.__version__}, {args.threads} threads, load average {os.getloadavg()[0]:.1f}, "
          f"{args.arch}: {len(net.graph.nodes)} nodes")
    for size, batch, repeats in ((32, 1, args.repeats), (224, 4, max(args.repeats // 6, 3))):
        x = torch.rand(batch, 3, size, size)
        with torch.inference_mode():
            a, b = net._execute(x, out)[out[0]], hand_written(net, x, out)[out[0]]
            assert torch.equal(a, b)
            t_walk, t_loop = [], []
            for _ in range(repeats):
                for fn, times in ((lambda: net._execute(x, out), t_walk), (lambda: hand_written(net, x, out), t_loop)):
                    t0 = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t0)
        w, lp = min(t_walk), min(t_loop)
        print(f"{size} px, batch {batch}: walk {w * 1e3:.2f} ms, hand-written loop {lp * 1e3:.2f} ms "
              f"(best of {repeats}); walk / loop = {w / lp:.3f}")


if __name__ == "__main__":
    main()
