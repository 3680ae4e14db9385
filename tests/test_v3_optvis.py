"""Feature visualization on InceptionV3: objectives of V3 units, images fed in [-1, 1].

The session's `random_v3_model` is shared: hooks are only ever added in `with` blocks
(and the render loop's own hooks are checked to be gone afterwards).
"""

from __future__ import annotations

import pytest
import torch

from circuits.optvis import objectives as obj
from circuits.optvis import param
from circuits.optvis.redirected_relu import redirected_relu_hooks
from circuits.optvis.render import evaluate, render
from circuits.tuning.discover import feature_visualizations
from circuits.core.graph import INCEPTION_V1 as V1
from circuits.core.inception_v3 import INCEPTION_V3 as V3


def test_v3_unit_objectives_read_v3_tensors(random_v3_model):
    """Checked against the graph: mixed2:67 is channel 3 of activation_22 (`branch_of`), and
    the objective's value is that channel of the concatenated mixed2 from a plain run."""
    m = random_v3_model
    o = obj.channel("mixed2", 67, model=m)
    assert o.network is m.graph and o.hooks == {"activation_22"}
    assert obj.channel("mixed2", 67, model=V3).network is m.graph  # the layer name alone names the network
    x = torch.rand(1, 3, 80, 80, generator=torch.Generator().manual_seed(0))
    want = float(m.run(m.to_input(x), until="mixed2")[:, 67].mean())
    assert evaluate(m, o, x) == pytest.approx(want, rel=1e-5, abs=1e-6)
    n = obj.neuron("mixed2", 67, model=m)
    assert n.min_size == max(m.graph.receptive_field("activation_22").size, m.graph.min_input_size("mixed2"))


def test_render_of_a_v3_unit_feeds_the_model_its_range_and_raises_the_objective(random_v3_model):
    """Checked against `model.to_input` of the parameterization's own image (what the model
    must see: [0, 1] mapped to [-1, 1]) and against `evaluate` before and after."""
    m = random_v3_model
    o = obj.neuron("mixed0", 70, model=m)
    side = 80
    seen = []
    with m.hooks([("input", lambda x, h: seen.append(x.detach().clone()))]):
        r = render(m, o, param.image(side, seed=2), steps=1, transforms=[], progress=False)
    expected = m.to_input(param.image(side, seed=2)().detach())
    assert torch.allclose(seen[0], expected, atol=1e-6)
    assert -1.0 <= float(seen[0].min()) < 0.0 < float(seen[0].max()) <= 1.0
    assert not m.active_hooks

    p = param.image(side, seed=0)
    before = evaluate(m, o, p().detach())
    r = render(m, o, p, steps=8, redirected_relu=True, progress=False)
    after = evaluate(m, o, r.final)
    assert after > before + 0.5 * abs(before) + 1e-3, (before, after)
    assert r.final.shape == (1, 3, side, side)
    assert float(r.final.min()) >= 0.0 and float(r.final.max()) <= 1.0
    assert not m.active_hooks  # the redirected-ReLU hooks are gone


def test_redirected_relu_hooks_follow_the_v3_graph(random_v3_model):
    """Checked against the graph: every ReLU upstream of mixed0's 5x5 branch, and only those."""
    g = random_v3_model.graph
    names = [n for n, _ in redirected_relu_hooks(["activation_8"], g)]
    relus = [n for n in g.ancestors("activation_8") if g.node(n).kind.is_activation]
    assert sorted(names[1::2]) == sorted(relus)
    assert names[0::2] == [g.node(n).inputs[0] for n in names[1::2]]
    with pytest.raises(TypeError):
        redirected_relu_hooks(["activation_8"])  # the network is always given: no lookup by tensor name


def test_feature_visualizations_of_v3_units(random_v3_model):
    """Checked against the sizes the graph gives: one image per unit, the smallest input
    holding mixed0's receptive field, in [0, 1]."""
    m = random_v3_model
    imgs = feature_visualizations(m, ["mixed0:3", "mixed0:70"], steps=2, progress=False)
    from circuits.tuning.measure import input_size_for

    side = max(48, input_size_for(["mixed0:3", "mixed0:70"], m))
    assert imgs.shape == (2, 3, side, side)
    assert float(imgs.min()) >= 0 and float(imgs.max()) <= 1
    assert not m.active_hooks


def test_objectives_of_another_network_are_refused(random_v3_model, random_model):
    """The messages name the objective's network and the model's (no independent reference)."""
    with pytest.raises(ValueError, match=r"Channel\(mixed3b:379\) reads InceptionV1 tensors.*model is InceptionV3"):
        render(random_v3_model, obj.channel("mixed3b", 379, model=V1), param.image(96), steps=1, progress=False)
    with pytest.raises(ValueError, match=r"reads InceptionV3 tensors.*model is InceptionV1"):
        evaluate(random_model, obj.channel("mixed2", 67, model=V3), torch.full((1, 3, 96, 96), 0.5))
    with pytest.raises(ValueError, match=r"cannot combine .*InceptionV1.*InceptionV3"):
        obj.channel("mixed3b", 379, model=V1) + obj.channel("mixed2", 67, model=V3)
    with pytest.raises(ValueError, match=r"mixed3b:379 is a unit of InceptionV1, not of InceptionV3"):
        render(random_v3_model, "mixed3b:379", param.image(96), steps=1, progress=False)
    with pytest.raises(ValueError, match=r"smaller than Neuron\(mixed2:67\) needs \(\d+ px"):
        render(random_v3_model, obj.neuron("mixed2", 67, model=V3), param.image(80), steps=1, progress=False)
