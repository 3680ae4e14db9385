"""circuits.editing on InceptionV3: direct edits and undo, refusals, re-expression, implants, logs,
the edit experiment.

Independent references, per test:
- undo: a copy of the state dict taken before, compared bit for bit (integer views);
- direct edits: the parameter slice the op must write, computed here with torch;
- re-expression: the real network's forward pass, with the path's ReLUs made the identity
  on the input (biases lifted above 0), where the linearized path is the real one;
- implants: the donor's own forward pass;
- refusals: the ReLU tensor names of the V3 graph on the path.
Every test works on a deep copy of the session model, so nothing is left on it.
"""

from __future__ import annotations

import copy

import pytest
import torch

from circuits.editing import (
    EditError,
    EditLogMismatch,
    Implant,
    Reexpress,
    drop_negative,
    edit_log,
    edit_tensors,
    editing,
    keep_only_inputs,
    replay,
    scale_weights,
    set_weights,
    zero_weights,
)
from circuits.editing import experiment
from circuits.editing.edits import _bits
from circuits.core.graph import INCEPTION_V1 as V1
from circuits.core.inception_v3 import INCEPTION_V3 as V3

D = torch.float64


@pytest.fixture()
def v3(random_v3_model):
    """A private copy of the random InceptionV3 (edits on it cannot leak into other tests)."""
    return copy.deepcopy(random_v3_model)


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _bitwise_same(model, snap) -> bool:
    sd = model.state_dict()
    return sd.keys() == snap.keys() and all(torch.equal(_bits(sd[k]), _bits(snap[k])) for k in snap)


def _untouched(model, snap) -> None:
    assert _bitwise_same(model, snap)
    assert not model.is_edited and model.edits == []
    assert not model.active_hooks  # the user's hooks and the edits' own (hp.edit_hooks)


def _x(size: int = 80, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1


# --- direct edits: exact, undone bit for bit ---------------------------------------


@pytest.mark.parametrize(
    "make, param, rows, cols, expect",
    [
        # mixed1 -> mixed2's 1x1 branch (conv2d_20), mixed2:0 = its channel 0
        (lambda: scale_weights(["mixed1:3", "mixed1:4"], "mixed2:0", 0.5, network=V3), "conv2d_20", [0], [3, 4], lambda w: w * 0.5),
        # the 7x1 half of mixed4's factorized 7x7 (conv2d_34 reads activation_33); mixed4:200 = channel 8
        (lambda: drop_negative("activation_33:5", "mixed4:200", network=V3), "conv2d_34", [8], [5], lambda w: w.clamp(min=0)),
        # the 1x7 half (conv2d_33 reads activation_32)
        (lambda: zero_weights("activation_32:1", ["conv2d_33:4", "conv2d_33:9"], network=V3), "conv2d_33", [4, 9], [1],
         lambda w: torch.zeros_like(w)),
        # set a 7x1 slice to given values ([dst, src, 7, 1])
        (lambda: set_weights("activation_33:2", "mixed4:200", torch.arange(7.0).view(1, 1, 7, 1), network=V3), "conv2d_34",
         [8], [2], lambda w: torch.arange(7.0).view(1, 1, 7, 1)),
    ],
)
def test_direct_edits_write_the_slice_and_undo_bitwise(v3, make, param, rows, cols, expect):
    """The edited slice is the op applied to the saved original (computed here); nothing else
    changes; undo restores every parameter bit for bit."""
    snap = _snapshot(v3)
    edit = make()
    assert all(p.kind == "direct" for p in edit.parts)
    before = getattr(v3, param).weight.detach()[rows][:, cols].clone()
    with edit.applied(v3):
        assert v3.edits[0].endswith(f"(exact: direct {edit.parts[0].src_layer}->{param})")
        w = getattr(v3, param).weight.detach()
        assert torch.equal(w[rows][:, cols], expect(before))
        mask = torch.ones_like(w, dtype=torch.bool)
        mask[torch.tensor(rows)[:, None], torch.tensor(cols)[None, :]] = False
        assert torch.equal(w[mask], snap[f"{param}.weight"][mask])
        assert all(torch.equal(v, snap[k]) for k, v in v3.state_dict().items() if k != f"{param}.weight")
    _untouched(v3, snap)


def test_edits_compose_and_undo_newest_first(v3):
    snap = _snapshot(v3)
    a = scale_weights("mixed1:3", "mixed2:0", 0.5, network=V3)
    b = scale_weights("mixed1:3", "mixed2:0", 0.5, network=V3)
    v3.apply_edit(a)
    v3.apply_edit(b)
    assert float(v3.conv2d_20.weight.detach()[0, 3, 0, 0]) == pytest.approx(0.25 * float(snap["conv2d_20.weight"][0, 3, 0, 0]))
    with pytest.raises(EditError, match="undo that edit first"):
        v3.undo_edit(a)
    v3.undo_edit(b)
    v3.undo_edit(a)
    _untouched(v3, snap)


# --- refusals and exceptions ----------------------------------------------------------


def test_expanded_edit_across_a_relu_is_refused_naming_it(v3):
    """mixed1 -> mixed2:67 goes through the 5x5 branch's bottleneck ReLU (activation_21); a
    factorized 7x7 path crosses activation_32 and activation_33. Nothing changes on refusal."""
    snap = _snapshot(v3)
    with pytest.raises(EditError, match=r"activation_21 \(relu\) is on the path and active") as e:
        v3.apply_edit(drop_negative("mixed1:3", "mixed2:67", network=V3))
    assert "Reexpress('mixed1'" in str(e.value) and "each_conv" in str(e.value)
    _untouched(v3, snap)
    with pytest.raises(EditError, match=r"activation_32 \(relu\), activation_33 \(relu\) are on the path"):
        v3.apply_edit(scale_weights("mixed3:5", "mixed4:200", 2.0, network=V3))
    _untouched(v3, snap)


def test_model_unchanged_after_an_exception(v3):
    """A refused second edit undoes the first; an exception inside the block undoes everything."""
    snap = _snapshot(v3)
    with pytest.raises(EditError, match="activation_21"):
        with editing(v3, scale_weights("mixed1:3", "mixed2:0", 3.0, network=V3), drop_negative("mixed1:3", "mixed2:67", network=V3)):
            pass  # pragma: no cover - the second edit is refused
    _untouched(v3, snap)
    with pytest.raises(RuntimeError, match="inside"):
        with editing(v3, zero_weights("mixed1:3", "mixed2:0", network=V3), drop_negative("mixed1:3", "mixed2:67", route="linearized", network=V3)):
            assert v3.is_edited and len(v3.edits) == 2
            raise RuntimeError("inside the block")
    _untouched(v3, snap)


def test_edits_of_the_other_network_are_refused_naming_both(v3, random_model):
    snap = _snapshot(v3)
    with pytest.raises(EditError, match="units of InceptionV1, but the model is an InceptionV3"):
        v3.apply_edit(zero_weights("conv2d1:0", "conv2d2:5", network=V1))
    _untouched(v3, snap)
    v1 = _snapshot(random_model)
    with pytest.raises(EditError, match="units of InceptionV3, but the model is an InceptionV1"):
        random_model.apply_edit(zero_weights("mixed1:3", "mixed2:0", network=V3))
    assert _bitwise_same(random_model, v1) and not random_model.is_edited
    with pytest.raises(EditError, match="mixed2:0 is a unit of InceptionV3, not of InceptionV1"):
        zero_weights("mixed3a:81", "mixed2:0", network=V1)
    with pytest.raises(EditError, match="mixed2:0 is a unit of InceptionV3, not of InceptionV1"):
        zero_weights(random_model.unit("mixed3a:81"), v3.unit("mixed2:0"))
    with pytest.raises(EditError, match="no weights to edit.*mixed2:67"):
        zero_weights("mixed2:3", "mixed3:500", network=V3)  # mixed3:500 is max_pooling2d_3's
    with pytest.raises(EditError, match="bad source layer 'mixed3a' for units of InceptionV3"):
        Reexpress("mixed3a", "mixed2:67", network=V3)


def test_each_conv_on_a_v3_bottleneck_is_exact_and_undone(v3):
    """each_conv drop_negative through mixed2's 5x5 branch: the negative weights of both convs
    (conv2d_21's source columns, conv2d_22's destination row) are gone, reference: torch.clamp
    of the saved weights; undo restores both bit for bit."""
    from circuits.editing import each_conv

    snap = _snapshot(v3)
    edits = each_conv("drop_negative", ["mixed1:3", "mixed1:5"], "mixed2:67", network=v3)
    assert [e.summary() for e in edits] == [
        "drop_negative [mixed1:3, mixed1:5] -> activation_21",
        "drop_negative activation_21 -> mixed2:67",
    ]
    with editing(v3, *edits):
        a, d = v3.conv2d_21.weight.detach(), v3.conv2d_22.weight.detach()
        assert torch.equal(a[:, [3, 5]], snap["conv2d_21.weight"][:, [3, 5]].clamp(min=0))
        assert torch.equal(d[3], snap["conv2d_22.weight"][3].clamp(min=0))
        assert torch.equal(d[4:], snap["conv2d_22.weight"][4:])
    _untouched(v3, snap)


def test_edits_on_the_trained_v3(trained_v3):
    """On nsfwjs's trained weights: the bottleneck ReLU is active (refused, naming it), and a
    direct edit of a 1x7 slice is undone bit for bit (reference: the state dict before)."""
    m = copy.deepcopy(trained_v3)
    snap = _snapshot(m)
    with pytest.raises(EditError, match=r"activation_21 \(relu\) is on the path and active"):
        m.apply_edit(drop_negative("mixed1:3", "mixed2:67", network=V3))
    _untouched(m, snap)
    with drop_negative("activation_32:1", "conv2d_33:4", network=V3).applied(m):
        w = m.conv2d_33.weight.detach()[4, 1]
        assert w.shape == (1, 7) and torch.equal(w, snap["conv2d_33.weight"][4, 1].clamp(min=0))
        assert not torch.equal(w, snap["conv2d_33.weight"][4, 1])  # it had negative weights to drop
    _untouched(m, snap)


# --- re-expression and expanded edits on the linearized model --------------------------


def _lift_biases(model, convs, x) -> None:
    """In order, give each conv a bias that puts its output above 0 on input x (its ReLU is then
    the identity there, and the path through it is linear)."""
    with torch.no_grad():
        for c in convs:
            b = getattr(model, c).bias
            b.fill_(1e3)
            b.add_(max(0.0, -float(model.run(x, until=c).min())) + 1e3)


def _to_double(model):
    with torch.no_grad():
        for p in model.parameters():
            p.data = p.data.double()
    return model


@pytest.mark.parametrize(
    "src, dst, conv, channel, inner",
    [
        ("mixed1", "mixed2:67", "conv2d_22", 3, ["conv2d_21"]),  # 1x1 bottleneck + 5x5
        ("mixed3", "mixed4:200", "conv2d_34", 8, ["conv2d_32", "conv2d_33"]),  # 1x1, 1x7, 7x1
    ],
)
def test_reexpression_is_the_real_network_where_its_relus_are_identity(v3, src, dst, conv, channel, inner):
    """Reference: the real forward pass (float64) with the path's ReLUs made the identity on this
    input; the re-expressed channel equals it over the whole map (odd input size: SAME's
    asymmetric padding), the other channels are untouched, and undo restores everything."""
    m = _to_double(v3)
    x = _x(83, seed=3, dtype=D)
    _lift_biases(m, inner, x)
    snap = _snapshot(m)
    with torch.no_grad():
        real = m.run(x, until=conv)
    with Reexpress(src, dst, network=m).applied(m):
        assert m.edits == [f"reexpress {dst} from {src} (linearized model: expanded {src}->{conv})"]
        with torch.no_grad():
            re = m.run(x, until=conv)
    err = float((re[0, channel] - real[0, channel]).abs().max())
    assert err <= 1e-9 * float(real[0, channel].abs().max()), err
    others = [c for c in range(real.shape[1]) if c != channel]
    assert torch.equal(re[0, others], real[0, others])
    _untouched(m, snap)


def test_linearized_edit_removes_the_sources_contribution(v3):
    """Zeroing every mixed1 -> mixed2:67 weight on the re-expressed model leaves its bias path,
    which does not depend on the input: two different images give the same conv2d_22 channel 3
    (reference: the same model's two runs); the other channels still differ."""
    snap = _snapshot(v3)
    all_src = [f"mixed1:{c}" for c in range(288)]
    edit = zero_weights(all_src, "mixed2:67", route="linearized", network=V3)
    with edit.applied(v3):
        assert "linearized model" in v3.edits[0]
        with torch.no_grad():
            a, b = v3.run(_x(80, 1), until="conv2d_22"), v3.run(_x(80, 2), until="conv2d_22")
    torch.testing.assert_close(a[0, 3], b[0, 3], rtol=0, atol=1e-5)
    assert (a[0, 4] - b[0, 4]).abs().max() > 1e-2
    _untouched(v3, snap)


def test_keep_only_inputs_on_v3(v3):
    """keep_only of mixed1:3 into mixed2's 1x1 branch zeroes every other input channel of conv2d_20's
    row 0 (its weight, read directly), and undo restores it."""
    snap = _snapshot(v3)
    edit = keep_only_inputs("mixed1:3", "mixed2:0", network=V3)
    assert len(edit.src) == 287 and edit.summary() == "keep_only mixed1:3 -> mixed2:0"
    with edit.applied(v3):
        row = v3.conv2d_20.weight.detach()[0, :, 0, 0]
        assert row[3] == snap["conv2d_20.weight"][0, 3, 0, 0] and not row[[c for c in range(288) if c != 3]].any()
    _untouched(v3, snap)


# --- implants ------------------------------------------------------------------------


def test_implant_on_v3_takes_the_donors_values(v3, random_v3_model, random_model):
    """Reference: the donor's own forward pass for the implanted channel; the target's for the rest."""
    donor = copy.deepcopy(random_v3_model)
    with torch.no_grad():
        donor.conv2d_22.weight.mul_(-2.0)
    snap = _snapshot(v3)
    x = _x(80, 5)
    with torch.no_grad():
        want = donor.run(x, until="conv2d_22")[0, 3]
        base = v3.run(x, until="conv2d_22")
    with Implant("mixed2:67", donor=donor, donor_source="test").applied(v3):
        assert v3.edits == ["implant mixed2:67 from test (exact: implant input->conv2d_22)"]
        with torch.no_grad():
            got = v3.run(x, until="conv2d_22")
    assert torch.equal(got[0, 3], want)
    assert torch.equal(got[0, 4:], base[0, 4:])
    _untouched(v3, snap)
    with pytest.raises(EditError, match="InceptionV3.*InceptionV1|InceptionV1.*InceptionV3"):
        Implant("mixed2:67", donor=random_model)


# --- the edit log -------------------------------------------------------------------


def test_edit_log_replays_on_v3(v3, random_v3_model, random_model):
    """A replayed log (on a copy holding the edited parameters) computes bit for bit what the
    logged model did, and undoes back to the original parameters; a V1 model refuses it."""
    snap = _snapshot(v3)
    x = _x(80, 6)
    edits = [scale_weights("activation_33:5", "mixed4:200", 0.5, network=V3),
             drop_negative("mixed1:3", "mixed2:67", route="linearized", network=V3)]
    with editing(v3, *edits):
        entries, tensors, logged = edit_log(v3), edit_tensors(v3), list(v3.edits)
        with torch.no_grad():
            want = v3.run(x, until="mixed4")
        edited = _snapshot(v3)
    _untouched(v3, snap)
    copy_ = copy.deepcopy(random_v3_model)
    with torch.no_grad():
        copy_.load_state_dict(edited)
    replay(copy_, entries, tensors)
    assert copy_.edits == logged and len(logged) == 2
    with torch.no_grad():
        assert torch.equal(copy_.run(x, until="mixed4"), want)
    copy_.undo_edit()
    copy_.undo_edit()
    _untouched(copy_, snap)
    with pytest.raises(EditLogMismatch, match="is a unit of InceptionV3, not of InceptionV1"):
        replay(random_model, entries, tensors)
    assert not random_model.is_edited


# --- the edit experiment ----------------------------------------------------------------


def test_experiment_routes_and_edits_for_v3_units(v3):
    curves, early = ["mixed2:67", "mixed2:68"], ["mixed1:3", "mixed1:5"]
    assert experiment.route_for(curves, early, v3) == "reexpress"
    assert experiment.route_for(curves, ["activation_21:3", "activation_21:4"], v3) == "direct"
    edits = experiment.condition_edits("positive early-curve weights only", curves, early, "reexpress", v3)
    assert [e.summary() for e in edits] == [
        "reexpress [mixed2:67, mixed2:68] from mixed1",
        "keep_only [mixed1:3, mixed1:5] -> [mixed2:67, mixed2:68]",
        "drop_negative [mixed1:3, mixed1:5] -> [mixed2:67, mixed2:68]",
    ]
    snap = _snapshot(v3)
    with editing(v3, *edits):
        assert len(v3.edits) == 3 and all("linearized model" in e for e in v3.edits)
    _untouched(v3, snap)
    with pytest.raises(EditError, match="InceptionV1.*InceptionV3"):
        experiment.route_for("mixed3b:curves", "mixed3a:early_curves", v3)
    with pytest.raises(EditError, match="route 'direct' needs the early curves in the input of conv2d_22"):
        experiment.edit_experiment(v3, curves, early, route="direct")


def test_experiment_on_v3_family_objects(v3, monkeypatch):
    """The experiment's plumbing on V3 with Family objects: each condition is measured with its
    edits applied (recorded by a stand-in for radial_tuning: the centre pre-activation of the
    curve units on one fixed input, from the model's own forward pass) and undone after."""
    from circuits import families

    fc = families.register_family(v3, "mixed2", "Test Curves V3", [67, 68], aliases=["test_curves_v3"])
    fe = families.register_family(v3, "mixed1", "Test Early V3", [3, 5], aliases=["test_early_v3"])
    seen = []

    class _RT:
        def __init__(self, curves, n):
            self.curves, self.angles_deg, self.n_stimuli = curves, torch.arange(n).numpy(), n

    def fake_tuning(model, units, n_angles, **kw):
        seen.append(list(model.edits))
        with torch.no_grad():
            y = model.run(_x(80, 9), until="conv2d_22")[0, [u.branch_channel for u in units], 3, 3]
        return _RT(y[:, None].repeat(1, n_angles).numpy(), n_angles)

    monkeypatch.setattr(experiment, "radial_tuning", fake_tuning)
    snap = _snapshot(v3)
    try:
        exp = experiment.edit_experiment(v3, fc, fe, n_angles=2, progress=False)
    finally:
        families.unregister_family(v3, "mixed2:test_curves_v3")
        families.unregister_family(v3, "mixed1:test_early_v3")
    _untouched(v3, snap)
    assert exp.route == "reexpress" and exp.units == ["mixed2:67", "mixed2:68"]
    assert exp.curve_family == "mixed2:test_curves_v3" and exp.early_family == "mixed1:test_early_v3"
    assert seen[0] == ["reexpress mixed2:test_curves_v3 from mixed1 (linearized model: expanded mixed1->conv2d_22)"]
    assert len(seen[1]) == 2 and len(seen[2]) == 3 and seen[3] == []  # the last run: the real network
    # Keeping only two of 288 inputs changes the re-expressed units.
    assert (abs(exp.curves["early curves only"] - exp.curves["unedited"]) > 0).any()
    assert exp.linearization_gap is not None and exp.linearization_gap >= 0


def test_experiment_on_v3_with_the_real_tuning_measurement(v3):
    """End to end with circuits.tuning's radial_tuning (tiny sweep: 4 angles, 1 curvature): the
    curves have one row per unit and every edit is undone."""
    snap = _snapshot(v3)
    exp = experiment.edit_experiment(v3, ["mixed2:67", "mixed2:68"], ["mixed1:3", "mixed1:5"],
                                     n_angles=4, curvatures=[0.5], progress=False)
    _untouched(v3, snap)
    assert exp.route == "reexpress" and exp.curves["unedited"].shape == (2, 4)
    assert exp.linearization_gap is not None
