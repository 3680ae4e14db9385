"""Benchmark: a radial sweep of all 288 InceptionV3 mixed2 channels, against full 299 px forwards.

Ratios are against baselines run in the same process:

(a) the forward truncated at mixed2 vs the full forward to mixed10, on a batch at 299 x 299;
(b) `circuits.tuning.measure.radial_tuning` of every mixed2 channel (72 orientations x
    8 curvatures = 576 curve stimuli, post-ReLU centre responses averaged over
    curvature: the smallest input that holds the receptive fields, the cone of the
    centre position, batched) vs one full 299 px forward per stimulus. The full forward
    is timed on one batch of --naive stimuli rendered at 299 px and extrapolated
    linearly to 576 (its cost does not depend on the stimulus); on that batch the mixed2
    centre values are also checked against the sweep's.

Weights: the trained nsfwjs InceptionV3 when the package is available; otherwise random
weights (said so in the output: the timings do not depend on the weights, the values
check does not either).

The machine is shared: numbers are noisy; wall and CPU time and the load average are printed.

Run: python experiments/bench_v3_sweep.py [--threads 2] [--naive 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

# As experiments/bench_sweep.py: passive OpenMP waiting on a shared machine (before torch loads).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

from circuits import InceptionV3
from circuits.core.inception_v3 import INCEPTION_V3
from circuits.tuning import measure as tuning
from circuits.tuning import stimuli as S
from timing import best_of

LAYER = "mixed2"
N_ANGLES = 72


def _model() -> tuple[InceptionV3, str]:
    import weights
    from weights import tfjs

    try:
        return weights.model("nsfwjs-inception-v3"), "trained (nsfwjs@4.4.0)"
    except tfjs.TfjsFormatError as e:
        print(f"nsfwjs@4.4.0 not available ({e}); falling back to RANDOM weights (timings only)")
    g = torch.Generator().manual_seed(0)
    sd = {}
    for k, shape in INCEPTION_V3.parameter_shapes().items():
        fan_in = max(1, int(np.prod(shape[1:])))
        sd[k] = torch.randn(shape, generator=g) * (0.1 if k.endswith(".bias") else (2.0 / fan_in) ** 0.5)
    return InceptionV3(sd).eval(), "random (He-scaled, seed 0)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--naive", type=int, default=16, help="stimuli in the timed batch of full 299 px forwards")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs for (a) and the naive batch")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tuning._retain_freed_memory()  # as the sweep does, so that both sides get the same allocator
    model, which = _model()
    g = model.graph
    units = [model.unit((LAYER, c)) for c in range(g.node(LAYER).channels)]
    curv = tuning.DEFAULT_CURVATURES
    load0 = f"{os.getloadavg()[0]:.2f}"

    # (a) truncated vs full forward, 299 px
    x = torch.rand(args.naive, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        full = best_of(lambda: model.run(x), args.repeats)
        trunc = best_of(lambda: model.run(x, until=LAYER), args.repeats)

    # (b) the sweep; warm-up on a small one (allocator, oneDNN kernels)
    tuning.radial_tuning(model, units, n_angles=8, curvatures=curv[:2], progress=False)
    t, c = time.perf_counter(), time.process_time()
    rt = tuning.radial_tuning(model, units, n_angles=N_ANGLES, curvatures=curv, progress=False)
    sweep_s, sweep_cpu = time.perf_counter() - t, time.process_time() - c
    n = rt.n_stimuli
    size = tuning.input_size_for(units, model)

    # naive: one full 299 px forward per stimulus, a batch of --naive spread over the sweep
    params = tuning.default_curve_params(LAYER, model)
    sweep = S.curve_sweep(rt.angles_deg, curv, **params)
    pick = np.linspace(0, n - 1, args.naive).round().astype(int)
    subset = S.Stimuli("curve", {k: np.asarray(v)[pick] for k, v in sweep.batched.items()}, sweep.fixed)
    xs = subset.render(size=299, centre=units[0].centre_in_input(299), input_range=model.input_range)
    cy, cx = g.centre_position(LAYER, 299)
    with torch.inference_mode():
        naive_batch = best_of(lambda: model.run_with_cache(xs, [LAYER, g.output]), args.repeats)
        c = time.process_time()
        naive_vals = model.run_with_cache(xs, [LAYER, g.output])[LAYER][:, :, cy, cx]
        naive_cpu = time.process_time() - c
    naive_total = naive_batch / len(pick) * n
    fast_vals = tuning.responses(model, units, subset)
    err = float((fast_vals - naive_vals).abs().max())

    print(f"load average before/after: {load0} / {os.getloadavg()[0]:.2f} (shared machine)")
    print(f"InceptionV3, {which} weights, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"(a) forward at 299 px, batch {args.naive} (best of {args.repeats}): full to mixed10 {full * 1e3:8.1f} ms | "
          f"to {LAYER} {trunc * 1e3:8.1f} ms | {LAYER} / full = {trunc / full:.3f} ({full / trunc:.2f}x faster)")
    print(f"(b) radial sweep of all {len(units)} {LAYER} channels, {N_ANGLES} orientations x {len(curv)} curvatures "
          f"= {n} stimuli, input {size} px: {sweep_s:6.2f} s wall, {sweep_cpu:6.2f} s CPU "
          f"({sweep_s / n * 1e3:.2f} ms/stimulus)")
    print(f"    one full 299 px forward per stimulus: {naive_batch / len(pick) * 1e3:.1f} ms/stimulus wall "
          f"({naive_cpu / len(pick) * 1e3:.1f} ms CPU; batch of {len(pick)}), extrapolated to {n}: "
          f"{naive_total:6.2f} s wall, {naive_cpu / len(pick) * n:6.2f} s CPU")
    print(f"    ratio: the sweep is {naive_total / sweep_s:.1f}x faster than a full forward per stimulus "
          f"(wall; CPU: {naive_cpu / len(pick) * n / sweep_cpu:.1f}x)")
    print(f"    {LAYER} centre values of the sweep vs the 299 px full forward on those {len(pick)} stimuli: "
          f"max abs difference {err:.2g} (values up to {float(naive_vals.abs().max()):.3g})")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
