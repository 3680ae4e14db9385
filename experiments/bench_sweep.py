"""Benchmark: a full radial sweep of the mixed3b curve family vs the naive way (issue 4).

Workload: 720 orientations x 8 curvatures = 5760 curve stimuli, the 10 mixed3b curve
units (379, 406, 385, 343, 342, 388, 324, 340, 330, 349), post-ReLU, averaged over
curvature: `circuits.tuning.measure.radial_tuning`.

Fast: the library's sweep (97 x 97 input that holds the receptive field, run truncated
at mixed3b_5x5, batched, inference mode, channels-last).
Naive: one stimulus at a time, rendered at 224 x 224, full forward to softmax2, the
units read from mixed3b at the centre position. Running all 5760 that way takes minutes,
so a subset (--naive, spread over the sweep) is timed and the total extrapolated
linearly (the cost per stimulus does not depend on the stimulus); the subset's values
are also checked against the fast sweep's.

The sweep on random weights (every channel live: the dense case) is the main line; the
same sweep on the hand-built network is timed too, where the cone skips the channels
the units never read through a non-zero weight and those that are always 0 (most of
them). A full forward costs the same for either (it computes every channel), so one
naive baseline serves both. The machine is shared: numbers are noisy; the script
prints wall and CPU time and the load average.

The main job end to end (issue 11): `circuits tune mixed3b:curves` in a fresh process
(imports, weights, the sweep, the table; wall time, best of --cli runs) on the default
hand-built network and on random weights, against the same naive extrapolation; and
where a sweep's time goes: rendering the stimuli alone (CPU) vs the whole sweep (CPU).

Run: python experiments/bench_sweep.py [--threads 2] [--naive 48] [--batch N] [--cli 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

# The machine is shared with other jobs: OpenMP threads that spin while waiting for a
# busy core make both sides erratic (measured 5-70 s for the same sweep). Passive
# waiting (set before torch loads) applies to the fast and the naive side alike.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

import weights
from circuits.tuning import stimuli as S
from circuits.tuning import measure as tuning
from circuits.core.units import Unit

UNITS = [f"mixed3b:{c}" for c in (379, 406, 385, 343, 342, 388, 324, 340, 330, 349)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the goal is stated for 2 cores)")
    ap.add_argument("--naive", type=int, default=48, help="naive stimuli to time (extrapolated to 5760)")
    ap.add_argument("--batch", type=int, default=None, help="batch size of the fast sweep (default: automatic)")
    ap.add_argument("--cli", type=int, default=2, help="runs of `circuits tune mixed3b:curves` to time (0: none)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = weights.model("random")
    load0 = f"{os.getloadavg()[0]:.2f}"
    n_angles, curv = 720, tuning.DEFAULT_CURVATURES

    # warm-up (allocator, oneDNN kernels) on a small sweep
    tuning.radial_tuning(model, UNITS, n_angles=16, curvatures=curv[:2], progress=False, batch_size=args.batch)

    t, c = time.perf_counter(), time.process_time()
    rt = tuning.radial_tuning(model, UNITS, n_angles=n_angles, curvatures=curv, progress=False,
                              batch_size=args.batch)
    fast, fast_cpu = time.perf_counter() - t, time.process_time() - c
    n = rt.n_stimuli

    # naive: a spread subset, one stimulus at a time, 224 x 224, full forward
    params = tuning.default_curve_params("mixed3b")
    sweep = S.curve_sweep(rt.angles_deg, curv, **params)
    pick = np.linspace(0, n - 1, args.naive).round().astype(int)
    centre = Unit("mixed3b", 0).centre_in_input(224)
    cy, cx = Unit("mixed3b", 0).centre(224)
    chans = [Unit("mixed3b", int(u.split(":")[1])).channel for u in UNITS]
    naive_vals = []
    t, c = time.perf_counter(), time.process_time()
    with torch.no_grad():
        for i in pick:
            x = sweep.render(size=224, centre=centre, start=int(i), stop=int(i) + 1)
            acts = model.run_with_cache(x, ["mixed3b", "softmax2"])
            naive_vals.append(acts["mixed3b"][0, chans, cy, cx])
    naive_each = (time.perf_counter() - t) / len(pick)
    naive_cpu_each = (time.process_time() - c) / len(pick)
    naive_total = naive_each * n

    subset = S.Stimuli("curve", {k: np.asarray(v)[pick] for k, v in sweep.batched.items()}, sweep.fixed)
    fast_vals = tuning.responses(model, UNITS, subset)
    agree = torch.allclose(torch.stack(naive_vals), fast_vals, rtol=1e-4, atol=1e-3)

    print(f"load average before/after: {load0} / {os.getloadavg()[0]:.2f} (2 cores shared)")
    print(f"workload: {n} stimuli ({n_angles} orientations x {len(curv)} curvatures), {len(UNITS)} mixed3b units, "
          f"{torch.get_num_threads()} threads, random weights")
    print(f"fast sweep  : {fast:7.2f} s wall, {fast_cpu:7.2f} s CPU  ({fast / n * 1000:.2f} ms/stimulus, "
          f"input {tuning.input_size_for(UNITS)} px)")
    print(f"naive       : {naive_each * 1000:7.1f} ms/stimulus wall ({naive_cpu_each * 1000:.1f} ms CPU), timed on "
          f"{len(pick)} stimuli, extrapolated to {n}: {naive_total:7.1f} s")
    print(f"ratio       : {naive_total / fast:6.1f}x faster (goal >= 30x); sweep {'<' if fast < 20 else '>='} 20 s "
          f"(goal < 20 s)")
    print(f"values agree with the naive forward on the timed subset: {agree}")

    hb = weights.model("handbuilt")
    tuning.radial_tuning(hb, UNITS, n_angles=16, curvatures=curv[:2], progress=False, batch_size=args.batch)
    t, c = time.perf_counter(), time.process_time()
    tuning.radial_tuning(hb, UNITS, n_angles=n_angles, curvatures=curv, progress=False, batch_size=args.batch)
    hb_fast, hb_cpu = time.perf_counter() - t, time.process_time() - c
    print(f"hand-built  : {hb_fast:7.2f} s wall, {hb_cpu:7.2f} s CPU, {naive_total / hb_fast:6.1f}x faster than the "
          f"same naive forward (channel-pruned cone)")

    # Where the sweep's time goes: rendering alone, the same batches as the sweep.
    bs = args.batch or tuning._default_batch(["mixed3b_5x5"], tuning.input_size_for(UNITS), None)
    size = tuning.input_size_for(UNITS)
    c = time.process_time()
    for a in range(0, n, bs):
        sweep.render(size=size, centre=Unit("mixed3b", 0).centre_in_input(size), start=a, stop=min(n, a + bs))
    render_cpu = time.process_time() - c
    print(f"rendering   : {render_cpu:7.2f} s CPU of the sweep's {fast_cpu:.2f} s CPU ({render_cpu / fast_cpu:.0%})")

    if args.cli:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import circuits.cli, weights, torch"], check=True)
        imports = time.perf_counter() - t
        for source in ("handbuilt", "random"):
            code = ("import sys; from circuits.cli import main; "
                    f"sys.exit(main(['tune', 'mixed3b:curves', '--weights', '{source}', '--no-progress']))")
            walls = []
            for _ in range(args.cli):
                t = time.perf_counter()
                subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL,
                               env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
                walls.append(time.perf_counter() - t)
            best = min(walls)
            print(f"circuits tune mixed3b:curves --weights {source}: {best:6.2f} s wall (best of {len(walls)}; "
                  f"imports alone {imports:.2f} s), {naive_total / best:.1f}x one full forward per stimulus "
                  f"(goal < 5 s, >= 30x)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
