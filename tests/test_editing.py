"""Reversible weight edits (circuits.editing.edits) against independent references.

References: the edit ops written out on the saved parameter slice (w * f, max(w, 0),
...); bit-for-bit equality with the unedited weights after undo; the unedited
model's own activations (upstream of an edit nothing may change); and, for expanded
edits, the real network itself: when every bottleneck ReLU is active the 5x5 path is
linear, so zeroing (scaling) the expanded weights from some sources on the linearized
model must equal ablating (scaling) those source channels in the real network, and
equal the exact real-parameter edit (`each_conv`), as seen by the destination units;
the linearized network written out with `linearized_path` and `conv2d_same`; and, for
edits through channel-wise paths, the expanded weights of the edited real network.
"""

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circuits import InceptionV1, graph
from circuits.core import ops
from circuits.editing.edits import (
    EditError,
    Reexpress,
    WeightEdit,
    ablate_connections,
    drop_negative,
    drop_positive,
    each_conv,
    edit_log,
    editing,
    keep_only_inputs,
    scale_weights,
    set_weights,
    undo_all,
    zero_weights,
)
from circuits.editing.paths import aligned_conv, linearized_path
from circuits.analysis.expanded import weights_between
from circuits.families import family
from weights.edited import EditLogMismatch, load_edited, save_edited
from weights.registry import random_state_dict
from circuits.core.graph import INCEPTION_V1 as V1

LAST = "mixed4a"
NAMES = [n.name for n in graph.NODES[1 : graph.index(LAST) + 1] if not n.synthesized]


def fresh_model(bias_shift: dict | None = None) -> InceptionV1:
    """A random model of our own (tests mutate it), with small random biases."""
    sd = random_state_dict(seed=0)
    g = torch.Generator().manual_seed(1)
    for k in sd:
        if k.endswith(".bias"):
            sd[k] = torch.randn(sd[k].shape, generator=g) * 0.1
    for k, v in (bias_shift or {}).items():
        sd[k] = sd[k] + v
    return InceptionV1(sd).eval()


@pytest.fixture()
def model():
    return fresh_model()


@pytest.fixture(scope="module")
def x():
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, 61, 67, generator=g) * 255 - 117


def snapshot(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def bit_equal(a, b):
    return a.shape == b.shape and torch.equal(a.view(torch.int32), b.view(torch.int32))


def assert_params_bit_equal(m, snap):
    now = m.state_dict()
    bad = [k for k in snap if not bit_equal(now[k].detach(), snap[k])]
    assert not bad, f"parameters not restored bit-exactly: {bad[:5]}"


def cache(m, x):
    with torch.no_grad():
        return m.run_with_cache(x, NAMES)


# --- direct edits ------------------------------------------------------------

SRC, DST = ["conv2d1:0", "conv2d1:7", "conv2d1:3"], ["conv2d2:5", "conv2d2:1"]
OP_FORMULAS = {
    "scale": (dict(factor=-0.5), lambda w: w * -0.5),
    "zero": ({}, lambda w: torch.zeros_like(w)),
    "drop_negative": ({}, lambda w: torch.maximum(w, torch.zeros_like(w))),
    "drop_positive": ({}, lambda w: torch.minimum(w, torch.zeros_like(w))),
    "set": (dict(values=torch.arange(54.0).view(2, 3, 3, 3)), lambda w: torch.arange(54.0).view(2, 3, 3, 3)),
}


@pytest.mark.parametrize("op", sorted(OP_FORMULAS))
def test_direct_edit_changes_exactly_the_parameter_slice(model, op):
    kwargs, formula = OP_FORMULAS[op]
    snap = snapshot(model)
    w0 = snap["conv2d2_pre_relu_conv.weight"]
    rows, cols = torch.tensor([5, 1])[:, None], torch.tensor([0, 7, 3])[None, :]
    edit = WeightEdit(SRC, DST, op, **kwargs, network=V1)
    assert [p.kind for p in edit.parts] == ["direct"]
    model.apply_edit(edit)
    w = model.conv2d2_pre_relu_conv.weight.detach()
    expected = w0.clone()
    expected[rows, cols] = formula(w0[rows, cols])
    assert torch.equal(w, expected)
    others = [k for k in snap if k != "conv2d2_pre_relu_conv.weight"]
    assert all(torch.equal(model.state_dict()[k], snap[k]) for k in others)
    assert model.is_edited and len(model.edits) == 1 and "direct" in model.edits[0]
    assert "edited: 1 weight edits" in repr(model)
    edit.undo(model)
    assert_params_bit_equal(model, snap)
    assert not model.is_edited and model.edits == [] and "edited" not in repr(model).split("\n")[0]


def test_branch_named_sources_and_bottleneck_destinations_are_direct(model):
    # mixed3a_3x3:17 is mixed3a channel 64 + 17 = 81, read by mixed3b's bottleneck directly.
    e = zero_weights("mixed3a_3x3:17", "mixed3b_5x5_bottleneck:4", network=V1)
    (p,) = e.parts
    assert p.kind == "direct" and p.src_idx == [81] and p.conv == "mixed3b_5x5_bottleneck_pre_relu"
    with e.applied(model):
        assert float(model.mixed3b_5x5_bottleneck_pre_relu_conv.weight[4, 81].detach().abs().sum()) == 0.0


def test_keep_only_inputs_zeroes_every_other_source():
    m = fresh_model()
    e = keep_only_inputs("mixed3a:early_curves", "mixed3b:1", network=V1)  # 1x1 branch: direct
    kept = family("mixed3a:early_curves", V1).channels
    w0 = m.mixed3b_1x1_pre_relu_conv.weight[1].detach().clone()
    with e.applied(m):
        w = m.mixed3b_1x1_pre_relu_conv.weight[1].detach()
        others = [c for c in range(256) if c not in kept]
        assert float(w[others].abs().sum()) == 0.0
        assert torch.equal(w[kept], w0[kept])
    assert e.summary() == "keep_only mixed3a:early_curves -> mixed3b:1"


# --- bad input ---------------------------------------------------------------


def test_bad_edits_raise_clear_errors_and_change_nothing(model):
    snap = snapshot(model)
    with pytest.raises(EditError, match="expected \\[2, 3, 3, 3\\]"):
        model.apply_edit(set_weights(SRC, DST, torch.ones(3, 2, 3, 3), network=V1))
    with pytest.raises(EditError, match="did you mean scale"):
        WeightEdit(SRC, DST, "scael", factor=2, network=V1)
    with pytest.raises(EditError, match="needs factor"):
        WeightEdit(SRC, DST, "scale", network=V1)
    with pytest.raises(EditError, match="not upstream"):
        zero_weights("mixed3b:379", "mixed3a:81", network=V1)
    with pytest.raises(EditError, match="no weights to edit"):
        zero_weights("conv2d2:1", "maxpool1:3", network=V1)
    with pytest.raises(EditError, match="more than once"):
        zero_weights(["conv2d1:0", "conv2d1:0"], "conv2d2:1", network=V1)
    with pytest.raises(EditError, match="unknown family"):
        zero_weights("mixed3a:curvs", "mixed3b:curves", network=V1)
    # A two-part edit whose second part cannot be computed leaves the first unapplied.
    two_parts = zero_weights("mixed4a:3", ["mixed4b:0", "mixed4b:200"], route="linearized", network=V1)  # 1x1 direct, 3x3 expanded
    assert [p.kind for p in two_parts.parts] == ["direct", "expanded"]
    with pytest.raises(EditError, match="outside conv2d0"):
        model.apply_edit(two_parts)
    assert_params_bit_equal(model, snap)
    assert not model.is_edited and not model.active_hooks


def test_undo_twice_out_of_order_and_after_outside_changes_raise(model):
    snap = snapshot(model)
    a = zero_weights("conv2d1:0", "conv2d2:5", network=V1)
    b = scale_weights("conv2d1:3", "conv2d2:5", 2.0, network=V1)  # same tensor
    c = drop_negative("conv2d0:1", "conv2d1:2", route="linearized", network=V1)  # another tensor (expanded: maxpool, LRN)
    for e in (a, b, c):
        model.apply_edit(e)
    with pytest.raises(EditError, match="undo that edit first"):
        a.undo(model)
    c.undo(model)  # independent tensors can be undone in any order
    b.undo(model)
    a.undo(model)
    with pytest.raises(EditError, match="not applied to this model"):
        a.undo(model)
    assert_params_bit_equal(model, snap)
    model.apply_edit(a)
    with torch.no_grad():
        model.conv2d2_pre_relu_conv.weight[5, 0, 1, 1] += 1.0
    with pytest.raises(EditError, match="changed since"):
        a.undo(model)
    with pytest.raises(ValueError, match="undo them first"):
        model.load_weights(snap)


def test_context_manager_undoes_on_exception(model):
    snap = snapshot(model)
    with pytest.raises(RuntimeError, match="boom"):
        with editing(
            model,
            zero_weights("conv2d1:0", "conv2d2:5", network=V1),
            drop_negative("mixed3a:early_curves", "mixed3b:curves", route="linearized", network=V1),
        ):
            assert len(model.edits) == 2 and model.active_hooks
            raise RuntimeError("boom")
    assert_params_bit_equal(model, snap)
    assert model.edits == [] and model.active_hooks == []


# --- property test: random edit sequences undo bit-exactly ---------------------

PAIRS = [
    ("conv2d1", "conv2d2"),  # direct
    ("maxpool1", "mixed3a"),  # direct, several branches
    ("mixed3a", "mixed3b"),  # direct (1x1, bottlenecks) and expanded (3x3, 5x5 branches)
    ("conv2d2", "mixed3a"),  # expanded through LRN and a stride-2 max-pool
]
PROP_MODEL = fresh_model()


@st.composite
def random_edit(draw):
    src_layer, dst_layer = draw(st.sampled_from(PAIRS))
    ns, nd = graph.node(src_layer).channels, graph.node(dst_layer).channels
    src = draw(st.lists(st.integers(0, ns - 1), min_size=1, max_size=4, unique=True))
    dst = draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=3, unique=True))
    op = draw(st.sampled_from(["scale", "zero", "drop_negative", "drop_positive", "set"]))
    kw = {}
    if op == "scale":
        kw["factor"] = draw(st.floats(-3, 3, allow_nan=False, width=32))
    if op == "set":
        kw["values"] = draw(st.floats(-1, 1, allow_nan=False, width=32))
    src, dst = [f"{src_layer}:{c}" for c in src], [f"{dst_layer}:{c}" for c in dst]
    return WeightEdit(src, dst, op, route="linearized", **kw, network=V1)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(random_edit(), min_size=1, max_size=5))
def test_random_edit_sequences_undo_bit_exactly(edits):
    m = PROP_MODEL
    snap = snapshot(m)
    for e in edits:
        m.apply_edit(e)
    assert len(m.edits) == len(edits)
    for e in reversed(edits):
        e.undo(m)
    assert_params_bit_equal(m, snap)
    assert m.edits == [] and m.active_hooks == []


# --- only downstream of an edit changes ------------------------------------


@pytest.mark.parametrize(
    "edit_fn,dst_tensor",
    [
        (lambda: scale_weights(["conv2d1:0", "conv2d1:9"], ["conv2d2:5", "conv2d2:77"], 3.0, network=V1), "conv2d2_pre_relu"),
        (lambda: drop_positive("mixed3a:early_curves", "mixed3b:curves", route="linearized", network=V1), "mixed3b_5x5_pre_relu"),
        (lambda: zero_weights("maxpool1:3", "mixed3a_3x3_bottleneck:4", network=V1), "mixed3a_3x3_bottleneck_pre_relu"),
    ],
)
def test_edited_output_differs_only_downstream(model, x, edit_fn, dst_tensor):
    before = cache(model, x)
    with edit_fn().applied(model):
        after = cache(model, x)
    downstream = {n for n in NAMES if dst_tensor in graph.ancestors(n)}
    assert dst_tensor in downstream
    for n in NAMES:
        if n in downstream:
            assert not torch.equal(before[n], after[n]), f"{n} is downstream of the edit but did not change"
        else:
            assert bit_equal(before[n], after[n]), f"{n} is upstream of the edit but changed"
    assert all(bit_equal(before[n], v) for n, v in cache(model, x).items())


# --- expanded edits: what is exact ------------------------------------------


def test_expanded_edit_with_no_change_is_the_reexpression(model, x):
    """Reference: the re-expression alone (no edit of its expanded weights)."""
    pairs = [("mixed3a", "mixed3b:curves"), ("conv2d2", "mixed3a:early_curves")]  # 2nd: LRN, max-pool
    with editing(model, *[Reexpress(layer, dst, network=V1) for layer, dst in pairs]):
        before = cache(model, x)
    no_change = [
        scale_weights("mixed3a:early_curves", "mixed3b:curves", 1.0, route="linearized", network=V1),
        scale_weights("conv2d2:lines", "mixed3a:early_curves", 1.0, route="linearized", network=V1),
    ]
    with editing(model, *no_change):
        assert all(p.kind == "expanded" for r in model.applied_edits for p in r.edit.parts)
        assert all("(linearized model: expanded " in e for e in model.edits)
        after = cache(model, x)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-4)


ALL_ACTIVE = {"mixed3b_5x5_bottleneck_pre_relu_conv.bias": 1000.0}


def curves_pre_relu(m, x, hooks=()):
    idx = [u.branch_channel for u in family("mixed3b:curves", V1).units]
    with torch.no_grad(), m.hooks(hooks):
        return m.run(x, until="mixed3b_5x5_pre_relu")[:, idx]


def test_reexpression_reproduces_units_where_bottleneck_relus_are_active(x):
    # Positive bottleneck biases make every bottleneck ReLU active: the path is linear.
    m = fresh_model(ALL_ACTIVE)
    with torch.no_grad():
        assert bool((m.run(x, until="mixed3b_5x5_bottleneck_pre_relu") > 0).all())
    ref = curves_pre_relu(m, x)
    with Reexpress("mixed3a", "mixed3b:curves", network=V1).applied(m):
        got = curves_pre_relu(m, x)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))
    # With inactive ReLUs (the ordinary random model) the re-expression is only an approximation.
    m2 = fresh_model()
    ref2 = curves_pre_relu(m2, x)
    with Reexpress("mixed3a", "mixed3b:curves", network=V1).applied(m2):
        assert (curves_pre_relu(m2, x) - ref2).abs().max() > 1e-2 * ref2.abs().max()


def scale_channels(layer_channels, factor):
    def fn(a, hook):
        a = a.clone()
        a[:, layer_channels] *= factor
        return a

    return fn


@pytest.mark.parametrize("op,factor", [("zero", 0.0), ("scale", 0.5), ("scale", -2.0)])
def test_expanded_edit_equals_source_change_when_path_is_linear(x, op, factor):
    """Reference: the real network with the source channels scaled, read at the curves.

    The curves' pre-ReLU depends on mixed3a only through the 5x5 bottleneck; with its
    ReLUs all active that path is linear, so scaling the expanded weights from some
    sources by f is the same as scaling those source channels by f.
    """
    m = fresh_model(ALL_ACTIVE)
    src = family("mixed3a:early_curves", V1).channels
    ref = curves_pre_relu(m, x, [("mixed3a", scale_channels(src, factor))])
    kw = {"factor": factor} if op == "scale" else {}
    with WeightEdit("mixed3a:early_curves", "mixed3b:curves", op, route="linearized", **kw, network=V1).applied(m):
        got = curves_pre_relu(m, x)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))


def test_expanded_edits_compose_like_weights(model, x):
    lin = {"route": "linearized"}
    once = scale_weights("mixed3a:early_curves", "mixed3b:curves", 0.25, **lin, network=V1)
    with once.applied(model):
        ref = curves_pre_relu(model, x)
    half = scale_weights("mixed3a:early_curves", "mixed3b:curves", 0.5, **lin, network=V1)
    half2 = scale_weights("mixed3a:early_curves", ["mixed3b:379", "mixed3b:385"], 0.5, network=V1)  # re-expressed by `half`
    rest = [u.id for u in family("mixed3b:curves", V1).units if u.id not in ("mixed3b:379", "mixed3b:385")]
    with editing(model, half, half2, scale_weights("mixed3a:early_curves", rest, 0.5, network=V1)):
        got = curves_pre_relu(model, x)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-4)


# --- expanded edits: exact, on the linearized model, or refused -----------------


def test_expanded_edit_through_nonlinearities_is_refused_naming_them(model):
    snap = snapshot(model)
    with pytest.raises(EditError) as err:
        model.apply_edit(drop_negative("mixed3a:early_curves", "mixed3b:curves", network=V1))
    msg = str(err.value)
    assert "mixed3b_5x5_bottleneck (relu) is on the path and active" in msg
    assert "Reexpress('mixed3a', 'mixed3b:curves', network=model) first, or pass route='linearized'" in msg
    assert "each_conv('drop_negative', 'mixed3a:early_curves', 'mixed3b:curves', network=model))" in msg
    lrn = r"localresponsenorm1 \(lrn\), maxpool1 \(maxpool\), mixed3a_3x3_bottleneck \(relu\) are on the path"
    with pytest.raises(EditError, match=lrn):
        model.apply_edit(scale_weights("conv2d2:lines", "mixed3a:early_curves", 0.5, network=V1))
    with pytest.raises(EditError, match=r"mixed3b_pool \(maxpool\) is on the path.*op 'scale' or 'zero'"):
        model.apply_edit(set_weights("mixed3a:81", "mixed3b:420", 0.0, network=V1))  # "set" is no edit of the conv
    with pytest.raises(EditError, match="unknown route 'exact'; use one of auto, linearized"):
        drop_negative("mixed3a:81", "mixed3b:379", route="exact", network=V1)
    with pytest.raises(EditError, match=r"each_conv\('keep_only', 'mixed3a:early_curves', 'mixed3b:curves', network=model\)"):
        model.apply_edit(keep_only_inputs("mixed3a:early_curves", "mixed3b:curves", network=V1))  # the kept units, not the zeroed
    with pytest.raises(EditError, match="each_conv does op 'scale' on no convolution; use one of drop_negative, zero, keep_only"):
        each_conv("scale", "mixed3a:81", "mixed3b:379", network=V1)
    with pytest.raises(EditError, match="source -> conv -> ReLU -> mixed3a_3x3_pre_relu"):
        each_conv("zero", "conv2d2:lines", "mixed3a:early_curves", network=V1)  # LRN and max-pool on the way
    assert_params_bit_equal(model, snap)
    assert not model.is_edited and model.active_hooks == []


def test_edit_of_reexpressed_units_is_exact_on_the_linearized_model(model, x):
    """Reference: the linearized network written out -- its forward pass (`linearized_path`)
    plus ``conv2d_same(src, W_edited - W)`` on the edited sources, W from `weights_between`."""
    early = family("mixed3a:early_curves", V1).channels
    with torch.no_grad():
        src = model.run(x, until="mixed3a")
        w = weights_between(model, "mixed3a:early_curves", "mixed3b:curves")
        idx = [u.branch_channel for u in family("mixed3b:curves", V1).units]
        lin = linearized_path(model, "mixed3a", "mixed3b_5x5_pre_relu", src)[:, idx]
        want = lin + ops.conv2d_same(src[:, early], w.clamp(min=0) - w, None)
    real = curves_pre_relu(model, x)
    assert (want - real).abs().max() > 1e-2 * real.abs().max()  # the linearized model is another model
    edit = drop_negative("mixed3a:early_curves", "mixed3b:curves", network=V1)
    with editing(model, Reexpress("mixed3a", "mixed3b:curves", network=V1), edit):
        assert model.edits[1].endswith("(linearized model: expanded mixed3a->mixed3b_5x5_pre_relu)")
        assert edit_log(model)[1]["realised"] == ["linearized model"]
        got = curves_pre_relu(model, x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    # route="linearized" re-expresses the units itself, and undoes that with itself.
    with drop_negative("mixed3a:early_curves", "mixed3b:curves", route="linearized", network=V1).applied(model):
        assert edit_log(model)[0]["reexpressed"] == [0] and len(model.edits) == 1
        torch.testing.assert_close(curves_pre_relu(model, x), want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    assert model.active_hooks == [] and torch.equal(curves_pre_relu(model, x), real)


def test_channelwise_path_edits_are_exact_real_parameter_edits(model):
    """Reference: the expanded weights of the edited real network, and the conv slice by formula."""
    src, dst = ["mixed3a:81", "mixed3a:5"], ["mixed3b:420", "mixed3b:470"]  # via max-pool mixed3b_pool
    rows, cols = torch.tensor([420 - 416, 470 - 416])[:, None], torch.tensor([81, 5])[None, :]
    w0 = weights_between(model, src, dst)
    k0 = model.mixed3b_pool_reduce_pre_relu_conv.weight.detach().clone()
    snap = snapshot(model)
    cases = [(scale_weights(src, dst, -0.5, network=V1), lambda w: -0.5 * w), (drop_negative(src, dst, network=V1), lambda w: w.clamp(min=0))]
    for edit, formula in cases:
        assert [p.kind for p in edit.parts] == ["direct"]
        with edit.applied(model):
            assert model.edits[0].endswith("(exact: direct mixed3b_pool->mixed3b_pool_reduce_pre_relu)")
            torch.testing.assert_close(weights_between(model, src, dst), formula(w0))
            k = model.mixed3b_pool_reduce_pre_relu_conv.weight.detach()
            assert torch.equal(k[rows, cols], formula(k0[rows, cols]))
    assert_params_bit_equal(model, snap)


def test_linearized_route_equals_the_exact_route_where_the_path_is_linear(x):
    """Where both apply they agree: with every bottleneck ReLU active (the identity for this
    input), zeroing the expanded weights on the linearized model == zeroing the sources'
    bottleneck weights in the real network (`each_conv`). Where the ReLUs are not all
    active they differ -- which is why the edit alone is refused."""
    for shift, agree in ((ALL_ACTIVE, True), (None, False)):
        m = fresh_model(shift)
        before = curves_pre_relu(m, x)
        with editing(m, *each_conv("zero", "mixed3a:early_curves", "mixed3b:curves", network=V1)):
            assert m.edits[0].endswith("(exact: direct mixed3a->mixed3b_5x5_bottleneck_pre_relu)")
            exact = curves_pre_relu(m, x)
        with zero_weights("mixed3a:early_curves", "mixed3b:curves", route="linearized", network=V1).applied(m):
            linearized = curves_pre_relu(m, x)
        scale = float(exact.abs().max())
        assert (exact - before).abs().max() > 1e-3 * scale  # the edit does something
        if agree:
            torch.testing.assert_close(linearized, exact, rtol=1e-5, atol=1e-5 * scale)
        else:
            assert (linearized - exact).abs().max() > 1e-2 * scale


def test_each_conv_drop_negative_edits_both_convolutions(model):
    """Reference: the two real slices by formula (negative part removed)."""
    a0 = model.mixed3b_5x5_bottleneck_pre_relu_conv.weight.detach().clone()
    d0 = model.mixed3b_5x5_pre_relu_conv.weight.detach().clone()
    src = family("mixed3a:early_curves", V1).channels
    dst = [u.branch_channel for u in family("mixed3b:curves", V1).units]
    snap = snapshot(model)
    with editing(model, *each_conv("drop_negative", "mixed3a:early_curves", "mixed3b:curves", network=V1)):
        a = model.mixed3b_5x5_bottleneck_pre_relu_conv.weight.detach()
        d = model.mixed3b_5x5_pre_relu_conv.weight.detach()
        assert torch.equal(a[:, src], a0[:, src].clamp(min=0)) and torch.equal(d[dst], d0[dst].clamp(min=0))
        others = [c for c in range(a.shape[1]) if c not in src]
        assert torch.equal(a[:, others], a0[:, others])
        assert all("(exact: direct " in e for e in model.edits)
    assert_params_bit_equal(model, snap)
    (keep,) = each_conv("keep_only", "mixed3a:early_curves", "mixed3b:curves", network=V1)
    assert keep.summary() == "keep_only mixed3a:early_curves -> mixed3b_5x5_bottleneck"
    with keep.applied(model):
        a = model.mixed3b_5x5_bottleneck_pre_relu_conv.weight.detach()
        others = [c for c in range(a.shape[1]) if c not in src]
        assert float(a[:, others].abs().sum()) == 0.0 and torch.equal(a[:, src], a0[:, src])


@pytest.mark.parametrize("size", [(64, 64), (61, 67)])
def test_aligned_conv_matches_the_linearized_network_on_a_strided_path(size):
    """Expanded kernels (composed) laid out by aligned_conv == the linearized forward pass.

    conv2d2 -> mixed3a_5x5_pre_relu crosses an LRN and a stride-2 max-pool; with
    biases zero the linearized path is linear, and at interior positions (every
    window inside the map) the two must agree, for even and odd map sizes.
    """
    sd = random_state_dict(seed=3)
    m = InceptionV1(sd).eval()
    g = torch.Generator().manual_seed(5)
    src = torch.randn(2, 192, *graph.output_hw("conv2d2", size), generator=g)
    dst_units = ["mixed3a:200", "mixed3a:220"]  # 5x5 branch: channels 8 and 28
    w = weights_between(m, [f"conv2d2:{c}" for c in range(192)], dst_units)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.Conv2d):
                mod.bias.zero_()
        lin = linearized_path(m, "conv2d2", "mixed3a_5x5_pre_relu", src)[:, [8, 28]]
    got = aligned_conv(src, w, "conv2d2", "mixed3a_5x5_pre_relu", size)
    r = w.shape[-1] // 2 // 2 + 1  # kernel radius in mixed3a positions (stride 2), rounded up
    inner = (slice(None), slice(None), slice(r, -r), slice(r, -r))
    torch.testing.assert_close(got[inner], lin[inner], rtol=1e-4, atol=1e-4)


def test_aligned_conv_is_conv_same_for_stride_one():
    g = torch.Generator().manual_seed(0)
    src, k = torch.randn(1, 4, 9, 10, generator=g), torch.randn(3, 4, 5, 5, generator=g)
    got = aligned_conv(src, k, "mixed3a", "mixed3b_5x5_pre_relu", (72, 80))
    torch.testing.assert_close(got, ops.conv2d_same(src, k, None))


def test_reexpress_refuses_direct_and_partial_sources():
    with pytest.raises(EditError, match="directly"):
        Reexpress("mixed3a", "mixed3b:1", network=V1)
    with pytest.raises(EditError, match="goes through"):
        Reexpress("mixed3a_3x3", "mixed3b:curves", network=V1)._prepare(fresh_model())


# --- save and load ----------------------------------------------------------


def test_save_load_round_trip_reapplies_and_undoes(tmp_path, x):
    m = fresh_model()
    snap = snapshot(m)
    edits = [
        drop_negative("mixed3a:early_curves", "mixed3b:curves", route="linearized", network=V1),
        scale_weights("conv2d1:0", ["conv2d2:3", "conv2d2:4"], 0.3, network=V1),
        set_weights(["conv2d1:0", "conv2d1:1"], "conv2d2:3", torch.arange(18.0).view(1, 2, 3, 3), network=V1),
        ablate_connections("mixed3a:81", "mixed3b:1", network=V1),
        Reexpress("mixed3a", "mixed3b:curves", network=V1),
    ]
    for e in edits:
        m.apply_edit(e)
    want = cache(m, x)
    path = tmp_path / "edited.safetensors"
    save_edited(m, path, {"note": "test"})
    back = load_edited(path)
    assert back.edits == m.edits and edit_log(back) == edit_log(m)
    got = cache(back, x)
    assert all(bit_equal(want[n], got[n]) for n in NAMES)
    undo_all(back)
    assert_params_bit_equal(back, snap)
    assert back.active_hooks == []


def test_loading_a_log_that_does_not_match_raises(tmp_path):
    from safetensors.torch import load_file, save_file

    from weights.checkpoint import read_metadata

    m = fresh_model()
    m.apply_edit(scale_weights("conv2d1:0", "conv2d2:3", 0.3, network=V1))
    m.apply_edit(drop_negative("mixed3a:early_curves", "mixed3b:curves", route="linearized", network=V1))
    path = tmp_path / "e.safetensors"
    save_edited(m, path)
    tensors, meta = load_file(path), read_metadata(path)

    def write(name, t, md):
        p = tmp_path / name
        save_file(t, p, metadata=md)
        return p

    bad = dict(tensors)
    bad["conv2d2_pre_relu_conv.weight"] = bad["conv2d2_pre_relu_conv.weight"].clone()
    bad["conv2d2_pre_relu_conv.weight"][3, 0, 0, 0] += 1
    with pytest.raises(EditLogMismatch, match="edit #0 .* does not match the weights"):
        load_edited(write("w.safetensors", bad, meta))
    log = json.loads(meta["circuits.edits"])
    log["edits"][1]["dst"] = ["mixed3b:9999"]
    with pytest.raises(EditLogMismatch, match="edit #1 .*out of range"):
        load_edited(write("u.safetensors", tensors, {"circuits.edits": json.dumps(log)}))
    missing = {k: v for k, v in tensors.items() if not k.endswith(".delta")}
    with pytest.raises(EditLogMismatch, match="delta is missing"):
        load_edited(write("d.safetensors", missing, meta))
    with pytest.raises(EditLogMismatch, match="not valid"):
        load_edited(write("j.safetensors", tensors, {"circuits.edits": "{not json"}))
    plain = {k: v for k, v in tensors.items() if not k.startswith("circuits_edits.")}
    assert not load_edited(write("p.safetensors", plain, {})).is_edited


def test_logs_saved_before_edits_said_what_they_are_load_as_linear_corrections(tmp_path, x):
    """A log entry without "route" (as every file written before had) loads, described as
    what it computed: the real path plus ``conv(src, delta)`` (reference: written out)."""
    from safetensors.torch import load_file, save_file

    from weights.checkpoint import read_metadata

    m = fresh_model()
    m.apply_edit(drop_negative("mixed3a:early_curves", "mixed3b:curves", route="linearized", network=V1))
    path = tmp_path / "e.safetensors"
    save_edited(m, path)
    tensors, meta = load_file(path), read_metadata(path)
    log = json.loads(meta["circuits.edits"])
    (entry,) = log["edits"]
    for k in ("route", "realised", "reexpressed"):
        del entry[k]
    old = tmp_path / "old.safetensors"
    save_file(tensors, old, metadata={"circuits.edits": json.dumps(log)})
    back = load_edited(old)
    assert back.edits == [
        "drop_negative mixed3a:early_curves -> mixed3b:curves "
        "(linear correction (not exact): expanded mixed3a->mixed3b_5x5_pre_relu)"
    ]
    delta = tensors["circuits_edits.0.0.delta"]
    early = family("mixed3a:early_curves", V1).channels
    plain = fresh_model()
    with torch.no_grad():
        src = plain.run(x, until="mixed3a")
        want = curves_pre_relu(plain, x) + ops.conv2d_same(src[:, early], delta, None)
    torch.testing.assert_close(curves_pre_relu(back, x), want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    undo_all(back)
    with pytest.raises(EditError, match="is on the path and active"):  # re-applying it is refused
        back.apply_edit(WeightEdit("mixed3a:early_curves", "mixed3b:curves", "drop_negative", route="legacy", network=V1))


# --- edits own their hooks: the user's hook calls never remove them -------------


CURVES = [u.branch_channel for u in family("mixed3b:curves", V1).units]


def _direct_reference(m, x):
    """The same edit applied to a copy of the state dict, in a second model."""
    sd = {k: v.detach().clone() for k, v in m.state_dict().items()}
    sd["mixed3b_5x5_pre_relu_conv.weight"][CURVES, :8] = 0
    with torch.no_grad():
        return InceptionV1(sd).eval().run(x, until="mixed3b_5x5_pre_relu")[:, CURVES]


def _linearized_reference(m, x):
    """The linearized model written out: `linearized_path` plus conv(src, W+ - W) on the early curves."""
    early = family("mixed3a:early_curves", V1).channels
    with torch.no_grad():
        src = m.run(x, until="mixed3a")
        w = weights_between(m, "mixed3a:early_curves", "mixed3b:curves")
        lin = linearized_path(m, "mixed3a", "mixed3b_5x5_pre_relu", src)[:, CURVES]
        return lin + ops.conv2d_same(src[:, early], w.clamp(min=0) - w, None)


def _reexpress_reference(m, x):
    """The linearized network's forward pass from the real mixed3a (`linearized_path`)."""
    with torch.no_grad():
        src = m.run(x, until="mixed3a")
        return linearized_path(m, "mixed3a", "mixed3b_5x5_pre_relu", src)[:, CURVES]


_DONOR = {}


def _donor():
    if "m" not in _DONOR:
        _DONOR["m"] = InceptionV1(random_state_dict(seed=7)).eval()
    return _DONOR["m"]


def _implant_reference(m, x):
    """The donor's own run, without hooks."""
    with torch.no_grad():
        return _donor().run(x, until="mixed3b_5x5_pre_relu")[:, CURVES]


EDIT_KINDS = {
    "direct": (lambda: zero_weights([f"mixed3b_5x5_bottleneck:{i}" for i in range(8)], "mixed3b:curves", network=V1), _direct_reference),
    "linearized": (lambda: drop_negative("mixed3a:early_curves", "mixed3b:curves", route="linearized", network=V1), _linearized_reference),
    "reexpress": (lambda: Reexpress("mixed3a", "mixed3b:curves", network=V1), _reexpress_reference),
    "implant": (lambda: __import__("circuits.editing", fromlist=["Implant"]).Implant("mixed3b:curves", donor=_donor()), _implant_reference),
}


def _clear_hooks(m):
    m.add_hook("mixed3a", lambda a, h: None)
    m.add_hook("mixed3b_5x5_pre_relu", lambda a, h: None)
    m.clear_hooks()
    assert m.permanent_hooks == []


def _hooks_block(m):
    with m.hooks([("mixed3a", lambda a, h: None), ("mixed3b_5x5_pre_relu", lambda a, h: None)]):
        pass


def _hooks_block_raising(m):
    with pytest.raises(RuntimeError, match="inside the block"):
        with m.hooks([("mixed3a", lambda a, h: None)]):
            raise RuntimeError("inside the block")


@pytest.mark.parametrize("path", [_clear_hooks, _hooks_block, _hooks_block_raising], ids=["clear_hooks", "hooks", "raise"])
@pytest.mark.parametrize("kind", list(EDIT_KINDS))
def test_user_hook_calls_never_remove_an_edits_hooks(kind, path, x):
    """Reference: the same edit computed independently (see each `_*_reference`): after
    `clear_hooks()`, a hook block, or an exception inside one, the model still computes
    the edited network, says it is edited, and undoing the edit restores the real one."""
    make, reference = EDIT_KINDS[kind]
    m = fresh_model()
    real = curves_pre_relu(m, x)
    want = reference(m, x)
    assert (want - real).abs().max() > 1e-3 * real.abs().max()  # the edit changes what is compared
    edit = make()
    m.apply_edit(edit)
    owned = m.edit_hooks
    assert (len(owned) == 0) == (kind == "direct") and all(h.owner is edit for h in owned)
    path(m)
    assert m.is_edited and len(m.edits) == 1 and m.edit_hooks == owned
    torch.testing.assert_close(curves_pre_relu(m, x), want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    m.undo_edit(edit)
    assert not m.is_edited and m.active_hooks == []
    assert torch.equal(curves_pre_relu(m, x), real)


def test_an_edits_hooks_cannot_be_removed_as_the_users(model):
    edit = Reexpress("mixed3a", "mixed3b:curves", network=V1)
    with edit.applied(model):
        h = model.edit_hooks[0]
        assert "owned by reexpress mixed3b:curves from mixed3a" in repr(h)
        with pytest.raises(ValueError, match="belongs to an applied edit; undo the edit"):
            model.remove_hook(h)
        assert model.edit_hooks[0] is h and model.permanent_hooks == []
    assert model.edit_hooks == []


def test_user_hooks_see_the_edited_network(model, x):
    """Reference: the linearized network written out (`linearized_path`) on the source as the
    user's hook changed it; a user hook on the destination sees the edited value."""
    early = family("mixed3a:early_curves", V1).channels

    def ablate_early(a, hook):
        a = a.clone()
        a[:, early] = 0
        return a

    with torch.no_grad():
        src = model.run_with_hooks(x, [("mixed3a", ablate_early)], until="mixed3a")
        want = linearized_path(model, "mixed3a", "mixed3b_5x5_pre_relu", src)[:, CURVES]
    seen = []
    with Reexpress("mixed3a", "mixed3b:curves", network=V1).applied(model):
        # The user's hook on the source is added after the edit, and its change still reaches the edited path.
        got = curves_pre_relu(model, x, [("mixed3a", ablate_early), ("mixed3b_5x5_pre_relu", lambda a, h: seen.append(a[:, CURVES]))])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    torch.testing.assert_close(seen[0], want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
