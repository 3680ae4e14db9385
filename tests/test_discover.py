"""Curve-family discovery (circuits.tuning.discover), family files and `circuits discover`.

Known answers: the hand-built network has exactly 10 curve units in mixed3b, declared
in handbuilt/spec.py (channels and orientations); since its v3 settings one of them, 342,
answers a straight line 30 degrees off its chord at 0.60 of its curve peak (docs/families.md),
so discover finds the other 9. Its early curves respond to straight lines at 0.66-0.72 of a
curve (README), so they must be rejected by the line criterion; random networks (two seeds)
must give no curve family.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import weights
from circuits.families import family, unregister_family
from circuits.families.files import FORMAT, load_family, read_family_file, save_family
from circuits.tuning import discover as D
from circuits.tuning.metrics import angles_for
from circuits.core.graph import INCEPTION_V1 as V1
from circuits import InceptionV1, InceptionV3
from circuits.core.units import WrongNetworkError

BUILT = [379, 406, 385, 343, 342, 388, 324, 340, 330, 349]


def _circ(a, b):
    return abs((a - b + 180.0) % 360.0 - 180.0)


@pytest.fixture(scope="module")
def handbuilt_found(tmp_path_factory):
    """`circuits discover mixed3b --weights handbuilt --json F`, read back (the issue's 'done when')."""
    from circuits.cli import main

    out = tmp_path_factory.mktemp("discover") / "found.json"
    assert main(["discover", "mixed3b", "--weights", "handbuilt", "--json", str(out), "--no-progress",
                 "--top", "12"]) == 0
    yield out, json.loads(out.read_text())


# The one built unit discover rejects on the v3 hand-built network, and why (measured, see docs/families.md).
LINE_REJECTED = 342


def test_handbuilt_mixed3b_finds_the_built_curves_but_342(handbuilt_found):
    """Checked against the spec (handbuilt/spec.py): the family is the declared curve channels, each
    at its declared orientation, less 342, rejected for lines alone; its gaps are where the
    declared orientations of the accepted units are more than 60 degrees apart.

    Since v3, 342 (the second-broadest unit) answers a straight line about 30 degrees off its chord
    at 0.60 of its curve peak: the network's search held lines below 0.1 of a curve only at each
    unit's own orientation, and discover takes the best line over every orientation.
    """
    _, rec = handbuilt_found
    from handbuilt.spec import MIXED3B_CURVES

    assert sorted(rec["family"]) == sorted(f"mixed3b:{c}" for c in BUILT if c != LINE_REJECTED)
    assert len(rec["units"]) == 480  # every channel scored
    out = rec["units"][f"mixed3b:{LINE_REJECTED}"]
    assert not out["accepted"] and out["reasons"] == [f"lines: line/curve {out['line_ratio']:.2f} > 0.5"]
    assert _circ(out["pref_deg"], MIXED3B_CURVES[LINE_REJECTED]) <= 10.0  # still a curve unit, at its angle

    prefs = [rec["units"][u]["pref_deg"] for u in rec["family"]]
    assert prefs == sorted(prefs)  # the family is ordered by preferred orientation
    for u in rec["family"]:
        s = rec["units"][u]
        # The spec declares each unit's orientation; the sweep samples every 10 degrees.
        assert _circ(s["pref_deg"], MIXED3B_CURVES[int(u.split(":")[1])]) <= 10.0, (u, s["pref_deg"])
        assert s["accepted"] and s["reason"].startswith("curve detector")
        # The article's fall-off: curves > rounded angles > sharp angles.
        assert s["sharp_angle_ratio"] < s["rounded_angle_ratio"] < 1.0
        assert s["echo"] < 0.05 and s["polarity"] > 0.9
    # ... and > lines, on all but the broadest unit, 330 (line/curve 0.48, just under the limit).
    ordered = [u for u in rec["family"] if rec["units"][u]["ordered"]]
    assert sorted(ordered) == sorted(u for u in rec["family"] if u != "mixed3b:330")
    others = [s for u, s in rec["units"].items() if u not in rec["family"]]
    assert all(not s["accepted"] and s["reason"] for s in others)
    # The accepted units' declared orientations are 60+ degrees apart three times -- 358 -> 66.5
    # (342 missing), 181 -> 243 and 290 -> 358 -- and at most 36 degrees apart elsewhere, which
    # their 36-45 degree FWHM closes.
    gaps = rec["gaps_deg"]
    assert len(gaps) == 3, gaps
    assert 0 < gaps[0][0] < gaps[0][1] < 66.5 and 181 < gaps[1][0] < gaps[1][1] < 243
    assert 290 < gaps[2][0] < gaps[2][1] < 358
    assert rec["coverage_deg"] == pytest.approx(360 - sum(b - a for a, b in gaps))


def test_handbuilt_family_file_reads_back_and_registers(handbuilt_found):
    path, rec = handbuilt_found
    hb = weights.model("handbuilt")
    fam = load_family(path, hb)
    assert fam.id == "mixed3b:curves_found" and [u.id for u in fam.units] == rec["family"]
    assert family("mixed3b:curves_found", hb) is fam and fam in hb.families
    with pytest.raises(KeyError):
        family("mixed3b:curves_found", V1)  # held by the model it was loaded into, nowhere else
    from circuits.cli import main

    assert main(["discover", "--load", str(path)]) == 0
    assert main(["discover", "--families", str(path)]) == 0


def test_handbuilt_early_curves_are_rejected_for_responding_to_lines():
    # README: the hand-built early curves respond to straight lines at 0.66-0.72 of a curve
    # (as the original's do), so a 0.5 line criterion must reject every one of them.
    hb = weights.model("handbuilt")
    chans = [u.channel for u in family("mixed3a:hb_early_curve_bank", hb).units][:8]
    d = D.discover(hb, "mixed3a", channels=chans, register=False, progress=False)
    assert d.family == []
    for s in d.scores:
        assert 0.6 < s.line_ratio < 0.8, (s.unit, s.line_ratio)
        assert any(r.startswith("lines:") for r in s.reasons), s.reasons
    # With the line criterion relaxed past their ratio, the same sweep accepts some.
    relaxed = D.Criteria(max_line_ratio=0.9, max_echo=1.0, max_sharp_angle_ratio=2.0, max_edge_ratio=2.0)
    d2 = D.discover(weights.model("handbuilt"), "mixed3a", channels=chans, criteria=relaxed, register=False,
                    progress=False)
    assert d2.family


def test_an_ablated_curve_unit_is_not_found():
    # The model's own hooks stay active during the sweep (measure.responses then runs the
    # model, not the cone): zeroing 379 must drop exactly it from the family.
    from circuits import ablate

    model = weights.model("handbuilt")
    chans = [379, 406, 385, 0, 100]
    with model.hooks(ablate("mixed3b:379", model=model)):
        d = D.discover(model, "mixed3b", channels=chans, register=False, progress=False)
    assert model.active_hooks == []  # the ablation ended with its block
    assert sorted(d.family) == ["mixed3b:385", "mixed3b:406"]
    assert d.score("mixed3b:379").reasons[0].startswith("no response")


@pytest.mark.parametrize("which", ["random", "random_biased"])
def test_random_networks_have_no_curve_family(which, random_model):
    model = weights.model("random") if which == "random" else random_model
    d = D.discover(model, "mixed3b", register=False, progress=False)
    assert d.family == []
    responding = [s for s in d.scores if s.peak > 0]
    # Not vacuous: many units respond to curves and are rejected for a stated reason.
    assert len(responding) > 50
    assert all(s.reasons and not s.accepted for s in responding)


# --- scoring against formulas written out -----------------------------------------


def _synthetic(n_a=72, n_c=4, kappa=8.0, pref=90.0, echo=0.0, line=0.2, inv=0.8, curv_gain=(1, 1, 1, 1)):
    """Responses of one fake unit to each stimulus set, in discover's layout."""
    a = np.deg2rad(angles_for(n_a))
    bump = np.exp(kappa * (np.cos(a - np.deg2rad(pref)) - 1))
    bump += echo * np.exp(kappa * (np.cos(a - np.deg2rad(pref + 180)) - 1))
    grid = np.stack([g * bump for g in curv_gain])  # [curvature, orientation]
    peak = grid.mean(0).max()
    return {
        "curve": grid.reshape(-1, 1),
        "inverted": inv * grid.reshape(-1, 1),
        "line": np.full((n_a, 1), line * peak),
        "sharp_angle": np.full((n_a, 1), 0.4 * peak),
        "rounded_angle": np.full((n_a, 1), 0.6 * peak),
        "edge": np.full((n_a, 1), -3.0),  # negative: post-ReLU it is 0
    }, n_a, n_c


def test_score_matches_formulas():
    r, n_a, n_c = _synthetic(kappa=8.0, pref=90.0, echo=0.2, line=0.2, inv=0.8, curv_gain=(0.5, 1, 1, 0.5))
    s = D._score("mixed3b:0", r, 0, n_a, n_c)
    assert s.pref_deg == 90.0
    # von Mises FWHM = 2 arccos(1 - ln 2 / kappa); sampled every 5 degrees, linear interpolation.
    assert s.fwhm_deg == pytest.approx(math.degrees(2 * math.acos(1 - math.log(2) / 8.0)), abs=1.0)
    # echo: the opposite bump's height plus the main bump's tail there, over the peak (+ its own tail)
    tail = math.exp(-16.0)
    assert s.echo == pytest.approx((0.2 + tail) / (1 + 0.2 * tail), rel=1e-6)
    assert s.line_ratio == pytest.approx(0.2) and s.sharp_angle_ratio == pytest.approx(0.4)
    assert s.rounded_angle_ratio == pytest.approx(0.6) and s.edge_ratio == 0.0
    assert s.polarity == pytest.approx(0.8)
    assert s.curvature_tolerance == pytest.approx(np.mean([0.5, 1, 1, 0.5]) / 1.0)
    assert s.ordered and s.contiguous and s.n_lobes == 1
    assert D.Criteria().failures(s) == []
    # Each criterion in turn rejects it, naming itself.
    assert D.Criteria(max_echo=0.15).failures(s)[0].startswith("echo:")
    assert D.Criteria(max_line_ratio=0.1).failures(s)[0].startswith("lines:")
    assert D.Criteria(min_polarity=0.9).failures(s)[0].startswith("polarity:")
    assert D.Criteria(min_curvature_tolerance=0.8).failures(s)[0].startswith("radius-specific:")
    assert D.Criteria(max_fwhm_deg=30).failures(s)[0].startswith("broad:")
    assert D.Criteria(min_fwhm_deg=60).failures(s)[0].startswith("narrow:")


def test_two_lobes_are_not_contiguous_and_silent_units_say_so():
    r, n_a, n_c = _synthetic(echo=1.0)  # equal bumps at 90 and 270
    s = D._score("mixed3b:0", r, 0, n_a, n_c)
    assert s.n_lobes == 2 and not s.contiguous
    assert any(x.startswith("not contiguous") for x in D.Criteria(max_echo=1.0).failures(s))
    r["curve"][:] = -1.0
    s = D._score("mixed3b:1", r, 0, n_a, n_c)
    assert s.peak == 0 and math.isnan(s.pref_deg)
    assert D.Criteria().failures(s) == ["no response to curves (peak 0 <= 0)"]


def test_coverage_against_a_sampled_circle():
    rng = np.random.default_rng(0)
    for _ in range(20):
        k = int(rng.integers(1, 6))
        prefs, widths = rng.uniform(0, 360, k), rng.uniform(5, 120, k)
        cov, gaps = D.coverage(prefs, widths)
        # Second implementation: count covered samples of a fine grid.
        grid = np.arange(0, 360, 0.01)
        d = np.abs((grid[:, None] - prefs + 180) % 360 - 180)
        sampled = (d <= widths / 2).any(1).mean() * 360
        assert cov == pytest.approx(sampled, abs=0.05)
        gap_total = sum((b - a) % 360 for a, b in gaps)
        assert gap_total == pytest.approx(360 - cov, abs=1e-5)  # both rounded to 1e-6
        for a, b in gaps:  # every gap's midpoint is uncovered
            mid = (a + ((b - a) % 360) / 2) % 360
            assert (np.abs((mid - prefs + 180) % 360 - 180) > widths / 2).all()


def test_bad_arguments_are_named():
    m = weights.model("random")
    with pytest.raises(ValueError, match="n_orientations"):
        D.discover(m, "mixed3b", n_orientations=4, progress=False)
    with pytest.raises(ValueError, match=r"curvatures .*\(0, 1\]"):
        D.discover(m, "mixed3b", curvatures=[0.0, 0.5], progress=False)
    with pytest.raises(ValueError, match="0..479"):
        D.discover(m, "mixed3b", channels=[480], progress=False)
    with pytest.raises(KeyError):
        D.discover(m, "mixed9z", progress=False)
    with pytest.raises(ValueError, match="max_echo"):
        D.Criteria(max_echo=-1)


# --- family files -----------------------------------------------------------------


def test_family_file_round_trip_and_errors(tmp_path):
    p = tmp_path / "f.json"
    save_family(p, {"layer": "mixed3a", "name": "test fam", "aliases": ["tfam"], "family": ["mixed3a:81", "mixed3a:104"],
                    "extra": {"x": float("nan")}}, V1)
    rec = json.loads(p.read_text())
    assert rec["format"] == FORMAT and rec["extra"]["x"] is None and rec["network"] == "InceptionV1"  # NaN is not JSON
    m = InceptionV1()
    fam = load_family(p, m)
    assert fam.id == "mixed3a:tfam" and fam.channels == [81, 104]
    assert family("mixed3a:test_fam", m) is fam
    unregister_family(m, fam)
    assert m.families == []
    assert read_family_file(p)["family"] == ["mixed3a:81", "mixed3a:104"]
    assert load_family(p, V1, register=False).channels == [81, 104]
    with pytest.raises(WrongNetworkError, match="a family of InceptionV1, not of InceptionV3"):
        load_family(p, InceptionV3())
    no_network = tmp_path / "old.json"
    no_network.write_text(json.dumps({"layer": "mixed3a", "name": "old", "family": ["mixed3a:81"]}))
    assert load_family(no_network, m).channels == [81]  # read against the model it is loaded into
    with pytest.raises(ValueError, match="read it with the model it belongs to"):
        read_family_file(no_network)

    bad = {
        "no name": ({"layer": "mixed3a", "family": []}, "missing key"),
        "wrong layer": ({"layer": "mixed3a", "name": "x", "family": ["mixed3b:1"]}, "not in layer mixed3a"),
        "bad format": ({"format": "other", "layer": "mixed3a", "name": "x", "family": []}, "format"),
        "bad unit": ({"layer": "mixed3a", "name": "x", "family": ["mixed3a:9999"]}, "9999"),
    }
    for what, (record, msg) in bad.items():
        q = tmp_path / f"{what}.json"
        with pytest.raises((ValueError, KeyError, IndexError), match=msg):
            save_family(q, record, V1)
        assert not q.exists(), what  # nothing half-written
    q = tmp_path / "empty.json"
    save_family(q, {"layer": "mixed3b", "name": "curves found", "family": []}, V1)
    with pytest.raises(ValueError, match="lists no units"):
        load_family(q, m)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        read_family_file(tmp_path / "junk.json")
    with pytest.raises(FileNotFoundError):
        read_family_file(tmp_path / "missing.json")


def test_cli_writes_family_and_scores_on_random_weights(tmp_path, capsys):
    from circuits.cli import main

    out = tmp_path / "d.json"
    rc = main(["discover", "conv2d2", "--weights", "random", "--orientations", "8", "--curvatures", "0.5,1",
               "--json", str(out), "--no-progress", "--top", "5"])
    assert rc == 0
    rec = json.loads(out.read_text())
    assert set(rec) >= {"family", "units", "criteria", "coverage_deg"}
    assert len(rec["units"]) == 192 and isinstance(rec["family"], list)
    assert "units pass every criterion" in capsys.readouterr().out
    assert main(["discover", "conv2d2", "--load", str(out)]) == 2  # both: a clear error
    assert main(["discover"]) == 2
    assert main(["discover", "conv2d2", "--plot", str(tmp_path / "x.txt")]) == 2  # bad suffix, before the sweep


def test_banner_plots(tmp_path):
    from circuits.plots.discover import plot_contact_sheet

    r, n_a, n_c = _synthetic()
    with pytest.raises(ValueError, match="titles"):
        plot_contact_sheet(torch.rand(2, 3, 8, 8), ["a"], tmp_path / "s.png")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plot_contact_sheet(torch.rand(1, 3, 8, 8) + 1, ["a"], tmp_path / "s.png")
    assert not (tmp_path / "s.png").exists()


# --- rendering only the shape's window (speed) ----------------------------------------


@pytest.mark.parametrize("kind, params", [
    ("curve", dict(orientation=[0, 37, 90, 200, 300], curvature=[0.1, 0.5, 1.0, 0.0, 0.75], arc_length=45.5,
                   width=3.0, size=97)),
    ("curve", dict(orientation=[15, 250], curvature=0.8, filled=True, fg="white", bg="black", size=(61, 40),
                   centre=(5.5, 38.0), scale=1.5)),
    ("curve", dict(orientation=10, curvature=0.5, size=20, centre=(-60.0, 10.0))),  # off the canvas
    ("line", dict(orientation=[0, 33, 120], length=45.5, width=3.0, size=97)),
    ("angle", dict(orientation=[0, 45, 200], opening=[30, 90, 170], arm_length=22, corner_radius=[2, 5.5, 0],
                   size=97)),
])
def test_windowed_rendering_equals_the_full_canvas(monkeypatch, kind, params):
    # Second implementation: the same formulas evaluated on every pixel of the canvas.
    from circuits.tuning import stimuli as S

    fast = S.render(kind, **params)
    monkeypatch.setattr(S, "_window", lambda cv, reach: (slice(None), slice(None)))
    full = S.render(kind, **params)
    assert torch.equal(fast, full)
