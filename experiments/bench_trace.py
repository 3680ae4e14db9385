"""Benchmark: traced torchvision networks (circuits.core.trace) against their eager modules.

1. Forward: the traced interpreter (a hook point at every tensor, batch norm folded into
   the convolutions) vs the eager torchvision module, resnet50, batch --batch at 224 px,
   inference mode; best of --repeats, the two sides interleaved. Goal: within 5%.
2. Radial sweep of a layer3 unit of resnet18 (seeded random weights): the library's
   sweep (`radial_tuning`: the input that holds the receptive field, truncated at the
   unit, the receptive-field cone, batched) vs the naive way, one full forward of the
   eager module per stimulus at 224 px with a forward hook reading the unit at the
   centre. The naive side is timed on --naive stimuli and extrapolated linearly (its
   cost per stimulus does not depend on the stimulus). Goal: >= 30x.
3. (--discover N) `discover` on random networks: N seeds of resnet18 (layer2) and of
   mobilenet_v2 (features.4); the number of units accepted as curve detectors (random
   weights should give none).

The machine is shared: the numbers are noisy; the load average is printed.

Run: python experiments/bench_trace.py [--threads 2] [--batch 8] [--repeats 5] [--naive 24] [--discover 5]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torchvision

from circuits.core.trace import trace
from circuits.tuning import measure
from circuits.tuning import stimuli as S

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def forward_ratio(batch: int, repeats: int, device: str) -> None:
    torch.manual_seed(0)
    module = torchvision.models.resnet50(weights=None).eval().to(device)
    net = trace(module, input_size=224).to(device)
    x = torch.rand(batch, 3, 224, 224, device=device)

    def run(f):
        with torch.inference_mode():
            f(x)
        if device == "cuda":
            torch.cuda.synchronize()

    run(module), run(net)
    te, tt = [], []
    for _ in range(repeats):
        for f, out in ((module, te), (net, tt)):
            t = time.perf_counter()
            run(f)
            out.append(time.perf_counter() - t)
    with torch.inference_mode():
        err = float((net(x) - module(x)).abs().max() / module(x).abs().max())
    print(f"1. resnet50 forward, batch {batch} at 224 px on {device}: eager {min(te) * 1e3:.0f} ms, "
          f"traced {min(tt) * 1e3:.0f} ms (best of {repeats}); traced / eager = {min(tt) / min(te):.3f} "
          f"(goal <= 1.05); logits max rel. difference {err:.1e}")


def cone_mac_ratio(net, u) -> float:
    """Convolution multiply-adds of a full forward at 224 px / those of the unit's receptive-field
    cone at the input the sweep uses: the most the cone can save for this unit, whatever the
    implementation (pooling, activations and batching left out)."""
    from circuits.tuning.cone import cone_windows

    g = net.graph
    s = measure.input_size_for([u], net)
    wins = cone_windows((u.branch,), s, s, g)
    full = cone = 0
    for n in g.nodes:
        w = getattr(getattr(net, n.param), "weight", None) if n.param else None
        if w is None or w.dim() != 4:
            continue
        macs = w.numel()  # per output position: C_out x C_in/groups x kh x kw
        h, wd = g.output_hw(n.name, 224)
        full += macs * h * wd
        if n.name in wins:
            y0, y1, x0, x1 = wins[n.name]
            cone += macs * (y1 - y0 + 1) * (x1 - x0 + 1)
    return full / cone


def sweep_ratio(naive: int, n_angles: int, unit: str) -> None:
    torch.manual_seed(0)
    module = torchvision.models.resnet18(weights=None).eval()
    net = trace(module, input_size=224, normalize=(MEAN.flatten().tolist(), STD.flatten().tolist()))
    u = net.unit(unit)
    curv = measure.DEFAULT_CURVATURES
    t = time.perf_counter()
    rt = measure.radial_tuning(net, [u], n_angles=n_angles, curvatures=curv, progress=False)
    fast = time.perf_counter() - t
    n_total = rt.n_stimuli
    # the naive way: each stimulus at 224 px, one full forward of the eager module
    params = measure.default_curve_params(u.layer, net)
    read = {}
    hook = module.get_submodule(u.layer).register_forward_hook(
        lambda m, a, out: read.__setitem__("v", out[:, u.channel, out.shape[2] // 2, out.shape[3] // 2]))
    g = np.random.default_rng(0)
    picks = [(float(a), float(c)) for a, c in zip(g.choice(rt.angles_deg, naive), g.choice(curv, naive))]
    try:
        t = time.perf_counter()
        for a, c in picks:
            x = S.curve(a, curvature=c, size=224, input_range=(0.0, 1.0),
                        **{k: v for k, v in params.items() if k in ("arc_length", "width")})
            with torch.inference_mode():
                module((x - MEAN) / STD)
        per = (time.perf_counter() - t) / naive
    finally:
        hook.remove()
    print(f"2. resnet18 {unit} radial sweep ({n_angles} orientations x {len(curv)} curvatures = {n_total} "
          f"stimuli, input {measure.input_size_for([u], net)} px, RF {net.graph.receptive_field(u.layer).size} px): "
          f"library {fast:.1f} s; naive one full forward per stimulus at 224 px {per * 1e3:.0f} ms each, "
          f"{per * n_total:.1f} s extrapolated from {naive}; naive / library = {per * n_total / fast:.1f}x (goal >= 30x); "
          f"bound from the cone's convolution multiply-adds: {cone_mac_ratio(net, u):.1f}x")


def discover_random(seeds: int) -> None:
    from circuits.tuning.discover import discover
    import weights

    for arch, layer in (("resnet18", "layer2"), ("mobilenet_v2", "features.4")):
        for seed in range(seeds):
            m = weights.model(f"torchvision:{arch}:random:{seed}")
            t = time.perf_counter()
            d = discover(m, layer, register=False, progress=False)
            print(f"3. discover {arch} seed {seed} {layer}: {len(d.family)} of {len(d.scores)} units accepted "
                  f"({time.perf_counter() - t:.0f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--naive", type=int, default=24)
    ap.add_argument("--angles", type=int, default=72, help="orientations of the sweep")
    ap.add_argument("--unit", default="layer3:17,layer2:17", help="units of resnet18 to sweep (comma list)")
    ap.add_argument("--discover", type=int, default=0, help="seeds per architecture for part 3 (0: skip)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--skip", default="", help="comma list of parts to skip (1, 2)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, load average {os.getloadavg()[0]:.1f}")
    if "1" not in args.skip:
        forward_ratio(args.batch, args.repeats, args.device)
    if "2" not in args.skip:
        for unit in args.unit.split(","):
            sweep_ratio(args.naive, args.angles, unit)
    if args.discover:
        discover_random(args.discover)


if __name__ == "__main__":
    main()
