"""The op table's PyTorch ops (circuits.core.ops), each against torch itself: output sizes
against torch's functional calls (ceil_mode, dilation, padding), the window forward on a
crop against the padded forward, composed kernels against autograd, bounds against
sampled values."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from circuits.core.graph import Node
from circuits.core.ops import OPS, UnsupportedOpError, _dense_weight


def _node(op, **kw):
    return Node("t", op, ("input",), channels=kw.pop("channels", 4), **kw)


@pytest.mark.parametrize("k,s,p,d,ceil", [c for c in itertools.product((1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2), (False, True))
                                          if c[2] <= c[0] // 2])
def test_window_out_sizes_equal_torchs(k, s, p, d, ceil):
    """out_size against the shapes torch's max_pool2d / avg_pool2d / conv2d give, sizes 7..40."""
    mp = _node("max_pool2d", kernel=(k, k), stride=s, pad=(p, p), dilation=(d, d), ceil_mode=ceil)
    ap = _node("avg_pool2d", kernel=(k, k), stride=s, pad=(p, p), ceil_mode=ceil)
    cv = _node("conv2d", kernel=(k, k), stride=s, pad=(p, p), dilation=(d, d))
    for size in range(7, 41, 3):
        x = torch.zeros(1, 1, size, size)
        if (k - 1) * d + 1 <= size + 2 * p:
            assert OPS["max_pool2d"].out_size(mp, size, 0) == F.max_pool2d(x, k, s, p, d, ceil).shape[-1]
            assert OPS["conv2d"].out_size(cv, size, 1) == F.conv2d(x, torch.zeros(1, 1, k, k), None, s, p, d).shape[-1]
        if k <= size + 2 * p:
            assert OPS["avg_pool2d"].out_size(ap, size, 0) == F.avg_pool2d(x, k, s, p, ceil).shape[-1]


@pytest.mark.parametrize("op,kw", [
    ("conv2d", dict(kernel=(3, 3), stride=2, pad=(1, 1), dilation=(2, 2), groups=2)),
    ("conv2d", dict(kernel=(3, 3), stride=1, pad=(1, 1), groups=4)),
    ("max_pool2d", dict(kernel=(3, 3), stride=2, pad=(1, 1), ceil_mode=True)),
    ("avg_pool2d", dict(kernel=(3, 3), stride=2, pad=(1, 1), ceil_mode=True, count_include_pad=True)),
])
def test_window_forward_on_a_crop_equals_the_padded_forward_inside(op, kw):
    """forward_valid on the input window `input_window` names equals the full (padded)
    forward on interior outputs: what the cone relies on."""
    n = _node(op, **kw)
    o = OPS[op]
    m = o.make_module(n, 4) if o.has_params else None
    if m is not None:
        with torch.no_grad():
            m.weight.normal_()
            m.bias.normal_()
    x = torch.randn(2, 4, 23, 23)
    full = o.forward(n, [x], m)
    win = (3, 5, 2, 6)
    y0, y1, x0, x1 = o.input_window(n, win, (23, 23))
    got = o.forward_valid(n, [x[..., y0:y1 + 1, x0:x1 + 1]], m)
    assert torch.allclose(got, full[..., 3:6, 2:7], atol=1e-5)


def test_grouped_dilated_conv_composes_as_autograd_says():
    """compose (dense block-diagonal weight, dilated) against the gradient of the conv itself."""
    n = _node("conv2d", kernel=(3, 3), stride=1, pad=(2, 2), dilation=(2, 2), groups=2)
    o = OPS["conv2d"]
    m = o.make_module(n, 4)
    with torch.no_grad():
        m.weight.normal_()
    k0 = torch.eye(4).view(4, 4, 1, 1)
    k, jump = o.compose(n, [(k0, 1)], m, channels=[4])
    assert k.shape == (4, 4, 5, 5) and jump == 1
    x = torch.zeros(1, 4, 11, 11, requires_grad=True)
    y = o.linear(n, [x], m, bias=False)
    for c in range(4):
        (g,) = torch.autograd.grad(y[0, c, 5, 5], x, retain_graph=True)
        assert torch.allclose(g[0, :, 3:8, 3:8], k[c], atol=1e-6)
    assert torch.equal(_dense_weight(n, m.weight.detach())[0, 2:], torch.zeros(2, 3, 3))


def test_even_windows_refuse_composition_naming_the_node():
    n = _node("avg_pool2d", kernel=(2, 2), stride=2)
    with pytest.raises(UnsupportedOpError, match="t \\(avg_pool2d\\).*2x2 window has no centre"):
        OPS["avg_pool2d"].compose(n, [(torch.ones(4, 1, 1, 1), 1)], None, channels=[4])


@pytest.mark.parametrize("op", ["relu6", "silu", "hardswish", "gelu", "sigmoid", "hardsigmoid", "tanh"])
def test_activation_bounds_contain_every_value(op):
    """Bounds of an activation on intervals around its minimum contain f of 10,000 samples."""
    n = _node(op, channels=5)
    lo = torch.tensor([-8.0, -3.0, -1.3, -0.5, 2.0], dtype=torch.float64)
    hi = torch.tensor([-4.0, 1.0, -1.0, 7.0, 9.0], dtype=torch.float64)
    blo, bhi = OPS[op].bounds(n, [(lo, hi)], None)
    t = torch.rand(10000, 1, dtype=torch.float64)
    v = OPS[op].forward(n, [lo + t * (hi - lo)], None)
    assert bool((v >= blo - 1e-12).all()) and bool((v <= bhi + 1e-12).all())
    # and they are tight at the samples (within 1% of the range)
    span = (bhi - blo).clamp(min=1e-9)
    assert bool(((v.min(0).values - blo) / span < 0.01).all())


def test_gate_and_saturating_activations_refuse_linearization():
    with pytest.raises(UnsupportedOpError, match="g \\(mul\\)"):
        OPS["mul"].compose(Node("g", "mul", ("a", "b"), channels=2), [None, None], None, channels=[2, 2])
    with pytest.raises(UnsupportedOpError, match="no linear stand-in"):
        OPS["sigmoid"].linear(_node("sigmoid"), [torch.zeros(1, 4, 2, 2)], None)
