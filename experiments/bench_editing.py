"""Benchmarks of weight edits; ratios against the unedited forward run in the same process.

1. forward to mixed4a (batch 4, 224 x 224) with no edit (baseline), with a direct edit
   (parameters changed: no run-time cost expected), with an expanded edit
   (mixed3a early curves -> mixed3b curves, a hook adding conv(src, delta)), and with
   a re-expression of the mixed3b curves from mixed3a (hook + bias path);
2. apply + undo of each edit (no forward);
3. building the circuit graph mixed3a -> mixed3b focused on the curves (top-k 5) vs
   computing the same expanded weights alone.

Run: python experiments/bench_editing.py [--batch 4] [--repeats 3]
"""

from __future__ import annotations

import argparse

import torch

import weights
from circuits.analysis.circuit_graph import circuit_graph
from circuits.editing.edits import Reexpress, drop_negative, keep_only_inputs
from circuits.analysis.expanded import weights_between
from timing import best_of


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = weights.model("random")
    x = torch.randn(args.batch, 3, 224, 224) * 50

    def forward():
        with torch.no_grad():
            model.run(x, until="mixed4a")

    forward()
    base = best_of(forward, args.repeats)
    print(f"forward to mixed4a, batch {args.batch}: {base * 1e3:.1f} ms (baseline)")
    edits = {
        "direct (keep_only mixed3a:early_curves -> mixed3b:1)": keep_only_inputs("mixed3a:early_curves", "mixed3b:1"),
        "expanded (drop_negative mixed3a:early_curves -> mixed3b:curves)": drop_negative("mixed3a:early_curves", "mixed3b:curves", route="linearized"),
        "re-expression (mixed3b:curves from mixed3a)": Reexpress("mixed3a", "mixed3b:curves"),
    }
    for name, e in edits.items():
        # Interleave edited and unedited runs: the machine is shared, so drift hits both.
        tb, te = [], []
        for _ in range(args.repeats):
            tb.append(best_of(forward, 1))
            with e.applied(model):
                te.append(best_of(forward, 1))
        base, t = min(tb), min(te)
        cost = best_of(lambda: (e.apply(model), e.undo(model)), args.repeats)
        print(f"  {name}: forward {t * 1e3:.1f} ms vs {base * 1e3:.1f} ms unedited, ratio {t / base:.3f}; "
              f"apply+undo {cost * 1e3:.1f} ms")

    units = [f"mixed3a:{c}" for c in range(256)]
    w_only = best_of(lambda: weights_between(model, units, "mixed3b:curves"), args.repeats)
    g_time = best_of(lambda: circuit_graph(model, ("mixed3a", "mixed3b"), "mixed3b:curves", top_k=5), args.repeats)
    print(
        f"circuit graph mixed3a -> mixed3b:curves (top 5): {g_time * 1e3:.1f} ms vs expanded weights alone "
        f"{w_only * 1e3:.1f} ms, ratio {g_time / w_only:.2f}"
    )


if __name__ == "__main__":
    main()
