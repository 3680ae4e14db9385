"""Implants: the target's units become the donor's, nothing else changes, undo is exact.

Reference: the donor's and the target's own runs without any hook.
"""

import pytest
import torch

import weights
from circuits import InceptionV1
from circuits.editing import replay
from circuits.editing.edits import EditError
from circuits.editing.implant import Implant
from weights.checkpoint import save_safetensors
from weights.edited import load_edited, save_edited
from weights.registry import random_state_dict
from circuits.core.graph import INCEPTION_V1 as V1


@pytest.fixture(scope="module")
def pair():
    target = InceptionV1(random_state_dict(0)).eval()
    donor = InceptionV1(random_state_dict(1)).eval()
    return target, donor


def test_implant_replaces_exactly_the_units(pair):
    target, donor = pair
    x = torch.rand(2, 3, 64, 64) * 255 - 117
    names = ["mixed3b_pre_relu", "mixed3b", "mixed4a"]
    t0 = target.run_with_cache(x, names)
    d0 = donor.run_with_cache(x, names)
    units = [379, 406, 10]  # two in the 5x5 branch, one in the 1x1 branch
    with Implant([f"mixed3b:{c}" for c in units], donor=donor).applied(target):
        assert target.is_edited and "implant" in target.edits[0]
        t1 = target.run_with_cache(x, names)
    others = [c for c in range(480) if c not in units]
    assert torch.equal(t1["mixed3b_pre_relu"][:, units], d0["mixed3b_pre_relu"][:, units])
    assert torch.equal(t1["mixed3b"][:, units], d0["mixed3b"][:, units])
    assert torch.equal(t1["mixed3b_pre_relu"][:, others], t0["mixed3b_pre_relu"][:, others])
    assert not torch.equal(t1["mixed4a"], t0["mixed4a"])
    assert not target.is_edited and target.active_hooks == []
    assert torch.equal(target.run_with_cache(x, names)["mixed4a"], t0["mixed4a"])


def test_implant_saved_with_donor_path_round_trips(pair, tmp_path):
    target, donor = pair
    path = tmp_path / "donor.safetensors"
    save_safetensors(donor.state_dict(), path)
    x = torch.rand(1, 3, 48, 48) * 255 - 117
    edit = Implant("mixed3b:curves", donor=weights.model(str(path)))  # source: the path
    assert edit.describe()["donor"] == str(path)
    with edit.applied(target):
        want = target.run(x, until="mixed4a")
        save_edited(target, tmp_path / "implanted.safetensors")
    loaded = load_edited(tmp_path / "implanted.safetensors")
    assert loaded.is_edited and "implant mixed3b:curves" in loaded.edits[0]
    assert torch.equal(loaded.run(x, until="mixed4a"), want)
    loaded.undo_edit()
    assert torch.equal(loaded.run(x, until="mixed4a"), target.run(x, until="mixed4a"))


def test_implant_bad_input(pair):
    target, donor = pair
    with pytest.raises(EditError, match="no weights"):
        Implant("maxpool1:3", donor=donor)
    with pytest.raises(EditError, match="another model"):
        Implant("mixed3b:379", donor=target).apply(target)
    with pytest.raises(TypeError, match="donor must be an InceptionV1 model, got int 3"):
        Implant("mixed3b:379", donor=3)
    with pytest.raises(TypeError, match="InceptionV1 model, got str 'handbuilt'"):
        Implant("mixed3b:379", donor="handbuilt")  # a name: the caller loads it (circuits loads no weights)
    mem = Implant("mixed3b:379", donor=donor)  # a model in memory, no source: cannot be rebuilt from a log
    entry = mem.describe()
    assert entry["donor"] is None
    with pytest.raises(EditError, match="cannot be rebuilt"):
        replay(InceptionV1(random_state_dict(0)), [entry], {})
    with pytest.raises(EditError, match="needs its donor 'x.safetensors' rebuilt"):
        replay(InceptionV1(random_state_dict(0)), [entry | {"donor": "x.safetensors"}], {})
    assert target.active_hooks == []


def test_weights_model_loads_edited_files_with_their_edits(pair, tmp_path):
    target, donor = pair
    path = tmp_path / "donor.safetensors"
    save_safetensors(donor.state_dict(), path)
    with Implant("mixed3b:379", donor=weights.model(str(path))).applied(target):
        save_edited(target, tmp_path / "e.safetensors")
    assert weights.model(str(tmp_path / "e.safetensors")).is_edited
    with pytest.raises(ValueError, match="edited model"):
        weights.load(str(tmp_path / "e.safetensors"))


def test_handbuilt_implant_gives_a_model_the_handbuilt_curves(pair):
    """handbuilt.implant: the target's 3b curves respond like the hand-built network's own."""
    import handbuilt
    from circuits.tuning.stimuli import curve

    target, _ = pair
    hb = weights.model("handbuilt")
    from circuits import parse_unit

    u = parse_unit("mixed3b:379", V1)
    x = curve([243.0, 63.0], 0.6, arc_length=45.5, size=97, centre=u.centre_in_input(97))
    cy, cx = u.centre(97)
    want = hb.run_with_cache(x, ["mixed3b"])["mixed3b"][:, 379]
    edit = handbuilt.implant(target)
    try:
        got = target.run_with_cache(x, ["mixed3b"])["mixed3b"][:, 379]
    finally:
        edit.undo(target)
    assert torch.equal(got, want) and want[0, cy, cx] > 10 * want[1, cy, cx]  # preferred vs opposite
    assert target.active_hooks == []
