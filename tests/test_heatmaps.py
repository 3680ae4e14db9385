"""Synthetic heat maps in dataset standard deviations (circuits.tuning.heatmaps, `circuits heatmaps`)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from circuits.tuning.heatmaps import KINDS, Baseline, heatmaps
from circuits.core.graph import INCEPTION_V1 as V1


@pytest.fixture(scope="module")
def handbuilt():
    import weights

    return weights.model("handbuilt").eval()


UNITS = ["mixed3b:379", "mixed3b:406"]
ORIENT = [0.0, 90.0, 240.0]
CURV = [0.5, 1.0]


def _pre_relu_at_centre(model, unit: str, x: torch.Tensor) -> np.ndarray:
    """The unit's pre-ReLU value at the map centre, by the model's full forward pass."""
    u = model.unit(unit)
    tensor, ch = model.graph.conv_of(u.layer, u.channel)
    with torch.no_grad():
        out = model.run(x, until=tensor)
    return out[:, ch, out.shape[-2] // 2, out.shape[-1] // 2].double().numpy()


def test_std_scaling_against_a_constructed_baseline(handbuilt):
    """Against a formula on independent numbers: each unit's map equals (r - mean) / std of its own
    constructed baseline, r its pre-ReLU response to the curve drawn directly by
    `stimuli.curve` (default size parameters) and run by the full forward pass."""
    from circuits.tuning.measure import default_curve_params
    from circuits.tuning.stimuli import curve

    b = Baseline({"mixed3b:379": -50.0, "mixed3b:406": 10.0}, {"mixed3b:379": 25.0, "mixed3b:406": 4.0},
                 network="InceptionV1")
    hm = heatmaps(handbuilt, UNITS, baseline=b, kinds="curves", orientations=ORIENT, curvatures=CURV, progress=False)
    m = hm.maps["curves"]
    assert m.scale == "std" and m.values.shape == (2, 2, 3)
    params = default_curve_params("mixed3b", V1)
    for i, unit in enumerate(UNITS):
        for r, c in enumerate(CURV):
            x = curve(ORIENT, c, size=97, centre=handbuilt.unit(unit), **params)
            raw = _pre_relu_at_centre(handbuilt, unit, x)
            want = (raw - b.mean[unit]) / b.std[unit]
            np.testing.assert_allclose(m.values[i, r], want, rtol=1e-4, atol=1e-4)
    best, where = hm.up_to("mixed3b:379")
    assert where == "curves" and best == pytest.approx(m.values[0].max())


def test_baseline_from_a_scan_is_the_exact_mean_and_std(handbuilt):
    """Against numpy: the scan JSON's mean and std (from the exact fixed-point accumulators) equal
    numpy's mean and population std of the unit's pre-ReLU values at every valid crop position,
    read from full forward passes of the images."""
    from circuits.dataset.crops import crop_grid
    from circuits.dataset.scan import scan
    from circuits.dataset.sources import ImageSource, skimage_source

    src = ImageSource("skimage", skimage_source().names[:2], 131)
    state = scan(handbuilt, "mixed3b:379", src, bin_width=1.0, top_k=0, reservoir=0, progress=False)
    b = Baseline.from_scan(json.loads(json.dumps(state.to_json(src.names))))
    u = handbuilt.unit("mixed3b:379")
    tensor, ch = handbuilt.graph.conv_of(u.layer, u.channel)
    vals = []
    for i in range(len(src)):
        img = src.read(i)
        g = crop_grid(tensor, tuple(img.shape[-2:]), handbuilt.graph)
        with torch.no_grad():
            out = handbuilt.run(handbuilt.to_input(img), until=tensor)[0, ch].double()
        vals.append(out[g.first[0] : g.first[0] + g.shape[0], g.first[1] : g.first[1] + g.shape[1]].numpy().ravel())
    v = np.concatenate(vals)
    assert b.n["mixed3b:379"] == v.size > 20
    assert b.mean["mixed3b:379"] == pytest.approx(v.mean(), rel=1e-6, abs=1e-4)
    assert b.std["mixed3b:379"] == pytest.approx(v.std(), rel=1e-6)
    assert b.network == "InceptionV1"


def test_series_runs_from_the_angle_map_to_one_arc(handbuilt):
    """The series' ends: roundness 0 is the sharp-angle map exactly; roundness 1 at radius R is one
    arc of radius R subtending 180 - opening degrees, i.e. the response to `stimuli.curve` with
    radius R and arc length R * pi / 2 (opening 90)."""
    from circuits.tuning.measure import responses
    from circuits.tuning.stimuli import Stimuli

    radii = [20.0, 30.0]
    hm = heatmaps(handbuilt, "mixed3b:379", kinds=["angles", "series"], orientations=ORIENT, radii=radii,
                  roundness=[0.0, 1.0], progress=False)
    np.testing.assert_array_equal(hm.maps["series_0"].values, hm.maps["angles"].values)
    for j, rad in enumerate(radii):
        arc = Stimuli("curve", {"orientation": ORIENT}, {"radius": rad, "arc_length": rad * math.pi / 2, "width": 3.0})
        r = responses(handbuilt, "mixed3b:379", arc, pre_relu=True)[:, 0].double().numpy()
        np.testing.assert_allclose(hm.maps["series_1"].values[0, j], r, rtol=1e-3, atol=0.5)


def test_every_kind_and_the_json(handbuilt, tmp_path):
    """All five kinds come out (the series and colour pairs as several maps), the JSON states the
    largest value per unit and map, and the sheet is written."""
    from circuits.plots.heatmaps import plot_heatmaps

    b = Baseline({"mixed3b:379": -61.5}, {"mixed3b:379": 113.4}, network="InceptionV1")
    hm = heatmaps(handbuilt, "mixed3b:379", baseline=b, orientations=[0, 120, 240], curvatures=[0.5],
                  radii=[30.0], roundness=[0.0, 1.0], colours=[("red", "green")], progress=False)
    assert list(hm.maps) == ["curves", "angles", "series_0", "series_1", "fill", "colour_red_on_green"]
    data = json.loads(json.dumps(hm.to_json(), allow_nan=False))
    assert data["scale"] == "std" and data["up_to"]["mixed3b:379"]["value"] == pytest.approx(
        max(m.values.max() for m in hm.maps.values()))
    assert data["maps"]["colour_red_on_green"]["stimulus"]["fg"] == "red"
    assert plot_heatmaps(hm, "mixed3b:379", tmp_path / "h.png").stat().st_size > 10_000


@pytest.mark.parametrize("make, message", [
    (lambda: Baseline({"a:1": 0.0}, {"a:1": 0.0}), "positive std"),
    (lambda: Baseline.from_scan({"format": "x"}), "not the JSON of `circuits dataset"),
    (lambda: Baseline.from_scan({"format": "circuits-dataset-scan/1", "units": {"a:1": {"mean_pre_relu": 1.0,
                                                                                        "n_crops": 3}}}),
     "no std_pre_relu"),
    (lambda: Baseline.from_scan("/no/such/scan.json"), "no scan file"),
    (lambda: Baseline({"mixed3b:379": 0.0}, {"mixed3b:379": 1.0}).check(["mixed3b:406"]), "no statistics for mixed3b:406"),
    (lambda: Baseline({"u": 0.0}, {"u": 1.0}, network="InceptionV3").check(["u"], "InceptionV1"), "scan of InceptionV3"),
])
def test_baseline_errors(make, message):
    """Bad baselines are refused with a message naming what is wrong."""
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        make()


def test_cli_kinds_match_the_library():
    """The command's list of kinds (kept literal so that --help needs no torch) equals the library's."""
    from circuits.cli.heatmaps import KINDS as CLI_KINDS

    assert CLI_KINDS == KINDS


def _cli(args, monkeypatch, capsys):
    import weights

    from circuits.cli import main

    def refuse(*a, **k):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(weights, "model", refuse)
    rc = main(args)
    return rc, capsys.readouterr().err


def test_cli_errors_before_work(tmp_path, monkeypatch, capsys):
    """Bad input: exit 2 with a message naming the bad value, before any model is loaded."""
    scan = tmp_path / "scan.json"
    scan.write_text(json.dumps({"format": "circuits-dataset-scan/1", "network": "InceptionV1", "units": {
        "mixed3b:379": {"mean_pre_relu": -61.5, "std_pre_relu": 113.4, "n_crops": 10}}}))
    cases = [
        (["heatmaps", "mixed3b:379", "--kinds", "curves,spirals"], "spirals"),
        (["heatmaps", "mixed3b:379", "--baseline", str(tmp_path / "none.json")], "no scan file"),
        (["heatmaps", "mixed3b:406", "--baseline", str(scan)], "no statistics for mixed3b:406"),
        (["heatmaps", "mixed3b:379", "--baseline", str(scan), "--images", "skimage"], "not allowed with"),
        (["heatmaps", "mixed3b:379,mixed3a:81"], "share one layer"),
        (["heatmaps", "mixed3b:379", "--plot", str(tmp_path / "h.txt")], "--plot must end in"),
        (["heatmaps", "mixed3b:379", "--angles", "2"], "at least 4"),
        (["heatmaps", "mixed3b:379", "--images", "/no/such/folder"], "no such folder"),
    ]
    for args, message in cases:
        rc, err = _cli(args, monkeypatch, capsys)
        assert rc == 2, args
        assert message in err, (args, err)
