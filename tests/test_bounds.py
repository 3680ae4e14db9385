"""Interval bounds (circuits.core.bounds) against sampled activations, and the exact
expanded edit through a provably linear path."""

from __future__ import annotations

import torch

import weights
from circuits.core.bounds import always_identity_relus, interval_bounds
from circuits.editing import drop_negative


def test_bounds_contain_every_sampled_activation():
    """Soundness: for inputs drawn from the whole input range (uniform noise and the two
    extreme constant images), every channel's values lie within its bounds."""
    model = weights.model("random")
    lo_in, hi_in = model.input_range
    g = torch.Generator().manual_seed(0)
    x = torch.cat([
        lo_in + (hi_in - lo_in) * torch.rand(6, 3, 97, 97, generator=g),
        torch.full((1, 3, 97, 97), lo_in), torch.full((1, 3, 97, 97), hi_in),
    ])
    names = ["conv2d0_pre_relu", "localresponsenorm0", "conv2d2", "localresponsenorm1", "mixed3a", "mixed3b_5x5_pre_relu"]
    b = interval_bounds(model, "mixed3b_5x5_pre_relu")
    cache = model.run_with_cache(x, names)
    for n in names:
        lo, hi = b[n]
        v = cache[n].double().transpose(0, 1).flatten(1)
        assert (v.min(1).values >= lo - 1e-6 * (1 + lo.abs())).all(), n
        assert (v.max(1).values <= hi + 1e-6 * (1 + hi.abs())).all(), n


def test_relus_after_relus_are_identity_and_random_bottlenecks_are_not():
    model = weights.model("random")
    identity = always_identity_relus(interval_bounds(model, "mixed3b_5x5_bottleneck"), model.graph)
    assert "mixed3b_5x5_bottleneck" not in identity  # random weights of both signs can clip
    hand = weights.model("handbuilt")
    identity = always_identity_relus(interval_bounds(hand, "mixed3b_5x5_bottleneck"), hand.graph)
    assert "mixed3b_5x5_bottleneck" in identity  # non-negative copies of post-ReLU units, no bias


def test_expanded_edit_through_a_linear_path_equals_the_linearized_route():
    """On the hand-built network the 3a -> 3b curves path is linear, so the hook route is
    exact: it must equal the same edit on the re-expressed (linearized) units."""
    model = weights.model("handbuilt")
    x = torch.randn(2, 3, 97, 97, generator=torch.Generator().manual_seed(1)) * 60
    edit = drop_negative("mixed3a:hb_early_curve_bank", "mixed3b:curves", network=model)
    with edit.applied(model):
        assert "exact (linear path)" in model.edits[0]
        hook = model.run(x, until="mixed3b_5x5_pre_relu")
    with drop_negative("mixed3a:hb_early_curve_bank", "mixed3b:curves", route="linearized", network=model).applied(model):
        assert "linearized model" in model.edits[0]
        lin = model.run(x, until="mixed3b_5x5_pre_relu")
    scale = float(hook.abs().max())
    assert scale > 0 and float((hook - lin).abs().max()) <= 1e-4 * scale
    assert not model.is_edited
