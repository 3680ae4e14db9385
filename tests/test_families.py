"""Neuron families: the published lists, aliases, lookups, user families, ablation.

Independent references: ../shared/reference/families.json (the published lists, read
directly, never through circuits.families.published); the channel counts of circuits.core.graph;
the Curve Detectors article's figure order of the 3b curves (written out below).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from circuits import InceptionV1, ablate, families as F, resolve_units
from circuits.core.units import Unit
from circuits.core.graph import INCEPTION_V1 as V1

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


@pytest.fixture(scope="module")
def published():
    path = REFERENCE / "families.json"
    if not path.exists():
        pytest.skip(f"published reference data not found at {path} (../shared/reference/families.json)")
    return json.loads(path.read_text())


@pytest.mark.parametrize("layer", F.COMPLETE_LAYERS)
def test_complete_layers_are_partitions(layer):
    """Every channel of conv2d0..mixed3b is in exactly one Early Vision family (counts from graph)."""
    from circuits import graph

    seen = [u.channel for f in F.families(V1, layer, source="early_vision") for u in f.units]
    assert sorted(seen) == list(range(graph.node(layer).channels))
    for c in range(graph.node(layer).channels):
        owners = [f for f in F.families(V1, layer, source="early_vision") if Unit(layer, c, V1) in f.units]
        assert len(owners) == 1
        assert F.family_of(f"{layer}:{c}", V1) is owners[0]


def test_registry_matches_published_json(published):
    """Each published family has the published members (set; order as published except 3b curves)."""
    for layer, fams in published.items():
        if layer.startswith("_"):
            continue
        ours = {f.name: f for f in F.families(V1, layer, source="early_vision")}
        assert list(ours) == list(fams)
        for name, chans in fams.items():
            assert set(ours[name].channels) == set(chans), (layer, name)
            if (layer, name) != ("mixed3b", "Curves"):
                assert ours[name].channels == list(dict.fromkeys(chans)), (layer, name)


def test_article_orders(published):
    """3a early curves in the Curve Detectors tuning order; 3b curves in the article's figure order."""
    cd = published["_curve_detectors_article"]
    assert F.family("mixed3a:early_curves", V1).channels == cd["mixed3a_curves_radial"]
    assert F.family("mixed3b:curves", V1).channels == [379, 406, 385, 343, 342, 388, 324, 340, 330, 349]
    assert F.family("mixed3b:curves", V1).channels == cd["mixed3b_curves"]
    assert F.family("conv2d2:lines", V1).channels == published["_curve_circuits_article"]["conv2d2_lines_33_weight_figure"]
    assert F.family("mixed3a:cc_lines", V1).channels == published["_curve_circuits_article"]["mixed3a_lines"]


@pytest.mark.parametrize(
    "fid, layer, name, n",
    [
        ("conv2d0:gabors", "conv2d0", "Gabor Filters", 28),
        ("conv2d1:complex_gabors", "conv2d1", "Complex Gabor", 9),
        ("conv2d2:lines", "conv2d2", "Line", 33),
        ("conv2d2:tiny_curves", "conv2d2", "Tiny Curves", 12),
        ("mixed3a:curves", "mixed3a", "Curves", 11),
        ("mixed3a:early_curves", "mixed3a", "Curves", 11),
        ("mixed3a:lines", "mixed3a", "Lines", 14),
        ("mixed3b:curves", "mixed3b", "Curves", 10),
        ("mixed3b:color_center_surround", "mixed3b", "Color Center-Surround", 77),
        ("mixed3a:eyes_small_circles", "mixed3a", "Eyes / Small Circles", 5),
    ],
)
def test_aliases(fid, layer, name, n):
    """Aliases and published names (counts from the README of the reference data)."""
    f = F.family(fid, V1)
    assert (f.layer, f.name, len(f)) == (layer, name, n)
    assert F.family((layer, name), V1) is f
    assert F.family(f"{layer}:{name}", V1) is f
    assert F.family((layer, name.upper()), V1) is f
    assert all(isinstance(u, Unit) and u.layer == layer for u in f.units)


def test_family_of():
    assert F.family_of("mixed3b:379", V1).id == "mixed3b:curves"
    assert F.family_of("mixed3a:147", V1).name == "Curves"
    assert F.family_of("mixed4a:0", V1) is None or F.family_of("mixed4a:0", V1).layer == "mixed4a"
    assert F.family_of("mixed5b:0", V1) is None
    assert {f.id for f in F.families_of("mixed3a:227", V1)} == {"mixed3a:lines", "mixed3a:cc_lines"}


def test_unknown_family_lists_close_matches():
    with pytest.raises(KeyError, match=r"unknown family 'curvs' in mixed3b; did you mean mixed3b:curves"):
        F.family("mixed3b:curvs", V1)
    with pytest.raises(KeyError, match="mixed5b of InceptionV1 has no families"):
        F.family("mixed5b:curves", V1)
    with pytest.raises(KeyError, match="did you mean .*mixed3b"):
        F.family("mixed3x:curves", V1)
    with pytest.raises(KeyError, match="unknown family"):
        resolve_units("mixed3b:curvs", V1)
    with pytest.raises(TypeError, match="network"):
        F.family("mixed3b:curves", None)


def test_user_family_round_trip():
    """A family registered on a model is that model's alone: another model, and the graph, never see it."""
    m, other = InceptionV1(), InceptionV1()
    f = F.register_family(m, "mixed3a", "Test Pair", [81, "mixed3a:104", 81], aliases=["tp"])
    assert f.channels == [81, 104] and m.families == [f]
    assert F.family("mixed3a:tp", m) is f and F.family("mixed3a:test_pair", m) is f
    assert [u.id for u in resolve_units("mixed3a:tp", m)] == ["mixed3a:81", "mixed3a:104"]
    assert f in F.families(m, "mixed3a", source="user") and f in F.families_of("mixed3a:104", m)
    for elsewhere in (other, V1):
        with pytest.raises(KeyError, match="unknown family"):
            F.family("mixed3a:tp", elsewhere)
    with pytest.raises(ValueError, match="already registered"):
        F.register_family(m, "mixed3a", "Other", [1], aliases=["tp"])
    g = F.register_family(m, "mixed3a", "Other", [1], aliases=["tp"], replace=True)
    assert F.family("mixed3a:tp", m) is g and f not in F.families(m, "mixed3a")
    F.unregister_family(m, "mixed3a:tp")
    assert m.families == []
    with pytest.raises(KeyError):
        F.family("mixed3a:tp", m)
    with pytest.raises(TypeError, match="registered on a model"):
        F.register_family(V1, "mixed3a", "x", [1])


def test_user_family_bad_input():
    m = InceptionV1()
    with pytest.raises(ValueError, match="not in layer mixed3a"):
        F.register_family(m, "mixed3a", "x", ["mixed3b:379"])
    with pytest.raises(IndexError, match="out of range"):
        F.register_family(m, "mixed3a", "x", [256])
    with pytest.raises(ValueError, match="at least one unit"):
        F.register_family(m, "mixed3a", "x", [])
    with pytest.raises(ValueError, match="published family"):
        F.register_family(m, "mixed3b", "mine", [1], aliases=["curves"], replace=True)
    with pytest.raises(ValueError, match="published family"):
        F.unregister_family(m, "mixed3b:curves")
    assert len(F.family("mixed3b:curves", m)) == 10 and m.families == []


def test_ablating_a_family_changes_exactly_its_channels():
    """Ablation via a family id zeroes exactly the family's channels of mixed3a (others bit-identical)."""
    torch.manual_seed(0)
    model = InceptionV1()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    x = torch.randn(1, 3, 40, 40) * 50
    base = model.run(x, until="mixed3a")
    with model.hooks(ablate("mixed3a:early_curves", "constant", value=3.0, model=model)):
        abl = model.run(x, until="mixed3a")
    changed = sorted(c for c in range(256) if not torch.equal(base[0, c], abl[0, c]))
    assert changed == sorted(F.family("mixed3a:early_curves", V1).channels)
    assert torch.all(abl[0, changed] == 3.0)


def test_cli_families(capsys):
    from circuits.cli import main

    assert main(["families", "mixed3b"]) == 0
    out = capsys.readouterr().out
    assert "mixed3b:curves" in out and "379 406 385 343 342 388 324 340 330 349" in out
    assert "partition all 480 channels" in out
    assert main(["families", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["id"] for r in rows} >= {"conv2d0:gabors", "conv2d0:color_contrast", "mixed4a:curves", "mixed3a:curves"}
    assert main(["families", "mixed5b"]) == 2
    assert "no registered families" in capsys.readouterr().err
    assert main(["families", "mixed3x"]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_replacing_a_family_registered_under_several_aliases():
    """A re-registration with replace=True drops the old family whole (all its aliases)."""
    from circuits.families import family, register_family

    m = InceptionV1()
    register_family(m, "mixed3a", "Twice", [81], aliases=["twice_a", "twice_b"])
    register_family(m, "mixed3a", "Twice", [104], aliases=["twice_a", "twice_b"], replace=True)
    assert family("mixed3a:twice_b", m).channels == [104] and family("mixed3a:twice", m).channels == [104]
    assert len(m.families) == 1
