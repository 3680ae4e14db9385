"""Tuning measurements and metrics against independent references.

References: analytic curves (a von Mises bump's FWHM is 2 arccos(1 - ln 2 / kappa); a
triangle's FWHM is its half base), numpy's corrcoef, the published tuning table
(recomputed from the published curves), a plain full-size forward pass at 224 px read
at Lucid's centre position (the fast small-input sweep must give the same numbers), and
a unit whose kernel is a rendered template (it must prefer the template's orientation).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from circuits import InceptionV1, ablate, graph
from circuits.tuning import reference
from circuits.tuning import stimuli as S
from circuits.tuning import measure as tuning
from circuits.tuning.metrics import (
    angles_for,
    circular_correlation,
    compare_curves,
    curve_metrics,
    echo_ratio,
    fwhm,
    peak_angle_error,
    preferred_orientation,
)
from circuits.core.units import Unit
from circuits.core.graph import INCEPTION_V1 as V1

A = angles_for(720)


def von_mises(mu_deg: float, kappa: float) -> np.ndarray:
    return np.exp(kappa * (np.cos(np.deg2rad(A - mu_deg)) - 1))


# --- metrics ---------------------------------------------------------------------------


@pytest.mark.parametrize("mu,kappa", [(90.0, 20.0), (3.5, 8.0), (250.0, 50.0)])
def test_von_mises_fwhm_and_zero_echo(mu, kappa):
    c = von_mises(mu, kappa)
    exact = 2 * math.degrees(math.acos(1 - math.log(2) / kappa))
    m = curve_metrics(c)
    assert m.pref_deg == mu and m.peak == 1.0
    assert abs(m.fwhm_deg - exact) < 0.05
    # within ±45 of the opposite, the bump is at most exp(kappa (cos 135 - 1))
    assert m.echo == pytest.approx(math.exp(kappa * (math.cos(math.radians(135)) - 1)), rel=1e-6)
    assert m.echo < 1e-3 if kappa >= 8 else True


def test_echo_and_triangle_width():
    # A triangle of half-base 30 degrees has FWHM 30 exactly (linear interpolation is exact).
    tri = np.clip(1 - np.abs((A - 100 + 180) % 360 - 180) / 30, 0, None)
    assert fwhm(tri) == pytest.approx(30.0, abs=1e-9)
    # a second bump of 0.3 at the opposite orientation (+20 degrees: inside the ±45 window)
    echo = 0.3 * np.clip(1 - np.abs((A - 300 + 180) % 360 - 180) / 10, 0, None)
    assert echo_ratio(tri + echo) == pytest.approx(0.3)
    # ... and one 50 degrees off the opposite is outside the window
    far = 0.3 * np.clip(1 - np.abs((A - 330 + 180) % 360 - 180) / 4, 0, None)
    assert echo_ratio(tri + far) == 0.0


def test_correlation_and_angle_error():
    rng = np.random.default_rng(0)
    a, b = rng.random(720), rng.random(720)
    assert circular_correlation(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert circular_correlation(a, 3 * a + 7) == pytest.approx(1.0)
    assert math.isnan(circular_correlation(a, np.zeros(720)))
    assert peak_angle_error(von_mises(350, 10), von_mises(10, 10)) == 20.0
    assert peak_angle_error(0.0, 180.0) == 180.0 and peak_angle_error(90.0, 271.0) == 179.0
    r = compare_curves(von_mises(40, 10)[::10], von_mises(45, 10))  # 72 samples against 720
    assert r["angle_error"] == 5.0 and r["correlation"] > 0.95
    assert math.isnan(preferred_orientation(np.zeros(720)))
    assert math.isnan(curve_metrics(np.zeros(720)).fwhm_deg)
    with pytest.raises(ValueError, match="1-D array"):
        fwhm(np.zeros((2, 720)))


def test_metrics_reproduce_the_published_table(reference_dir):
    table = reference.tuning_table()
    curves = reference.published_curves()
    assert len(curves) == 21 and set(curves) == set(table)
    for uid, c in curves.items():
        m, t = curve_metrics(c), table[uid]
        assert m.pref_deg == t["pref_deg"], uid
        assert m.fwhm_deg == pytest.approx(t["fwhm_deg"], rel=5e-4, abs=0.01), uid  # table: 4 digits
        assert m.echo == pytest.approx(t["echo"], rel=1e-3, abs=1e-6), uid
        assert m.peak == pytest.approx(t["peak"], abs=0.06), uid
    assert reference.published_curve("mixed3b:379").shape == (720,)
    assert reference.published_curve("mixed3b:0") is None
    # a published curve against itself, and a rotated copy (10 degrees = 20 samples)
    c = curves["mixed3b:379"]
    v = reference.compare_to_published({"mixed3b:379": np.roll(c, 20), "mixed3b:0": c})
    assert list(v) == ["mixed3b:379"] and v["mixed3b:379"]["angle_error"] == 10.0
    assert v["mixed3b:379"]["correlation"] < 1.0
    assert reference.compare_to_published({"mixed3b:379": c})["mixed3b:379"]["correlation"] == pytest.approx(1.0)


def test_reference_absent_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CIRCUITS_REFERENCE", str(tmp_path))
    assert not reference.available()
    with pytest.raises(reference.ReferenceNotAvailable, match="not available"):
        reference.published_curve("mixed3b:379")


# --- geometry of the measurement ----------------------------------------------------


@pytest.mark.parametrize("layer", ["conv2d0", "conv2d2", "mixed3a", "mixed3b"])
def test_smallest_input_holds_the_receptive_field(layer):
    u = Unit(layer, 0, V1)
    s = tuning.input_size_for(u)
    lo, hi, rf = tuning._rf_span(u, s)[0] + (graph.receptive_field(u.branch).size,)
    assert 0 <= lo and hi <= s - 1 and hi - lo + 1 == rf
    with pytest.raises(ValueError, match="receptive field"):
        tuning.check_receptive_field(u, s - 1)


def test_small_input_sweep_equals_full_forward_at_224(random_model):
    # The fast path (RF-sized input, truncated run, hooks reading the centre) against a
    # plain forward at 224 px read at Lucid's neuron position.
    units = ["mixed3a:81", "mixed3a:104", "mixed3a:20", "mixed3a:250"]
    orient = [0.0, 75.0, 200.0]
    fast = tuning.responses(random_model, units, S.curve_sweep(orient, [0.4, 1.0], arc_length=30), pre_relu=True)
    centre = Unit("mixed3a", 0, V1).centre_in_input(224)
    x = S.curve_sweep(orient, [0.4, 1.0], arc_length=30).render(size=224, centre=centre)
    with torch.inference_mode():
        acts = random_model.run_with_cache(x, ["mixed3a_pre_relu"])["mixed3a_pre_relu"]
    cy, cx = Unit("mixed3a", 0, V1).centre(224)
    ref = acts[:, [81, 104, 20, 250], cy, cx]
    assert torch.allclose(fast, ref, rtol=1e-4, atol=1e-3)
    assert float(ref.abs().max()) > 1.0


def test_template_unit_prefers_the_template_orientation():
    # conv2d0 channel c's kernel is a rendered arc (zero mean): its best curve is that arc.
    model = InceptionV1().eval()
    prefs = {}
    w = model.conv2d0_pre_relu_conv.weight
    for c, theta in enumerate((30.0, 200.0, 300.0)):
        t = S.curve(theta, 1.0, arc_length=7, width=1.5, fg="white", bg="black", size=7)[0, 0]
        with torch.no_grad():
            w[c] = (t - t.mean()).expand(3, 7, 7) / 1000
        prefs[c] = theta
    rt = tuning.radial_tuning(model, [f"conv2d0:{c}" for c in prefs], n_angles=72, curvatures=[1.0],
                              stimulus={"arc_length": 7, "width": 1.5, "fg": "white", "bg": "black"},
                              progress=False)
    for c, theta in prefs.items():
        assert peak_angle_error(rt.curves[c], theta) <= 10.0, (theta, rt.metrics())


# --- radial tuning, maps, options ---------------------------------------------------


def test_radial_tuning_is_relu_mean_over_curvature(random_model):
    units = ["conv2d2:10", "conv2d2:50"]
    curv = [0.25, 0.75]
    rt = tuning.radial_tuning(random_model, units, n_angles=12, curvatures=curv, progress=False)
    assert rt.curves.shape == (2, 12) and rt.n_stimuli == 24
    # The same quantity from a pre-rendered tensor (the other input path), by hand.
    size = tuning.input_size_for(units, V1)
    centre = Unit("conv2d2", 10, V1).centre_in_input(size)
    params = tuning.default_curve_params("conv2d2", V1)
    x = S.curve_sweep(rt.angles_deg, curv, **params).render(size=size, centre=centre)
    r = tuning.responses(random_model, units, x, pre_relu=True)
    manual = torch.relu(r).reshape(2, 12, 2).mean(0).T.double().numpy()
    assert np.allclose(rt.curves, manual, rtol=1e-5, atol=1e-5)
    assert np.array_equal(rt.curve("conv2d2:50"), rt.curves[1])
    j = rt.to_json()
    assert j["n_stimuli"] == 24 and set(j["metrics"]) == set(units)


def test_model_hooks_stay_active_and_none_are_left(random_model):
    sweep = S.curve_sweep([0, 90], [0.5], arc_length=10)
    with random_model.hooks(ablate("conv2d2_pre_relu:10", model=random_model)):
        r = tuning.responses(random_model, ["conv2d2:10", "conv2d2:11"], sweep, pre_relu=True)
    assert torch.all(r[:, 0] == 0) and torch.any(r[:, 1] != 0)
    assert random_model.active_hooks == []


def test_batches_that_run_out_of_memory_are_split(random_model, monkeypatch):
    sweep = S.curve_sweep(np.arange(0, 360, 30), [0.5], arc_length=10)
    whole = tuning.responses(random_model, "conv2d2:3", sweep, batch_size=12)
    centre_values = tuning.cone.centre_values
    sizes = []

    def small_memory(model, x, names, channels=None):
        sizes.append(x.shape[0])
        if x.shape[0] > 3:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes")
        return centre_values(model, x, names, channels)

    monkeypatch.setattr(tuning.cone, "centre_values", small_memory)
    split = tuning.responses(random_model, "conv2d2:3", sweep, batch_size=12)
    assert torch.equal(split, whole) and max(sizes) == 12 and sizes[-1] == 3
    monkeypatch.setattr(tuning.cone, "centre_values", centre_values)
    assert torch.equal(tuning.responses(random_model, "conv2d2:3", sweep, memory_budget=1), whole)


def test_cone_shortcut_equals_the_models_own_run(random_model):
    # A hook (even a no-op) makes tuning use model.run instead of the cone: same numbers.
    units = ["mixed3a:81", "mixed3a:250", "mixed3a:20"]
    sweep = S.curve_sweep([10.0, 130.0, 250.0], [0.3, 0.9], arc_length=30)
    fast = tuning.responses(random_model, units, sweep, pre_relu=True)
    with random_model.hooks([("conv2d0", lambda a, h: None)]):
        slow = tuning.responses(random_model, units, sweep, pre_relu=True)
    assert torch.allclose(fast, slow, rtol=1e-4, atol=1e-3)
    with pytest.raises(tuning.cone.ConeError, match="not inside"):
        tuning.cone.cone_windows(("mixed3a_5x5",), 64, 64)


def test_response_map_in_std_units(random_model):
    units = ["conv2d2:3", "conv2d2:4"]
    kw = dict(orientations=[0, 90, 180, 270], curvatures=[0.0, 1.0], progress=False)
    raw = tuning.orientation_curvature_map(random_model, units, **kw)
    base = np.random.default_rng(0).normal(5.0, 2.0, size=(100, 2))
    std = tuning.orientation_curvature_map(random_model, units, baseline=base, **kw)
    assert raw.values.shape == (2, 2, 4) and std.scale == "std"
    assert np.allclose(std.values, (raw.values - base.mean(0)[:, None, None]) / base.std(0)[:, None, None])
    as_dict = tuning.orientation_curvature_map(
        random_model, units, baseline={u: base[:, i] for i, u in enumerate(units)}, **kw
    )
    assert np.allclose(as_dict.values, std.values)
    with pytest.raises(ValueError, match="zero or undefined spread"):
        tuning.orientation_curvature_map(random_model, units, baseline=np.ones((5, 2)), **kw)


def test_bad_requests_are_clear_errors(random_model):
    sweep = S.curve_sweep([0], [0.5])
    with pytest.raises(ValueError, match="no pre-ReLU value"):
        tuning.responses(random_model, "maxpool1:3", sweep, pre_relu=True)
    with pytest.raises(ValueError, match="smaller than the receptive field"):
        tuning.responses(random_model, "mixed3b:379", torch.zeros(1, 3, 64, 64))
    assert tuning.responses(random_model, "mixed3b:379", torch.zeros(1, 3, 64, 64), check_rf=False).shape == (1, 1)
    with pytest.raises(ValueError, match="at least 97 px"):
        tuning.responses(random_model, "mixed3b:379", sweep, size=96)
    with pytest.raises(KeyError, match="unknown layer"):
        tuning.responses(random_model, "mixed9z:1", sweep)
    with pytest.raises(ValueError, match="curvatures are fractions"):
        tuning.radial_tuning(random_model, "conv2d2:1", curvatures=[1.2], progress=False)
    with pytest.raises(ValueError, match="n_angles"):
        tuning.radial_tuning(random_model, "conv2d2:1", n_angles=0, progress=False)


# --- plots and CLI -----------------------------------------------------------------------


def test_plots_write_files(tmp_path, random_model):
    from circuits.plots import tuning as P

    curves = {"a": von_mises(30, 10), "b": von_mises(200, 5)}
    for path in (P.plot_radial(A, curves, tmp_path / "r.png"), P.plot_overlay(A, curves, tmp_path / "o.svg", unit="x"),
                 P.plot_stimuli(S.curve([0, 90], 0.5, size=32), tmp_path / "s.png", titles=["0", "90"])):
        assert path.stat().st_size > 1000
    m = tuning.orientation_curvature_map(random_model, "conv2d2:3", orientations=[0, 180], curvatures=[0, 1],
                                         progress=False)
    assert P.plot_response_map(m, tmp_path / "m.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="must end in"):
        P.plot_radial(A, curves, tmp_path / "r.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.png", "o.svg", "r.png", "s.png"]  # no temp files


def test_cli_stimuli_and_tune(tmp_path, capsys):
    from circuits.cli import main

    assert main(["stimuli", "--kind", "angle", "--orientation", "0,90", "--opening", "60",
                 "--out", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").stat().st_size > 500
    assert main(["stimuli", "--kind", "line", "--curvature", "0.5", "--out", str(tmp_path / "b.png")]) == 2
    assert "does not apply to line" in capsys.readouterr().err
    out = tmp_path / "t.json"
    assert main(["tune", "conv2d2:10,conv2d2:11", "--weights", "random", "--angles", "16", "--curvatures",
                 "0.5,1", "--json", str(out), "--plot", str(tmp_path / "r.png"), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "conv2d2:10" in text and "pref" in text
    data = json.loads(out.read_text())
    assert data["n_stimuli"] == 32 and len(data["curves"]["conv2d2:11"]) == 16
    assert set(data["metrics"]["conv2d2:10"]) == {"pref_deg", "peak", "fwhm_deg", "echo"}
    assert main(["tune", "mixed3z:1", "--weights", "random"]) == 2
    assert "unknown layer" in capsys.readouterr().err
