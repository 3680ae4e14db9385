"""Computing some output channels only (`Op.input_channels` / `Op.forward_channels`).

Independent reference: each op's own `forward_valid` on the full input, sliced to the
channels asked for afterwards. Sufficiency of `input_channels` is checked the way a cone
relies on it: setting every other input channel to garbage must not change those outputs.
"""

from __future__ import annotations

import pytest
import torch

from circuits.core.graph import INCEPTION_V1
from circuits.core.ops import OPS


def _check(kind, node, xs, m, out, cins):
    op = OPS[kind]
    ref = op.forward_valid(node, xs, m)[:, out]
    need = op.input_channels(node, out, m, cins)
    # Sufficiency: inputs outside `need` replaced by garbage change nothing asked for.
    noisy = []
    for x, ch in zip(xs, need):
        y = torch.randn_like(x) * 1e3
        y[:, ch] = x[:, ch]
        noisy.append(y)
    assert torch.allclose(op.forward_valid(node, noisy, m)[:, out], ref, rtol=1e-5, atol=1e-4)
    # The reduced computation from exactly those channels (plus a few extra: a superset is allowed).
    have = [torch.unique(torch.cat([ch, torch.tensor([0], dtype=torch.long)])) for ch in need]
    prep = op.prepare_channels(node, m, have, out)
    got = op.forward_channels(node, [x[:, h] for x, h in zip(xs, have)], prep, have, out, cins)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
def test_conv_reads_only_channels_with_non_zero_weights(seed):
    g = torch.Generator().manual_seed(seed)
    node = next(n for n in INCEPTION_V1.nodes if n.name == "conv2d2_pre_relu")  # 3x3, 64 -> 192
    w = torch.randn(192, 64, 3, 3, generator=g)
    w[torch.rand(192, 64, generator=g) < 0.9] = 0  # sparse, like the hand-built network
    w[5] = 0  # an output channel with no weights: its value is its bias
    b = torch.randn(192, generator=g)
    b[7] = 0
    w[7] = 0  # and one that is 0 for every input
    m = torch.nn.Module()
    m.weight, m.bias = torch.nn.Parameter(w), torch.nn.Parameter(b)
    x = torch.randn(2, 64, 9, 9, generator=g)
    _check("conv", node, [x], m, torch.tensor([1, 5, 7, 40, 191]), [64])
    assert OPS["conv"].input_channels(node, torch.tensor([5, 7]), m, [64])[0].numel() == 0


@pytest.mark.parametrize("out", [[0], [3, 4, 60], [63]])
def test_lrn_reads_its_channel_window(out):
    node = next(n for n in INCEPTION_V1.nodes if n.op == "lrn")
    x = torch.randn(2, 64, 5, 5) * 30  # large enough that the normalization is far from linear
    out = torch.tensor(out)
    _check("lrn", node, [x], None, out, [64])
    need = OPS["lrn"].input_channels(node, out, None, [64])[0]
    assert set(need.tolist()) == {c for o in out.tolist() for c in range(o - 5, o + 6) if 0 <= c < 64}


@pytest.mark.parametrize("kind", ["relu", "maxpool", "avgpool"])
def test_channelwise_ops_read_their_own_channels(kind):
    node = next(n for n in INCEPTION_V1.nodes if n.op == kind)
    x = torch.randn(2, 32, 9, 9)
    out = torch.tensor([2, 9, 31])
    _check(kind, node, [x], None, out, [32])


def test_concat_splits_by_branch():
    node = next(n for n in INCEPTION_V1.nodes if n.name == "mixed3a")
    cins = [INCEPTION_V1.node(s).channels for s in node.inputs]  # 64, 128, 32, 32
    xs = [torch.randn(2, c, 3, 3) for c in cins]
    out = torch.tensor([0, 63, 64, 200, 255])
    _check("concat", node, xs, None, out, cins)
    parts = OPS["concat"].input_channels(node, out, None, cins)
    assert [p.tolist() for p in parts] == [[0, 63], [0], [8], [31]]


def test_pruned_cone_equals_the_full_run_on_a_sparse_network_and_follows_edits():
    """The channel-pruned cone (circuits.tuning.cone) against the model's own full forward pass,
    on the hand-built network (most channels always 0), before and after an in-place weight edit
    (its cached plan must be rebuilt)."""
    import weights
    from circuits.tuning.cone import centre_values, zero_channels

    m = weights.model("handbuilt")
    z = zero_channels(m, ["mixed3b"])
    assert z["conv2d2_pre_relu"].sum() > 100  # really sparse: the pruning is exercised
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 97, 97, generator=g) * 255 - 117

    def check():
        full = m.run_with_cache(x, ["mixed3b", "mixed3a"])
        v = centre_values(m, x, ["mixed3b", "mixed3a"], {"mixed3b": [379, 0, 406], "mixed3a": list(range(256))})
        for name, ch in (("mixed3b", [379, 0, 406]), ("mixed3a", list(range(256)))):
            f = full[name]
            ref = f[:, ch, f.shape[2] // 2, f.shape[3] // 2]
            assert torch.allclose(v[name], ref, rtol=1e-4, atol=1e-3), name

    check()
    with torch.no_grad():  # a channel that was always 0 comes alive
        m.conv2d2_pre_relu_conv.bias[1] = 5.0
        m.mixed3a_1x1_pre_relu_conv.weight[3, 1] = 0.5
        m.mixed3a_1x1_pre_relu_conv.weight[3, 5] = 0.5
    check()
