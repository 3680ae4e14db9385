"""Design loop for the hand-built curve network: measure its radial tuning and compare with the original.

Renders dark arcs on white centred on each unit's receptive field (bulge direction
theta, the Curve Detectors convention), averages the post-ReLU centre response over
curvatures, and prints per unit: published and built preferred angle, their error,
Pearson correlation of the curves (resampled to the published 720 angles), FWHM of the
main lobe (built / published) and the echo ratio (max within +/-45 deg of pref+180,
over the peak). Also prints the contrast/colour/fill invariance and the response to
curves vs rounded angles vs sharp angles vs lines.

Run (quick, 72 orientations x 4 curvatures):
    python experiments/tune_handbuilt.py --orients 72 --curvatures 4
Full (720 x 8, as published):
    python experiments/tune_handbuilt.py --orients 720 --curvatures 8
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

import handbuilt
import handbuilt.spec
from circuits import Unit

REF = Path(__file__).resolve().parents[1].parent / "shared" / "reference"

try:  # the project's renderer and metrics, when present
    from circuits import stimuli as _stimuli  # noqa: F401
except Exception:  # pragma: no cover - private fallback below
    _stimuli = None


# --- a private renderer (used until circuits.stimuli exists) ------------------


def arc_ink(size: int, centre, theta: float, radius: float, length: float, width: float) -> np.ndarray:
    """Anti-aliased ink coverage [size, size] of an arc whose midpoint is at `centre`, bulging towards theta."""
    cy, cx = centre
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    t = np.radians(theta)
    ox, oy = cx - radius * np.cos(t), cy - radius * np.sin(t)  # centre of curvature
    half = min(length / (2 * radius), np.pi)
    dx, dy = xx - ox, yy - oy
    ang = np.arctan2(dy, dx) - t
    ang = (ang + np.pi) % (2 * np.pi) - np.pi
    d_circle = np.abs(np.hypot(dx, dy) - radius)
    ends = [(ox + radius * np.cos(t + s * half), oy + radius * np.sin(t + s * half)) for s in (-1, 1)]
    d_ends = np.minimum(*[np.hypot(xx - ex, yy - ey) for ex, ey in ends])
    d = np.where(np.abs(ang) <= half, d_circle, d_ends)
    return np.clip(width / 2 + 0.5 - d, 0.0, 1.0)


def to_input(ink: np.ndarray, fg=(0, 0, 0), bg=(255, 255, 255)) -> torch.Tensor:
    fg = np.asarray(fg, float)[:, None, None]
    bg = np.asarray(bg, float)[:, None, None]
    img = bg * (1 - ink[None]) + fg * ink[None]
    return torch.as_tensor(img - 117.0, dtype=torch.float32)


# --- measuring ------------------------------------------------------------------

LAYER_SIZE = {"mixed3b": 97, "mixed3a": 49}  # odd map sizes all the way: the centre unit is centred
LENGTH = {"mixed3b": 40.0, "mixed3a": 40.0}  # arc length in px (circuits.stimuli's default)


def responses(model, units: list[Unit], batch: torch.Tensor) -> np.ndarray:
    layers = sorted({u.branch for u in units})
    out = []
    with torch.inference_mode():
        for chunk in batch.split(64):
            cache = model.run_with_cache(chunk, layers)
            cols = []
            for u in units:
                h, w = cache[u.branch].shape[-2:]
                cols.append(cache[u.branch][:, u.branch_channel, h // 2, w // 2])
            out.append(torch.stack(cols, 1))
    return torch.cat(out).numpy()


def render(layer: str, size: int, centre, thetas, curvature: float, arc_length: float, width: float, **kw) -> torch.Tensor:
    """Curves at `thetas` for one curvature (fraction of a half circle), with circuits.stimuli when present."""
    if _stimuli is not None:
        return _stimuli.curve(thetas, curvature, arc_length=arc_length, width=width, size=size, centre=centre, **kw)
    radius = arc_length / (max(curvature, 1e-6) * np.pi)
    return torch.stack([to_input(arc_ink(size, centre, th, radius, arc_length, width)) for th in thetas])


def radial_tuning(model, units: list[Unit], layer: str, n_orient: int, n_curv: int, width: float = 3.0,
                  arc_length: float | None = None, curvatures=None, **kw):
    size = LAYER_SIZE[layer]
    centre = Unit(layer, units[0].channel).centre_in_input(size)
    if curvatures is None:
        curvatures = np.linspace(1.0 / n_curv, 1.0, n_curv)
    thetas = np.arange(n_orient) * 360.0 / n_orient
    acc = np.zeros((n_orient, len(units)))
    L = arc_length or LENGTH[layer]
    for c in curvatures:
        acc += responses(model, units, render(layer, size, centre, thetas, float(c), L, width, **kw))
    return thetas, acc / len(curvatures)


# --- metrics --------------------------------------------------------------------


def fwhm(curve: np.ndarray, step: float) -> float:
    p = int(np.argmax(curve))
    half = curve[p] / 2
    n = len(curve)
    left = right = 0
    while left < n and curve[(p - left) % n] >= half:
        left += 1
    while right < n and curve[(p + right) % n] >= half:
        right += 1
    return (left + right - 1) * step


def echo(curve: np.ndarray, thetas: np.ndarray) -> float:
    p = thetas[np.argmax(curve)]
    d = np.abs((thetas - p - 180 + 180) % 360 - 180)
    return float(curve[d <= 45].max() / max(curve.max(), 1e-12))


def compare(layer: str, units, thetas, built: np.ndarray, ref) -> list[dict]:
    rows = []
    angles = ref["angles_deg"]
    neurons = list(ref[f"{layer}_neurons"])
    for j, u in enumerate(units):
        pub = ref[f"{layer}_curves"][neurons.index(u.channel)]
        b = built[:, j]
        bi = np.interp(angles, np.r_[thetas, 360.0], np.r_[b, b[0]], period=360)
        p_pub, p_b = angles[np.argmax(pub)], thetas[np.argmax(b)]
        err = abs((p_b - p_pub + 180) % 360 - 180)
        corr = np.corrcoef(bi, pub)[0, 1] if b.std() > 0 else float("nan")
        rows.append(dict(unit=u.id, pub=p_pub, built=p_b, err=err, corr=corr,
                         fwhm_ratio=fwhm(b, 360 / len(b)) / fwhm(pub, 0.5), echo=echo(b, thetas),
                         peak=b.max(), pub_peak=pub.max()))
    return rows


def print_rows(rows):
    print(f"{'unit':13s} {'pub':>6s} {'built':>6s} {'err':>5s} {'corr':>6s} {'fwhmR':>6s} {'echo':>6s} {'peak':>8s} {'pubpk':>6s}")
    for r in rows:
        print(f"{r['unit']:13s} {r['pub']:6.1f} {r['built']:6.1f} {r['err']:5.1f} {r['corr']:6.3f} "
              f"{r['fwhm_ratio']:6.2f} {r['echo']:6.3f} {r['peak']:8.2f} {r['pub_peak']:6.1f}")
    c = np.array([r["corr"] for r in rows])
    e = np.array([r["err"] for r in rows])
    print(f"  min corr {np.nanmin(c):.3f}  mean corr {np.nanmean(c):.3f}  max err {e.max():.1f}  "
          f"max echo {max(r['echo'] for r in rows):.3f}")


def cosmetic_checks(model, units: list[Unit], layer: str, n_orient: int = 72) -> None:
    """Invariance (polarity, colour, fill) at each unit's preferred orientation, and curves vs angles vs lines."""
    if _stimuli is None:
        print("circuits.stimuli missing: skipping cosmetic checks")
        return
    st = _stimuli
    size = LAYER_SIZE[layer]
    centre = Unit(layer, units[0].channel).centre_in_input(size)
    curv = np.linspace(0.25, 1.0, 4)
    L = LENGTH[layer]
    thetas = np.arange(n_orient) * 360.0 / n_orient

    def mean_over_curv(**kw):
        acc = 0
        for c in curv:
            acc = acc + responses(model, units, st.curve(thetas, float(c), arc_length=L, size=size, centre=centre, **kw))
        return acc / len(curv)

    base = mean_over_curv()
    pref = base.argmax(0)
    cols = np.arange(len(units))
    summary = {}
    print(f"\n{layer} invariance (response at each unit's preferred orientation / black-on-white, mean over curvatures):")
    for label, kw in [("white on black", dict(fg="white", bg="black")), ("blue on yellow", dict(fg="blue", bg="yellow")),
                      ("red on cyan", dict(fg="red", bg="cyan")), ("black on grey", dict(fg="black", bg="grey")),
                      ("filled", dict(filled=True)), ("filled white/black", dict(filled=True, fg="white", bg="black"))]:
        r = mean_over_curv(**kw)[pref, cols] / base[pref, cols]
        summary[label] = (r.min(), r.max())
        print(f"  {label:20s} min {r.min():.2f} max {r.max():.2f}")
    shapes = {
        "curve (c=0.5..1)": lambda: np.max([responses(model, units, st.curve(thetas, c, arc_length=L, size=size, centre=centre)).max(0) for c in (0.5, 0.75, 1.0)], axis=0),
        "rounded angle": lambda: responses(model, units, st.rounded_angle(thetas, 90.0, corner_radius=6.0, arm_length=L / 2, size=size, centre=centre)).max(0),
        "sharp angle": lambda: responses(model, units, st.angle(thetas, 90.0, arm_length=L / 2, size=size, centre=centre)).max(0),
        "straight line": lambda: responses(model, units, st.curve(thetas, 0.0, arc_length=L, size=size, centre=centre)).max(0),
    }
    print(f"{layer} shapes (max over orientations, mean over units, and min/max over units of ratio to curve):")
    ref = None
    for label, fn in shapes.items():
        v = fn()
        ref = v if ref is None else ref
        summary[label] = (np.min(v / ref), np.max(v / ref))
        print(f"  {label:18s} mean {v.mean():8.2f}   ratio to curve min {np.min(v / ref):.2f} max {np.max(v / ref):.2f}")
    blank = torch.stack([torch.full((3, size, size), float(v)) for v in (-117.0, 0.0, 138.0)] +
                        [torch.tensor([138.0, -117.0, -117.0])[:, None, None].expand(3, size, size)])
    summary["blank"] = float(np.abs(responses(model, units, blank)).max())
    print(f"{layer} blank inputs: max response {summary['blank']:.3g}")
    return summary


def override(spec, assignments: list[str]):
    """A copy of `spec` with rule fields replaced: ``curves.bias=-2``, ``curves.tuning.width=20``.

    A rule is named by (the first of) its destination bank(s).
    """
    import dataclasses

    rules = list(spec.rules)
    for a in assignments:
        key, value = a.split("=")
        name, *path = key.split(".")
        idx = [i for i, r in enumerate(rules) if (r.dst if isinstance(r.dst, str) else (r.dst or ("",))[0]) == name]
        if not idx:
            raise SystemExit(f"no rule computes {name!r}")

        def put(obj, path, val):
            if len(path) == 1:
                return dataclasses.replace(obj, **{path[0]: val})
            return dataclasses.replace(obj, **{path[0]: put(getattr(obj, path[0]), path[1:], val)})

        rules[idx[0]] = put(rules[idx[0]], path, float(value))
    return dataclasses.replace(spec, rules=tuple(rules))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orients", type=int, default=72)
    ap.add_argument("--curvatures", type=int, default=4)
    ap.add_argument("--layers", default="mixed3b,mixed3a")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", nargs="*", default=[], help="rule overrides, e.g. curves.bias=-2 curves.tuning.width=20")
    ap.add_argument("--arc-length", type=float, default=None)
    ap.add_argument("--width", type=float, default=3.0)
    ap.add_argument("--checks", action="store_true", help="also print invariance and shape checks")
    ap.add_argument("--show", default="", help="comma-separated unit ids whose curves to print")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = handbuilt.build(override(handbuilt.spec.SPEC, args.set))
    print(f"build {time.perf_counter() - t0:.2f}s")
    ref = np.load(REF / "radial_tuning_curves.npz") if REF.exists() else None
    for layer in args.layers.split(","):
        units = [u for b in handbuilt.spec.SPEC.banks if b.layer == layer and b.name in ("curves", "early_curves")
                 for u in (Unit(layer, c) for c in b.channels)]
        t0 = time.perf_counter()
        thetas, built = radial_tuning(model, units, layer, args.orients, args.curvatures,
                                      width=args.width, arc_length=args.arc_length)
        print(f"\n{layer}: {args.orients} orientations x {args.curvatures} curvatures in {time.perf_counter() - t0:.1f}s")
        if ref is not None:
            print_rows(compare(layer, units, thetas, built, ref))
        if args.checks:
            cosmetic_checks(model, units, layer)
        for j, u in enumerate(units):
            if u.id in args.show.split(","):
                b = built[:, j]
                p = int(np.argmax(b))
                rolled = np.roll(b, len(b) // 2 - p) / b.max()
                step = max(1, len(b) // 36)
                print(u.id, "around pref (every", 360 / len(b) * step, "deg):",
                      " ".join(f"{v:.2f}" for v in rolled[::step]))
                if ref is not None:
                    pub = ref[f"{layer}_curves"][list(ref[f"{layer}_neurons"]).index(u.channel)]
                    pp = int(np.argmax(pub))
                    rp = np.roll(pub, 360 - pp) / pub.max()
                    print(" " * len(u.id), "published:              ", " ".join(f"{v:.2f}" for v in rp[:: 20]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
