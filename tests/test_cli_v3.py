"""Every command on InceptionV3 (`--weights random-v3`: no package needed; the trained
nsfwjs weights where the package is there).

Independent references: the declaration's facts (mixed2 is 35x35 with 288 channels at 299 px,
keras.applications' summary), the model's own parameters for a direct weight slice, and
issue #11's bar for the trained network's curve family (>= 8 units covering >= 270 degrees).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from circuits import cli

V3 = ["--weights", "random-v3"]


def run(capsys, *argv) -> str:
    rc = cli.main(list(argv))
    out = capsys.readouterr()
    assert rc == 0, out.err
    return out.out


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    import skimage.data

    p = tmp_path_factory.mktemp("img") / "chelsea.png"
    Image.fromarray(skimage.data.chelsea()).save(p)
    return p


@pytest.fixture(scope="module")
def family_file(tmp_path_factory):
    from circuits.families.files import save_family

    p = tmp_path_factory.mktemp("fam") / "v3_family.json"
    save_family(p, {"layer": "mixed2", "name": "test v3 family", "aliases": ["test_v3_family"],
                    "network": "InceptionV3", "family": ["mixed2:3", "mixed2:70", "mixed2:130"]})
    return p


def test_layers_and_unit(capsys):
    out = run(capsys, "layers", *V3)
    assert "mixed2 " in out and "35x35" in out and "conv2d_94" in out
    out = run(capsys, "unit", "mixed2:130", *V3)
    assert "of InceptionV3" in out and "35x35 at 299 px" in out and "channel 2" in out


def test_families_load_and_other_network(capsys, family_file):
    # A family read from a file belongs to the one command that read it: the next has none.
    assert cli.main(["families", "mixed2", *V3]) == 2
    assert "circuits discover" in capsys.readouterr().err
    out = run(capsys, "families", *V3, "--load", str(family_file))
    assert "mixed2:test_v3_family" in out and "3 70 130" in out
    assert cli.main(["families", "mixed2", *V3]) == 2
    assert "circuits discover" in capsys.readouterr().err
    assert cli.main(["families", *V3, "--load", str(family_file), "--weights", "random"]) == 2
    assert "a family of InceptionV3, not of InceptionV1" in capsys.readouterr().err
    assert cli.main(["unit", "mixed3b:379", *V3]) == 2
    assert "is a unit of InceptionV1, not of InceptionV3" in capsys.readouterr().err


def test_weights_direct_and_expanded(capsys):
    import weights

    m = weights.model("random-v3")
    out = json.loads(run(capsys, "weights", "activation_24:4", "mixed2:130", *V3, "--json"))
    # mixed2:130 is channel 2 of conv2d_25 (the double 3x3 branch's second conv), which reads activation_24
    w = getattr(m, m.graph.node("conv2d_25").param).weight.detach()[2, 4]
    assert out[0]["total"] == pytest.approx(float(w.sum()), rel=1e-5)
    out = run(capsys, "weights", "mixed1:5,mixed1:6", "mixed2:3,mixed2:130", *V3)
    assert "expanded" in out and "mixed2:130" in out


def test_graph_ablate_attribute(capsys, tmp_path, photo):
    run(capsys, "graph", "--from", "mixed1", "--to", "mixed2", "--family", "mixed2:3", "--top-k", "2", *V3,
        "--out", str(tmp_path / "g.json"))
    assert json.loads((tmp_path / "g.json").read_text())["nodes"]
    out = run(capsys, "ablate", "mixed2:3", "--image", str(photo), *V3, "--top", "2")
    assert "299x299" in out and "no class table" in out and "mixed3:" in out
    out = run(capsys, "attribute", "mixed2:3", "--image", str(photo), *V3, "--out", str(tmp_path / "a.png"))
    assert "mixed1:" in out and (tmp_path / "a.png").stat().st_size > 1000


def test_tune_vis_discover_with_a_family_file(capsys, tmp_path, family_file):
    js = tmp_path / "t.json"
    run(capsys, "tune", str(family_file), *V3, "--angles", "12", "--json", str(js))
    assert set(json.loads(js.read_text())["units"]) >= {"mixed2:3", "mixed2:70"}
    run(capsys, "vis", "mixed2:3", *V3, "--steps", "2", "--size", "133", "--out", str(tmp_path / "v.png"))
    out = run(capsys, "discover", "mixed0", *V3, "--orientations", "8", "--curvatures", "0.5",
              "--no-progress", "--top", "2")
    assert "mixed0:" in out


def test_dataset_and_edit_experiment(capsys, tmp_path, family_file):
    js = tmp_path / "d.json"
    run(capsys, "dataset", "mixed2:3", "--images", "skimage", *V3, "--stride", "8", "--limit", "2",
        "--no-plots", "--quiet", "--json", str(js))
    rec = json.loads(js.read_text())
    assert rec["units"]["mixed2:3"]["n_crops"] > 0
    out = run(capsys, "edit-experiment", *V3, "--curves", "mixed2:130,mixed2:140", "--early-curves", "mixed1:5,mixed1:6",
              "--n-angles", "8", "--no-progress")
    assert "early curves only" in out and "mixed2:140" in out and "reexpress" in out


def test_trained_network_has_a_curve_family_in_mixed2(capsys, tmp_path, trained_v3):
    """Issue #11's bar: >= 8 units covering >= 270 degrees, each with its evidence in the file."""
    js = tmp_path / "found.json"
    run(capsys, "discover", "mixed2", "--weights", "nsfwjs-inception-v3", "--no-progress", "--top", "5",
        "--json", str(js))
    rec = json.loads(js.read_text())
    assert len(rec["family"]) >= 8 and rec["coverage_deg"] >= 270
    for u in rec["family"]:
        s = rec["units"][u]
        assert s["accepted"] and s["echo"] <= 0.25 and s["line_ratio"] <= 0.5
    # the prefs spread around the circle
    assert np.ptp([rec["units"][u]["pref_deg"] for u in rec["family"]]) >= 270
