"""Units, families and inputs of any declared network, not only InceptionV1.

Independent references: the InceptionV3 declaration's own branch table (mixed2's
branches are 64 + 64 + 96 + 64 channels, keras.applications' summary) and Keras's
documented preprocessing for InceptionV3 (x / 127.5 - 1).
"""

from __future__ import annotations

import pytest
import torch

from circuits import InceptionV1, InceptionV3
from circuits.core.graph import INCEPTION_V1
from circuits.core.inception_v3 import INCEPTION_V3
from circuits.core.inputs import from_model_input, to_model_input
from circuits.core.units import Unit, WrongNetworkError, parse_unit
from circuits.families import family, register_family, resolve_units, unregister_family
from circuits.core.graph import INCEPTION_V1 as V1
from circuits.core.inception_v3 import INCEPTION_V3 as V3


def test_layer_names_do_not_collide_except_the_input():
    shared = set(INCEPTION_V1.names()) & set(INCEPTION_V3.names())
    assert shared <= {"input"}


def test_unit_of_v3_knows_its_branches():
    # mixed2 = [1x1: 64, 5x5: 64, 3x3dbl: 96, pool: 64]: channel 130 is the 3x3dbl's channel 2
    u = parse_unit("mixed2:130", V3)
    assert u.network is INCEPTION_V3
    assert u.branch_channel == 2
    assert INCEPTION_V3.branches("mixed2")[2][0] == u.branch
    assert u.centre(299) == (17, 17)  # 35x35 grid at 299 px
    with pytest.raises(IndexError, match=r"0\.\.287"):
        parse_unit("mixed2:288", V3)


def test_explicit_graph_is_checked():
    with pytest.raises(WrongNetworkError, match=r"mixed3b:379 is a unit of InceptionV1, not of InceptionV3.*mixed0:0"):
        parse_unit("mixed3b:379", INCEPTION_V3)
    with pytest.raises(KeyError, match=r"'mixed3x' in InceptionV3; did you mean mixed3"):
        parse_unit("mixed3x:1", INCEPTION_V3)
    with pytest.raises(WrongNetworkError, match="unit of InceptionV1, not of InceptionV3"):
        parse_unit(Unit("mixed3b", 379, V1), INCEPTION_V3)
    with pytest.raises(TypeError, match="needs the network"):
        parse_unit("mixed3b:379", None)
    with pytest.raises(TypeError, match="needs the network it belongs to"):
        Unit("mixed3b", 379, None)


def test_units_compare_by_name_channel_and_network():
    assert parse_unit("mixed3b:379", V1) == Unit("mixed3b", 379, V1) == parse_unit("mixed3b:379", INCEPTION_V1)
    assert Unit("mixed3b", 379, V1) != Unit("mixed3b", 379, V3)


def test_model_unit_and_resolve_units_use_the_models_network():
    v3 = InceptionV3()
    assert v3.unit("mixed2:3").network is INCEPTION_V3
    fam = register_family(v3, "mixed2", "Test Curves V3", [3, 7], aliases=["test_curves_v3"])
    assert fam.graph is INCEPTION_V3 and v3.families == [fam]
    assert [u.id for u in resolve_units("mixed2:test_curves_v3", v3)] == ["mixed2:3", "mixed2:7"]
    assert family("mixed2:test_curves_v3", v3) is fam
    with pytest.raises(KeyError, match="mixed2 of InceptionV3 has no families"):
        family("mixed2:test_curves_v3", V3)  # the graph holds no model's families
    with pytest.raises(WrongNetworkError, match="mixed3b:curves is a family of InceptionV1, not of InceptionV3"):
        resolve_units("mixed3b:curves", v3)
    with pytest.raises(WrongNetworkError, match="family of InceptionV3, not of InceptionV1"):
        resolve_units("mixed2:test_curves_v3", InceptionV1())
    unregister_family(v3, fam.id)
    assert v3.families == []


def test_inputs_follow_the_networks_range():
    white = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    black = torch.zeros((1, 3, 2, 2), dtype=torch.uint8)
    grey = torch.full((1, 3, 2, 2), 127.5 / 255)
    v3 = InceptionV3()
    # Keras: x / 127.5 - 1
    assert v3.to_input(white).unique().tolist() == [1.0]
    assert v3.to_input(black).unique().tolist() == [-1.0]
    assert torch.allclose(v3.to_input(grey), torch.zeros(1))
    # InceptionV1: x - 117, exactly
    px = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16).expand(1, 3, 16, 16)
    assert torch.equal(to_model_input(px), px.float() - 117)
    x = torch.rand(1, 3, 5, 5)
    assert torch.allclose(from_model_input(to_model_input(x, (-1, 1)), (-1, 1)), x, atol=1e-6)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        to_model_input(torch.full((1, 3, 2, 2), 3.0), (-1.0, 1.0))
    with pytest.raises(ValueError, match="low < high"):
        to_model_input(x, (1, 1))


def test_two_networks_with_the_same_layer_names_keep_their_units_apart():
    """Layer names are not unique across networks (every ResNet has a `layer2`): a traced module whose
    layer is called `conv2d0`, like InceptionV1's, has units of its own graph, checked against its own
    channel count (8, not InceptionV1's 64), and a unit of one is refused by the other."""
    from collections import OrderedDict

    from circuits import trace

    module = torch.nn.Sequential(OrderedDict(conv2d0=torch.nn.Conv2d(3, 8, 3), relu=torch.nn.ReLU()))
    mine = trace(module, name="tiny", input_size=16)
    u = mine.unit("conv2d0:7")
    assert u.network is mine.graph and parse_unit("conv2d0:7", V1).network is V1
    assert u != parse_unit("conv2d0:7", V1) and len({u, parse_unit("conv2d0:7", V1)}) == 2
    with pytest.raises(IndexError, match="0..7"):
        mine.unit("conv2d0:8")
    assert V1.node("conv2d0").channels == 64 and parse_unit("conv2d0:63", V1).channel == 63
    with pytest.raises(WrongNetworkError, match="a unit of tiny, not of InceptionV1"):
        parse_unit(u, V1)


def test_a_command_resolves_its_units_once(monkeypatch, capsys):
    """Units are resolved where they enter (the CLI) and carried as Units from there: counted by
    wrapping `resolve_units` (top-level calls only, not its recursion over a list), one per
    command for `circuits tune` with a family; a library call given resolved Units resolves
    nothing. (Before: 4 per `circuits tune`, 13 per `circuits discover mixed3b`.)"""
    import circuits.families as F
    from circuits.cli import main
    from circuits.tuning.measure import radial_tuning

    hb = __import__("weights").model("handbuilt")
    units = F.resolve_units(["mixed3b:379", "mixed3b:406"], hb)
    real, depth, calls = F.resolve_units, [0], []

    def counting(spec, network):
        if depth[0] == 0:
            calls.append(spec)
        depth[0] += 1
        try:
            return real(spec, network)
        finally:
            depth[0] -= 1

    monkeypatch.setattr(F, "resolve_units", counting)
    assert main(["tune", "mixed3b:curves", "--angles", "8", "--curvatures", "0.5", "--no-progress"]) == 0
    assert calls == [["mixed3b:curves"]]
    calls.clear()
    radial_tuning(hb, units, n_angles=8, curvatures=[0.5], progress=False)
    assert calls == []
    capsys.readouterr()
