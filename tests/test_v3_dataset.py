"""The dataset package on InceptionV3: crops, scans, checkpoints, shards, extraction, the quilt.

The scans here are small (a few skimage photographs at 176 px, big strides); InceptionV3's
receptive fields are large (mixed2: 127 px, mixed3: 159 px), so few crops fit an image.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from circuits.core.inception_v3 import INCEPTION_V3
from circuits.dataset import distributed
from circuits.dataset.crops import crop_grid, cut, parse_crop_id
from circuits.dataset.extraction import attribution_map
from circuits.dataset.scan import ScanInterrupted, ScanState, scan
from circuits.dataset.sources import folder_source, skimage_source

G = INCEPTION_V3
# mixed2:67 is channel 3 of conv2d_22 (the 5x5 branch); mixed3:400 is channel 16 of conv2d_30
UNITS = ["mixed2:67", "mixed3:400"]
SIZE = 176  # shorter side: 6 x (6..) valid mixed2 crops, 1 x (1..) mixed3 crops per photograph


def keras_input(img: torch.Tensor) -> torch.Tensor:
    """Keras's InceptionV3 preprocessing written out (x / 127.5 - 1), not the package's converter."""
    return img.double().div(127.5).sub(1).float()[None]


def centre_value(model, crop: torch.Tensor, tensor: str, channel: int, seed: int) -> float:
    """The pre-ReLU value of the centre unit (Lucid's H // 2, W // 2) of a canvas that holds
    `crop` exactly in that unit's window and random noise everywhere else: one plain full
    forward through `model.run_with_cache`. (The crop alone as the input would not do: no
    unit of a crop-sized input sees exactly the crop, the strided grid's phase is off.)"""
    s = crop.shape[-1]
    for size in range(s, s + 64):
        cy, cx = G.receptive_field(tensor, size).centre_of(*G.centre_position(tensor, size))
        if cy == cx == (size - 1) / 2:
            break
    else:  # pragma: no cover
        raise AssertionError(f"no canvas centres a unit of {tensor} on a {s} px crop")
    m = (size - s) // 2
    g = torch.Generator().manual_seed(seed)
    canvas = torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
    canvas[:, m : m + s, m : m + s] = crop
    py, px = G.centre_position(tensor, size)
    with torch.no_grad():
        return float(model.run_with_cache(keras_input(canvas), [tensor])[tensor][0, channel, py, px])


def valid_boxes(tensor: str, hw: tuple[int, int]) -> list[list[tuple[int, int]]]:
    """Top-left pixels of the valid crops, by brute force over every map position: rows of
    positions whose receptive-field window lies inside the image (a loop, not the closed form
    of `crop_grid`)."""
    rf = G.receptive_field(tensor, hw)
    half = (rf.size - 1) // 2
    mh, mw = G.output_hw(tensor, hw)
    rows = []
    for i in range(mh):
        row = []
        for j in range(mw):
            cy, cx = rf.centre_of(i, j)
            if cy - half >= 0 and cx - half >= 0 and cy + half <= hw[0] - 1 and cx + half <= hw[1] - 1:
                row.append((int(cy - half), int(cx - half)))
        if row:
            rows.append(row)
    return rows


@pytest.fixture(scope="module")
def src():
    return skimage_source(image_size=SIZE)


# --- crops ------------------------------------------------------------------------------------------

def test_v3_valid_position_sees_only_its_crop(random_v3_model):
    """Noise everywhere outside a valid V3 crop leaves its value unchanged, while changing the
    window's outermost row changes it: the crop is InceptionV3's receptive field (127 px at
    mixed2), not InceptionV1's (a check of the geometry independent of the arithmetic)."""
    tensor = "conv2d_22"
    grid = crop_grid(tensor, (181, 190), G)
    assert (grid.size, grid.stride) == (127, 8) == (G.receptive_field("mixed2").size, 8)
    assert grid.shape[0] > 1 and grid.shape[1] > 1
    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, 181, 190), generator=g, dtype=torch.uint8)
    i, j = 1, grid.shape[1] - 1
    (py, px), (y0, x0), s = grid.position(i, j), grid.box(i, j), grid.size

    def value(im):
        with torch.no_grad():
            return float(random_v3_model.run(keras_input(im), until=tensor)[0, 3, py, px])

    noisy = torch.randint(0, 256, img.shape, generator=g, dtype=torch.uint8)
    noisy[:, y0 : y0 + s, x0 : x0 + s] = cut(img, y0, x0, s)
    assert value(noisy) == pytest.approx(value(img), rel=1e-5, abs=1e-5)
    top, right = img.clone(), img.clone()
    top[:, y0, x0 : x0 + s] = 255 - top[:, y0, x0 : x0 + s]
    right[:, y0 : y0 + s, x0 + s - 1] = 255 - right[:, y0 : y0 + s, x0 + s - 1]
    assert abs(value(top) - value(img)) > 1e-4 and abs(value(right) - value(img)) > 1e-4


# --- scans --------------------------------------------------------------------------------------------

def test_v3_scan_equals_each_crops_centre_unit(random_v3_model, src):
    """Every crop a grid scan of two V3 units reads, recomputed alone: enumerated by brute force
    over the map (`valid_boxes`), each crop's value is the centre unit of a noise canvas holding
    only that crop (`centre_value`, a full forward per crop). The scan's count, firing rate,
    mean, top-k and bottom-k must equal those of the recomputed values."""
    res = scan(random_v3_model, UNITS, src, limit=3, stride=3, bin_width=0.05, top_k=3, reservoir=2,
               progress=False)
    j = res.to_json(src.names)
    assert j["network"] == res.network == "InceptionV3"
    for uid, (tensor, channel) in zip(UNITS, [("conv2d_22", 3), ("conv2d_30", 16)]):
        s = j["units"][uid]
        assert (s["tensor"], s["channel"], s["crop_size"]) == (tensor, channel, G.receptive_field(tensor).size)
        ref = {}
        for k in range(3):
            img = src.read(k)
            rows = valid_boxes(tensor, tuple(img.shape[-2:]))
            for row in rows[::3]:
                for y, x in row[::3]:
                    ref[f"{src.names[k]}@{y},{x},{s['crop_size']}"] = centre_value(
                        random_v3_model, cut(img, y, x, s["crop_size"]), tensor, channel, seed=len(ref))
        v = np.array(list(ref.values()))
        assert s["n_crops"] == len(ref) >= 3
        assert s["firing_rate"] == pytest.approx(float(np.mean(v > 0)))
        assert s["mean_pre_relu"] == pytest.approx(float(v.mean()), rel=1e-4, abs=1e-5)
        for key, order in (("top_k", -v), ("bottom_k", v)):
            want = [list(ref)[i] for i in np.argsort(order)[:3]]
            assert [c["crop_id"] for c in s[key]] == want
            for c in s[key]:
                assert c["value"] == pytest.approx(ref[c["crop_id"]], rel=1e-4, abs=1e-5)
        for b in s["samples"]["bins"]:
            for c in b["crops"]:
                assert c["value"] == pytest.approx(ref[c["crop_id"]], rel=1e-4, abs=1e-5)
                assert b["lo"] <= c["value"] < b["hi"]


def test_v3_checkpoint_resumes_and_shards_merge(random_v3_model, src, tmp_path, monkeypatch):
    """An interrupted V3 scan resumed from its checkpoint equals the uninterrupted scan, and so
    does the merge of two shards scanned as ranks 0 and 1 of 2 (what torchrun's ranks do,
    with the gather done here by hand)."""
    kw = dict(limit=3, stride=3, bin_width=0.05, top_k=2, reservoir=2, progress=False)
    whole = scan(random_v3_model, UNITS, src, **kw)
    ckpt = tmp_path / "v3.ckpt.json"
    with pytest.raises(ScanInterrupted):
        scan(random_v3_model, UNITS, src, checkpoint=ckpt, checkpoint_every=1, stop_after=1, **kw)
    saved = json.loads(ckpt.read_text())
    assert saved["network"] == "InceptionV3" and len(saved["done"]) == 1
    resumed = scan(random_v3_model, UNITS, src, checkpoint=ckpt, **kw)
    assert resumed.to_json() == whole.to_json()

    shards = []
    for rank in (0, 1):
        monkeypatch.setattr(distributed, "world", lambda r=rank: (r, 2))
        monkeypatch.setattr(distributed, "gather_states", lambda state: [state])
        shards.append(scan(random_v3_model, UNITS, src, **kw))
    monkeypatch.undo()
    assert [sorted(s.done) for s in shards] == [[0, 2], [1]]
    assert shards[0].merge(shards[1]).to_json() == whole.to_json()
    # a V1 state does not merge into a V3 one
    v1 = ScanState.from_state({**shards[1].state(), "network": "InceptionV1"})
    with pytest.raises(ValueError, match="scan of InceptionV3 with one of InceptionV1"):
        shards[0].merge(v1)


def test_v3_small_images_are_counted_not_fatal(random_v3_model, tmp_path):
    """A 30 px image cannot even reach mixed3 on InceptionV3 (its stem is unpadded: the model
    refuses it); the scan counts it as too small instead of failing, and still scans the rest."""
    import skimage.data
    from PIL import Image

    Image.fromarray(skimage.data.astronaut()[:30, :30]).save(tmp_path / "a_tiny.png")
    Image.fromarray(skimage.data.coffee()[:170, :180]).save(tmp_path / "b_coffee.png")
    with pytest.raises(ValueError, match="too small to reach"):
        random_v3_model.run(keras_input(torch.zeros(3, 30, 30, dtype=torch.uint8)), until="conv2d_30")
    res = scan(random_v3_model, "mixed3:400", folder_source(tmp_path, image_size=None), bin_width=0.05,
               progress=False)
    assert res.too_small == {0} and res.units["mixed3:400"].hist.n == len(valid_boxes("conv2d_30", (170, 180))[0])


def test_v3_trained_scan_of_real_photographs(trained_v3, src):
    """The trained nsfwjs InceptionV3 on all 17 skimage photographs: mixed2:67's strongest crop
    recomputed alone (`centre_value`) gives the scan's value; the firing rate is a fraction
    strictly inside (0, 1) (a trained unit is neither dead nor always on over 17 photographs)."""
    res = scan(trained_v3, "mixed2:67", src, stride=2, progress=False)
    s = res.to_json(src.names)["units"]["mixed2:67"]
    assert res.network == "InceptionV3" and s["n_crops"] > 200
    assert 0 < s["firing_rate"] < 1
    top = s["top_k"][0]
    name, y, x, size = parse_crop_id(top["crop_id"])
    crop = cut(src.read(src.names.index(name)), y, x, size)
    assert centre_value(trained_v3, crop, "conv2d_22", 3, seed=1) == pytest.approx(top["value"], rel=1e-4)
    assert top["value"] > s["mean_pre_relu"] + s["std_pre_relu"]


# --- bad inputs -----------------------------------------------------------------------------------------

def test_units_of_the_other_network_are_refused_naming_both(random_v3_model, random_model, src):
    with pytest.raises(ValueError, match="mixed3b:379 is a unit of InceptionV1, not of InceptionV3"):
        scan(random_v3_model, ["mixed2:67", "mixed3b:379"], src, limit=1, progress=False)
    with pytest.raises(ValueError, match="mixed3b:curves is a family of InceptionV1, not of InceptionV3"):
        attribution_map(random_v3_model, "mixed3b:curves", torch.zeros(3, 80, 80, dtype=torch.uint8))
    with pytest.raises(ValueError, match="mixed2:67 is a unit of InceptionV3, not of InceptionV1"):
        scan(random_model, "mixed2:67", src, limit=1, progress=False)
    with pytest.raises(ValueError, match=r"mixed3:600 is computed by a maxpool .* of InceptionV3"):
        scan(random_v3_model, "mixed3:600", src, limit=1, progress=False)
    with pytest.raises(ValueError, match="mixed3:400 sees 159 px crops of InceptionV3 .* at least 159"):
        scan(random_v3_model, "mixed3:400", skimage_source(image_size=150), progress=False)


# --- extraction and the attribution quilt ----------------------------------------------------------------

@pytest.fixture
def v3_family(random_v3_model):
    """A family of three mixed2 units of InceptionV3, registered on the test's model only."""
    from circuits.families import register_family, unregister_family

    fam = register_family(random_v3_model, "mixed2", "Test Units", [67, 70, 200])
    try:
        yield fam.id
    finally:
        unregister_family(random_v3_model, fam.id)


def test_v3_attribution_map_is_gradient_times_input(random_v3_model, v3_family):
    """On a V3 family the map at a pixel equals the derivative of the family's summed post-ReLU
    response along that pixel's own input value (in V3's [-1, 1]), by central finite differences
    through model.run_with_cache (a second computation, with the input written out by hand)."""
    import skimage.data

    img = torch.from_numpy(skimage.data.camera()[200:330, 180:310].copy()).expand(3, -1, -1).contiguous()
    amap = attribution_map(random_v3_model, v3_family, img)
    assert tuple(amap.shape) == (130, 130)
    y, x = divmod(int(torch.argmax(amap)), amap.shape[1])
    # mixed2 = [1x1 (64), 5x5 branch (64), 3x3 double branch (96), pool branch (64)], by hand
    table = [("conv2d_22", 3), ("conv2d_22", 6), ("conv2d_25", 72)]  # mixed2:67, :70, :200
    assert [G.conv_of("mixed2", c) for c in (67, 70, 200)] == table

    def response(scale):
        xin = keras_input(img)
        xin[0, :, y, x] *= scale
        with torch.no_grad():
            out = random_v3_model.run_with_cache(xin, ["conv2d_22", "conv2d_25"])
        return sum(float(torch.relu(out[t][0, c]).double().sum()) for t, c in table)

    eps = 0.05
    fd = (response(1 + eps) - response(1 - eps)) / (2 * eps)
    assert abs(fd) == pytest.approx(float(amap[y, x]), rel=0.05)


def _top_crop(model, src):
    """(value, crop id, image, map position) of mixed2:67's strongest crop on the first photograph."""
    from circuits.dataset.attribution_vis import crop_position

    res = scan(model, "mixed2:67", src, limit=1, stride=2, bin_width=0.05, top_k=2, progress=False)
    value, cid = res.units["mixed2:67"].top.items[0]
    name, y, x, _ = parse_crop_id(cid)
    img = src.read(src.names.index(name))
    return value, cid, img, crop_position("conv2d_22", tuple(img.shape[-2:]), y, x, G)


def test_v3_quilt_crop_positions(random_v3_model, src):
    """The quilt attributes each crop at the map position whose receptive field is the crop
    (`crop_position`): on V3, the whole image read at that position gives the scan's value of
    the crop, and a top-left off V3's 8 px grid of valid crops is refused."""
    from circuits.dataset.attribution_vis import crop_position

    value, cid, img, (py, px) = _top_crop(random_v3_model, src)
    with torch.no_grad():
        v = random_v3_model.run(keras_input(img), until="conv2d_22")[0, 3, py, px]
    assert float(v) == pytest.approx(value, rel=1e-5, abs=1e-6)
    _, y, x, _ = parse_crop_id(cid)
    with pytest.raises(ValueError, match="not the top-left of a valid 127 px crop of conv2d_22"):
        crop_position("conv2d_22", tuple(img.shape[-2:]), y + 4, x, G)


def test_v3_attribution_quilt_renders(random_v3_model, src):
    """The attribution at a crop's position has the scan's value as its pre-activation (the scan
    is the reference), and the quilt renders it in [0, 1]."""
    from circuits.analysis.attribution import attribute
    from circuits.dataset.attribution_vis import attribution_images

    value, cid, img, pos = _top_crop(random_v3_model, src)
    a = attribute(random_v3_model, random_v3_model.unit("mixed2:67"), img, position=pos)
    assert a.preactivation == pytest.approx(value, rel=1e-5, abs=1e-6)
    vis = attribution_images(random_v3_model, src, "mixed2:67", [cid], steps=1, size=64, progress=False)
    assert tuple(vis[cid].shape) == (3, 64, 64) and 0 <= float(vis[cid].min()) <= float(vis[cid].max()) <= 1
