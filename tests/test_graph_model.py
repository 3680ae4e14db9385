"""The layer graph and the model against independent references.

References: TensorFlow's SAME-padding formula and max-pool/LRN definitions written out
here in plain numpy loops; the published layer table of inception5h (channel counts,
116 checkpoint tensors); and the model's own full run as the reference for truncated
runs and hooks.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from circuits import InceptionV1, ablate, graph, parse_unit, resolve_units, to_model_input
from circuits.core import ops
from circuits.core.graph import INCEPTION_V1 as V1


def tf_same_pad(size, k, s):
    """TensorFlow's documented SAME rule, written out independently of circuits.core.graph."""
    out = math.ceil(size / s)
    pad = max((out - 1) * s + k - size, 0)
    return pad // 2, pad - pad // 2


def np_maxpool_same(x, k, s):
    """Max over the window's in-image pixels only (= padding with -inf), by loops."""
    n, c, h, w = x.shape
    top, _ = tf_same_pad(h, k, s)
    left, _ = tf_same_pad(w, k, s)
    oh, ow = math.ceil(h / s), math.ceil(w / s)
    out = np.empty((n, c, oh, ow), x.dtype)
    for i in range(oh):
        for j in range(ow):
            y0, x0 = i * s - top, j * s - left
            ys = slice(max(y0, 0), min(y0 + k, h))
            xs = slice(max(x0, 0), min(x0 + k, w))
            out[:, :, i, j] = x[:, :, ys, xs].max(axis=(2, 3))
    return out


def np_lrn(x, r=5, bias=2.0, alpha=1e-4, beta=0.5):
    """tf.nn.local_response_normalization's formula, channel by channel."""
    c = x.shape[1]
    out = np.empty_like(x)
    for d in range(c):
        lo, hi = max(0, d - r), min(c, d + r + 1)
        sq = (x[:, lo:hi] ** 2).sum(axis=1)
        out[:, d] = x[:, d] / (bias + alpha * sq) ** beta
    return out


@pytest.mark.parametrize("size", [224, 225, 17, 18, 1, 2])
@pytest.mark.parametrize("k,s", [(7, 2), (3, 2), (3, 1), (5, 1), (1, 1)])
def test_same_padding_matches_tf_formula(size, k, s):
    assert graph.same_padding(size, k, s) == tf_same_pad(size, k, s)


@pytest.mark.parametrize("h,w", [(20, 20), (21, 19), (7, 8)])
def test_conv_same_matches_explicit_padding(h, w):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, h, w, generator=g, dtype=torch.float64)
    wt = torch.randn(4, 3, 7, 7, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    t, bo = tf_same_pad(h, 7, 2)
    le, ri = tf_same_pad(w, 7, 2)
    ref = F.conv2d(F.pad(x, (le, ri, t, bo)), wt, b, 2)
    assert torch.allclose(ops.conv2d_same(x, wt, b, 2), ref, atol=1e-12)


@pytest.mark.parametrize("h,w,k,s", [(20, 20, 3, 2), (21, 19, 3, 2), (9, 9, 3, 1), (2, 3, 3, 2)])
def test_maxpool_same_pads_with_minus_inf(h, w, k, s):
    g = torch.Generator().manual_seed(1)
    # All negative: zero padding would win at the borders, -inf padding never does.
    x = -torch.rand(1, 2, h, w, generator=g, dtype=torch.float64) - 1
    ref = np_maxpool_same(x.numpy(), k, s)
    np.testing.assert_array_equal(ops.max_pool_same(x, k, s).numpy(), ref)


def test_lrn_matches_tensorflow_formula():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 20, 3, 4, generator=g, dtype=torch.float64) * 80
    np.testing.assert_allclose(ops.lrn(x).numpy(), np_lrn(x.numpy()), rtol=1e-12)
    # torch's LocalResponseNorm divides alpha by the window: it is *not* what TF computes.
    assert not np.allclose(torch.nn.LocalResponseNorm(11, 1e-4, 0.5, 2.0)(x).numpy(), np_lrn(x.numpy()))


def test_graph_matches_published_inception5h_layout():
    shapes = graph.parameter_shapes()
    assert len(shapes) == 116
    assert shapes["conv2d0_pre_relu_conv.weight"] == (64, 3, 7, 7)
    assert shapes["mixed3b_5x5_bottleneck_pre_relu_conv.weight"] == (32, 256, 1, 1)
    assert shapes["mixed4a_3x3_pre_relu_conv.weight"] == (204, 96, 3, 3)
    assert shapes["softmax2_pre_activation_matmul.weight"] == (1008, 1024)
    channels = {"mixed3a": 256, "mixed3b": 480, "mixed4a": 508, "mixed4b": 512, "mixed4c": 512,
                "mixed4d": 528, "mixed4e": 832, "mixed5a": 832, "mixed5b": 1024}
    for name, c in channels.items():
        assert graph.node(name).channels == c
        assert graph.node(name + "_pre_relu").channels == c


def test_unit_resolution():
    u = parse_unit("mixed3b:379", V1)
    assert (u.layer, u.branch, u.branch_channel) == ("mixed3b", "mixed3b_5x5", 59)
    assert parse_unit(("mixed3b", 379), V1) == u
    assert u.centre(224) == (14, 14)
    assert parse_unit("mixed3a_pre_relu:81", V1).branch == "mixed3a_3x3_pre_relu"
    assert parse_unit("conv2d0:5", V1).branch == "conv2d0"
    with pytest.raises(ValueError, match="layer:channel"):
        parse_unit("mixed3b-379", V1)
    with pytest.raises(IndexError, match="0..479"):
        parse_unit("mixed3b:480", V1)
    with pytest.raises(KeyError, match="did you mean mixed3b"):
        parse_unit("mixd3b:1", V1)


def test_receptive_fields_by_hand():
    # conv2d0 7/2 -> maxpool0 3/2 -> conv2d1 1 -> conv2d2 3 -> maxpool1 3/2 -> mixed3a 5x5 -> mixed3b 5x5
    expect = {"conv2d0": (7, 2), "maxpool0": (11, 4), "conv2d2": (19, 4), "maxpool1": (27, 8),
              "mixed3a_3x3": (43, 8), "mixed3a": (59, 8), "mixed3b_5x5": (91, 8), "mixed4a": (171, 16)}
    for name, (size, stride) in expect.items():
        rf = graph.receptive_field(name)
        assert (rf.size, rf.stride) == (size, stride), name


def test_receptive_field_centre_is_where_the_gradient_is():
    """conv2d0's unit centre derived from the graph is the middle of d unit / d input's support.

    At 64 px the SAME padding is 2/3, at 65 px 3/3: the centre moves by one pixel.
    """
    m = InceptionV1()
    with torch.no_grad():
        m.conv2d0_pre_relu_conv.weight.fill_(1.0)
    for size, expect in ((64, 65), (65, 64)):
        x = torch.zeros(1, 3, size, size, requires_grad=True)
        y = m.run(x, until="conv2d0_pre_relu")
        cy, cx = graph.centre_position("conv2d0_pre_relu", size)
        y[0, 0, cy, cx].backward()
        ys, xs = torch.nonzero(x.grad[0].sum(0), as_tuple=True)
        rf = graph.receptive_field("conv2d0_pre_relu", size)
        assert int(ys.max() - ys.min()) + 1 == rf.size == 7
        assert rf.centre_of(cy, cx) == ((ys.min() + ys.max()).item() / 2, (xs.min() + xs.max()).item() / 2)


def test_truncated_and_full_runs_agree_at_every_hook(random_model, image):
    names = random_model.hook_names
    x = torch.rand(1, 3, 224, 224) * 255 - 117
    full = random_model.run_with_cache(x, names)
    for name in ["conv2d0", "localresponsenorm1", "mixed3a_pre_relu", "mixed3b", "mixed4a_pool", "softmax2"]:
        part = random_model.run_with_cache(x, [name])
        assert torch.equal(part[name], full[name]), name
    assert torch.allclose(full["softmax2"].sum(1), torch.ones(1))
    assert torch.equal(full["mixed3b_pre_relu"][:, 320:416], full["mixed3b_5x5_pre_relu"])


def test_truncated_run_stops_after_last_requested(random_model, image):
    seen = []
    hooks = [(n, lambda x, h: seen.append(h.name)) for n in random_model.hook_names]
    with random_model.hooks(hooks):
        random_model.run_with_cache(image, ["mixed3b"])
    assert seen[-1] == "mixed3b"
    assert "mixed4a" not in seen and "softmax2" not in seen and "mixed3b_pre_relu" not in seen
    assert set(seen) == set(graph.ancestors("mixed3b"))


def test_hooks_removed_after_exception(random_model, image):
    def boom(x, h):
        raise RuntimeError("inside hook")

    with pytest.raises(RuntimeError, match="inside hook"):
        random_model.run_with_hooks(image, [("conv2d0", boom)], until="conv2d1")
    assert random_model.active_hooks == []
    with pytest.raises(ZeroDivisionError):
        with random_model.hooks([("mixed3a", lambda x, h: x * 2)]):
            1 / 0
    assert random_model.active_hooks == []
    # A bad name anywhere in the list adds none of them.
    with pytest.raises(KeyError, match="conv2d0"):
        with random_model.hooks([("conv2d1", lambda x, h: None), ("conv2d00", lambda x, h: None)]):
            pass
    assert random_model.active_hooks == []


def test_permanent_hooks_are_listed_and_separate(random_model, image):
    h = random_model.add_hook("conv2d0", lambda x, hp: x * 0)
    try:
        assert random_model.permanent_hooks == [h]
        with random_model.hooks([("conv2d1", lambda x, hp: None)]):
            assert len(random_model.active_hooks) == 2
            assert random_model.permanent_hooks == [h]
        assert float(random_model.run(image, until="conv2d0").detach().abs().max()) == 0.0
    finally:
        random_model.remove_hook(h)
    assert random_model.active_hooks == []
    with pytest.raises(ValueError, match="already removed"):
        random_model.remove_hook(h)


@pytest.mark.parametrize("mode", ["zero", "constant", "clamp", "mean"])
def test_ablation_changes_exactly_the_units(random_model, mode):
    x = torch.rand(1, 3, 64, 64) * 255 - 117
    before = random_model.run_with_cache(x, ["mixed3b", "mixed3b_pre_relu"])
    # Two live units, one in the 5x5 branch and one in the 1x1 branch.
    live = before["mixed3b"].amax(dim=(0, 2, 3)) > 0.5
    a = next(c for c in range(320, 416) if live[c])
    b = next(c for c in range(0, 128) if live[c])
    kw = {"constant": {"value": 3.0}, "clamp": {"clamp": (None, 0.25)},
          "mean": {"means": {f"mixed3b:{a}": 0.5, f"mixed3b:{b}": 0.25}}}.get(mode, {})
    with random_model.hooks(ablate([f"mixed3b:{a}", ("mixed3b", b)], mode, **kw, model=random_model)):
        after = random_model.run_with_cache(x, ["mixed3b", "mixed3b_pre_relu"])
    diff = (after["mixed3b"] - before["mixed3b"]).abs().amax(dim=(0, 2, 3))
    assert set(torch.nonzero(diff).flatten().tolist()) == {a, b}
    if mode == "constant":
        assert torch.all(after["mixed3b"][:, [a, b]] == 3.0)
    if mode == "mean":
        assert torch.all(after["mixed3b"][:, a] == 0.5) and torch.all(after["mixed3b"][:, b] == 0.25)
    if mode == "clamp":
        assert after["mixed3b"][:, [a, b]].max() <= 0.25
        kept = before["mixed3b"][:, a] <= 0.25
        assert torch.equal(after["mixed3b"][:, a][kept], before["mixed3b"][:, a][kept])
    assert torch.equal(after["mixed3b_pre_relu"], before["mixed3b_pre_relu"])  # post-ReLU ablation
    assert random_model.active_hooks == []


def test_ablation_with_spatial_mask_and_propagation(random_model):
    x = torch.rand(1, 3, 64, 64) * 255 - 117
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[2:4, 5] = True
    before = random_model.run_with_cache(x, ["mixed3b", "mixed4a"])
    with random_model.hooks(ablate("mixed3b:379", "constant", value=100.0, mask=mask, model=random_model)):
        after = random_model.run_with_cache(x, ["mixed3b", "mixed4a"])
    changed = (after["mixed3b"] != before["mixed3b"])[0]
    assert torch.equal(changed[379], mask) and not changed[:379].any() and not changed[380:].any()
    assert not torch.equal(after["mixed4a"], before["mixed4a"])  # reaches downstream


def test_ablation_bad_input():
    with pytest.raises(ValueError, match="zero, constant, mean, clamp"):
        ablate("conv2d0:1", "shuffle", model=V1)
    with pytest.raises(ValueError, match="value="):
        ablate("conv2d0:1", "constant", model=V1)
    with pytest.raises(ValueError, match="64 values"):
        ablate("conv2d0:1", "mean", means=[0.0] * 3, model=V1)


def test_input_checks_and_unit_range_warning(random_model):
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        random_model.run(torch.zeros(3, 32, 32), until="conv2d0")
    with pytest.raises(TypeError, match="floating point"):
        random_model.run(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), until="conv2d0")
    with pytest.raises(ValueError, match="193"):
        random_model.run(torch.zeros(1, 3, 100, 100))
    with pytest.warns(UserWarning, match=r"\[0, 1\]"):
        random_model.run(torch.rand(1, 3, 32, 32), until="conv2d0")
    with pytest.raises(KeyError, match="did you mean"):
        random_model.run_with_cache(torch.zeros(1, 3, 32, 32), ["mixed3bb"])


def test_to_model_input():
    u8 = torch.tensor([[[[0, 255]]]], dtype=torch.uint8).expand(1, 3, 1, 2)
    assert to_model_input(u8).flatten().tolist() == [-117.0, 138.0] * 3
    hwc = np.ones((4, 5, 3), np.float32)
    assert to_model_input(hwc).shape == (1, 3, 4, 5) and float(to_model_input(hwc).max()) == 138.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        to_model_input(torch.full((1, 3, 2, 2), 5.0))


def test_resolve_units_lists():
    assert [u.id for u in resolve_units(["conv2d0:1", ("mixed3a", 81)], V1)] == ["conv2d0:1", "mixed3a:81"]


def test_model_converts_dtype_like_any_module(image):
    """nn.Module.to/double must keep working (the interpreter must not shadow nn.Module._apply)."""
    m = InceptionV1().double()
    assert m.run(image.double(), until="mixed3a").dtype == torch.float64


def test_load_image_grey_and_alpha_become_rgb_model_input(tmp_path):
    """A grey+alpha PNG written by matplotlib reads back as RGB; resize+crop keeps a uniform value."""
    import matplotlib.image as mpimg

    from circuits.core.inputs import load_image, read_image

    grey = np.full((30, 50, 4), 0.5, np.float32)
    grey[..., 3] = 0.25  # alpha is dropped, not blended
    mpimg.imsave(tmp_path / "g.png", grey)
    img = read_image(tmp_path / "g.png")
    assert img.shape == (3, 30, 50) and img.dtype == torch.uint8
    x = load_image(tmp_path / "g.png", size=20)
    assert x.shape == (1, 3, 20, 20)
    assert torch.allclose(x, torch.full_like(x, float(img[0, 0, 0]) - 117.0), atol=1.0)
    with pytest.raises(ValueError, match="cannot read"):
        (tmp_path / "bad.png").write_bytes(b"not a png")
        read_image(tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "missing.png")
