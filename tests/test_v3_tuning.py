"""Tuning on InceptionV3: the receptive-field cone, sweeps, stimuli in [-1, 1], discovery.

The package was written against InceptionV1; these tests run it unchanged on
InceptionV3 (Keras names, 'valid' and 'same' padding, average pools that exclude
padding, 1x7/7x1 kernels, input in [-1, 1]). Each says what it checks against.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from circuits.core.inputs import to_model_input
from circuits.core.units import Unit
from circuits.tuning import cone
from circuits.tuning import measure as tuning
from circuits.tuning import stimuli as S
from circuits.tuning.compare import compare_tuning, stimulus_checks
from circuits.tuning.discover import discover
from circuits.core.graph import INCEPTION_V1 as V1

# mixed0 / mixed2: 35x35 blocks (stride 8); mixed3: the stride-2 reduction (valid 3x3/2
# convs and a max pool); mixed4: the first 17x17 block, with 1x7 and 7x1 convs.
CONE_LAYERS = ["mixed0", "mixed2", "mixed3", "mixed4"]


def _reads(g, layer: str) -> list[str]:
    """Every branch tensor of `layer` and, where a branch ends in a ReLU, its pre-ReLU conv."""
    out = []
    for b, _, _ in g.branches(layer):
        out.append(b)
        n = g.node(b)
        if n.kind.is_activation:
            out.append(n.inputs[0])
    return out


@pytest.mark.parametrize("layer", CONE_LAYERS)
def test_cone_equals_full_forward_of_a_larger_image(random_v3_model, layer):
    """Checked against the model's full forward pass (padded convs and pools over the whole
    map) of a larger image: the cone of a crop, evaluated unpadded on windows, gives the
    value of the full map at the position the graph's receptive-field geometry assigns
    to the crop's centre."""
    m, g = random_v3_model, random_v3_model.graph
    reads = _reads(g, layer)
    s = tuning.input_size_for([m.unit((layer, off)) for _, off, _ in g.branches(layer)])
    stride = g.receptive_field(layer).stride
    oy, ox = stride, 2 * stride  # offsets by whole strides keep the maps aligned
    big = (s + 2 * stride + 1, s + 3 * stride)
    x = torch.rand(2, 3, *big, generator=torch.Generator().manual_seed(3)) * 2 - 1
    full = m.run_with_cache(x, reads)
    crop = x[:, :, oy:oy + s, ox:ox + s]
    with torch.no_grad():
        got = cone.centre_values(m, crop, reads)
    worst, checked = 0.0, 0
    for name in reads:
        rf_crop, rf_full = g.receptive_field(name, s), g.receptive_field(name, big)
        yc, xc = rf_crop.centre_of(*g.centre_position(name, s))
        py = (yc + oy - rf_full.first_centre[0]) / rf_full.stride
        px = (xc + ox - rf_full.first_centre[1]) / rf_full.stride
        assert py == int(py) and px == int(px), (name, py, px)
        ref = full[name][:, :, int(py), int(px)]
        assert got[name].shape == ref.shape
        worst = max(worst, float((got[name] - ref).abs().max()))
        checked += int((ref != 0).sum())
    print(f"{layer}: cone vs full forward of a {big[0]}x{big[1]} image, max abs error {worst:.3g} "
          f"over {len(reads)} tensors")
    assert worst < 1e-4
    assert checked > 0  # some of the compared values are not zero


def test_sweep_on_the_smallest_input_equals_299px_full_forward(random_v3_model):
    """Checked against the full forward pass at Keras's 299 px: `responses` (the cone, on
    the smallest input that holds the receptive field) gives each stimulus the response the
    unit gives to the same stimulus drawn at 299 px around its receptive-field centre."""
    m = random_v3_model
    units = [m.unit("mixed2:67"), m.unit("mixed2:200")]
    sweep = S.curve_sweep([0, 100, 230], [0.5, 1.0], arc_length=60, width=4)
    s = tuning.input_size_for(units, m)
    assert s < 299
    names = tuple(sorted({u.branch for u in units}, key=m.graph.index))
    assert tuning._cone_ok(m, names, (s, s))  # the shortcut under test is the one taken
    fast = tuning.responses(m, units, sweep)
    x = sweep.render(size=299, centre=units[0].centre_in_input(299), input_range=(-1.0, 1.0))
    cy, cx = m.graph.centre_position("mixed2", 299)
    acts = m.run_with_cache(x, list(names))
    slow = torch.stack([acts[u.branch][:, u.branch_channel, cy, cx] for u in units], dim=1)
    err = float((fast - slow).abs().max())
    assert err < 1e-4, err
    assert (slow.abs() > 0).any()


def test_stimuli_are_drawn_in_the_model_range(random_v3_model):
    """Checked against `to_model_input` of the InceptionV1 rendering's pixels: the same
    picture in InceptionV3's [-1, 1], white background 1 and black stroke -1."""
    v1 = S.curve([0, 90], 0.7, size=40)
    v3 = S.curve([0, 90], 0.7, size=40, input_range=random_v3_model.input_range)
    pixels = (v1 + 117.0) / 255.0  # InceptionV1's input is RGB 0..255 minus 117
    assert torch.allclose(v3, to_model_input(pixels, (-1.0, 1.0)), atol=1e-6)
    assert float(v3.max()) == 1.0 and float(v3.min()) == -1.0
    assert float(v3[0, :, 0, 0].min()) == 1.0  # the corner is background: white
    st = S.Stimuli("line", {"orientation": [0, 45]}, {"length": 20})
    assert torch.equal(st.render(size=32, input_range=(-1, 1)), S.line([0, 45], length=20, size=32,
                                                                         input_range=(-1, 1)))
    with pytest.raises(ValueError, match="input_range"):
        S.edge(0, size=8, input_range=(1, -1))


def test_radial_tuning_on_v3(random_v3_model):
    """Checked against the definition (post-ReLU response averaged over curvature) computed by
    hand from a full forward of the sweep at 299 px; stimuli sized to V3's receptive field."""
    m = random_v3_model
    unit = "mixed0:70"
    rt = tuning.radial_tuning(m, unit, n_angles=8, curvatures=[0.5, 1.0], progress=False)
    assert rt.curves.shape == (1, 8) and rt.n_stimuli == 16
    params = tuning.default_curve_params("mixed0", m)
    assert params["arc_length"] == round(0.5 * m.graph.receptive_field("mixed0").size, 1)
    assert rt.stimulus["mixed0"]["arc_length"] == params["arc_length"]
    u = m.unit(unit)
    x = S.curve_sweep(rt.angles_deg, [0.5, 1.0], **params).render(
        size=299, centre=u.centre_in_input(299), input_range=m.input_range)
    cy, cx = m.graph.centre_position(u.branch, 299)
    r = m.run(x, until=u.branch)[:, u.branch_channel, cy, cx]
    manual = torch.relu(r).reshape(2, 8).mean(0).double().numpy()
    assert np.allclose(rt.curves[0], manual, atol=1e-4)
    metrics = rt.metrics()[unit]
    assert metrics.peak == pytest.approx(float(manual.max()), abs=1e-4)


def test_errors_name_the_bad_value_and_what_is_accepted(random_v3_model):
    """The messages name the bad value and what would be accepted (no independent reference)."""
    m = random_v3_model
    sweep = S.Stimuli("line", {"orientation": [0, 90]})
    with pytest.raises(ValueError, match=r"mixed3b:379 is a unit of InceptionV1, not of InceptionV3"):
        tuning.responses(m, "mixed3b:379", sweep)
    with pytest.raises(ValueError, match=r"mixed3b:379 is a unit of InceptionV1, not of InceptionV3"):
        tuning.responses(m, Unit("mixed3b", 379, V1), sweep)
    with pytest.raises(ValueError, match=r"a 100x100 image is smaller than .*mixed2.*at least 133 px"):
        tuning.check_receptive_field(m.unit("mixed2:67"), 100)
    with pytest.raises(ValueError, match=r"mixed2.*at least 133 px"):
        tuning.responses(m, "mixed2:67", sweep, size=120)
    # Stimuli drawn in InceptionV1's range given to InceptionV3.
    with pytest.raises(ValueError, match=r"outside InceptionV3's input range \[-1, 1\].*input_range"):
        tuning.responses(m, "mixed0:3", S.curve(0, size=80))
    with pytest.raises(KeyError, match=r"mixed3b.*InceptionV3"):
        discover(m, "mixed3b", n_orientations=8, register=False, progress=False)
    with pytest.raises(ValueError, match=r"channels must be in 0\.\.255 for mixed0"):
        discover(m, "mixed0", n_orientations=8, channels=[256], register=False, progress=False)


def test_stimulus_checks_and_compare_on_v3(random_v3_model):
    """Checked against `responses` to the black-on-white curves drawn by hand in [-1, 1] (the
    checks' baseline), and against `radial_tuning` (the comparison's tuning); InceptionV3 has
    no published curves, so those columns stay empty."""
    m = random_v3_model
    u = m.unit("mixed0:70")
    sc = stimulus_checks(m, [u], [90.0], curvatures=[0.5, 1.0])
    size = tuning.input_size_for([u], m)
    p = tuning.default_curve_params("mixed0", m)
    x = S.curve([90.0, 90.0], [0.5, 1.0], arc_length=p["arc_length"], width=p["width"], size=size,
                centre=u.centre_in_input(size), input_range=m.input_range)
    base = float(tuning.responses(m, [u], x).mean())
    assert sc.baseline[0] == pytest.approx(base, abs=1e-5)
    assert set(sc.variants) == {"white on black", "colour pair", "filled"}
    cmp = compare_tuning({"random v3": m}, "mixed0:70", n_angles=8, curvatures=[0.5, 1.0], progress=False)
    rt = tuning.radial_tuning(m, "mixed0:70", n_angles=8, curvatures=[0.5, 1.0], progress=False)
    assert np.allclose(cmp.tunings["random v3"].curves, rt.curves)
    assert cmp.published == {} and cmp.rows[0].published_pref_deg is None


def test_discover_on_random_v3(random_v3_model):
    """Checked against `radial_tuning` of the same units and stimuli (the curves in the table
    are the radial tuning curves) and for a well-formed ranked table."""
    m = random_v3_model
    chans = list(range(0, 256, 37))
    d = discover(m, "mixed0", n_orientations=8, curvatures=[0.5, 1.0], channels=chans, register=False,
                 progress=False)
    assert sorted(s.unit for s in d.scores) == sorted(f"mixed0:{c}" for c in chans)
    assert d.n_stimuli == 8 * 2 * 2 + 4 * 8
    rt = tuning.radial_tuning(m, [f"mixed0:{c}" for c in chans], n_angles=8, curvatures=[0.5, 1.0],
                              progress=False)
    for uid, c in zip(rt.units, rt.curves):
        assert np.allclose(d.curves[uid], c, atol=1e-5)
    lines = d.table().splitlines()
    assert len(lines) == 2 + len(chans) and "reason" in lines[0]
    for s in d.scores:
        assert s.accepted == (not s.reasons)
        assert (s.peak > 0) == math.isfinite(s.pref_deg)


def test_discover_trained_v3_mixed2_finds_curve_units(trained_v3):
    """Checked against the trained network's behaviour (skips where nsfwjs is unavailable):
    a coarse discovery sweep of all 288 mixed2 channels runs end to end in seconds and some
    units pass every criterion of "Curve Detectors" (measured: 12 with 8 orientations, all
    in the 5x5 branch, channels 64..127)."""
    d = discover(trained_v3, "mixed2", n_orientations=8, curvatures=[0.5, 1.0], register=False, progress=False)
    assert len(d.scores) == 288
    assert d.family, d.table(limit=10)
    for u in d.family:
        s = d.score(u)
        assert s.accepted and s.peak > 0 and d.criteria.min_fwhm_deg <= s.fwhm_deg <= d.criteria.max_fwhm_deg
    cov, _ = d.coverage()
    assert 0 < cov <= 360
    assert d.summary().startswith(f"mixed2: {len(d.family)} of 288 units pass every criterion")
