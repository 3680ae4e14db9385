"""Spline tracing accuracy on synthetic arcs (plain, a gap, a grey occluding box), and the figure.

Prints the mean and worst symmetric distance (pixels) between the traced Bézier and the
true arc's centre line, and writes docs/dataset_spline.png.

    python experiments/spline_accuracy.py [--steps 200] [--out docs/dataset_spline.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--out", default=str(ROOT / "docs" / "dataset_spline.png"))
    args = ap.parse_args()

    import weights
    from test_dataset_curves import arc_image  # the same arcs the tests use

    from circuits.dataset.extraction import attribution_map
    from circuits.dataset.spline import curve_distance, trace
    from circuits.plots.dataset import _img, _plt, save

    model = weights.model("handbuilt").eval()
    cases = {"plain": None, "gap (white patch)": (20, 50, 40, 28, 1.0), "grey box": (20, 50, 40, 28, 0.5)}
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    for ax, (name, occ) in zip(axes, cases.items()):
        img, truth = arc_image(occlude=occ)
        fit = trace(attribution_map(model, "mixed3b:curves", img), steps=args.steps)
        mean, worst = curve_distance(fit.points(), truth)
        print(f"{name:<18} mean {mean:.2f} px, worst {worst:.2f} px")
        ax.imshow(_img(img))
        ax.plot(truth[:, 1], truth[:, 0], "--", color="#3c3", lw=1.2, label="true arc")
        q, c = fit.points().numpy(), fit.control_points.numpy()
        ax.plot(q[:, 1], q[:, 0], color="#e22", lw=1.5, label="traced")
        ax.plot(c[:, 1], c[:, 0], "o:", color="#06c", ms=3, lw=0.6)
        ax.set_title(f"{name}: mean {mean:.1f} px", fontsize=9)
        ax.axis("off")
    axes[0].legend(fontsize=8, loc="lower center")
    fig.suptitle("Bézier traced by maximizing mixed3b:curves attribution (hand-built network)", fontsize=10)
    print(f"wrote {save(fig, args.out)}")  # the figures' resolution (circuits.plots.style.DPI): text >= 11 px


if __name__ == "__main__":
    main()
