"""Traced torchvision networks (circuits.core.trace) against the eager torch modules they come from.

The reference is always the module itself: its logits, and its own forward hooks'
outputs. Weights are torchvision's seeded random initialisation with batch-norm
statistics and affine parameters randomized too (seeded), so that folding batch norm
into the convolutions is exercised (at initialisation BN is nearly the identity).
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

import torchvision  # a dependency of the package: a missing one is an error, not a skip

from circuits.core.ops import UnsupportedOpError  # noqa: E402
from circuits.core.trace import TraceError, trace  # noqa: E402

ARCHS = ["resnet18", "resnet50", "vgg11", "googlenet", "mobilenet_v2", "efficientnet_b0", "densenet121",
         "inception_v3"]


def randomize_batchnorm(module: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.2)
    return module


@functools.lru_cache(maxsize=None)
def eager(arch: str) -> nn.Module:
    torch.manual_seed(0)
    kw = {"aux_logits": False, "init_weights": True} if arch in ("googlenet", "inception_v3") else {}
    return randomize_batchnorm(getattr(torchvision.models, arch)(weights=None, **kw)).eval()


@functools.lru_cache(maxsize=None)
def traced(arch: str):
    # traced at a small size (shapes only); it then runs at any size the module does
    return trace(eager(arch), input_size=96 if arch == "inception_v3" else 64)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("arch", ARCHS)
def test_logits_equal_the_eager_module_at_an_odd_size(arch):
    """Against the eager torchvision module: the traced network's logits at 193 px (an odd
    size, where torch's floor/ceil_mode rounding differs from TensorFlow's SAME) agree
    within 1e-5 relative. Batch norm is folded into convolutions, which only reorders
    float32 rounding: measured at most 1.3e-6 (inception_v3) on these weights."""
    x = torch.rand(1, 3, 193, 193, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = eager(arch)(x)
        got = traced(arch)(x)
    assert got.shape == want.shape
    assert rel_err(got, want) < 1e-5


def test_logits_equal_the_eager_module_at_224_batch_of_two():
    """Against the eager module at the trained size, batch 2 (resnet18)."""
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert rel_err(traced("resnet18")(x), eager("resnet18")(x)) < 1e-5


def _hooked_outputs(module: nn.Module, x: torch.Tensor) -> dict[str, list[torch.Tensor]]:
    """Every module's outputs, in call order, by forward hooks (removed afterwards)."""
    seen: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, m in module.named_modules():
        if name:
            handles.append(m.register_forward_hook(
                lambda mod, args, out, name=name: seen.setdefault(name, []).append(out.detach().clone())
                if isinstance(out, torch.Tensor) else None))
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in handles:
            h.remove()
    return seen


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2", "densenet121"])
def test_named_tensors_equal_forward_hooks_on_the_module_of_that_name(arch):
    """Against forward hooks on the eager module: every tensor named after a module
    (a leaf like ``layer1.0.bn1``, whose convolution is folded in, or a block like
    ``layer2`` / ``features.4``) holds that module's output; a module called twice
    (ResNet's ``relu``) gives ``name`` and ``name_1``."""
    module, net = eager(arch), traced(arch)
    x = torch.rand(1, 3, 97, 97, generator=torch.Generator().manual_seed(3))
    hooked = _hooked_outputs(module, x)
    pairs = {}
    for name, outs in hooked.items():
        for i, out in enumerate(outs):
            t = name if i == 0 else f"{name}_{i}"
            if t in net.hook_points:
                pairs[t] = out
    blocks = {"resnet18": ["layer2", "layer3.1", "layer1.0.relu_1"], "mobilenet_v2": ["features.4", "features"],
              "densenet121": ["features.denseblock2", "features.transition1.pool"]}[arch]
    assert set(blocks) <= set(pairs)
    assert len(pairs) > 30
    got = net.run_with_cache(x, list(pairs))
    bad = {t: rel_err(got[t], want) for t, want in pairs.items() if rel_err(got[t], want) > 1e-5}
    assert not bad


def test_folded_convolution_names_say_where_their_value_is():
    """A convolution folded into its batch norm is no tensor; asking for it names the BN."""
    g = traced("resnet18").graph
    assert g.folded["layer1.0.conv1"] == "layer1.0.bn1"
    with pytest.raises(KeyError, match="folded into it.*'layer1.0.bn1'"):
        g.node("layer1.0.conv1")


def test_units_resolve_against_the_traced_graph():
    """`layer3:17` is a unit of the traced graph (no global name table: every ResNet has a
    layer3); its computing convolution is found through the module output and the ReLU."""
    net = traced("resnet18")
    u = net.unit("layer3:17")
    assert u.network is net.graph and u.branch == "layer3"
    assert net.graph.conv_of("layer3", 17) is None  # layer3 ends in an add + ReLU: no single conv
    assert net.graph.conv_of("layer3.1.relu", 17) == ("layer3.1.bn1", 17)
    assert net.unit("layer2.1.relu_1:5").layer == "layer2.1.relu_1"
    other = trace(torchvision.models.resnet18(weights=None), input_size=64)
    assert other.graph is not net.graph and other.unit("layer3:17").network is other.graph


def test_no_hooks_are_left_on_the_users_module_and_its_mode_is_restored():
    """trace adds no hooks to the module and restores its train/eval mode, also when the
    trace fails (a forward with data-dependent control flow)."""

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            y = self.conv(x)
            return y if y.sum() > 0 else -y  # depends on the data: fx cannot trace it

    m = Branchy().train()
    with pytest.raises(TraceError, match="cannot trace Branchy"):
        trace(m)
    assert m.training and m.conv.training
    module = torchvision.models.resnet18(weights=None).train()
    trace(module, input_size=64)
    assert module.training and all(s.training for s in module.modules())
    for s in module.modules():
        assert not s._forward_hooks and not s._forward_pre_hooks and not s._backward_hooks


class _Custom(nn.Module):
    """A CNN with an op the table has no rule for (channel shuffle by torch.roll)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        y = torch.relu(self.conv1(x))
        y = torch.roll(y, 1, dims=1)
        y = torch.relu(self.conv2(y))
        return self.fc(torch.flatten(self.pool(y), 1))


def test_unknown_ops_are_opaque_nodes_that_run_the_original_code():
    """Against the eager module: an op the table lacks (torch.roll) runs as written, so the
    logits agree and hooks/ablation work through it; the cone and expanded weights across it
    are refused with an error naming the node and the code it runs."""
    from circuits.analysis.expanded import weights_between
    from circuits.tuning import cone

    torch.manual_seed(0)
    m = _Custom().eval()
    net = trace(m, input_size=32)
    opaque = [n for n in net.graph.nodes if n.kind.opaque]
    assert [(n.name, n.source) for n in opaque] == [("roll", "torch.roll")]
    x = torch.rand(2, 3, 21, 21)
    with torch.no_grad():
        assert rel_err(net(x), m(x)) < 1e-6
    # ablating channel 0 before the roll zeroes channel 1 after it
    zero0 = lambda t, h: t.index_fill(1, torch.tensor([0]), 0.0)  # noqa: E731
    with net.hooks([("relu", zero0)]):
        after = net.run(x, until="roll")
    assert float(after[:, 1].abs().max()) == 0.0 and float(after[:, 2].abs().max()) > 0
    with pytest.raises(cone.ConeError, match="cannot cross roll.*torch.roll"):
        cone.centre_values(net, x, ["conv2"])
    with pytest.raises(UnsupportedOpError, match="cannot cross roll.*torch.roll"):
        weights_between(net, "relu:0", "conv2:1")


def test_normalize_applies_the_preprocessing_as_the_first_node():
    """Against the eager module on (x - mean) / std: with normalize=, the network takes RGB
    in [0, 1] (its input_range) and its `normalize` tensor is what the module sees."""
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    module = eager("resnet18")
    net = trace(module, input_size=64, normalize=(mean, std))
    assert net.input_range == (0.0, 1.0)
    x = torch.rand(1, 3, 64, 64)
    z = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        assert rel_err(net(x), module(z)) < 1e-5
        assert torch.allclose(net.run(x, until="normalize"), z, atol=1e-6)


def test_a_network_with_opaque_nodes_reports_its_extent():
    """`last_live_layer` reads parameters of the op table's ops only (an opaque node's module
    is the code it runs): a traced network with one ends at its output."""
    from circuits.core.extent import last_live_layer

    torch.manual_seed(0)
    net = trace(_Custom().eval(), input_size=32)
    assert last_live_layer(net) == net.graph.output == "fc"
