"""Joint tuning curves on rotated dataset examples: the "Curve Detectors" check, measured.

For each network, each unit of its curve family: its top-k crops of skimage's photographs,
rotated about the receptive-field centre; every unit read at each rotation
(`circuits.dataset.joint_tuning`). Prints, over the (source, neighbour) pairs whose
response is substantial (a neighbour's peak >= 10% of the source's own), the fraction
whose peak rotation equals preferred(neighbour) - preferred(source) within 20 degrees
(preferred orientations from synthetic curves), and the same with the opposite sign.

    python experiments/joint_tuning.py                       # hand-built mixed3b curves, top 8, 1 degree
    python experiments/joint_tuning.py --network v3 --top-k 8 --step 2
    python experiments/joint_tuning.py --network both --json-dir out/ --plot-dir out/
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NETWORKS = {
    "handbuilt": ("handbuilt", "mixed3b:curves"),
    "v3": ("nsfwjs-inception-v3", str(ROOT / "docs" / "inceptionv3_mixed2_curves.json")),
}


def run(name: str, args) -> dict:
    import weights
    from circuits.cli.options import family_ids
    from circuits.dataset.joint_tuning import joint_tuning
    from circuits.dataset.sources import skimage_source

    source, family = NETWORKS[name]
    model = weights.model(source).eval()
    units = family_ids(family, model)
    images = skimage_source(model.graph.default_input_size)
    t = time.perf_counter()
    jt = joint_tuning(model, units, images, top_k=args.top_k, step=args.step, progress=not args.quiet)
    seconds = time.perf_counter() - t
    a = jt.agreement()
    print(f"{name}: {jt.network} {', '.join(jt.units)}")
    print(f"  top {args.top_k} crops per unit from skimage, rotations every {args.step} degrees, {seconds:.0f} s")
    print("  preferred (synthetic curves): " + ", ".join(f"{u} {p:.0f}" for u, p in zip(jt.units, jt.preferred_deg)))
    print(f"  substantial pairs {a['pairs']}: peak at preferred(n) - preferred(s) within 20 degrees for "
          f"{a['within_tolerance']} = {100 * a['fraction']:.1f}% (opposite sign: {100 * a['fraction_opposite_sign']:.1f}%), "
          f"median |error| {a['median_abs_error_deg']:.1f} degrees")
    print("  each source's own peak rotation: " + ", ".join(f"{v:+.0f}" for v in a["self_peak_rotation_deg"].values()))
    if args.json_dir:
        p = Path(args.json_dir) / f"joint_tuning_{name}.json"
        p.write_text(json.dumps({**jt.to_json(), "weights": source, "seconds": seconds}, indent=1))
        print(f"  wrote {p}")
    if args.plot_dir:
        from circuits.plots.joint_tuning import plot_joint_tuning

        p = plot_joint_tuning(jt, Path(args.plot_dir) / f"joint_tuning_{name}.png",
                              title=f"joint tuning curves: {Path(family).stem} ({source} weights, skimage)")
        print(f"  wrote {p}")
    return a


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", choices=["handbuilt", "v3", "both"], default="handbuilt")
    ap.add_argument("--top-k", type=int, default=8)
    ap.add_argument("--step", type=int, default=1)
    ap.add_argument("--json-dir")
    ap.add_argument("--plot-dir")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    for name in (["handbuilt", "v3"] if args.network == "both" else [args.network]):
        run(name, args)


if __name__ == "__main__":
    main()
