"""Attribution W ⊙ h_prev: exact identity for direct connections, expanded weights, summaries, CLI.

References: the unit's pre-activation from the model's own forward pass (sum of
terms + bias must equal it); autograd (the gradient of a convolution's output with
respect to its input is the kernel, so gradient x input is W ⊙ h);
`circuits.analysis.expanded.weights_between` for expanded kernels; the bias algebra of a
1x1 bottleneck whose ReLU is always on.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import weights
import torch.nn.functional as F

from circuits import graph, to_model_input
from circuits.core import ops
from circuits.analysis.attribution import LAYERS, attribute, conv_of, previous_layer, visualize
from circuits.plots.attribution import plot_attribution as plot
from circuits.cli import main as cli_main
from circuits.core.units import Unit, parse_unit
from circuits.core.graph import INCEPTION_V1 as V1


@pytest.fixture(scope="module")
def model():
    """weights.model("random") with small random biases, so the bias term is exercised."""
    sd = weights.load("random")
    g = torch.Generator().manual_seed(1)
    for k in sd:
        if k.endswith(".bias"):
            sd[k] = torch.randn(sd[k].shape, generator=g) * 0.1
    from circuits import InceptionV1

    return InceptionV1(sd).eval()


@pytest.fixture(scope="module")
def image():
    return torch.rand(3, 67, 61, generator=torch.Generator().manual_seed(0))  # odd sizes: TF's asymmetric padding


def test_layers_and_previous_layer_follow_the_graph():
    assert LAYERS[:4] == ("conv2d0", "conv2d1", "conv2d2", "mixed3a") and LAYERS[-1] == "mixed5b"
    assert previous_layer("mixed3b:379", V1) == "mixed3a"
    assert previous_layer("mixed4a:0", V1) == "mixed3b"
    assert previous_layer("conv2d2:0", V1) == "conv2d1"
    assert previous_layer("conv2d0:0", V1) == "input"


@pytest.mark.parametrize(
    "unit,source",
    [("conv2d0:3", "input"), ("conv2d2:7", "conv2d1"), ("mixed3b:10", "mixed3a"), ("mixed3b:379", "mixed3b_5x5_bottleneck")],
)
@pytest.mark.parametrize("where", ["centre", "corner", "far corner"])
def test_direct_attribution_sums_to_the_preactivation_exactly(model, image, unit, source, where):
    u = parse_unit(unit, V1)
    conv = conv_of(u)
    size = tuple(image.shape[-2:])
    h, w = graph.output_hw(conv.name, size)
    position = {"centre": None, "corner": (0, 0), "far corner": (h - 1, w - 1)}[where]
    a = attribute(model, unit, image, source=source, position=position)
    assert a.exact and a.source == source
    # The identity: sum of W ⊙ h over sources and positions, plus the bias, is the
    # pre-activation the model computed (up to float32 summation order).
    scale = float(a.contributions.abs().sum()) + abs(a.bias)
    assert abs(a.total - a.preactivation) <= 1e-5 * scale + 1e-6, (a.total, a.preactivation)

    # The terms themselves are gradient x input of the convolution output (autograd):
    # d out / d h is W on the window and 0 elsewhere, so gradient x h is W ⊙ h.
    with torch.no_grad():
        src = model.run(to_model_input(image), until=source)
    src.requires_grad_(True)
    layer = getattr(model, conv.param)
    out = ops.conv2d_same(src, layer.weight, layer.bias, conv.stride)
    (grad,) = torch.autograd.grad(out[0, u.branch_channel, a.position[0], a.position[1]], src)
    gx = (grad * src.detach())[0]
    kh, kw = a.contributions.shape[-2:]
    padded = F.pad(gx, (kw, kw, kh, kh))  # zeros where the window hangs over the map
    y0, x0 = a.window_origin[0] + kh, a.window_origin[1] + kw
    torch.testing.assert_close(a.contributions, padded[:, y0 : y0 + kh, x0 : x0 + kw], rtol=1e-5, atol=1e-6)
    # Nothing of gradient x input lies outside the window.
    assert float(padded.abs().sum()) == pytest.approx(float(padded[:, y0 : y0 + kh, x0 : x0 + kw].abs().sum()), rel=1e-6)


def test_expanded_attribution_uses_weights_between_and_its_residual_is_the_bias_path():
    """mixed3b:379 <- mixed3a goes through the 5x5 branch's 1x1 bottleneck. With the
    bottleneck's ReLU always on (huge positive biases), the linearized path is exact
    except for the dropped bottleneck bias, whose effect on an interior unit is
    sum_{c,i,j} W5x5[u, c, i, j] * b_bottleneck[c] (written out here)."""
    from circuits import InceptionV1
    from circuits.analysis import expanded

    sd = weights.load("random")
    sd["mixed3b_5x5_bottleneck_pre_relu_conv.bias"] = torch.full((32,), 1e3)
    sd["mixed3b_5x5_pre_relu_conv.bias"] = torch.full((96,), 0.25)
    m = InceptionV1(sd).eval()
    img = torch.rand(3, 96, 96, generator=torch.Generator().manual_seed(2))
    a = attribute(m, "mixed3b:379", img)
    assert a.source == "mixed3a" and not a.exact and a.contributions.shape == (256, 5, 5)
    w = expanded.weights_between(m, [Unit("mixed3a", c, V1) for c in range(256)], "mixed3b:379")[0]
    x = m.run_with_cache(torch.as_tensor(img)[None] * 255 - 117, ["mixed3a"])["mixed3a"][0]
    (py, px), (y0, x0) = a.position, a.window_origin
    assert (y0 + 2, x0 + 2) == (py, px)  # same resolution: the window is centred on the unit
    torch.testing.assert_close(a.contributions, w * x[:, y0 : y0 + 5, x0 : x0 + 5])
    assert a.bias == pytest.approx(0.25)
    w5 = sd["mixed3b_5x5_pre_relu_conv.weight"][59]
    bias_path = float((w5.double() * 1e3).sum())
    assert a.residual == pytest.approx(bias_path, rel=1e-4, abs=1e-2)


def test_summaries(model):
    img = torch.rand(3, 96, 96, generator=torch.Generator().manual_seed(3))
    a = attribute(model, "mixed3b:10", img)
    per = a.per_channel()
    assert per.shape == (256,)
    top = a.top(5)
    assert [abs(v) for _, v in top] == sorted((abs(v) for _, v in top), reverse=True)
    assert abs(top[0][1]) == pytest.approx(float(per.abs().max()))
    assert all(v > 0 for _, v in a.top(3, "positive")) or float(per.max()) <= 0
    # Early Vision families partition mixed3a: per-family sums add up to the total.
    fams = a.per_family()
    assert "Curves" in fams and "(no family)" not in fams
    assert sum(fams.values()) == pytest.approx(float(per.sum()), rel=1e-4, abs=1e-4)
    # Heat map: a 1x1 kernel paints one stride x stride (8 x 8) cell with the whole sum.
    heat = a.heatmap()
    assert heat.shape == (96, 96)
    assert int((heat != 0).sum()) == 64 and float(heat.sum()) == pytest.approx(64 * float(per.sum()), rel=1e-5)
    cy, cx = graph.receptive_field("mixed3a", 96).centre_of(*a.window_origin)
    assert heat[int(cy), int(cx)] != 0


def test_attribution_visualization_and_plot(model, tmp_path):
    img = torch.rand(3, 96, 96, generator=torch.Generator().manual_seed(4))
    a = attribute(model, "mixed3b:10", img)
    o = a.objective()
    assert o.hooks == {"mixed3a"} and o.description == "Attribution(mixed3a, 1x1)"
    r = visualize(model, a, size=64, steps=3, progress=False)
    assert r.final.shape == (1, 3, 64, 64)
    out = plot(a, img, tmp_path / "attr.png", vis=r.final[0])
    assert out.stat().st_size > 0


def test_bad_input(model, image):
    with pytest.raises(ValueError, match="not a convolution"):
        attribute(model, "maxpool1:3", image)
    with pytest.raises(ValueError, match="not upstream"):
        attribute(model, "conv2d2:1", image, source="mixed3a")
    with pytest.raises(IndexError, match="outside"):
        attribute(model, "conv2d2:1", image, position=(100, 0))
    with pytest.raises(ValueError, match="one image"):
        attribute(model, "conv2d2:1", torch.rand(2, 3, 32, 32))
    with pytest.raises(KeyError, match="did you mean"):
        attribute(model, "conv2d2:1", image, source="conv2d")


def test_cli_attribute(tmp_path, capsys):
    from PIL import Image

    path = tmp_path / "in.png"
    Image.fromarray((np.random.default_rng(0).random((80, 90, 3)) * 255).astype(np.uint8)).save(path)
    out = tmp_path / "a.png"
    rc = cli_main(["attribute", "mixed3b:10", "--image", str(path), "--weights", "random", "--top", "3", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and out.exists()
    assert "exact (direct connection)" in text and "mixed3a:" in text and "Curves" in text
    assert cli_main(["attribute", "mixed3b:10", "--image", str(tmp_path / "none.png"), "--weights", "random",
                     "--out", str(out)]) == 2
    assert "no such image file" in capsys.readouterr().err
