"""Weight edits between units of traced torchvision networks (resnet18, mobilenet_v2, seeded
random weights and batch norm): each edit changes exactly what it says, checked against an
independent computation (the eager torch module with its weights edited by hand, or with
its ReLUs made identities), or is refused with an error naming the node and its op; and an
edit is undone (weights bit for bit, hooks) even when the block raises."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from circuits.analysis.expanded import weights_between
from circuits.editing import EditError
from circuits.editing.edits import Reexpress, WeightEdit, drop_negative, scale_weights, set_weights, zero_weights

from tests.test_trace import eager, rel_err
from tests.test_trace_tools import traced


def _units(net, layer: str, channels) -> list:
    return [net.unit(f"{layer}:{c}") for c in channels]


def _snapshot(net) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _unchanged(net, before: dict[str, torch.Tensor]) -> bool:
    now = net.state_dict()
    return all(torch.equal(now[k].view(torch.int32), v.view(torch.int32)) for k, v in before.items())


X = torch.rand(2, 3, 65, 65, generator=torch.Generator().manual_seed(11))


def _logits(module: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return module(X)


def test_direct_edits_equal_the_eager_module_edited_by_hand():
    """resnet18: scaling layer1.0.relu:{3,7} -> layer1.0.bn2:{5,9} (the conv reads them
    directly) and zeroing relu:3 -> layer1.0.bn1:5 (through the max-pool, a channel-wise op
    with a non-negative average stand-in) give the logits of the eager module whose conv2 /
    conv1 weights were edited by hand (batch norm scales a conv's output channels, so
    scaling the folded slice is scaling the conv's)."""
    net = traced("resnet18")
    e1 = scale_weights(_units(net, "layer1.0.relu", [3, 7]), _units(net, "layer1.0.bn2", [5, 9]), -0.5)
    e2 = zero_weights(_units(net, "relu", [3]), _units(net, "layer1.0.bn1", [5]))
    want = copy.deepcopy(eager("resnet18"))
    with torch.no_grad():
        want.layer1[0].conv2.weight[[[5], [9]], [[3, 7]]] *= -0.5
        want.layer1[0].conv1.weight[5, 3] = 0
    with net.editing(e1, e2):
        assert [d.split("(")[-1] for d in net.edits] == ["exact: direct layer1.0.relu->layer1.0.bn2)",
                                                         "exact: direct maxpool->layer1.0.bn1)"]
        got = net(X)
    assert rel_err(got, _logits(want)) < 1e-5
    assert rel_err(net(X), _logits(want)) > 1e-4  # undone, and the edit changed something


def test_depthwise_edits_equal_the_eager_module_edited_by_hand():
    """mobilenet_v2's depthwise conv (features.2.conv.1.1, [C, 1, 3, 3]): scaling
    features.2.conv.0.2:{3,4} -> features.2.conv.1.1:{3,4} scales each channel's own kernel
    (the pairs across channels have no weight, and stay without one), as editing the eager
    depthwise weight by hand does; a pointwise conv after it is edited as usual."""
    net = traced("mobilenet_v2")
    e1 = scale_weights(_units(net, "features.2.conv.0.2", [3, 4]), _units(net, "features.2.conv.1.1", [3, 4]), 2.0)
    e2 = zero_weights(_units(net, "features.2.conv.1.2", [0, 5]), _units(net, "features.2.conv.3", [1]))
    want = copy.deepcopy(eager("mobilenet_v2"))
    with torch.no_grad():
        want.features[2].conv[1][0].weight[[3, 4], 0] *= 2.0
        want.features[2].conv[2].weight[1, [0, 5]] = 0
    before = _snapshot(net)
    with net.editing(e1, e2):
        got = net(X)
    assert rel_err(got, _logits(want)) < 1e-5
    assert _unchanged(net, before)


def test_edits_that_are_not_exact_are_refused_naming_the_node_and_op():
    """Refused before anything changes, each error naming the node and its op: an expanded
    edit through an active ReLU (resnet18) or ReLU6 (mobilenet_v2); drop_negative through a
    max-pool into a 3x3 conv (one weight's sign is no longer one sign per pair); setting a
    weight a depthwise conv does not have."""
    r18, mb = traced("resnet18"), traced("mobilenet_v2")
    cases = [
        (r18, lambda: scale_weights(_units(r18, "layer1.0", [3]), _units(r18, "layer1.1.bn2", [5]), 0.5),
         "layer1.1.relu (relu)"),
        (r18, lambda: drop_negative(_units(r18, "relu", [3]), _units(r18, "layer1.0.bn1", [5])),
         "maxpool (max_pool2d)"),
        (mb, lambda: drop_negative(_units(mb, "features.1", [3]), _units(mb, "features.2.conv.3", [5])),
         "(relu6)"),
        (mb, lambda: set_weights(_units(mb, "features.2.conv.0.2", [3]), _units(mb, "features.2.conv.1.1", [4]), 1.0),
         "features.2.conv.1.1 (conv2d) is a grouped convolution"),
    ]
    for net, make, named in cases:
        before = _snapshot(net)
        with pytest.raises(EditError) as err:
            with net.editing(make()):
                pass
        assert named in str(err.value), str(err.value)
        assert _unchanged(net, before) and not net.edits and not net.edit_hooks


def test_a_channelwise_route_through_an_affine_map_is_not_assumed_non_negative():
    """drop_negative from a unit read through a channel-wise affine map (DenseNet's batch
    norm before its ReLU) is not a direct edit of the conv after it: the affine map's scale
    can be negative, so the sign of the expanded weight is not the conv weight's; scaling
    is (any linear channel-wise stand-in keeps a scale a scale)."""
    from circuits.core.trace import trace

    from tests.test_trace import eager as make

    net = trace(make("densenet121"), input_size=64)
    src = _units(net, "features.pool0", [3])
    dst = _units(net, "features.denseblock1.denselayer1.norm2", [5])  # conv1, batch norm folded in
    assert WeightEdit(src, dst, "scale", factor=2.0).kinds().startswith("direct")
    assert WeightEdit(src, dst, "drop_negative").kinds().startswith("expanded")
    # Why: with a negative scale the expanded weight (kernel composition through the affine
    # map and the ReLU made an identity) has the opposite sign of the conv's own weight.
    g = net.graph
    affine = getattr(net, g.node("features.denseblock1.denselayer1.norm1").param)
    conv = getattr(net, g.node("features.denseblock1.denselayer1.norm2").param)
    with torch.no_grad():
        affine.weight[3] = -1.5
        conv.weight[5, 3] = 0.25
    w = weights_between(net, src, dst, method="autograd")
    assert float(w.sum()) == pytest.approx(-1.5 * 0.25)


def _identity_relus(module: nn.Module) -> nn.Module:
    m = copy.deepcopy(module).double().eval()
    for sub in list(m.modules()):
        for name, child in list(sub.named_children()):
            if isinstance(child, (nn.ReLU, nn.ReLU6)):
                setattr(sub, name, nn.Identity())
    return m


def _eager_linear(module: nn.Module, src: str, dst: str, s: torch.Tensor) -> torch.Tensor:
    """`dst` of the eager module with its ReLUs made identities and `src`'s output replaced by s."""
    store = {}
    h1 = module.get_submodule(src).register_forward_hook(lambda m, a, out: s)
    h2 = module.get_submodule(dst).register_forward_hook(lambda m, a, out: store.setdefault("y", out))
    try:
        with torch.no_grad():
            module(torch.zeros(s.shape[0], 3, 65, 65, dtype=torch.float64))
    finally:
        h1.remove()
        h2.remove()
    return store["y"]


def test_a_linearized_edit_changes_exactly_the_expanded_weight():
    """resnet18, layer1.0:3 -> layer1.1.bn2:5 scaled by 3 on the linearized model: against
    the re-expressed unit alone, the edit adds (3 - 1) times the contribution of source
    channel 3 through the linear path -- computed by the eager module with its ReLUs made
    identities, fed channel 3 alone (minus its response to zero) -- at every position whose
    kernel lies inside the map; every other channel is the unedited network's."""
    net = traced("resnet18")
    src, dst = "layer1.0", "layer1.1.bn2"
    d = _units(net, dst, [5])
    plain = net.run(X, until=dst)
    with net.editing(Reexpress(src, d)):
        alone = net.run(X, until=dst)
    with net.editing(scale_weights(_units(net, src, [3]), d, 3.0, route="linearized")):
        assert net.edits[0].endswith(f"(linearized model: expanded {src}->{dst})")
        edited = net.run(X, until=dst)
    s = net.run(X, until=src).double()
    only3 = torch.zeros_like(s)
    only3[:, 3] = s[:, 3]
    lin = _identity_relus(eager("resnet18"))
    contribution = _eager_linear(lin, src, dst, only3) - _eager_linear(lin, src, dst, torch.zeros_like(s))
    r = 2  # the 5x5 expanded kernel: two 3x3 convs
    inner = (slice(None), 5, slice(r, -r), slice(r, -r))
    assert rel_err((edited - alone)[inner].double(), 2 * contribution[inner]) < 1e-4
    others = [c for c in range(plain.shape[1]) if c != 5]
    assert torch.equal(edited[:, others], plain[:, others])


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_edits_are_undone_when_the_block_raises(arch):
    """An exception inside `model.editing(...)`, and one raised while applying a later edit,
    leave every parameter bit for bit as it was, no edit hook behind, the user's own
    permanent hook in place, and the same output as before."""
    net = traced(arch)
    if arch == "resnet18":
        direct = scale_weights(_units(net, "layer1.0.relu", [3]), _units(net, "layer1.0.bn2", [5]), 0.0)
        lin = scale_weights(_units(net, "layer1.0", [3]), _units(net, "layer1.1.bn2", [5]), 2.0, route="linearized")
        refused = drop_negative(_units(net, "relu", [3]), _units(net, "layer1.0.bn1", [6]))
    else:
        direct = scale_weights(_units(net, "features.2.conv.0.2", [3]), _units(net, "features.2.conv.1.1", [3]), 0.0)
        lin = scale_weights(_units(net, "features.1", [3]), _units(net, "features.2.conv.3", [5]), 2.0,
                            route="linearized")
        refused = drop_negative(_units(net, "features.1", [3]), _units(net, "features.2.conv.3", [6]))
    handle = net.add_hook(net.graph.output, lambda t, h: None)
    try:
        before, out = _snapshot(net), net(X)
        with pytest.raises(RuntimeError, match="inside the block"):
            with net.editing(direct, lin):
                assert len(net.edits) == 2 and net.edit_hooks
                raise RuntimeError("inside the block")
        assert _unchanged(net, before) and not net.edits and not net.edit_hooks
        with pytest.raises(EditError):
            with net.editing(direct, lin, refused):
                pass
        assert _unchanged(net, before) and not net.edits and not net.edit_hooks
        assert net.permanent_hooks == [handle] and torch.equal(net(X), out)
    finally:
        net.remove_hook(handle)
