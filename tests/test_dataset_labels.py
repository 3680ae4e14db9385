"""Hand labels: reading, the three views against hand-computed numbers, the blind sheet."""

from __future__ import annotations

import csv

import pytest

from circuits.dataset.labels import label_views, read_labels_text
from circuits.plots.dataset import write_sheet


def _summary():
    # fine bins of 10 from -20 to 40; quilt bins of 20: [-20, 0), [0, 20), [20, 40)
    return {
        "unit": "u:1", "n_crops": 100,
        "histogram": {"width": 10.0, "edges": [-20, -10, 0, 10, 20, 30, 40], "counts": [30, 40, 15, 5, 6, 4]},
        "samples": {"bin_width": 20.0, "bins": [
            {"lo": -20, "hi": 0, "crops": [{"crop_id": "a@0,0,5", "value": -5.0}, {"crop_id": "b@0,0,5", "value": -15.0}]},
            {"lo": 0, "hi": 20, "crops": [{"crop_id": "c@0,0,5", "value": 3.0}, {"crop_id": "d@0,0,5", "value": 12.0}]},
            {"lo": 20, "hi": 40, "crops": [{"crop_id": "e@0,0,5", "value": 25.0}, {"crop_id": "f@0,0,5", "value": 31.0}]},
        ]},
    }


def test_three_views_match_a_hand_computation():
    labels = {"a@0,0,5": "unrelated", "b@0,0,5": "opposing", "c@0,0,5": "unrelated", "d@0,0,5": "curve",
              "e@0,0,5": "curve", "f@0,0,5": "imperfect"}
    v = label_views(_summary(), labels)
    b = {x["lo"]: x for x in v["bins"]}
    assert b[-20.0]["p_label"] == {"curve": 0, "imperfect": 0, "unrelated": 0.5, "opposing": 0.5}
    assert b[20.0]["p_label"]["curve"] == 0.5
    assert b[0.0]["p_bin"] == pytest.approx(0.20) and b[20.0]["density_by_label"]["curve"] == pytest.approx(0.10 / 20 * 0.5)
    # E[ReLU] by hand: fine centres 5, 15, 25, 35 with counts 15, 5, 6, 4 over 100 crops
    m0 = (15 * 5 + 5 * 15) / 100   # quilt bin [0, 20): 1.5, half unrelated, half curve
    m1 = (6 * 25 + 4 * 35) / 100   # quilt bin [20, 40): 2.9, half curve, half imperfect
    total = m0 + m1
    assert v["expected_share"]["curve"] == pytest.approx((m0 / 2 + m1 / 2) / total)
    assert v["expected_share"]["imperfect"] == pytest.approx(m1 / 2 / total)
    assert v["expected_share"]["opposing"] == 0
    assert sum(v["expected_share"].values()) == pytest.approx(1)


def test_bad_labels():
    with pytest.raises(ValueError, match="unknown label 'curvy'; use one of curve, imperfect"):
        read_labels_text('crop_id,label\n"a@0,0,5",curvy\n')
    with pytest.raises(ValueError, match="needs columns crop_id and label"):
        read_labels_text("id,lab\nx,curve\n")
    with pytest.raises(ValueError, match="not among the scan's samples"):
        label_views(_summary(), {"zz@1,1,5": "curve"})


def test_sheet_round_trip(tmp_path):
    """A sheet of a real scan lists every sampled crop once, shuffled, with no activation in it;
    labelling it by the sign of the activation gives p(curve | bin) = 1 exactly above 0."""
    import weights
    from PIL import Image
    import skimage.data

    from circuits.dataset.scan import scan
    from circuits.dataset.sources import folder_source

    d = tmp_path / "img"
    d.mkdir()
    Image.fromarray(skimage.data.coffee()[:160, 200:400]).save(d / "coffee.png")
    Image.fromarray(skimage.data.astronaut()[:160, 150:330]).save(d / "astronaut.png")
    src = folder_source(d, image_size=None)
    s = scan(weights.model("handbuilt"), "mixed3a:81", src, bin_width=2.0, quilt_factor=5, reservoir=3,
             progress=False).to_json()["units"]["mixed3a:81"]
    files = write_sheet(s, src, tmp_path / "sheet", seed=1)
    rows = list(csv.DictReader(files["csv"].open()))
    sampled = [c for b in s["samples"]["bins"] for c in b["crops"]]
    assert sorted(r["crop_id"] for r in rows) == sorted(c["crop_id"] for c in sampled)
    assert [r["crop_id"] for r in rows] != [c["crop_id"] for c in sampled]  # shuffled
    assert set(rows[0]) == {"number", "crop_id", "label"} and all(r["label"] == "" for r in rows)
    assert all(p.exists() for p in files["files"])
    value = {c["crop_id"]: c["value"] for c in sampled}
    labels = {r["crop_id"]: ("curve" if value[r["crop_id"]] > 0 else "unrelated") for r in rows}
    v = label_views(s, labels)
    for b in v["bins"]:
        assert b["p_label"]["curve"] == (1.0 if b["lo"] >= 0 else 0.0)
