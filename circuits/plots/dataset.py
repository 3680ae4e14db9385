"""Figures of a dataset scan: the pre-activation histogram (linear and log density with the
tail fits), quilts of sampled crops per activation bin, the top-k sheet, the attribution
quilt, the three views of hand labels, and curve extraction / spline tracing figures.

Every function takes the JSON record of a unit (`UnitStats.summary()`), the crop pixels
it needs and an output path, and writes through the atomic writer.

Example:
    >>> histogram(summary, "hist.png")          # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from circuits.core.files import atomic_path
from circuits.plots.setup import pyplot
from circuits.plots.style import DPI, FONT_PT, colour_bar

__all__ = ["histogram", "quilt", "topk_sheet", "label_views", "extraction_figure", "spline_figure", "write_sheet", "save"]


def _plt():
    return pyplot()


def save(fig, path: str | os.PathLike, dpi: int = DPI) -> Path:
    """Save `fig` atomically (format from the suffix) and close it."""
    plt = _plt()
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=(path.suffix or ".png")[1:], bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _img(t) -> np.ndarray:
    a = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
    if a.ndim == 3 and a.shape[0] == 3:
        a = a.transpose(1, 2, 0)
    return a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else np.clip(a, 0, 1)


def _num(v: float) -> str:
    """A pre-activation for a caption: whole numbers at InceptionV1's scale (hundreds), three
    significant digits at InceptionV3's (BN-folded values of a few units)."""
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def histogram(s: Mapping, path: str | os.PathLike) -> Path:
    """The article's two views of the pre-ReLU distribution: linear density, and log density with
    both exponential tail fits as lines."""
    plt = _plt()
    edges = np.asarray(s["histogram"]["edges"])
    counts = np.asarray(s["histogram"]["counts"], dtype=float)
    width = s["histogram"]["width"]
    dens = counts / max(s["n_crops"], 1) / width
    centres = (edges[:-1] + edges[1:]) / 2
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, log in zip(axes, (False, True)):
        ax.bar(centres, dens, width=width, color=np.where(centres > 0, "#d62", "#888"), lw=0)
        ax.axvline(0, color="k", lw=0.6)
        ax.set_xlabel(f"{s['unit']} pre-ReLU activation")
        ax.set_ylabel("log density" if log else "density")
        if log:
            ax.set_yscale("log")
            for side, colour in (("positive", "#b00"), ("negative", "#03a")):
                f = s["tail_fits"][side]
                if f.get("rate"):
                    x = np.linspace(*f["range"], 50)
                    ax.plot(x, np.exp(f["intercept"] + f["slope"] * x), color=colour, lw=1.5,
                            label=f"{side}: rate {f['rate']:.3g} (R² {f['r2']:.2f})")
            if ax.get_legend_handles_labels()[0]:  # no tail had enough bins: no legend (matplotlib warns)
                ax.legend(fontsize=8)
    fig.suptitle(f"{s['unit']}: {s['n_crops']} crops of {s['crop_size']} px, fires on {100 * s['firing_rate']:.1f}%, "
                 f"mean {_num(s['mean_pre_relu'])}", fontsize=10)
    return save(fig, path)


def _grid(rows: Sequence[tuple[str, Sequence]], path, title: str, cell: float = 0.9) -> Path:
    """rows: (label, [(image, caption or None), ...]); one row of thumbnails per label."""
    plt = _plt()
    n_cols = max((len(r) for _, r in rows), default=1) or 1
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(cell * n_cols + 1.2, cell * len(rows) + 0.6), squeeze=False)
    for r, (label, items) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for sp in ax.spines.values():
                sp.set_visible(False)
            if c < len(items):
                im, cap = items[c]
                ax.imshow(_img(im), interpolation="lanczos")
                if cap:
                    ax.set_title(cap, fontsize=FONT_PT, pad=1)
        axes[r][0].set_ylabel(label, fontsize=FONT_PT, rotation=0, ha="right", va="center")
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(wspace=0.05, hspace=0.3 if any(cap for _, it in rows for _, cap in it) else 0.05, top=0.93)
    return save(fig, path)


def quilt(s: Mapping, images: Mapping[str, object], path, per_bin: int = 8, title: str | None = None) -> Path:
    """Random crops by activation bin, highest bin on top (`images`: crop id -> pixels; a crop
    missing from it is left out, so an attribution quilt can pass its visualizations)."""
    rows = []
    for b in reversed(s["samples"]["bins"]):
        items = [(images[c["crop_id"]], None) for c in b["crops"][:per_bin] if c["crop_id"] in images]
        if items:
            rows.append((f"[{b['lo']:g}, {b['hi']:g})", items))
    return _grid(rows, path, title or f"{s['unit']}: random crops by pre-ReLU activation bin (rows: bin, highest on top)")


def topk_sheet(s: Mapping, images: Mapping[str, object], path, k: int = 12) -> Path:
    """The k crops that excite the unit most (top row block) and inhibit it most (bottom)."""
    top = [(images[c["crop_id"]], _num(c["value"])) for c in s["top_k"][:k]]
    bottom = [(images[c["crop_id"]], _num(c["value"])) for c in s["bottom_k"][:k]]
    per_row = 6
    rows = [("top" if i == 0 else "", top[i : i + per_row]) for i in range(0, len(top), per_row)]
    rows += [("bottom" if i == 0 else "", bottom[i : i + per_row]) for i in range(0, len(bottom), per_row)]
    return _grid(rows, path, f"{s['unit']}: strongest and most negative crops (caption: pre-ReLU activation)", cell=1.1)


def label_views(views: Mapping, path) -> Path:
    """The three views of hand labels ("Curve Detectors"): p(label | activation bin) as a stack
    plot, the density of all crops split by label, and each label's share of the expected
    post-ReLU activation."""
    plt = _plt()
    labels = list(views["labels"])
    colours = {"curve": "#2a7", "imperfect": "#9c4", "unrelated": "#bbb", "opposing": "#d64"}
    x = np.asarray([b["centre"] for b in views["bins"]])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    cond = np.asarray([[b["p_label"][lab] for b in views["bins"]] for lab in labels])
    dens = np.asarray([[b["density_by_label"][lab] for b in views["bins"]] for lab in labels])
    cs = [colours.get(lab, None) for lab in labels]
    axes[0].stackplot(x, cond, labels=labels, colors=cs, step="mid")
    axes[0].set(title="p(label | activation bin)", xlabel="pre-ReLU activation", ylabel="fraction of the bin's crops",
                ylim=(0, 1))
    axes[1].stackplot(x, dens, labels=labels, colors=cs, step="mid")
    axes[1].set(title="density of all crops, split by label", xlabel="pre-ReLU activation",
                ylabel="density (per unit of activation)")
    share = [views["expected_share"][lab] for lab in labels]
    axes[2].bar(labels, share, color=cs)
    axes[2].set(title="share of the expected post-ReLU activation", xlabel="label", ylabel="share", ylim=(0, 1))
    axes[0].legend(fontsize=FONT_PT + 1, loc="upper left")
    fig.suptitle(f"{views['unit']}: {views['n_labelled']} hand-labelled crops", fontsize=10)
    return save(fig, path)


def extraction_figure(image, res: Mapping, path, title: str = "") -> Path:
    """The image, the family's attribution map and Canny's edges side by side."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.3))
    a = np.where(res["inside"], res["attribution"], 0.0)
    axes[0].imshow(_img(image))
    axes[0].set_title("image", fontsize=9)
    im = axes[1].imshow(a, cmap="magma", vmax=np.quantile(a, 0.995) or None)
    colour_bar(fig, axes[1], im, "family attribution (clipped at its 99.5th percentile)")
    rp = res["ridge_precision"]
    rr = res["ridge_recall"]
    axes[1].set_title(f"attribution (ridge precision {rp['attribution']:.2f}, recall {rr['attribution']:.2f})",
                      fontsize=9)
    edges = np.asarray(res["canny"], dtype=bool)
    axes[2].imshow(np.stack([edges] * 3, axis=-1).astype(float))  # an edge map: white edges on black
    axes[2].set_title(f"Canny (ridge precision {rp['canny']:.2f}, recall {rr['canny']:.2f}; chance "
                      f"{rp['chance']:.2f})", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def spline_figure(image, amap, fits, path, title: str = "", truth=None) -> Path:
    """The image with the traced spline(s) (and the true curve if known), and the attribution map."""
    plt = _plt()
    fits = fits if isinstance(fits, (list, tuple)) else [fits]
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.2))
    axes[0].imshow(_img(image))
    im = axes[1].imshow(np.asarray(amap), cmap="magma")
    colour_bar(fig, axes[1], im, "attribution")
    for ax in axes:
        if truth is not None:
            t = np.asarray(truth)
            ax.plot(t[:, 1], t[:, 0], color="#3c3", lw=1, ls="--", label="true curve")
        for f in fits:
            q = f.points().numpy()
            c = f.control_points.numpy()
            ax.plot(q[:, 1], q[:, 0], color="#e22", lw=1.8, label="traced spline")
            ax.plot(c[:, 1], c[:, 0], "o:", color="#06c", ms=3, lw=0.6)
        ax.set_xlim(0, np.asarray(amap).shape[1])
        ax.set_ylim(np.asarray(amap).shape[0], 0)
        ax.axis("off")
    axes[0].set_title("traced spline", fontsize=9)
    axes[1].set_title("attribution map it maximizes", fontsize=9)
    shown = dict(zip(*axes[0].get_legend_handles_labels()[::-1]))  # one entry per label
    if shown:
        axes[0].legend(shown.values(), shown.keys(), fontsize=FONT_PT + 1, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def write_sheet(summary: Mapping, source, out_dir: str | os.PathLike, per_bin: int | None = None, seed: int = 0,
                per_page: int = 48) -> dict:
    """Write sheet-NN.png pages of numbered, shuffled crops and labels.csv (number, crop_id, label)."""
    from circuits.dataset.labels import LABELS
    from circuits.dataset.scan import load_crops

    ids = [c["crop_id"] for b in summary["samples"]["bins"] for c in b["crops"][: per_bin or None]]
    if not ids:
        raise ValueError(f"the scan kept no sampled crops of {summary['unit']} (was --per-bin 0?)")
    order = np.random.default_rng(seed).permutation(len(ids))
    ids = [ids[i] for i in order]
    crops = load_crops(source, ids)
    out = Path(out_dir)
    plt = _plt()
    files = []
    cols = 8
    for page, start in enumerate(range(0, len(ids), per_page), start=1):
        chunk = ids[start : start + per_page]
        rows = -(-len(chunk) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.45), squeeze=False)
        for k, ax in enumerate(axes.flat):
            ax.axis("off")
            if k < len(chunk):
                ax.imshow(crops[chunk[k]].permute(1, 2, 0).numpy())
                ax.set_title(str(start + k + 1), fontsize=8, pad=2)
        fig.suptitle(f"label each crop: {', '.join(LABELS)} (page {page})", fontsize=10)
        files.append(save(fig, out / f"sheet-{page:02d}.png"))
    csv_path = out / "labels.csv"
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["number", "crop_id", "label"])
    for k, cid in enumerate(ids, start=1):
        w.writerow([k, cid, ""])
    with atomic_path(csv_path) as tmp:
        tmp.write_text(buf.getvalue())
    return {"files": files + [csv_path], "csv": csv_path, "n_crops": len(ids), "labels": list(LABELS)}
