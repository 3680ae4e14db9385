"""Joint tuning curves on rotated dataset examples (circuits.dataset.joint_tuning, `circuits joint-tuning`)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from circuits.dataset.joint_tuning import JointTuning, disc_mask, distinct_crops, rotate_masked
from circuits.tuning.stimuli import curve

S = 61  # crop side for the rotation checks (odd: the centre is a pixel)
WHITE = torch.full((3,), 138.0)


def _masked_curve(theta: float) -> torch.Tensor:
    c = curve(theta, 0.7, arc_length=24, width=3, size=S)[0]
    return rotate_masked(c, [0.0], fill=WHITE)[0]


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Correlation of two stimuli's ink (their difference from the white background)."""
    a, b = (a - 138).flatten(), (b - 138).flatten()
    return float((a * b).sum() / (a.norm() * b.norm()))


@pytest.mark.parametrize("a, r", [(0, 90), (30, 45), (200, -70), (100, 217), (10, 5)])
def test_rotation_matches_the_stimuli_convention(a, r):
    """A curve rendered at orientation a, rotated by r, matches the curve rendered at a + r (the
    stimuli's clockwise-on-screen convention, `circuits.tuning.stimuli.curve`): correlation > 0.98,
    closer than to the curves at a + r +- 5 degrees and at a - r (the other sign)."""
    rotated = rotate_masked(curve(a, 0.7, arc_length=24, width=3, size=S)[0], [r], fill=WHITE)[0]
    same = _corr(rotated, _masked_curve(a + r))
    assert same > 0.98
    for other in (a + r + 5, a + r - 5, a - r):
        assert _corr(rotated, _masked_curve(other)) < same - 0.05, other


def test_quarter_turns_are_the_written_out_permutations():
    """Rotating by 90 / 180 / 270 moves pixel (y, x) exactly as the formulas for a clockwise turn on
    screen (y down) say: out[y, x] = in[S-1-x, y], in[S-1-y, S-1-x], in[x, S-1-y]; and 90 equals
    torch.rot90(k=-1)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 9, 9, generator=g)
    fill = torch.zeros(3)
    out = rotate_masked(x, [90, 180, 270], fill=fill, taper=2.0)
    m = disc_mask(9, 2.0)
    n = 9
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    want = [x[:, n - 1 - xx, yy], x[:, n - 1 - yy, n - 1 - xx], x[:, xx, n - 1 - yy]]
    for o, w in zip(out, want):
        torch.testing.assert_close(o, m * w, rtol=0, atol=1e-6)
    torch.testing.assert_close(out[0], m * torch.rot90(x, -1, dims=(-2, -1)), rtol=0, atol=1e-6)


def test_mask_keeps_corners_out():
    """Outside the inscribed disc every rotation shows the fill colour only, whatever the corners hold."""
    x = torch.zeros(3, 21, 21)
    x[:, :3, :3] = 255.0  # bright corners
    x[:, -3:, -3:] = 255.0
    out = rotate_masked(x, np.arange(0, 360, 7), fill=torch.zeros(3))
    assert float(out.abs().max()) == 0.0


def test_distinct_crops_drops_overlaps():
    """Crops overlapping a kept one of the same image by more than half the side are skipped."""
    items = [(5.0, "a@0,0,91"), (4.0, "a@8,8,91"), (3.0, "a@0,48,91"), (2.0, "b@8,8,91")]
    assert distinct_crops(items, 3) == [(5.0, "a@0,0,91"), (3.0, "a@0,48,91"), (2.0, "b@8,8,91")]


def _synthetic(prefs, width=20.0) -> JointTuning:
    """A family of exact rotated copies: unit u responds to source s's examples at rotation r as a
    bump centred at pref_u - pref_s."""
    rot = np.arange(360.0)
    p = np.asarray(prefs, dtype=float)
    curves = np.zeros((len(p), len(p), 360))
    for s in range(len(p)):
        for u in range(len(p)):
            d = (rot - (p[u] - p[s]) + 180) % 360 - 180
            curves[s, u] = np.exp(-0.5 * (d / width) ** 2)
    units = [f"mixed3b:{i}" for i in range(len(p))]
    return JointTuning("InceptionV1", units, rot, curves, p, {u: [(1.0, "x@0,0,91")] for u in units})


def test_agreement_and_alignment_of_exact_rotated_copies():
    """Against the formula: exact rotated copies agree on every pair, not with the opposite sign,
    and the aligned average is the bump itself (peak 1 at offset 0, half height at +-width*sqrt(2 ln 2))."""
    jt = _synthetic([0, 45, 100, 200, 300])
    a = jt.agreement()
    assert a["pairs"] == 20 and a["fraction"] == 1.0
    assert a["fraction_opposite_sign"] < 0.5
    off, mean, n = jt.aligned()
    assert n == 25 and off[np.argmax(mean)] == 0 and mean.max() == pytest.approx(1.0)
    half = off[(mean >= 0.5)]
    assert half.max() == pytest.approx(20 * math.sqrt(2 * math.log(2)), abs=1.0)
    data = jt.to_json()
    assert len(data["joint"]["mixed3b:0"]["mixed3b:3"]) == 360
    assert data["agreement"]["fraction"] == 1.0 and len(data["aligned"]["mean"]) == 360
    back = JointTuning.from_json(json.loads(json.dumps(data, allow_nan=False)))
    np.testing.assert_array_equal(back.curves, jt.curves)
    assert back.units == jt.units and back.agreement()["fraction"] == 1.0


def test_plot_joint_tuning(tmp_path):
    """The figure is written (three panels) from a result."""
    from circuits.plots.joint_tuning import by_orientation, plot_joint_tuning

    jt = _synthetic([0, 90, 180, 270])
    # By orientation, each unit's bump sits at its own preferred orientation.
    assert [int(np.argmax(c)) for c in by_orientation(jt)] == [0, 90, 180, 270]
    p = plot_joint_tuning(jt, tmp_path / "j.png")
    assert p.stat().st_size > 10_000


@pytest.fixture(scope="module")
def handbuilt():
    import weights

    return weights.model("handbuilt").eval()


def _few_images(n: int):
    from circuits.dataset.sources import ImageSource, skimage_source

    s = skimage_source()
    return ImageSource(s.kind, s.names[:n], s.image_size)


def test_joint_curves_equal_a_full_forward_of_rotated_crops(handbuilt):
    """Against an independent computation: each example rotated by torch.rot90 (not the library's
    resampling), masked, pasted into a 224 px image where the unit's receptive field is exactly the
    crop, run by the model's full forward pass (not the receptive-field cone), read, averaged."""
    from circuits.core.graph import INCEPTION_V1
    from circuits.dataset.crops import crop_grid
    from circuits.dataset.joint_tuning import joint_tuning
    from circuits.dataset.scan import load_crops
    from circuits.families import resolve_units

    units = ["mixed3b:379", "mixed3b:324"]
    src = _few_images(3)
    jt = joint_tuning(handbuilt, units, src, top_k=2, step=90, preferred={u: 0.0 for u in units}, progress=False)
    assert jt.curves.shape == (2, 2, 4)
    us = resolve_units(units, handbuilt)
    for i, uid in enumerate(units):
        tensor = INCEPTION_V1.conv_of("mixed3b", us[i].channel)[0]
        g = crop_grid(tensor, (224, 224), INCEPTION_V1)
        (y0, x0), (py, px) = g.box(2, 3), g.position(2, 3)
        ids = [c for _, c in jt.examples[uid]]
        crops = load_crops(src, ids)
        want = torch.zeros(4, 2, dtype=torch.float64)
        for cid in ids:
            c = handbuilt.to_input(crops[cid])[0]
            s = c.shape[-1]
            yy, xx = torch.meshgrid(torch.arange(s, dtype=torch.float32), torch.arange(s, dtype=torch.float32),
                                    indexing="ij")
            rho = torch.sqrt((yy - (s - 1) / 2) ** 2 + (xx - (s - 1) / 2) ** 2)
            t = (((s - 1) / 2 - rho) / 3.0).clamp(0, 1)
            m = t * t * (3 - 2 * t)
            fill = (c * m).sum((1, 2)) / m.sum()
            imgs = fill.reshape(1, 3, 1, 1).repeat(4, 1, 224, 224)
            for k in range(4):
                rot = torch.rot90(c, -k, dims=(-2, -1))  # k quarter turns clockwise on screen
                imgs[k, :, y0 : y0 + s, x0 : x0 + s] = fill.reshape(3, 1, 1) + m * (rot - fill.reshape(3, 1, 1))
            with torch.no_grad():  # the full forward pass of the model's own module
                acts = handbuilt.run_with_cache(imgs, sorted({u.branch for u in us}))
            for j, u in enumerate(us):
                want[:, j] += torch.relu(acts[u.branch][:, u.branch_channel, py, px]).double()
        want /= len(ids)
        np.testing.assert_allclose(jt.curves[i].T, want.numpy(), rtol=1e-4, atol=1e-2)


def _cli(args, monkeypatch, capsys):
    import weights

    from circuits.cli import main

    def refuse(*a, **k):  # errors must come before any model is built
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(weights, "model", refuse)
    rc = main(args)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["joint-tuning", "mixed3b:curves", "--images", "skimage", "--step", "7"], "must divide 360"),
    (["joint-tuning", "mixed3b:379", "--images", "skimage"], "needs a family"),
    (["joint-tuning", "mixed3b:379,mixed3a:81", "--images", "skimage"], "share one layer"),
    (["joint-tuning", "mixed3b:curves", "--images", "/no/such/folder"], "no such folder"),
    (["joint-tuning", "mixed3b:curves", "--images", "skimage", "--json", "out.txt"], "--json must end in .json"),
    (["joint-tuning", "mixed3b:curves", "--images", "skimage", "--plot", "/no/such/dir/j.png"], "does not exist"),
    (["joint-tuning", "mixed3b:curves", "--images", "skimage", "--source", "mixed3b:1"], "--source mixed3b:1"),
    (["joint-tuning", "mixed2:104,mixed2:95", "--images", "skimage"], "InceptionV3"),
])
def test_cli_errors_before_work(args, message, monkeypatch, capsys):
    """Bad input: exit 2 with a message naming the bad value, before any model is loaded."""
    rc, err = _cli(args, monkeypatch, capsys)
    assert rc == 2
    assert message in err, err


def test_the_docs_python_block_runs(tmp_path, monkeypatch):
    """The runnable block of docs/rotated-examples.md runs as written and writes its figure; it is
    the done-when bar at small settings (2 examples per unit from skimage's 17 photographs, 10 degree
    steps): on the hand-built mixed3b curves, at least 70% of substantial (source, neighbour) pairs
    peak at preferred(neighbour) - preferred(source) within 20 degrees (preferred orientations
    measured on synthetic curves, independently of the photographs); the opposite sign convention
    does not, and each source's own examples excite it most unrotated."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "rotated-examples.md").read_text()
    block = re.search(r"### From Python\n\n```python\n(.*?)```", text, flags=re.S)
    assert block, "the Python block of docs/rotated-examples.md"
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(block.group(1), "rotated-examples.md", "exec"), ns)
    assert (tmp_path / "joint.png").stat().st_size > 10_000
    a = ns["a"]
    assert a["pairs"] >= 30 and a["fraction"] >= 0.7, a
    assert a["fraction_opposite_sign"] < 0.4, a
    assert all(abs(v) <= 20 for v in a["self_peak_rotation_deg"].values())
    assert len(ns["record"]["joint"]["mixed3b:379"]["mixed3b:406"]) == 36


def test_cli_writes_the_json_and_the_plot(tmp_path, capsys):
    """`circuits joint-tuning` end to end on two photographs (the title of its figure names the
    units as given): both outputs are written, and the JSON's curves are the library's."""
    from matplotlib import image as mpimg
    from skimage import data

    from circuits.cli import main

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("camera", "coffee"):
        mpimg.imsave(folder / f"{name}.png", getattr(data, name)()[:200, :200], cmap="gray")
    out_json, out_png = tmp_path / "j.json", tmp_path / "j.png"
    rc = main(["joint-tuning", "mixed3b:379,mixed3b:406", "--images", str(folder), "--top-k", "1", "--step", "90",
               "--json", str(out_json), "--plot", str(out_png), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    rec = json.loads(out_json.read_text())
    assert out_png.stat().st_size > 0 and rec["weights"] == "handbuilt"
    assert set(rec["units"]) == {"mixed3b:379", "mixed3b:406"}
