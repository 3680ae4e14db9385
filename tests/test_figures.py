"""Every figure kind of circuits/plots, rendered small, read back: is it readable at its saved size?

Checked from the saved file (its resolution, from the PNG's pHYs chunk, read by
Pillow) and matplotlib's own objects (every Text artist, every Axes, every image):

* every visible text is at least 11 px tall in the saved file (font size in points
  times dpi / 72; 8 pt at 100% zoom on a ~100 dpi screen);
* every axis with tick labels has an axis label; every polar plot shows its radial
  scale (tick values) and says what the radius is;
* every image of scalar data (a heat map) has a colour bar, and the colour bar a label;
* the colours of ten units are pairwise distinguishable: CIELAB distance (skimage's
  rgb2lab, an independent implementation) of at least 20, and each has a contrast
  of at least 3:1 against white (WCAG's formula written out here).
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import networkx as nx
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.text import Text
from PIL import Image

from circuits.plots import attribution as attribution_plots
from circuits.plots import compare, dataset, discover, edit_experiment, family_compare, graph, tuning, weights

MIN_PX = 11.0
ANGLES = np.arange(36) * 10.0
# Ten preferred orientations as a curve family has them: several within 15 degrees of a neighbour.
PREFS = [0, 15, 30, 100, 115, 130, 200, 215, 290, 305]
UNITS = [f"mixed3b:{379 + i}" for i in range(10)]


def bump(pref, width=30.0, peak=1.0):
    d = (ANGLES - pref + 180) % 360 - 180
    return peak * np.exp(-0.5 * (d / width) ** 2)


CURVES = {u: bump(p, peak=50 + 10 * i) for i, (u, p) in enumerate(zip(UNITS, PREFS))}


@pytest.fixture()
def saved(monkeypatch):
    """Records (figure, path) of every savefig, the figure kept for inspection after it is saved."""
    out = []
    original = Figure.savefig

    def record(fig, fname, *args, **kwargs):
        original(fig, fname, *args, **kwargs)
        out.append((fig, fname, kwargs.get("format")))

    monkeypatch.setattr(Figure, "savefig", record)
    return out


def file_dpi(fname) -> float:
    with Image.open(fname) as im:
        return float(im.info["dpi"][0])


def texts(fig):
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def contrast_with_white(rgb) -> float:
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb[:3]]
    return 1.05 / (0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2] + 0.05)


def check_readable(saved, path):
    """The checks of the module docstring on the one figure saved to `path`."""
    assert path.exists(), f"{path} was not written"
    (fig, fname, fmt), = [s for s in saved if str(s[1]).startswith(str(path.parent))]
    dpi = file_dpi(path)
    small = sorted({(round(t.get_fontsize() * dpi / 72, 1), t.get_text()[:40]) for t in texts(fig)
                    if t.get_fontsize() * dpi / 72 < MIN_PX})
    assert not small, f"{path.name}: text under {MIN_PX} px at {dpi:g} dpi: {small[:6]}"
    all_text = " ".join(t.get_text() for t in texts(fig))
    for ax in fig.axes:
        cb = getattr(ax, "_colorbar", None)
        if cb is not None:
            assert (ax.get_ylabel() or ax.get_xlabel()).strip(), f"{path.name}: a colour bar without a label"
            continue
        if ax.name == "polar":
            ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_visible() and t.get_text()]
            assert ticks, f"{path.name}: a polar plot without its radial scale"
            assert "radius:" in all_text, f"{path.name}: no text says what the radius is"
            continue
        if not ax.axison:
            pass  # a picture (photograph, crop): no axes to label
        else:
            for which, labels, label in (("x", ax.get_xticklabels(), ax.get_xlabel()),
                                         ("y", ax.get_yticklabels(), ax.get_ylabel())):
                if any(t.get_text() for t in labels if t.get_visible()):
                    assert label.strip(), f"{path.name}: {which} axis with ticks and no label ({ax.get_title()!r})"
        for im in ax.images:
            if isinstance(im, AxesImage) and np.ndim(im.get_array()) == 2:
                assert im.colorbar is not None, f"{path.name}: heat map without a colour bar ({ax.get_title()!r})"
    return fig


def check_unit_colours(lines, n=10):
    """The first `n` unit lines: pairwise CIELAB distance >= 20, contrast >= 3:1 on white."""
    from matplotlib.colors import to_rgb
    from skimage.color import rgb2lab

    rgb = np.array([to_rgb(line.get_color()) for line in lines[:n]])
    assert len(rgb) == n
    lab = rgb2lab(rgb[None])[0]
    dist = min(np.linalg.norm(lab[i] - lab[j]) for i, j in itertools.combinations(range(n), 2))
    assert dist >= 20, f"two of the {n} unit colours are {dist:.1f} apart in CIELAB (need >= 20)"
    assert min(contrast_with_white(c) for c in rgb) >= 3.0


# --- tuning figures -------------------------------------------------------------


def test_radial_plot_of_ten_units(saved, tmp_path):
    p = tuning.plot_radial(ANGLES, CURVES, tmp_path / "radial.png")
    fig = check_readable(saved, p)
    check_unit_colours([ln for ln in fig.axes[0].lines if not ln.get_label().startswith("_")])
    # The radial quantity is said outside the polar area, not across the lobes.
    ax = fig.axes[0]
    inside = [t for t in ax.texts if "radius" in t.get_text() or "response" in t.get_text()]
    assert not inside


def test_normalized_radial_plots(saved, tmp_path):
    check_readable(saved, discover.plot_family_radial(ANGLES, CURVES, tmp_path / "fam.png", prefs=dict(zip(UNITS, PREFS))))


def test_overlay(saved, tmp_path):
    check_readable(saved, tuning.plot_overlay(ANGLES, {"a": bump(0), "b": bump(20)}, tmp_path / "o.png", unit="u"))


def test_response_map(saved, tmp_path):
    rmap = SimpleNamespace(units=["u:1", "u:2"], values=np.random.default_rng(0).normal(size=(2, 3, 4)), scale="std",
                           pre_relu=False, cols=[0, 90, 180, 270], rows=[0.1, 0.2, 0.3], col_name="orientation (degrees)",
                           row_name="curvature", kind="curve")
    check_readable(saved, tuning.plot_response_map(rmap, tmp_path / "r.png"))


def test_stimuli_and_contact_sheet(saved, tmp_path):
    check_readable(saved, tuning.plot_stimuli(torch.zeros(3, 3, 16, 16), tmp_path / "s.png", titles=["a", "b", "c"]))
    saved.clear()
    check_readable(saved, discover.plot_contact_sheet(torch.rand(3, 3, 16, 16), ["a", "b", "c"], tmp_path / "c.png"))


class Tuning:
    def __init__(self, curves):
        self.units, self.angles_deg, self._c = list(curves), ANGLES, curves

    def curve(self, u):
        return self._c[u]


def test_family_comparison_and_unit_multiples(saved, tmp_path):
    fig = check_readable(saved, compare.plot_family_comparison(Tuning(CURVES), {}, tmp_path / "f.png"))
    check_unit_colours(fig.axes[0].lines)
    saved.clear()
    two = {"hand-built": Tuning(CURVES), "trained": Tuning({u: c[::-1] for u, c in CURVES.items()})}
    check_readable(saved, compare.plot_unit_multiples(two, {}, tmp_path / "m.png"))


def test_edit_experiment_panels_share_a_labelled_radial_scale(saved, tmp_path):
    conds = ["unedited", "drop_negative", "keep_only"]
    curves = {c: np.stack([CURVES[u] * (1 + k) for u in UNITS]) for k, c in enumerate(conds)}
    exp = SimpleNamespace(conditions=conds, curves=curves, angles_deg=ANGLES, units=UNITS, curve_family="mixed3b:curves",
                          early_family="mixed3a:early_curves", route="direct",
                          summary=lambda: {c: {"median_peak": 1.0, "median_echo": 0.5} for c in conds})
    fig = check_readable(saved, edit_experiment.plot_edit_experiment(exp, tmp_path / "e.png"))
    tops = {ax.get_ylim()[1] for ax in fig.axes}
    assert len(tops) == 1  # one radial scale
    check_unit_colours(fig.axes[0].lines)


def test_families_side_by_side(saved, tmp_path):
    prof = SimpleNamespace(units=UNITS, radial=[CURVES[u] for u in UNITS], pref_deg=PREFS, angles=ANGLES, label="hand-built",
                           network="InceptionV1", layer="mixed3b")
    w = {"centres_deg": [-180, -90, 0, 90], "normalised": [-1, 0, 1, 0], "network": "InceptionV1", "early": "e", "curves": "c"}
    fig = check_readable(saved, family_compare.plot_families([prof, prof], tmp_path / "fc.png", weights=[w]))
    check_unit_colours(fig.axes[0].lines)


# --- dataset figures -------------------------------------------------------------


def summary():
    rng = np.random.default_rng(0)
    edges = np.linspace(-100, 100, 21)
    bins = [{"lo": float(lo), "hi": float(hi), "crops": [{"crop_id": f"c{i}-{k}"} for k in range(3)]}
            for i, (lo, hi) in enumerate(zip(edges[:-1:5], edges[5::5]))]
    fit = {"rate": 0.05, "range": [10, 90], "intercept": -2.0, "slope": -0.05, "r2": 0.9}
    return {
        "unit": "mixed3b:379", "n_crops": 100, "crop_size": 32, "firing_rate": 0.4, "mean_pre_relu": -12.0,
        "histogram": {"edges": edges.tolist(), "counts": rng.integers(1, 20, 20).tolist(), "width": 10.0},
        "tail_fits": {"positive": fit, "negative": fit},
        "samples": {"bins": bins},
        "top_k": [{"crop_id": "c0-0", "value": 321.0}] * 4, "bottom_k": [{"crop_id": "c0-1", "value": -123.0}] * 4,
    }


def crops(s):
    ids = {c["crop_id"] for b in s["samples"]["bins"] for c in b["crops"]}
    return {i: np.full((3, 24, 24), 128, dtype=np.uint8) for i in ids}


@pytest.mark.parametrize("kind", ["histogram", "quilt", "topk"])
def test_dataset_scan_figures(saved, tmp_path, kind):
    s = summary()
    out = tmp_path / f"{kind}.png"
    if kind == "histogram":
        dataset.histogram(s, out)
    elif kind == "quilt":
        dataset.quilt(s, crops(s), out)
    else:
        dataset.topk_sheet(s, crops(s), out)
    check_readable(saved, out)


def test_label_views(saved, tmp_path):
    labels = ["curve", "imperfect", "unrelated", "opposing"]
    bins = [{"centre": c, "p_label": dict.fromkeys(labels, 0.25), "density_by_label": dict.fromkeys(labels, 0.01)}
            for c in (-50, 0, 50)]
    views = {"labels": labels, "bins": bins, "expected_share": dict.fromkeys(labels, 0.25), "unit": "u", "n_labelled": 12}
    check_readable(saved, dataset.label_views(views, tmp_path / "lv.png"))


def test_extraction_and_spline_figures(saved, tmp_path):
    rng = np.random.default_rng(0)
    res = {"inside": np.ones((20, 20), bool), "attribution": rng.random((20, 20)), "canny": rng.random((20, 20)) > 0.8,
           "ridge_precision": {"attribution": 0.5, "canny": 0.3, "chance": 0.1}, "ridge_recall": {"attribution": 0.4, "canny": 0.2}}
    check_readable(saved, dataset.extraction_figure(rng.random((20, 20, 3)), res, tmp_path / "x.png", title="t"))
    saved.clear()
    fit = SimpleNamespace(points=lambda: torch.rand(10, 2) * 20, control_points=torch.rand(4, 2) * 20)
    check_readable(saved, dataset.spline_figure(rng.random((20, 20, 3)), rng.random((20, 20)), fit, tmp_path / "sp.png",
                                                title="t", truth=np.random.default_rng(1).random((5, 2)) * 20))


def test_labelling_sheet(saved, tmp_path, monkeypatch):
    s = summary()
    import importlib

    scan = importlib.import_module("circuits.dataset.scan")  # the package exports a function of that name
    monkeypatch.setattr(scan, "load_crops", lambda source, ids: {i: torch.zeros(3, 8, 8, dtype=torch.uint8) for i in ids})
    out = dataset.write_sheet(s, None, tmp_path)
    check_readable(saved, out["files"][0])


# --- attribution, circuit graph, weights ----------------------------------------------


def test_attribution_figure_has_axis_labels_and_a_colour_bar(saved, tmp_path):
    import weights as weight_sources
    from circuits.analysis.attribution import attribute

    model = weight_sources.model("random")
    img = torch.rand(3, 48, 48)
    a = attribute(model, "conv2d2:5", img)
    p = attribution_plots.plot_attribution(a, img, tmp_path / "a.png", k=5, model=model)
    fig = check_readable(saved, p)
    assert any(getattr(ax, "_colorbar", None) is not None for ax in fig.axes)


def test_circuit_graph(saved, tmp_path):
    G = nx.DiGraph(layers='["mixed3a", "mixed3b"]')
    for i in range(3):
        G.add_node(f"a{i}", column=0, position=i, layer="mixed3a", channel=i)
        G.add_node(f"b{i}", column=1, position=i, layer="mixed3b", channel=i)
        G.add_edge(f"a{i}", f"b{i}", sum=(-1) ** i, strength=1.0 + i)
    check_readable(saved, graph.plot_graph(G, tmp_path / "g.png"))


def test_weight_grid(saved, tmp_path):
    from circuits.analysis.networks import units_in
    from circuits.core import graph as core_graph

    src = units_in(core_graph.INCEPTION_V1, "mixed3a", list(range(50)))
    dst = units_in(core_graph.INCEPTION_V1, "mixed3b", [0, 1])
    w = torch.randn(2, 50, 3, 3)
    check_readable(saved, weights.plot_weights(w, src, dst, tmp_path / "w.png", title="t"))
