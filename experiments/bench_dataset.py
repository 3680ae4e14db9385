"""Dataset scan throughput: crops/s, DataLoader workers 2 vs 1, torchrun 2 processes vs 1.

A crop is one receptive-field window (91 px for mixed3b:379), read as one position of a
whole-image forward pass. Both ratios are measured in this run against its own
1-worker / 1-process baseline on the same images.

    python experiments/bench_dataset.py [--images skimage] [--limit 8] [--unit mixed3b:379]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import best_of  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="skimage")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--unit", default="mixed3b:379")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-torchrun", action="store_true")
    args = ap.parse_args()

    import weights
    from circuits.dataset import open_source, scan

    model = weights.model("handbuilt").eval()
    src = open_source(args.images)
    common = dict(limit=args.limit, bin_width=10.0, progress=False)
    n = scan(model, args.unit, src, **common).units[args.unit].hist.n
    times = {}
    for w in (1, 2):
        times[w] = best_of(lambda: scan(model, args.unit, src, num_workers=w, **common), args.repeats, warmup=False)
        print(f"DataLoader workers {w}: {n} crops in {times[w]:.2f} s = {n / times[w]:.0f} crops/s")
    print(f"workers 2 vs 1: {times[1] / times[2]:.2f}x")
    if args.no_torchrun:
        return
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    base = ["-m", "circuits.cli.dataset", args.unit, "--images", args.images, "--limit", str(args.limit),
            "--bin-width", "10", "--quiet"]
    wall = {}
    with tempfile.TemporaryDirectory() as d:
        for procs in (1, 2):
            out = Path(d) / f"{procs}.json"
            launcher = [sys.executable] if procs == 1 else [
                sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs)]
            # torchrun gives each process one thread; so does the 1-process baseline
            t = time.perf_counter()
            subprocess.run(launcher + base + ["--json", str(out)], env=dict(env, OMP_NUM_THREADS="1"), check=True,
                           capture_output=True)
            wall[procs] = time.perf_counter() - t
            assert json.loads(out.read_text())["units"][args.unit]["n_crops"] == n
            print(f"torchrun {procs} process(es), 1 thread each: {wall[procs]:.1f} s wall (startup included) "
                  f"= {n / wall[procs]:.0f} crops/s")
    print(f"torchrun 2 vs 1 processes: {wall[1] / wall[2]:.2f}x")


if __name__ == "__main__":
    main()
