"""Weights between units: direct slices, expanded weights, summaries, bad input.

Independent references, per test: the checkpoint's parameter tensors (direct slices);
a second method (kernel composition vs autograd through a linearized forward pass);
the expanded weights written out by hand as sums over the convolutions' indices
(bottleneck, pool, stride); TF's LRN formula differentiated by torch.autograd;
the summaries' definitions written out with numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circuits import families
from circuits.analysis.expanded import (
    _compose,
    connection,
    lrn_jacobian,
    summarize,
    summary_rows,
    weight_by_orientation_difference,
    weights_between,
)
from circuits.core import ops
from circuits.core.graph import INCEPTION_V1 as V1

D = torch.float64


def _w(model, name):
    return getattr(model, name).weight.detach().to(D)


# --- direct pairs: exactly the parameter slice ----------------------------------


@pytest.mark.parametrize(
    "src, dst, param, rows, cols",
    [
        # conv2d1 -> conv2d2: conv2d2's weight, out channel 7, in channel 3.
        ("conv2d1:3", "conv2d2:7", "conv2d2_pre_relu_conv", [7], [3]),
        # mixed3a (concat) -> mixed3b 1x1 branch: mixed3b:5 is mixed3b_1x1 channel 5.
        ("mixed3a:early_curves", ["mixed3b:5", "mixed3b:100"], "mixed3b_1x1_pre_relu_conv", [5, 100],
         families.family("mixed3a:early_curves", V1).channels),
        # bottleneck -> its 3x3 conv inside mixed3a: mixed3a:81 is mixed3a_3x3 channel 17.
        ("mixed3a_3x3_bottleneck:4", "mixed3a:81", "mixed3a_3x3_pre_relu_conv", [17], [4]),
        # a branch tensor as source: mixed3a_3x3 channel 17 is input channel 64 + 17 of mixed3b's convs.
        ("mixed3a_3x3:17", "mixed3b_3x3_bottleneck:2", "mixed3b_3x3_bottleneck_pre_relu_conv", [2], [81]),
        # mixed3b -> mixed4a does not exist directly (maxpool4 between); maxpool4 -> mixed4a does.
        ("maxpool4:379", "mixed4a:0", "mixed4a_1x1_pre_relu_conv", [0], [379]),
    ],
)
@pytest.mark.parametrize("method", ["compose", "autograd"])
def test_direct_pair_is_the_parameter_slice(random_model, src, dst, param, rows, cols, method):
    w = weights_between(random_model, src, dst, method=method)
    ref = getattr(random_model, param).weight[rows][:, cols]
    assert torch.equal(w, ref)
    c = connection(src, dst, V1)
    assert c.direct and c.routes[0].param == param and list(c.routes[0].param_in_channels) == cols
    # Composition through the general code path reproduces the slice (to rounding).
    r = c.routes[0]
    k = _compose(random_model, c.src_tensor, c.src_channels, r, {}, D)
    assert torch.allclose(k, ref.to(D), rtol=0, atol=1e-12)


def test_dst_is_pre_activation_and_src_post_relu():
    c = connection("mixed3a:81", "mixed3b:379", V1)
    assert c.src_tensor == "mixed3a" and c.src_channels == (81,)
    assert c.routes[0].dst_tensor == "mixed3b_5x5_pre_relu" and c.routes[0].dst_channels == (59,)
    # Through the 32-channel 5x5 bottleneck: its ReLU is the one linearized op.
    assert not c.direct and c.linearized == ("relu",) and c.kernel_size == 5
    # A pre-ReLU source is a linearization too, even one conv away.
    c = connection("conv2d1_pre_relu:3", "conv2d2:7", V1)
    assert not c.direct and c.linearized == ("relu",)


# --- expanded weights: the two methods agree ------------------------------------


@pytest.mark.parametrize(
    "src, dst",
    [
        ("mixed3a:early_curves", "mixed3b:curves"),  # through the 5x5 bottleneck
        ("conv2d2:lines", "mixed3b:curves"),  # LRN + maxpool1 (stride 2) + mixed3a + bottleneck
        ("conv2d0:gabors", "conv2d1:complex_gabors"),  # maxpool0 (stride 2) + LRN
        ("conv2d0:9", "mixed3a:81"),  # two strided pools, two LRNs
        ("mixed3b:curves", "mixed4a:cd_curves"),  # maxpool4, destinations in two branches
        ("mixed3a:81", "mixed3b:lines"),  # destinations in three branches, kernels padded
        ("mixed3a:10", "mixed3b_pool_reduce:3"),  # the pool branch: maxpool stride 1
        ("conv2d2:3", "maxpool1:3"),  # a max-pool destination
    ],
)
def test_composition_equals_autograd(random_model, src, dst):
    """Kernel algebra vs the gradient of a linearized forward pass (float64)."""
    a = weights_between(random_model, src, dst, method="compose", dtype=D)
    b = weights_between(random_model, src, dst, method="autograd", dtype=D)
    assert a.shape == b.shape
    assert a.abs().max() > 0
    assert torch.allclose(a, b, rtol=1e-10, atol=1e-12 * float(a.abs().max()))


def test_composition_equals_autograd_with_lrn_at_input(random_model, image):
    """LRN linearized at an operating point: formula Jacobian (compose) vs autograd through the real LRN."""
    g = torch.Generator().manual_seed(3)
    points = {
        "localresponsenorm0": torch.rand(64, generator=g, dtype=D) * 60,
        "localresponsenorm1": torch.rand(192, generator=g, dtype=D) * 60,
    }
    a = weights_between(random_model, "conv2d0:9", "mixed3a:81", lrn="at_input", input=points, dtype=D)
    b = weights_between(random_model, "conv2d0:9", "mixed3a:81", lrn="at_input", input=points, dtype=D, method="autograd")
    ident = weights_between(random_model, "conv2d0:9", "mixed3a:81", dtype=D)
    assert torch.allclose(a, b, rtol=1e-10, atol=1e-12 * float(a.abs().max()))
    assert not torch.allclose(a, ident)  # the operating point matters
    # Images as the operating point: their mean LRN input.
    c = weights_between(random_model, "conv2d2:lines", "mixed3a:81", lrn="at_input", input=image)
    assert c.shape == (1, 33, 7, 7) and torch.isfinite(c).all()


def test_lrn_jacobian_matches_autograd_of_tf_formula():
    v = torch.rand(20, dtype=D) * 100
    jac = torch.autograd.functional.jacobian(lambda x: ops.lrn(x.view(1, -1, 1, 1)).flatten(), v)
    assert torch.allclose(lrn_jacobian(v), jac, rtol=1e-12, atol=1e-15)


# --- expanded weights against formulas written out --------------------------------


def test_bottleneck_expansion_by_hand(random_model):
    """mixed3a -> mixed3b 5x5: K[d, s, i, j] = sum_m W5[d, m, i, j] * Wb[m, s] (ReLU -> identity)."""
    src = families.family("mixed3a:early_curves", V1).channels
    dst = [u.branch_channel for u in families.family("mixed3b:curves", V1).units]
    w5 = _w(random_model, "mixed3b_5x5_pre_relu_conv")[dst]
    wb = _w(random_model, "mixed3b_5x5_bottleneck_pre_relu_conv")[:, src, 0, 0]
    ref = np.einsum("dmij,ms->dsij", w5.numpy(), wb.numpy())
    got = weights_between(random_model, "mixed3a:early_curves", "mixed3b:curves", dtype=D)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-14)


def test_strided_pool_expansion_by_hand(random_model):
    """conv2d2 -> mixed3a_3x3 through LRN(identity), maxpool1 (3x3, stride 2), bottleneck, 3x3.

    K[d, s, u, v] = sum_{m, a, b, p, q} W3[d, m, a, b] Wb[m, s] / 9 [u = 2a + p, v = 2b + q],
    p, q in 0..2 (the pool window), so the kernel is (3 - 1) * 2 + 3 = 7 wide.
    """
    s, d = 11, 17  # conv2d2:11; mixed3a:81 = mixed3a_3x3 channel 17
    w3 = _w(random_model, "mixed3a_3x3_pre_relu_conv")[d].numpy()
    wb = _w(random_model, "mixed3a_3x3_bottleneck_pre_relu_conv")[:, s, 0, 0].numpy()
    ref = np.zeros((7, 7))
    for m in range(wb.shape[0]):
        for a in range(3):
            for b in range(3):
                for p in range(3):
                    for q in range(3):
                        ref[2 * a + p, 2 * b + q] += w3[m, a, b] * wb[m] / 9
    got = weights_between(random_model, "conv2d2:11", "mixed3a:81", dtype=D)[0, 0].numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)


def test_maxpool_destination_is_a_box():
    """maxpool1 linearized: an average over the 3x3 window of the same channel, nothing else."""
    from circuits import InceptionV1

    got = weights_between(InceptionV1(), ["conv2d2:3", "conv2d2:4"], "maxpool1:3", dtype=D)
    assert torch.equal(got[0, 0], torch.full((3, 3), 1 / 9, dtype=D))
    assert torch.equal(got[0, 1], torch.zeros(3, 3, dtype=D))


# --- summaries -------------------------------------------------------------


def test_summaries_by_definition():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 4, 5, 5))
    s = summarize(torch.tensor(w))
    flat = w.reshape(3, 4, -1)
    np.testing.assert_allclose(s.total.numpy(), flat.sum(-1))
    np.testing.assert_allclose(s.max_positive.numpy(), np.maximum(flat.max(-1), 0))
    np.testing.assert_allclose(s.max_negative.numpy(), np.minimum(flat.min(-1), 0))
    np.testing.assert_allclose(s.positive_mass.numpy(), np.where(flat > 0, flat, 0).sum(-1))
    np.testing.assert_allclose(s.negative_mass.numpy(), np.where(flat < 0, flat, 0).sum(-1))
    np.testing.assert_allclose((s.positive_mass + s.negative_mass).numpy(), flat.sum(-1))
    c = connection("mixed3a:81", ["mixed3b:379", "mixed3b:406"], V1)
    rows = summary_rows(torch.tensor(w[:2, :1]), c.src_units, c.dst_units)
    assert [(r["dst"], r["src"]) for r in rows] == [("mixed3b:379", "mixed3a:81"), ("mixed3b:406", "mixed3a:81")]
    assert rows[1]["total"] == pytest.approx(flat[1, 0].sum())


def test_weight_by_orientation_difference():
    """Every pair lands in the bin of its wrapped difference; the bin mean is the plain mean."""
    src = [0, 45, 90, 180, 270]
    dst = [10, 200, 350]
    w = torch.arange(15, dtype=D).view(3, 5)
    p = weight_by_orientation_difference(w, src, dst, period=360, bin_width=45)
    assert p.centres.tolist() == [-180, -135, -90, -45, 0, 45, 90, 135]
    assert int(p.counts.sum()) == 15
    expected: dict[float, list[float]] = {}
    for i, d in enumerate(dst):
        for j, s in enumerate(src):
            diff = (d - s + 180) % 360 - 180
            c = (round(diff / 45) * 45 + 180) % 360 - 180
            expected.setdefault(c, []).append(float(w[i, j]))
    for c, m, n in zip(p.centres.tolist(), p.mean.tolist(), p.counts.tolist()):
        if c in expected:
            assert n == len(expected[c]) and m == pytest.approx(np.mean(expected[c]))
        else:
            assert n == 0 and np.isnan(m)
    # Lines: a 180-degree period folds opposite orientations together.
    q = weight_by_orientation_difference(torch.ones(1, 2), [0, 180], [0], period=180, bin_width=45)
    assert q.counts[q.centres == 0].item() == 2
    with pytest.raises(ValueError, match="divide the period"):
        weight_by_orientation_difference(w, src, dst, bin_width=50)
    with pytest.raises(ValueError, match="need 3 dst and 5 src"):
        weight_by_orientation_difference(w, src[:4], dst)


# --- bad input -------------------------------------------------------------


@pytest.mark.parametrize(
    "src, dst, exc, match",
    [
        ("mixed3b:379", "mixed3a:81", ValueError, "not upstream"),
        ("mixed3b:10", "mixed3b:379", ValueError, "not upstream"),
        ("mixed3b:379", "mixed3b:379", ValueError, "not upstream"),
        ("mixed3a:81", "mixed4b:0", ValueError, "outside conv2d0 ... mixed4a"),
        ("input:0", "conv2d0:1", ValueError, "outside conv2d0 ... mixed4a"),
        ("mixed3a:curvs", "mixed3b:379", KeyError, "did you mean mixed3a:curves"),
        (["mixed3a:81", "conv2d2:1"], "mixed3b:379", ValueError, "one layer"),
        ("mixed3a:999", "mixed3b:379", IndexError, "out of range"),
    ],
)
def test_bad_input(src, dst, exc, match):
    with pytest.raises(exc, match=match):
        connection(src, dst, V1)


def test_bad_options():
    from circuits import InceptionV1

    m = InceptionV1()
    with pytest.raises(ValueError, match="unknown method"):
        weights_between(m, "conv2d1:3", "conv2d2:7", method="fast")
    with pytest.raises(ValueError, match="unknown lrn mode"):
        weights_between(m, "conv2d1:3", "conv2d2:7", lrn="none")
    with pytest.raises(ValueError, match="needs input="):
        weights_between(m, "conv2d0:3", "conv2d2:7", lrn="at_input")
    with pytest.raises(ValueError, match="only used with lrn='at_input'"):
        weights_between(m, "conv2d0:3", "conv2d2:7", input=torch.zeros(64))
    with pytest.raises(ValueError, match="must have 64 values"):
        weights_between(m, "conv2d0:3", "conv2d2:7", lrn="at_input", input=torch.zeros(10))
    with pytest.raises(ValueError, match="give input= as a dict"):
        weights_between(m, "conv2d0:3", "mixed3a:7", lrn="at_input", input=torch.zeros(64))
    with pytest.raises(KeyError, match="no operating point for localresponsenorm1"):
        weights_between(m, "conv2d0:3", "mixed3a:7", lrn="at_input", input={"localresponsenorm0": torch.zeros(64)})


def test_user_family_accepted():
    from circuits import InceptionV1

    m = InceptionV1()
    f = families.register_family(m, "mixed3a", "Two Curves", [81, 104], aliases=["two_curves_test"])
    c = connection("mixed3a:two_curves_test", "mixed3b:curves", m)
    assert [u.id for u in c.src_units] == ["mixed3a:81", "mixed3a:104"]
    assert connection(f, "mixed3b:379", V1).src_units == c.src_units
    with pytest.raises(KeyError, match="unknown family"):
        connection("mixed3a:two_curves_test", "mixed3b:curves", InceptionV1())  # another model's


def test_expanded_weights_predict_the_real_network_where_relus_are_active(random_model):
    """Ground truth from the real forward pass: with every 5x5-bottleneck ReLU active (bias +1e4),
    the map mixed3a -> mixed3b_5x5_pre_relu is linear, so a perturbation of the early curves around
    the centre changes the centre unit by sum_{s,i,j} K[s,i,j] * delta[s, c+i-2, c+j-2].
    This checks the kernel's spatial layout and orientation against the model itself."""
    import copy

    m = copy.deepcopy(random_model)
    with torch.no_grad():
        for p in m.parameters():  # (Module.double() is shadowed by InceptionV1._apply)
            p.data = p.data.double()
        m.mixed3b_5x5_bottleneck_pre_relu_conv.bias.fill_(1e4)
    src = families.family("mixed3a:early_curves", V1).channels
    k = weights_between(m, "mixed3a:early_curves", "mixed3b:379", dtype=D)[0]  # [11, 5, 5]
    x = torch.rand(1, 3, 72, 72, dtype=D) * 255 - 117
    h, w = 9, 9  # mixed3b at 72 px
    cy, cx = h // 2, w // 2
    g = torch.Generator().manual_seed(5)
    delta = torch.zeros(1, 256, h, w, dtype=D)
    delta[0, src, cy - 2 : cy + 3, cx - 2 : cx + 3] = torch.randn(len(src), 5, 5, generator=g, dtype=D) * 10
    with torch.no_grad():
        base = m.run(x, until="mixed3b_5x5_pre_relu")[0, 59, cy, cx]
        with m.hooks([("mixed3a", lambda a, hp: a + delta)]):
            moved = m.run(x, until="mixed3b_5x5_pre_relu")[0, 59, cy, cx]
    predicted = (k * delta[0, src, cy - 2 : cy + 3, cx - 2 : cx + 3]).sum()
    assert float(moved - base) == pytest.approx(float(predicted), rel=1e-9)
    # The flipped kernel does not predict it (the test is sensitive to the layout).
    flipped = (k.flip(-1, -2) * delta[0, src, cy - 2 : cy + 3, cx - 2 : cx + 3]).sum()
    assert float(moved - base) != pytest.approx(float(flipped), rel=1e-3)


# --- plots and CLI -----------------------------------------------------------


def test_weight_grid_layout():
    """Tile (d, s) sits at rows d*(k+1).., cols s*(k+1)..; gaps are NaN."""
    from circuits.plots.weights import weight_grid

    w = torch.arange(2 * 3 * 2 * 2, dtype=D).view(2, 3, 2, 2)
    g = weight_grid(w)
    assert g.shape == (2 * 3 - 1, 3 * 3 - 1)
    for d in range(2):
        for s in range(3):
            np.testing.assert_array_equal(g[d * 3 : d * 3 + 2, s * 3 : s * 3 + 2], w[d, s].numpy())
    assert np.isnan(g[2]).all() and np.isnan(g[:, 2]).all()


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_plot_colours_follow_the_sign(tmp_path, sign):
    """All-positive weights draw red tiles and no blue ones; all-negative the reverse."""
    import matplotlib.image as mpimg

    from circuits.plots.weights import plot_weights

    c = connection("mixed3a:81", ["mixed3b:379", "mixed3b:406"], V1)
    w = torch.full((2, 1, 5, 5), sign)
    out = plot_weights(w, c.src_units, c.dst_units, tmp_path / "w.png")
    img = mpimg.imread(out)[..., :3]
    red = (img[..., 0] > img[..., 2] + 0.2).sum()
    blue = (img[..., 2] > img[..., 0] + 0.2).sum()
    # (the colour bar holds a little of both)
    assert red > 10 * blue if sign > 0 else blue > 10 * red
    assert not list(tmp_path.glob(".tmp-*"))
    with pytest.raises(ValueError, match=r"\.png"):
        plot_weights(w, c.src_units, c.dst_units, tmp_path / "w.jpg")


def test_cli_weights(tmp_path, capsys):
    from circuits.cli import main

    png = tmp_path / "grid.png"
    assert main(["weights", "mixed3a:early_curves", "mixed3b:curves", "--weights", "random", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "expanded (relu linearized" in out and "mixed3b_5x5_pre_relu" in out and "kernel 5x5" in out
    assert out.count("mixed3b:379 ") == 11 and png.stat().st_size > 1000
    # The printed totals are the summaries of weights_between on the same weights.
    import weights

    w = weights_between(weights.model("random"), "mixed3a:81", "mixed3b:379")
    line = next(l for l in out.splitlines() if l.startswith("mixed3b:379") and " mixed3a:81 " in l)
    assert float(line.split()[2]) == pytest.approx(float(w.sum()), rel=1e-3)
    assert main(["weights", "conv2d1:3", "conv2d2:7", "--weights", "random", "--json"]) == 0
    rows = __import__("json").loads(capsys.readouterr().out)
    assert rows[0]["dst"] == "conv2d2:7" and rows[0]["src"] == "conv2d1:3"
    assert main(["weights", "mixed3b:curves", "mixed3a:curves", "--weights", "random"]) == 2
    assert "not upstream" in capsys.readouterr().err
    assert main(["weights", "mixed3a:curvs", "mixed3b:curves", "--weights", "random"]) == 2
    assert "did you mean mixed3a:curves" in capsys.readouterr().err
