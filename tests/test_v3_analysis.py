"""circuits.analysis on InceptionV3: weights between units, attribution, circuit graphs, ablation.

Independent references, per test:
- direct weights: the checkpoint's parameter tensors (the conv's weight slice);
- expanded weights: (a) the second method of `weights_between` (kernel composition vs
  autograd through the linearized forward pass), the identity the InceptionV1 tests
  use; (b) torch.autograd's Jacobian of the REAL network's pre-activation at the centre
  unit with respect to the source tensor, where every ReLU on the path is made the
  identity (intermediate biases +1e3) and the path has no max-pool, so the real network
  is the linearized one: its Jacobian is the expanded kernel;
- attribution: the model's own forward pass (sum of terms + bias = pre-activation),
  gradient x input of the convolution (autograd), and the bias path written out;
- ablation: an unablated run of the same model;
- wrong-network errors: the declared networks' names.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from circuits.analysis import ablate, attribute, circuit_graph
from circuits.analysis.attribution import conv_of, previous_layer
from circuits.analysis.circuit_graph import unit_layers
from circuits.analysis.expanded import connection, weights_between
from circuits.analysis.networks import WrongNetworkError, units_in
from circuits.core.inception_v3 import INCEPTION_V3
from circuits.core.inception_v3 import INCEPTION_V3 as V3

D = torch.float64


def _double(model):
    """A float64 copy (the session fixture is never changed)."""
    m = copy.deepcopy(model)
    with torch.no_grad():
        for p in m.parameters():  # (Module.double() is not used: see test_expanded)
            p.data = p.data.double()
    return m


# --- direct weights: the parameter slice --------------------------------------------


@pytest.mark.parametrize(
    "src, dst, param, rows, cols",
    [
        # mixed1 -> mixed2's 1x1 branch (conv2d_20 reads mixed1): mixed2:0 is its channel 0.
        ("mixed1:3", "mixed2:0", "conv2d_20", [0], [3]),
        # the 7x1 half of mixed4's factorized 7x7 (conv2d_34 reads activation_33); mixed4:200 = channel 8.
        ("activation_33:5", "mixed4:200", "conv2d_34", [8], [5]),
        # the 1x7 half: activation_32 -> conv2d_33 (its own unit ids: conv2d_33 is the pre-ReLU tensor).
        ("activation_32:1", "conv2d_33:4", "conv2d_33", [4], [1]),
        # a strided valid 3x3 reduction: mixed2 -> mixed3:100 (conv2d_27, channel 100).
        ("mixed2:7", "mixed3:100", "conv2d_27", [100], [7]),
    ],
)
def test_direct_weights_are_the_parameter_slice(random_v3_model, src, dst, param, rows, cols):
    """Reference: the model's own parameter; a 1x7/7x1 kernel comes zero-padded to 7x7 around its centre."""
    m = random_v3_model
    c = connection(src, dst, m)
    assert c.direct and c.routes[0].param == param and list(c.routes[0].param_in_channels) == cols
    w = weights_between(m, src, dst)
    ref = getattr(m, param).weight.detach()[rows][:, cols]
    kh, kw = ref.shape[-2:]
    k = max(kh, kw)
    assert w.shape == (len(rows), len(cols), k, k)
    oy, ox = (k - kh) // 2, (k - kw) // 2
    assert torch.equal(w[..., oy : oy + kh, ox : ox + kw], ref)
    rest = w.clone()
    rest[..., oy : oy + kh, ox : ox + kw] = 0
    assert not rest.any()


# --- expanded weights: compose vs autograd (the V1 identity) --------------------------

EXPANDED = [
    ("mixed1:3", "mixed2:67", 5),  # 1x1 bottleneck (48) + 5x5
    ("mixed1:[3, 9]", "mixed2:[130, 140]", 5),  # 1x1, 3x3, 3x3 (the double-3x3 branch)
    ("mixed1:7", "mixed2:250", 3),  # average pool (SAME, padding excluded) + 1x1
    ("mixed1:2", "mixed2:[0, 67, 130, 250]", 5),  # four branches, kernels padded to 5x5
    ("mixed3:5", "mixed4:200", 7),  # 1x1, 1x7, 7x1: a factorized 7x7
    ("mixed4:5", "mixed5:500", 13),  # 1x1, 7x1, 1x7, 7x1, 1x7: two factorized 7x7s
    ("mixed6:11", "mixed7:300", 7),  # the last block of the span
    ("activation_3:4", "activation_5:6", 7),  # max-pool 3x3/2 valid, 1x1, 3x3 valid: (3-1)*2 + 3 wide
    ("mixed2:1", "mixed3:400", 5),  # 1x1, 3x3, strided valid 3x3 (its stride spaces the outputs only)
]


def _spec(s: str):
    layer, rest = s.split(":")
    if rest.startswith("["):
        return [f"{layer}:{c.strip()}" for c in rest.strip("[]").split(",")]
    return s


@pytest.mark.parametrize("src, dst, size", EXPANDED)
def test_composition_equals_autograd(random_v3_model, src, dst, size):
    """Kernel algebra vs the gradient of the linearized forward pass (float64)."""
    m = random_v3_model
    src, dst = _spec(src), _spec(dst)
    a = weights_between(m, src, dst, dtype=D)
    b = weights_between(m, src, dst, dtype=D, method="autograd")
    assert a.shape[-2:] == (size, size) and a.shape == b.shape
    assert a.abs().max() > 0
    assert torch.allclose(a, b, rtol=1e-10, atol=1e-12 * float(a.abs().max()))


def test_composition_equals_autograd_on_the_trained_network(trained_v3):
    """The same identity on nsfwjs's trained weights, through a bottleneck and a factorized 7x7."""
    for src, dst in [("mixed1:[3, 9]", "mixed2:[67, 130]"), ("mixed3:5", "mixed4:[200, 300]")]:
        a = weights_between(trained_v3, _spec(src), _spec(dst), dtype=D)
        b = weights_between(trained_v3, _spec(src), _spec(dst), dtype=D, method="autograd")
        assert a.abs().max() > 0
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12 * float(a.abs().max()))


# --- expanded weights: the real network's Jacobian ----------------------------------


@pytest.mark.parametrize(
    "src, dst, input_size",
    [
        ("mixed1", "mixed2:67", 80),  # bottleneck + 5x5 (ReLU between)
        ("mixed1", "mixed2:135", 80),  # 1x1, 3x3, 3x3 (two ReLUs between)
        ("mixed1", "mixed2:250", 80),  # SAME average pool (interior: a plain mean) + 1x1
        ("mixed3", "mixed4:200", 139),  # 1x1, 1x7, 7x1 (two ReLUs between)
        ("mixed3", "mixed4:700", 139),  # mixed4's average-pool branch
    ],
)
def test_expanded_weights_are_the_jacobian_of_the_real_network(random_v3_model, src, dst, input_size):
    """Ground truth from the real forward pass: with every conv strictly inside the path given a
    bias that puts its output above 0 on this input, its ReLU is the identity on this input, the path is linear, and
    d pre(dst at centre) / d src is the expanded kernel (biases drop out of a derivative),
    laid out around the source cell under the centre, and zero elsewhere."""
    m = _double(random_v3_model)
    conn = connection(units_in(INCEPTION_V3, src), dst, m)
    (route,) = conn.routes
    x = torch.rand(1, 3, input_size, input_size, generator=torch.Generator().manual_seed(4), dtype=D) * 2 - 1
    with torch.no_grad():  # in path order, each conv's bias lifts its output above 0 on this input
        for name in route.path[:-1]:
            n = INCEPTION_V3.node(name)
            if n.kind.has_params:
                b = getattr(m, n.param).bias
                b.fill_(1e3)
                low = float(m.run(x, until=name).min())
                b.add_(max(0.0, -low) + 1e3)
    k = weights_between(m, units_in(INCEPTION_V3, src), dst, dtype=D)[0]  # [C_src, K, K]
    with torch.no_grad():
        h = m.run(x, until=src)
    h.requires_grad_(True)
    with m.hooks([(src, lambda a, hp: h)]):
        out = m.run(x, until=route.dst_tensor, grad=True)
    cy, cx = INCEPTION_V3.centre_position(route.dst_tensor, input_size)
    with torch.no_grad():  # every ReLU of the path really is the identity here
        cache = m.run_with_cache(x, [p for p in route.path if INCEPTION_V3.node(p).op == "relu"] or [src])
    assert all(float(cache[p].min()) > 0 for p in cache if p != src)
    (grad,) = torch.autograd.grad(out[0, route.dst_channels[0], cy, cx], h)
    grad = grad[0]
    r = k.shape[-1] // 2
    # Same resolution from source to destination here: the window is centred on (cy, cx).
    assert INCEPTION_V3.output_hw(src, input_size) == INCEPTION_V3.output_hw(route.dst_tensor, input_size)
    window = grad[:, cy - r : cy + r + 1, cx - r : cx + r + 1]
    assert window.shape == k.shape
    assert float(grad.abs().sum()) == pytest.approx(float(window.abs().sum()), rel=1e-12)  # nothing outside
    err = float((window - k).abs().max())
    assert err <= 1e-10 * float(k.abs().max()), err
    if route.path[0].startswith("average_pooling2d"):
        # A 3x3 mean then a 1x1 conv: every tap is W[d, s] / 9 (symmetric: no layout to see).
        w = getattr(m, INCEPTION_V3.node(route.dst_tensor).param).weight.detach()[route.dst_channels[0], :, 0, 0]
        torch.testing.assert_close(k, (w / 9)[:, None, None].expand_as(k), rtol=1e-12, atol=0)
    else:
        # The flipped kernel does not match (the test sees the layout).
        assert not torch.allclose(window, k.flip(-1, -2), atol=1e-6 * float(k.abs().max()))


# --- errors ---------------------------------------------------------------------


def test_units_of_the_other_network_are_refused_naming_both(random_v3_model, random_model):
    for src, dst in [("mixed3a:81", "mixed3b:379"), ("mixed3a:early_curves", "mixed3b:curves")]:
        with pytest.raises(WrongNetworkError, match="InceptionV1.*InceptionV3"):
            weights_between(random_v3_model, src, dst)
    with pytest.raises(WrongNetworkError, match="InceptionV3.*InceptionV1"):
        weights_between(random_model, "mixed1:3", "mixed2:67")
    # Units of two networks: the one named refuses the other's.
    with pytest.raises(WrongNetworkError, match="mixed3a:81 is a unit of InceptionV1, not of InceptionV3"):
        connection(["mixed1:3", "mixed3a:81"], "mixed2:67", V3)
    with pytest.raises(WrongNetworkError, match="mixed3a:81 is a unit of InceptionV1, not of InceptionV3"):
        connection([random_v3_model.unit("mixed1:3"), random_model.unit("mixed3a:81")], "mixed2:67")
    # A name of no network stays an unknown-name error with close matches.
    with pytest.raises(KeyError, match="did you mean"):
        weights_between(random_v3_model, "mixed22:3", "mixed2:67")


def test_outside_the_span_says_why(random_v3_model):
    with pytest.raises(ValueError, match=r"mixed8:0 is outside activation_1 \.\.\. mixed7.*InceptionV3") as e:
        weights_between(random_v3_model, "mixed7:0", "mixed8:0")
    assert not isinstance(e.value, KeyError)
    with pytest.raises(ValueError, match="not upstream"):
        weights_between(random_v3_model, "mixed2:3", "mixed1:3")


# --- attribution --------------------------------------------------------------------


def test_previous_layer_follows_the_v3_graph():
    assert previous_layer("mixed2:67", V3) == "mixed1"
    assert previous_layer("mixed4:200", V3) == "mixed3"
    assert previous_layer("activation_5:0", V3) == "activation_4"  # the stem's 1x1 after max_pooling2d_1
    assert previous_layer("activation_4:0", V3) == "activation_3"  # through max_pooling2d_1 (not a unit layer)
    assert previous_layer("activation_1:0", V3) == "input"
    assert conv_of(units_in(INCEPTION_V3, "mixed2", [67])[0]).name == "conv2d_22"


@pytest.mark.parametrize("unit, source", [("mixed2:3", "mixed1"), ("mixed4:200", "activation_33"), ("mixed3:100", "mixed2")])
@pytest.mark.parametrize("where", ["centre", "corner"])
def test_direct_attribution_sums_to_the_preactivation(random_v3_model, unit, source, where):
    """The model's forward pass: sum of W ⊙ h plus the bias is the pre-activation; and the terms are
    gradient x input of the convolution (autograd), with nothing outside the window."""
    m = random_v3_model
    image = torch.rand(3, 83, 79, generator=torch.Generator().manual_seed(0))  # odd sizes: SAME's asymmetry
    position = None if where == "centre" else (0, 0)
    a = attribute(m, unit, image, source=source, position=position)
    assert a.exact and a.source == source
    scale = float(a.contributions.abs().sum()) + abs(a.bias)
    assert abs(a.total - a.preactivation) <= 1e-5 * scale + 1e-6, (a.total, a.preactivation)
    u = m.unit(unit)
    conv = conv_of(u)
    with torch.no_grad():
        src = m.run(m.to_input(image), until=source)
    src.requires_grad_(True)
    layer = getattr(m, conv.param)
    y = conv.kind.forward(conv, [src], layer)
    (grad,) = torch.autograd.grad(y[0, u.branch_channel, a.position[0], a.position[1]], src)
    gx = (grad * src.detach())[0]
    kh, kw = a.contributions.shape[-2:]
    padded = F.pad(gx, (kw, kw, kh, kh))
    y0, x0 = a.window_origin[0] + kh, a.window_origin[1] + kw
    torch.testing.assert_close(a.contributions, padded[:, y0 : y0 + kh, x0 : x0 + kw], rtol=1e-5, atol=1e-6)
    assert float(padded.abs().sum()) == pytest.approx(float(padded[:, y0 : y0 + kh, x0 : x0 + kw].abs().sum()), rel=1e-6)


def test_expanded_attribution_residual_is_the_bias_path(random_v3_model):
    """mixed2:67 <- mixed1 through the 5x5 branch's 1x1 bottleneck (conv2d_21) with its ReLU always
    on (bias 1e3): the terms are weights_between x mixed1 on the window, and the residual is the
    dropped bottleneck bias, sum_{c,i,j} W22[3, c, i, j] * 1e3 (written out here)."""
    m = copy.deepcopy(random_v3_model)
    with torch.no_grad():
        m.conv2d_21.bias.fill_(1e3)
    img = torch.rand(3, 96, 96, generator=torch.Generator().manual_seed(2))
    a = attribute(m, "mixed2:67", img)
    assert a.source == "mixed1" and not a.exact and a.contributions.shape == (288, 5, 5)
    w = weights_between(m, units_in(INCEPTION_V3, "mixed1"), "mixed2:67")[0]
    x = m.run_with_cache(m.to_input(img), ["mixed1"])["mixed1"][0]
    (py, px), (y0, x0) = a.position, a.window_origin
    assert (y0 + 2, x0 + 2) == (py, px)
    torch.testing.assert_close(a.contributions, w * x[:, y0 : y0 + 5, x0 : x0 + 5])
    assert a.bias == pytest.approx(float(m.conv2d_22.bias.detach()[3]))
    bias_path = float((m.conv2d_22.weight[3].detach().double() * 1e3).sum())
    assert a.residual == pytest.approx(bias_path, rel=1e-4, abs=1e-2)
    assert a.top(1)[0][0].network is INCEPTION_V3 and a.heatmap().shape == (96, 96)


def test_attribution_scales_the_image_to_the_v3_input_range(random_v3_model):
    """The pre-activation attribution reports is the model's own on model.to_input(image) ([-1, 1])."""
    img = torch.rand(3, 80, 80, generator=torch.Generator().manual_seed(1))
    a = attribute(random_v3_model, "mixed2:3", img)
    x = random_v3_model.to_input(img)
    assert x.shape == (1, 3, 80, 80) and float(x.min()) < -0.9 and float(x.max()) > 0.9
    with torch.no_grad():
        ref = random_v3_model.run(x, until="conv2d_20")
    cy, cx = a.position
    assert a.preactivation == pytest.approx(float(ref[0, 3, cy, cx]), rel=1e-6, abs=1e-6)


def test_attribution_of_the_other_network_is_refused(random_v3_model):
    with pytest.raises(WrongNetworkError, match="InceptionV1.*InceptionV3"):
        attribute(random_v3_model, "mixed3b:379", torch.rand(3, 80, 80))
    with pytest.raises(ValueError, match="max_pooling2d_3.*not a convolution"):
        attribute(random_v3_model, "mixed3:500", torch.rand(3, 80, 80))


# --- circuit graphs ------------------------------------------------------------------


def test_unit_layers_of_v3():
    assert unit_layers(INCEPTION_V3) == (
        "activation_1", "activation_2", "activation_3", "activation_4", "activation_5",
        "mixed0", "mixed1", "mixed2", "mixed3", "mixed4", "mixed5", "mixed6", "mixed7",
    )


def test_circuit_graph_mixed1_to_mixed2(random_v3_model):
    """Edges are weights_between's kernels (the independent reference is test_composition_equals_autograd):
    each kept edge holds the kernel of its pair, top_k per destination."""
    m = random_v3_model
    focus = ["mixed2:0", "mixed2:67", "mixed2:250"]
    G = circuit_graph(m, ("mixed1", "mixed2"), units=focus, top_k=3)
    assert G.graph["network"] == "InceptionV3"
    assert sorted(n for n, a in G.nodes(data=True) if a["layer"] == "mixed2") == sorted(focus)
    ws = weights_between(m, units_in(INCEPTION_V3, "mixed1"), focus).to(D)  # kernels padded to 5x5
    for i, d in enumerate(focus):
        ins = list(G.in_edges(d, data=True))
        assert len(ins) == 3
        w = ws[i]
        strength = w.flatten(1).abs().amax(-1)
        assert {int(u.split(":")[1]) for u, _, _ in ins} == set(strength.topk(3).indices.tolist())
        for u, _, a in ins:
            k = w[int(u.split(":")[1])]
            np.testing.assert_allclose(np.array(a["kernel"]), k.numpy(), rtol=1e-6, atol=1e-9)
    assert all(a["direct"] for _, _, a in G.in_edges("mixed2:0", data=True))
    assert not any(a["direct"] for _, _, a in G.in_edges("mixed2:67", data=True))
    assert G.nodes["mixed2:67"]["branch"] == "activation_22"


def test_circuit_graph_family_granularity_and_errors(random_v3_model):
    G = circuit_graph(random_v3_model, ("activation_1", "activation_2"), granularity="family")
    # No published families on V3: one "unassigned" group per layer, one edge between them.
    assert set(G.nodes) == {"activation_1:unassigned", "activation_2:unassigned"}
    assert G.number_of_edges() == 1
    with pytest.raises(ValueError, match="mixed3a is a layer of InceptionV1.*InceptionV3"):
        circuit_graph(random_v3_model, ("mixed3a", "mixed3b"))
    with pytest.raises(ValueError, match="mixed8 is not a unit layer"):
        circuit_graph(random_v3_model, ("mixed7", "mixed8"))


# --- ablation ------------------------------------------------------------------------


def test_ablation_of_a_v3_unit(random_v3_model):
    """Reference: the unablated run. mixed2:67 (activation_22 channel 3) is zeroed in mixed2, the
    other channels are untouched, and the change reaches mixed3."""
    m = random_v3_model
    x = m.to_input(torch.rand(1, 3, 80, 80, generator=torch.Generator().manual_seed(6)))
    hooks = ablate("mixed2:67", model=m)
    assert [h for h, _ in hooks] == ["activation_22"]
    with torch.no_grad():
        base = m.run_with_cache(x, ["mixed2", "mixed3"])
        with m.hooks(hooks):
            abl = m.run_with_cache(x, ["mixed2", "mixed3"])
    assert base["mixed2"][0, 67].abs().max() > 0 and not abl["mixed2"][0, 67].any()
    keep = [c for c in range(288) if c != 67]
    assert torch.equal(abl["mixed2"][0, keep], base["mixed2"][0, keep])
    assert not torch.equal(abl["mixed3"], base["mixed3"])
    assert not m.active_hooks
    means = base["mixed2"][0].mean(dim=(1, 2))
    with torch.no_grad(), m.hooks(ablate(["mixed2:3", "mixed2:250"], "mean", means=means, model=m)):
        mean_run = m.run(x, until="mixed2")
    for c in (3, 250):
        assert torch.allclose(mean_run[0, c], means[c].expand_as(mean_run[0, c]))
    # Without a model, the ids name their network by their layer.
    assert [h for h, _ in ablate("mixed2:67", model=V3)] == ["activation_22"]
    with pytest.raises(WrongNetworkError, match="InceptionV1.*InceptionV3"):
        ablate("mixed3b:379", model=m)
    with pytest.raises(ValueError, match="288 values"):
        ablate("mixed2:3", "mean", means=torch.zeros(10), model=m)


def test_expanded_weights_predict_a_small_perturbation_of_the_trained_network(trained_v3):
    """On the trained network (ReLUs as they are): for a tiny perturbation of mixed1 around the
    centre, the change of the 1x1-branch unit mixed2:0 (a direct conv) is exactly the kernel
    times the perturbation -- the direct weights are the real map (reference: the forward pass)."""
    m = trained_v3
    k = weights_between(m, units_in(INCEPTION_V3, "mixed1", range(8)), "mixed2:0")[0]  # [8, 1, 1]
    x = m.to_input(torch.rand(1, 3, 80, 80, generator=torch.Generator().manual_seed(7)))
    delta = torch.zeros(1, 288, 7, 7)
    delta[0, :8, 3, 3] = torch.randn(8, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        base = m.run(x, until="conv2d_20")[0, 0, 3, 3]
        with m.hooks([("mixed1", lambda a, hp: a + delta)]):
            moved = m.run(x, until="conv2d_20")[0, 0, 3, 3]
    assert float(moved - base) == pytest.approx(float((k[:, 0, 0] * delta[0, :8, 3, 3]).sum()), rel=1e-4, abs=1e-6)


def test_lrn_options_do_not_apply_to_inceptionv3(random_v3_model):
    """InceptionV3 has no LRN: asking to linearize one is an error that says so."""
    with pytest.raises(ValueError, match="InceptionV3 has no LRN layer"):
        weights_between(random_v3_model, "mixed1:5", "mixed2:104", lrn="at_input", input=torch.zeros(1, 3, 299, 299))
