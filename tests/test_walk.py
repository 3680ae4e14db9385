"""The one walk over the graph (circuits.core.walk) and the op-table questions its users ask.

Each user of the walk is checked against something that does not walk the graph: the
forward against the eager torchvision module, the cone against a full forward, bounds
against sampled activations, the linearized path against the eager module with its ReLUs
made identities, kernel composition against autograd and the eager Jacobian. The op
methods (`identity_on`, `linearizable`, `nonnegative_linearization`,
`takes_operating_point`, `joins_branches`) are checked against the ops' own forward and
linearization evaluated on sampled inputs.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from circuits.analysis.expanded import connection, weights_between
from circuits.core import walk
from circuits.core.bounds import always_identity_relus, interval_bounds
from circuits.core.graph import INCEPTION_V1, Node
from circuits.core.ops import OPS, UnsupportedOpError
from circuits.editing.paths import linearized_path, path_nodes
from circuits.tuning import cone

from tests.test_trace import eager, rel_err
from tests.test_trace_tools import _cone_size, _eager_jacobian, traced


# --- the walk itself ----------------------------------------------------------------


def test_plan_order_and_freeing_against_a_recomputation():
    """Against a direct recomputation from the graph's edges: the nodes are the ancestors of
    the targets in declaration order (the start excluded), and each value is freed right
    after the last node that reads it, never a target's."""
    g = INCEPTION_V1
    targets = ("mixed3a", "mixed3b_5x5_pre_relu")
    p = walk.plan(g, targets)
    anc = set().union(*(g.ancestors(t) for t in targets))
    assert p.names == tuple(n.name for n in g.nodes if n.name in anc and n.name != "input")
    readers = {}
    for i, n in enumerate(p.nodes):
        for s in n.inputs:
            readers.setdefault(s, []).append(i)
    for i, freed in enumerate(p.free):
        assert set(freed) == {s for s, r in readers.items() if max(r) == i and s not in targets}
    assert walk.plan(g, targets) is p  # cached per (graph, targets, start)


def test_walk_from_a_tensor_and_its_errors():
    """From `start`: only the nodes that depend on it (the others are None to a step); a
    target that does not depend on it is an error naming both."""
    g = INCEPTION_V1
    p = walk.plan(g, ("mixed3b",), start="mixed3a_5x5")
    assert all("mixed3a_5x5" in g.ancestors(n.name) for n in p.nodes)
    seen = {}
    walk.forward(g, ("mixed3b",), {"mixed3a_5x5": 1}, lambda n, ins: seen.setdefault(n.name, ins) and 1,
                 start="mixed3a_5x5")
    assert seen["mixed3a"].count(None) == 3 and seen["mixed3a"].count(1) == 1  # the other three branches
    with pytest.raises(ValueError, match="conv2d0 does not depend on mixed3a"):
        walk.plan(g, ("conv2d0",), start="mixed3a")
    with pytest.raises(ValueError, match="needs its value in seed"):
        walk.forward(g, ("conv2d0",), {}, lambda n, ins: 0)
    env = walk.forward(g, ("conv2d1",), {"input": 0}, lambda n, ins: ins[0] + 1)
    assert env == {"conv2d1": 6}  # every value but the target's freed


# --- each user, against an independent computation -----------------------------------


def test_forward_equals_the_eager_module():
    """The model's forward (a step of the walk) against the eager torchvision resnet18
    (seeded random weights and batch norm): logits and a forward hook's tensor."""
    module, net = eager("resnet18"), traced("resnet18")
    x = torch.rand(2, 3, 97, 97, generator=torch.Generator().manual_seed(1))
    seen = {}
    h = module.layer2[1].register_forward_hook(lambda m, a, out: seen.setdefault("t", out))
    try:
        with torch.no_grad():
            want = module(x)
    finally:
        h.remove()
    cache = net.run_with_cache(x, ["layer2.1", net.graph.output])
    assert rel_err(cache[net.graph.output], want) < 1e-5
    assert rel_err(cache["layer2.1"], seen["t"]) < 1e-5


def test_cone_equals_the_full_forward_on_resnet18():
    """The cone's walks (windows and channels backward, values forward) against a full
    forward at the centre position, at two depths of resnet18 (residual adds inside)."""
    net = traced("resnet18")
    g = net.graph
    for name in ("layer1.1.relu_1", "layer2.0.bn2"):
        size = _cone_size(g, name)
        x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(size))
        cy, cx = g.centre_position(name, size)
        got = cone.centre_values(net, x, [name], {name: [1, 6]})[name]
        assert rel_err(got, net.run(x, until=name)[:, [1, 6], cy, cx]) < 1e-5, name


@pytest.mark.parametrize("arch,until", [("resnet18", "layer2"), ("mobilenet_v2", "features.3")])
def test_bounds_contain_sampled_activations(arch, until):
    """Interval bounds (walked forward, each op's `bounds`) contain every value of random
    inputs in the network's input range, ReLU6 and depthwise convs included."""
    net = traced(arch)
    g = net.graph
    b = interval_bounds(net, until)
    lo_in, hi_in = g.input_range
    x = lo_in + (hi_in - lo_in) * torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    names = [n.name for n in g.nodes[1 : g.index(until) + 1]]
    assert set(b) == {"input", *names}
    for name, t in net.run_with_cache(x, names).items():
        lo, hi = b[name]
        per_channel = t.transpose(0, 1).flatten(1)
        assert bool((per_channel.min(1).values >= lo.float() - 1e-4).all()), name
        assert bool((per_channel.max(1).values <= hi.float() + 1e-4).all()), name


def _identity_activations(module: nn.Module) -> nn.Module:
    m = copy.deepcopy(module).double().eval()
    for sub in list(m.modules()):
        for child_name, child in list(sub.named_children()):
            if isinstance(child, (nn.ReLU, nn.ReLU6)):
                setattr(sub, child_name, nn.Identity())
    return m


@pytest.mark.parametrize("arch,src,dst", [
    ("resnet18", "layer1.0", "layer2.0.bn1"),              # a residual block on the way
    ("mobilenet_v2", "features.1", "features.2.conv.3"),   # ReLU6 and a depthwise conv on the way
])
def test_linearized_path_equals_the_eager_module_with_identity_relus(arch, src, dst):
    """`linearized_path` (a walk from the source tensor, each op's `linear`) against the
    eager module, float64, with every ReLU/ReLU6 an identity and the source module's
    output replaced by the same tensor: the same affine map, biases included (within the
    float32 rounding of the folded batch norm)."""
    net = traced(arch)
    g = net.graph
    size = 65
    s = torch.randn(2, g.node(src).channels, *g.output_hw(src, size), dtype=torch.float64,
                    generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        got = linearized_path(net, src, dst, s)
    m = _identity_activations(eager(arch))
    store = {}
    h1 = m.get_submodule(src).register_forward_hook(lambda mod, a, out: s)
    h2 = m.get_submodule(dst).register_forward_hook(lambda mod, a, out: store.setdefault("dst", out))
    try:
        with torch.no_grad():
            m(torch.zeros(2, 3, size, size, dtype=torch.float64))
    finally:
        h1.remove()
        h2.remove()
    # 1e-6, not float64's 1e-15: the traced network holds batch norm folded into float32 weights
    assert got.dtype == torch.float64 and rel_err(got, store["dst"]) < 1e-6


def test_expanded_weights_through_an_input_the_source_does_not_feed():
    """From inside a residual block (layer1.1.bn1) the add's skip input does not depend on
    the source: the walk hands it to the steps as None (no kernel; zeros for autograd).
    Composition, autograd and the eager Jacobian (ReLUs made identities) agree; the
    linearized forward refuses, naming the skip, because the source does not determine
    the destination."""
    net = traced("resnet18")
    g = net.graph
    src, dst = "layer1.1.bn1", "layer2.0.bn1"
    srcs, dsts = [f"{src}:{c}" for c in (0, 3)], [f"{dst}:{c}" for c in (2, 5)]
    conn = connection(srcs, dsts, net)
    w_compose = weights_between(net, srcs, dsts, dtype=torch.float64)
    w_autograd = weights_between(net, srcs, dsts, method="autograd", dtype=torch.float64)
    jac = _eager_jacobian(eager("resnet18"), g, src, dst, [2, 5], conn.kernel_size // 2)[:, [0, 3]]
    assert w_compose.abs().max() > 0
    assert rel_err(w_autograd, w_compose) < 1e-9
    assert rel_err(w_compose, jac) < 1e-5
    with pytest.raises(ValueError, match="layer1.0"):
        path_nodes(src, dst, g)


# --- the op methods, against the ops' own computation ---------------------------------


def _node(op: str) -> tuple[Node, list[torch.Tensor], object]:
    """A node of kind `op` with 4 channels, example inputs and its parameters (random)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 5, 5, generator=gen)
    two = ("a", "b")
    spec = {
        "input": dict(inputs=()),
        "conv": dict(kernel=(3, 3), param="p"), "conv2d": dict(kernel=(3, 3), pad=(1, 1), groups=2, param="p"),
        "maxpool": dict(kernel=(3, 3)), "avgpool": dict(kernel=(3, 3)),
        "max_pool2d": dict(kernel=(3, 3), pad=(1, 1)), "avg_pool2d": dict(kernel=(3, 3), pad=(1, 1)),
        "adaptive_avg_pool2d": dict(out_hw=(1, 1)), "affine": dict(param="p"), "linear": dict(param="p"),
        "concat": dict(inputs=two, channels=8), "add": dict(inputs=two), "mul": dict(inputs=two),
        "flatten": dict(channels=100), "opaque": dict(source="torch.nn.Softsign", param="p"),
    }.get(op, {})
    spec.setdefault("inputs", ("a",))
    spec.setdefault("channels", 4)
    node = Node("n", op, **spec)
    xs = [x] * max(len(node.inputs), 1)  # the input op passes its value on
    if op == "linear":
        xs = [x[..., :1, :1]]
    if op == "mul":
        xs = [x, torch.rand(2, 4, 1, 1, generator=gen)]
    m = None
    if op == "opaque":
        m = nn.Softsign()
    elif node.kind.has_params:
        m = node.kind.make_module(node, 4)
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))
    return node, xs, m


@pytest.mark.parametrize("op", sorted(OPS))
def test_linearizable_and_nonnegative_against_the_linear_stand_in(op):
    """Every op of the table: `linearizable` says whether `linear` runs (else it refuses
    with UnsupportedOpError); where `nonnegative_linearization` is claimed, the linear
    stand-in without bias maps non-negative inputs to non-negative outputs (no negative
    tap), for random parameters."""
    node, xs, m = _node(op)
    try:
        node.kind.linear(node, xs, m, bias=False)
        ran = True
    except UnsupportedOpError:
        ran = False
    assert ran == node.kind.linearizable(node), op
    if node.kind.nonnegative_linearization(node):
        assert ran, op
        y = node.kind.linear(node, [x.abs() for x in xs], m, bias=False)
        assert bool((y >= 0).all()), op


def test_named_cases_of_the_linearization_properties():
    """The cases the editing code relies on, against the formula of each stand-in: an affine
    map with a negative scale is not non-negative (its stand-in turns a positive input
    negative); a gate and a sigmoid have no stand-in; a dilated max-pool has none; ReLU,
    ReLU6 and max-pool are non-negative (identity, identity, average)."""
    node, xs, m = _node("affine")
    with torch.no_grad():
        m.weight.fill_(-2.0)
    assert not node.kind.nonnegative_linearization(node)
    assert bool((node.kind.linear(node, [torch.ones(1, 4, 1, 1)], m, bias=False) < 0).all())
    for op in ("mul", "sigmoid", "tanh", "opaque"):
        assert not _node(op)[0].kind.linearizable(_node(op)[0]), op
    dilated = Node("n", "max_pool2d", ("a",), kernel=(3, 3), dilation=(2, 2), channels=4)
    assert not dilated.kind.linearizable(dilated) and not dilated.kind.nonnegative_linearization(dilated)
    for op in ("relu", "relu6", "maxpool", "max_pool2d", "concat"):
        assert _node(op)[0].kind.nonnegative_linearization(_node(op)[0]), op


INTERVALS = [(-5.0, -1.0), (-1.0, 2.0), (0.0, 2.0), (0.0, 6.0), (1.0, 7.0), (3.0, 5.0), (6.5, 9.0), (2.9, 4.0)]


@pytest.mark.parametrize("op", sorted(OPS))
def test_identity_on_is_sound(op):
    """Every op of the table: where `identity_on(node, lo, hi)` is claimed, its forward equals
    its input on samples of [lo, hi] (the endpoints included), up to float rounding."""
    node, xs, m = _node(op)
    for a, b in INTERVALS:
        lo, hi = torch.full((4,), a), torch.full((4,), b)
        if not node.kind.identity_on(node, lo, hi, m):
            continue
        t = torch.linspace(0, 1, 25)
        x = (a + (b - a) * t).view(1, 1, 5, 5).expand(2, 4, 5, 5).contiguous()
        y = node.kind.forward(node, [x] * max(len(node.inputs), 1), m)
        # equal up to float rounding (hardswish computes x * 6 / 6)
        assert y.shape == x.shape and torch.allclose(y, x, rtol=1e-6, atol=0), (op, a, b)


@pytest.mark.parametrize("op,formula", [
    ("relu", lambda a, b: a >= 0),
    ("relu6", lambda a, b: a >= 0 and b <= 6),   # min(max(x, 0), 6) = x exactly on [0, 6]
    ("hardswish", lambda a, b: a >= 3),          # x relu6(x + 3) / 6 = x exactly for x >= 3
    ("silu", lambda a, b: False), ("gelu", lambda a, b: False), ("sigmoid", lambda a, b: False),
    ("lrn", lambda a, b: False), ("mul", lambda a, b: False), ("identity", lambda a, b: True),
])
def test_identity_on_against_its_formula(op, formula):
    """The identity intervals written out: ReLU on [0, inf), ReLU6 on [0, 6], hardswish on
    [3, inf); never a smooth activation, an LRN or a gate; always the identity op."""
    node, _, m = _node(op)
    for a, b in INTERVALS:
        assert node.kind.identity_on(node, torch.full((4,), a), torch.full((4,), b), m) == formula(a, b), (op, a, b)


def test_always_identity_relus_asks_the_op():
    """A ReLU6 whose input bounds lie in [0, 6] is the identity for every input; one whose
    input can exceed 6 is not (a ReLU-only test would call both identities)."""
    g = traced("mobilenet_v2").graph
    relu6 = next(n for n in g.nodes if n.op == "relu6")
    src = relu6.inputs[0]
    c = g.node(src).channels
    inside = {src: (torch.zeros(c), torch.full((c,), 6.0)), relu6.name: (torch.zeros(c), torch.full((c,), 6.0))}
    above = {src: (torch.zeros(c), torch.full((c,), 7.0)), relu6.name: (torch.zeros(c), torch.full((c,), 6.0))}
    assert always_identity_relus(inside, g) == {relu6.name}
    assert always_identity_relus(above, g) == set()


@pytest.mark.parametrize("op", sorted(OPS))
def test_operating_point_and_joining_flags_against_the_op(op):
    """`takes_operating_point` is set exactly where `linear` depends on ``point=`` (an LRN's
    Jacobian at it); `joins_branches` exactly where the output's channels are its inputs'
    channels side by side (a concatenation)."""
    node, xs, m = _node(op)
    if node.kind.linearizable(node):
        point = torch.rand(xs[0].shape[1], generator=torch.Generator().manual_seed(2)) * 30
        a = node.kind.linear(node, xs, m, bias=False)
        b = node.kind.linear(node, xs, m, bias=False, point=point)
        assert (not torch.equal(a, b)) == node.kind.takes_operating_point, op
    else:
        assert not node.kind.takes_operating_point, op
    y = node.kind.forward(node, xs, m)
    side_by_side = len(xs) > 1 and y.dim() == 4 and y.shape[1] == sum(x.shape[1] for x in xs) \
        and torch.equal(y, torch.cat(xs, 1))
    assert side_by_side == node.kind.joins_branches, op
