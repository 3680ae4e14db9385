"""The framework's tools on traced torchvision networks, each against an independent computation:
the cone against a full forward, expanded weights three ways (kernel composition,
autograd through the linearized graph, and the Jacobian of the eager torchvision module
with its ReLUs replaced by identities), hooks/ablation against the eager module."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch import nn

from circuits.analysis.ablation import ablate  # noqa: E402
from circuits.analysis.expanded import connection, weights_between  # noqa: E402
from circuits.core.trace import trace  # noqa: E402
from circuits.tuning import cone  # noqa: E402

from tests.test_trace import eager, rel_err  # noqa: E402


@functools.lru_cache(maxsize=None)
def traced(arch: str):
    return trace(eager(arch), input_size=64)


def _cone_size(g, name: str) -> int:
    """The smallest odd input whose centre unit of `name` has its receptive field inside it."""
    start = g.receptive_field(name).size
    start += 1 - start % 2
    for size in range(start, 4 * start, 2):
        try:
            cone.cone_windows((name,), size, size, g)
            return size
        except cone.ConeError:
            pass
    raise AssertionError(f"no input up to {4 * start} px gives {name} a cone")


CONE_UNITS = {
    "resnet50": ["layer1.0.relu_2", "layer2.0.bn2", "layer2"],
    "mobilenet_v2": ["features.2.conv.1.2", "features.4", "features.7.conv.0.2"],
    "densenet121": ["features.denseblock1.denselayer2.relu2", "features.transition1.pool",
                    "features.denseblock2.denselayer3.conv2"],
}


@pytest.mark.parametrize("arch", sorted(CONE_UNITS))
def test_cone_equals_a_full_forward_at_three_depths(arch):
    """Against a full forward (`model.run`) at the centre position: the cone computes only the
    receptive field (residual adds, grouped convs, DenseNet's concatenations and
    pre-activation batch norm included) and gets the same values."""
    net = traced(arch)
    g = net.graph
    for name in CONE_UNITS[arch]:
        size = _cone_size(g, name)
        x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(size))
        full = net.run(x, until=name)
        cy, cx = g.centre_position(name, size)
        got = cone.centre_values(net, x, [name], {name: [0, 3, 5]})[name]
        assert rel_err(got, full[:, [0, 3, 5], cy, cx]) < 1e-5, name


def _eager_jacobian(module: nn.Module, g, src: str, dst: str, dst_channels, radius: int) -> torch.Tensor:
    """The Jacobian of the eager module's `dst` output (its centre unit; the module's own
    tensors, float64, every ReLU/ReLU6 an identity) with respect to its `src` module's
    output, cropped to the kernel window. Placed by receptive fields (graph geometry),
    not by the kernel algebra."""
    m = copy.deepcopy(module).double().eval()
    for name, sub in list(m.named_modules()):
        for child_name, child in list(sub.named_children()):
            if isinstance(child, (nn.ReLU, nn.ReLU6)):
                setattr(sub, child_name, nn.Identity())
    size = max(g.min_input_size(dst), 2 * radius * g.receptive_field(src).stride + g.receptive_field(dst).size)
    size += 1 - size % 2
    py, px = g.centre_position(dst, size)
    cy, cx = g.receptive_field(dst, size).centre_of(py, px)
    rs = g.receptive_field(src, size)
    ay, ax = int((cy - rs.first_centre[0]) / rs.stride), int((cx - rs.first_centre[1]) / rs.stride)
    store = {}

    def replace(mod, args, out):
        store["src"] = out.detach().clone().requires_grad_(True)
        return store["src"]

    def grab(mod, args, out):
        store["dst"] = out

    h1 = m.get_submodule(src).register_forward_hook(replace)
    h2 = m.get_submodule(dst).register_forward_hook(grab)
    try:
        m(torch.rand(1, 3, size, size, dtype=torch.float64))
    finally:
        h1.remove()
        h2.remove()
    rows = []
    for d in dst_channels:
        (gr,) = torch.autograd.grad(store["dst"][0, d, py, px], store["src"], retain_graph=True)
        rows.append(gr[0, :, ay - radius: ay + radius + 1, ax - radius: ax + radius + 1])
    return torch.stack(rows)


@pytest.mark.parametrize("arch,src,dst", [
    ("resnet18", "layer1.0", "layer2.0.bn1"),              # through layer1.1: a residual block
    ("mobilenet_v2", "features.1", "features.2.conv.3"),   # through a stride-2 depthwise conv
])
def test_expanded_weights_agree_three_ways(arch, src, dst):
    """Kernel composition, autograd through the linearized graph, and the Jacobian of the
    eager torchvision module with its ReLUs made identities (biases drop out of a Jacobian)
    agree: the residual add sums the skip and the block, the depthwise conv is its groups."""
    net = traced(arch)
    g = net.graph
    srcs = [f"{src}:{c}" for c in (0, 2, 5)]
    dsts = [f"{dst}:{c}" for c in (1, 4)]
    conn = connection(srcs, dsts, net)
    assert not conn.direct and conn.kernel_size >= 3
    w_compose = weights_between(net, srcs, dsts, dtype=torch.float64)
    w_autograd = weights_between(net, srcs, dsts, method="autograd", dtype=torch.float64)
    radius = conn.kernel_size // 2
    jac = _eager_jacobian(eager(arch), g, src, dst, [1, 4], radius)[:, [0, 2, 5]]
    assert w_compose.abs().max() > 0
    assert rel_err(w_autograd, w_compose) < 1e-9
    assert rel_err(w_compose, jac) < 1e-5


def test_depthwise_direct_weights_are_the_kernel_of_their_group():
    """A depthwise conv reading its source directly: the weight slice is the channel's own
    kernel (zero for another channel), as torch stores it ([C, 1, 3, 3])."""
    net = traced("mobilenet_v2")
    dw = "features.2.conv.1.1"
    w = weights_between(net, ["features.2.conv.0.2:3", "features.2.conv.0.2:4"], [f"{dw}:3"])
    param = getattr(net, net.graph.node(dw).param).weight.detach()
    assert torch.equal(w[0, 0], param[3, 0]) and float(w[0, 1].abs().max()) == 0.0


def test_hooks_cache_truncation_and_ablation_match_the_eager_module():
    """Against the eager module with the same change made by a forward hook: zeroing unit
    layer2:17 (`ablate`) changes the logits exactly as zeroing that channel of the `layer2`
    module's output does; truncated runs stop at the tensor asked for."""
    module, net = eager("resnet18"), traced("resnet18")
    x = torch.rand(1, 3, 97, 97, generator=torch.Generator().manual_seed(5))
    seen = []
    with net.hooks([("layer4", lambda t, h: seen.append("layer4"))]):
        out = net.run(x, until="layer2")
    assert seen == [] and out.shape[1] == 128 and not net.active_hooks
    with net.hooks(ablate("layer2:17", model=net)):
        got = net(x)

    def zero17(mod, args, out):
        out = out.clone()
        out[:, 17] = 0
        return out

    h = module.layer2.register_forward_hook(zero17)
    try:
        with torch.no_grad():
            want = module(x)
    finally:
        h.remove()
    assert rel_err(got, want) < 1e-5
    with torch.no_grad():
        assert rel_err(net(x), want) > 1e-4  # the ablation changed something
    cache = net.run_with_cache(x, ["layer1", "layer2.0.add"])
    assert cache["layer2.0.add"].shape == (1, 128, 13, 13)


def test_bounds_hold_for_random_inputs():
    """Interval bounds (each op's `bounds`) contain every value of random inputs in the range
    (silu's minimum, the SE gate's product and the folded convs included)."""
    from circuits.core.bounds import interval_bounds

    net = trace(eager("efficientnet_b0"), input_size=64)
    until = "features.2"
    b = interval_bounds(net, until)
    x = torch.rand(4, 3, 64, 64)
    cache = net.run_with_cache(x, [n.name for n in net.graph.nodes[: net.graph.index(until) + 1]])
    for name, t in cache.items():
        lo, hi = b[name]
        per_channel = t.transpose(0, 1).flatten(1)
        assert bool((per_channel.min(1).values >= lo.float() - 1e-4).all()), name
        assert bool((per_channel.max(1).values <= hi.float() + 1e-4).all()), name
