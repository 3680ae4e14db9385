"""Benchmark: curve-family discovery of one whole layer vs one full forward per stimulus (issue 11).

Workload: `circuits.tuning.discover.discover(model, LAYER)` with its defaults: every
channel of the layer (480 for mixed3b), 36 orientations x 4 curvatures of curves in
both polarities plus 36 each of lines, sharp angles, rounded angles and edges (432
stimuli), all read at the centre position.

Naive: each of those stimuli rendered at the network's own size (224 px for InceptionV1,
299 for InceptionV3) and run one at a time through the whole network (to softmax2 or
mixed10), the layer read at its centre. That takes minutes, so a
subset (--naive, spread over the stimulus sets) is timed and extrapolated linearly to
all 432 (the cost per stimulus does not depend on the stimulus); its values are checked
against the fast path's.

Also, with --random-seeds N: the discovery on N random networks (He-scaled weights,
seeds 0..N-1), whose accepted units are false positives (the known answer is none).

Speed does not depend on the weights; the known answer does, so the hand-built
network is used (its 10 mixed3b curves must be found). The machine is shared: numbers
are noisy; wall and CPU time and the load average are printed.

Run: python experiments/bench_discover.py [--layer mixed3b] [--naive 24] [--random-seeds 5]
     python experiments/bench_discover.py --weights nsfwjs-inception-v3 --layer mixed2
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_sweep.py

import numpy as np
import torch

import weights
from circuits.tuning import discover as D
from circuits.tuning.measure import input_size_for, responses


def _naive(model, layer: str, sets: dict, n_pick: int):
    """Seconds per stimulus of a full 224 px forward, and (stimulus, values) pairs to check."""
    g = model.graph
    side = g.default_input_size
    flat = [(name, i) for name, s in sets.items() for i in range(len(s))]
    pick = np.linspace(0, len(flat) - 1, n_pick).round().astype(int)
    centre = model.unit((layer, 0)).centre_in_input(side)
    cy, cx = model.unit((layer, 0)).centre(side)
    out = []
    t, c = time.perf_counter(), time.process_time()
    with torch.no_grad():
        for k in pick:
            name, i = flat[k]
            x = sets[name].render(size=side, centre=centre, start=i, stop=i + 1, input_range=model.input_range)
            acts = model.run_with_cache(x, [layer, g.output])
            out.append((name, i, acts[layer][0, :, cy, cx].clone()))
    return (time.perf_counter() - t) / len(pick), (time.process_time() - c) / len(pick), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layer", default="mixed3b")
    ap.add_argument("--weights", default="handbuilt")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--naive", type=int, default=24, help="naive stimuli to time (extrapolated)")
    ap.add_argument("--random-seeds", type=int, default=0, help="also count false positives on N random networks")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = weights.model(args.weights)
    layer = args.layer
    load0 = os.getloadavg()[0]

    D.discover(model, layer, n_orientations=8, curvatures=[0.5], register=False, progress=False)  # warm-up
    t, c = time.perf_counter(), time.process_time()
    d = D.discover(model, layer, register=False, progress=True)
    fast, fast_cpu = time.perf_counter() - t, time.process_time() - c
    n = d.n_stimuli

    sets, _ = D.sweep_stimuli(layer, d.angles_deg, d.curvatures, model=model)
    each, each_cpu, vals = _naive(model, layer, sets, args.naive)
    units = [model.unit((layer, ch)) for ch in range(model.graph.node(layer).channels)]
    size = input_size_for(units, model)
    agree = True
    for name, i, v in vals:
        sub = D.Stimuli(sets[name].kind, {k: np.asarray(sets[name].params()[k])[[i]] for k in sets[name].batched},
                        sets[name].fixed)
        f = responses(model, units, sub, size=size)[0]
        agree &= bool(torch.allclose(f, v.float(), rtol=1e-4, atol=1e-3))
    cov, gaps = d.coverage()

    print(f"load average before/after: {load0:.2f} / {os.getloadavg()[0]:.2f} (2 cores shared)")
    print(f"workload: {layer}, {len(d.scores)} channels, {n} stimuli ({len(d.angles_deg)} orientations x "
          f"{len(d.curvatures)} curvatures x 2 polarities + 4 x {len(d.angles_deg)} controls), "
          f"{torch.get_num_threads()} threads, {args.weights} weights")
    print(f"discovery   : {fast:7.2f} s wall, {fast_cpu:7.2f} s CPU ({fast / n * 1000:.1f} ms/stimulus for all "
          f"channels, input {size} px)")
    print(f"naive       : (one full {model.graph.default_input_size} px forward per stimulus) {each * 1000:7.1f} ms/stimulus wall ({each_cpu * 1000:.1f} ms CPU), timed on "
          f"{args.naive}, extrapolated to {n}: {each * n:7.1f} s")
    print(f"ratio       : {each * n / fast:6.1f}x faster than one full forward per stimulus (CPU: "
          f"{each_cpu * n / fast_cpu:.1f}x)")
    print(f"values agree with the naive forward on the timed subset: {agree}")
    print(f"found       : {len(d.family)} units {', '.join(u.split(':')[1] for u in d.family)}; "
          f"coverage {cov:.1f} deg, gaps {', '.join(f'{a:.0f}-{b:.0f}' for a, b in gaps) or 'none'}")

    if args.random_seeds:
        from weights.registry import random_state_dict

        counts = []
        for seed in range(args.random_seeds):
            rnd = type(model)(random_state_dict(seed=seed, network=model.graph)).eval()
            r = D.discover(rnd, layer, register=False, progress=False)
            responding = sum(s.peak > 0 for s in r.scores)
            counts.append(len(r.family))
            print(f"random seed {seed}: {len(r.family)} of {len(r.scores)} accepted "
                  f"({responding} respond to curves) {r.family}")
        total = len(counts) * len(d.scores)
        print(f"false positives: {sum(counts)} of {total} random units ({sum(counts) / total:.2%})")


if __name__ == "__main__":
    main()
