"""`circuits compare` and the comparison behind it.

References: numpy's Pearson correlation and the published table for the per-unit
columns; the hand-built network for the stimulus checks the article describes.
"""

import json

import numpy as np
import torch
import pytest

import weights
from circuits import cli
from circuits.tuning import reference
from circuits.tuning.compare import TARGETS, UnitRow, _judge, compare_tuning, stimulus_checks
from circuits.tuning.metrics import resample
from weights.checkpoint import save_safetensors


@pytest.fixture(scope="module")
def random_model():
    return weights.model("random")


def test_compare_rows_against_numpy(random_model, reference_dir):
    cmp = compare_tuning({"random": random_model}, ["mixed3b:379", "mixed3b:406"], n_angles=16,
                         curvatures=[0.5, 1.0], progress=False)
    assert [r.unit for r in cmp.rows] == ["mixed3b:379", "mixed3b:406"]
    table = reference.tuning_table()
    for r, c in zip(cmp.rows, cmp.tunings["random"].curves):
        assert r.published_pref_deg == table[r.unit]["pref_deg"]
        pub = reference.published_curve(r.unit)
        if c.std() > 0:
            assert r.correlation == pytest.approx(np.corrcoef(resample(c, 720), pub)[0, 1], abs=1e-9)
        assert r.meets_targets is (not r.failures)


def test_targets_are_judged_as_stated():
    row = UnitRow("m", "mixed3b:379", 250.0, 1.0, 50.0, 0.06, 243.0, 7.0, 0.85, 1.0, 0.0)
    fails = _judge(row, TARGETS["mixed3b"])
    assert len(fails) == 3 and "7.0 deg" in fails[0] and "0.850" in fails[1] and "0.060" in fails[2]
    ok = UnitRow("m", "mixed3a:81", 330.0, 1.0, 50.0, 0.5, 326.5, 3.5, 0.2, 1.0, 0.3)
    assert _judge(ok, TARGETS["mixed3a"]) == []  # early curves: only the angle is a target


def test_compare_cli_json(tmp_path, random_model, capsys):
    path = tmp_path / "r.safetensors"
    save_safetensors(random_model.state_dict(), path)
    out = tmp_path / "c.json"
    rc = cli.main(["compare", "mixed3b:379", "--weights", str(path), "--n-angles", "8",
                   "--json", str(out), "--plot", str(tmp_path / "p.png"), "--multiples", str(tmp_path / "m.png")])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["tunings"][str(path)]["n_stimuli"] == 8 * 8
    assert (tmp_path / "p.png").stat().st_size > 0 and (tmp_path / "m.png").stat().st_size > 0
    assert "mixed3b:379" in capsys.readouterr().out


def test_compare_bad_input(capsys):
    assert cli.main(["compare", "mixed3b:crves", "--weights", "random", "--n-angles", "4"]) == 2
    assert "did you mean" in capsys.readouterr().err


@pytest.fixture(scope="module")
def handbuilt():
    return weights.model("handbuilt")


@pytest.fixture(scope="module")
def curve_checks(handbuilt):
    prefs = [243, 268.5, 290, 358, 22.5, 66.5, 91.5, 110, 145, 181]  # the published preferred angles
    return stimulus_checks(handbuilt, "mixed3b:curves", prefs)


def test_handbuilt_curves_invariant_to_polarity_colour_and_filling(curve_checks):
    """Issue 5: black on white, white on black, a colour pair and filled curves within 20%."""
    for name, ratios in curve_checks.variants.items():
        assert np.all(np.abs(ratios - 1) <= 0.2), (name, ratios)


def test_handbuilt_curves_fall_off_from_curves_to_angles_to_lines(curve_checks, handbuilt):
    """"Curve Detectors": curves > rounded angles > sharp angles, and straight lines respond least.
    Post-ReLU a sharp angle and a line both give 0 on most hand-built units (each is inhibited), so the
    last step is also checked before the ReLU, where it is strict: a line is inhibited more than a sharp
    angle, on every unit (the same stimuli as `stimulus_checks` draws)."""
    from circuits.analysis.networks import units_of
    from circuits.tuning.compare import ANGLE_OPENING
    from circuits.tuning.measure import default_curve_params, input_size_for, responses
    from circuits.tuning.stimuli import angle, line

    s = curve_checks.shapes
    assert np.all(s["curve"] > s["rounded angle"])
    assert np.all(s["rounded angle"] > s["sharp angle"])
    assert np.all(s["sharp angle"] >= s["line"])
    assert np.all(s["curve"] > 0)
    us = units_of("mixed3b:curves", handbuilt)
    size = input_size_for(us, handbuilt)
    kw = dict(width=default_curve_params("mixed3b", handbuilt)["width"], size=size,
              centre=us[0].centre_in_input(size), input_range=handbuilt.input_range)
    length = default_curve_params("mixed3b", handbuilt)["arc_length"]
    for u, theta in zip(us, curve_checks.pref_deg):
        x = torch.cat([angle(theta, ANGLE_OPENING, arm_length=length / 2, **kw), line(theta + 90.0, length=length, **kw)])
        sharp, straight = responses(handbuilt, [u], x, pre_relu=True)[:, 0].tolist()
        assert sharp > straight, (u.id, sharp, straight)
