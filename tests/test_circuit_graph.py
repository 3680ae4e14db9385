"""Circuit graphs (circuits.analysis.circuit_graph), their export, drawing and the graph/ablate CLI.

References: the model's own parameter slices and `weights_between` (edge kernels),
brute-force selection over the full weight tensor written out here (top-k and
threshold filters), the family aggregation formula written out with numpy, networkx's
own GraphML and node-link readers (round trips), numpy's corrcoef (graph comparison),
and a direct model run with an ablation hook (the CLI's numbers).
"""

import json
import re

import networkx as nx
import numpy as np
import pytest
import torch

from circuits import cli
from circuits.analysis.ablation import ablate
from circuits.analysis.circuit_graph import (
    circuit_graph,
    compare_graphs,
    read_graph,
    trunk_layers,
    unit_layers,
    write_graph,
)
from circuits.cli.graph import load_image
from circuits.editing.edits import zero_weights
from circuits.analysis.expanded import weights_between
from circuits.core.graph import INCEPTION_V1
from circuits.families import families, family
from circuits.plots.graph import layout, plot_graph
from weights.edited import save_edited
from circuits.core.graph import INCEPTION_V1 as V1


def test_unit_layers_are_the_trunk_of_inception_v1():
    # The published architecture: three stem convolutions, then the mixed blocks.
    assert trunk_layers(INCEPTION_V1) == (
        "conv2d0", "conv2d1", "conv2d2", "mixed3a", "mixed3b",
        "mixed4a", "mixed4b", "mixed4c", "mixed4d", "mixed4e", "mixed5a", "mixed5b",
    )
    assert unit_layers(INCEPTION_V1) == ("conv2d0", "conv2d1", "conv2d2", "mixed3a", "mixed3b", "mixed4a")


def test_direct_edges_carry_the_parameter_slices(random_model):
    g = circuit_graph(random_model, ("conv2d1", "conv2d2"))
    assert g.number_of_nodes() == 64 + 192 and g.number_of_edges() == 64 * 192
    w = random_model.conv2d2_pre_relu_conv.weight.detach().double()
    for u, v in [("conv2d1:3", "conv2d2:7"), ("conv2d1:63", "conv2d2:0")]:
        e = g.edges[u, v]
        k = w[int(v.split(":")[1]), int(u.split(":")[1])]
        assert torch.equal(torch.tensor(e["kernel"], dtype=torch.float64), k)
        assert e["direct"] and e["kernel_size"] == 3
        assert e["sum"] == pytest.approx(float(k.sum()))
        assert e["positive"] == pytest.approx(float(k[k > 0].sum()))
        assert e["negative"] == pytest.approx(float(k[k < 0].sum()))
        assert e["max_abs"] == pytest.approx(float(k.abs().max()))
    n = g.nodes["conv2d2:3"]
    assert (n["layer"], n["channel"], n["family"], n["column"]) == ("conv2d2", 3, "conv2d2:lines", 1)


def test_top_k_and_threshold_match_brute_force(random_model):
    k, t = 3, 0.05
    g = circuit_graph(random_model, ("conv2d1", "conv2d2"), top_k=k, threshold=t)
    w = random_model.conv2d2_pre_relu_conv.weight.detach()
    strength = w.abs().flatten(2).amax(-1)  # [dst, src], "max_abs"
    expected = set()
    for d in range(192):
        s = strength[d].clone()
        s[s < t] = -1
        for c in torch.argsort(s, descending=True)[:k].tolist():
            if s[c] >= t:
                expected.add((f"conv2d1:{c}", f"conv2d2:{d}"))
    assert set(g.edges) == expected
    assert all(a["strength"] >= t for _, _, a in g.edges(data=True))


def test_focus_on_a_family_follows_its_strongest_inputs(random_model):
    curves = [u.id for u in family("mixed3b:curves", V1).units]
    g = circuit_graph(random_model, ("mixed3a", "mixed3b"), units="mixed3b:curves", top_k=4)
    assert {n for n, a in g.nodes(data=True) if a["layer"] == "mixed3b"} == set(curves)
    w = weights_between(random_model, [f"mixed3a:{c}" for c in range(256)], curves).double()
    strength = w.abs().flatten(2).amax(-1)
    for d, cid in enumerate(curves):
        preds = {int(p.split(":")[1]) for p in g.predecessors(cid)}
        assert preds == set(torch.argsort(strength[d], descending=True)[:4].tolist())
        for p in preds:
            e = g.edges[f"mixed3a:{p}", cid]
            assert not e["direct"] and e["kernel_size"] == 5
            torch.testing.assert_close(torch.tensor(e["kernel"], dtype=torch.float64), w[d, p])
    # Downstream focus: each early curve keeps its two strongest outputs.
    g2 = circuit_graph(random_model, ("mixed3a", "mixed3b"), units="mixed3a:early_curves", top_k=2)
    assert all(g2.out_degree(u.id) == 2 for u in family("mixed3a:early_curves", V1).units)


def test_family_edges_average_the_unit_kernels(random_model):
    g = circuit_graph(random_model, ("mixed3a", "mixed3b"), granularity="family", top_k=2)
    assert all(a["kind"] == "family" for _, a in g.nodes(data=True))
    early = family("mixed3a:early_curves", V1)
    curves = family("mixed3b:curves", V1)
    assert g.nodes["mixed3b:curves"]["channels"] == curves.channels
    fam_ids = {n for n in g.nodes if n.startswith("mixed3b:")}
    assert fam_ids == {f.id for f in families(V1, "mixed3b", "early_vision")}  # a complete partition
    for u, v in list(g.in_edges("mixed3b:curves")):
        src = family(u, V1)
        w = weights_between(random_model, src.units, curves.units).double().numpy()
        kernel = w.sum(axis=1).mean(axis=0)  # mean over dst units of the sum over src units
        pos = np.where(w > 0, w, 0).sum(axis=(1, 2, 3)).mean()
        e = g.edges[u, v]
        np.testing.assert_allclose(np.array(e["kernel"]), kernel, rtol=1e-10, atol=1e-12)
        assert e["positive"] == pytest.approx(pos) and e["sum"] == pytest.approx(e["positive"] + e["negative"])
    assert g.in_degree("mixed3b:curves") == 2 and early.id in g.nodes


def test_export_round_trips_through_networkx_readers(random_model, tmp_path):
    g = circuit_graph(random_model, ("conv2d2", "mixed3a"), units="mixed3a:early_curves", top_k=2)
    gm, js = tmp_path / "c.graphml", tmp_path / "c.json"
    write_graph(g, gm)
    write_graph(g, js)
    raw = nx.read_graphml(gm)  # networkx's own reader: kernels arrive as JSON strings
    assert set(raw.edges) == set(g.edges) and set(raw.nodes) == set(g.nodes)
    u, v = next(iter(g.edges))
    assert json.loads(raw.edges[u, v]["kernel"]) == g.edges[u, v]["kernel"]
    assert raw.edges[u, v]["sum"] == g.edges[u, v]["sum"]
    back = read_graph(gm)
    assert dict(back.nodes(data=True)) == dict(g.nodes(data=True))
    assert {(a, b): d for a, b, d in back.edges(data=True)} == {(a, b): d for a, b, d in g.edges(data=True)}
    link = nx.node_link_graph(json.loads(js.read_text()), edges="edges")
    assert nx.utils.graphs_equal(link, g)
    assert nx.utils.graphs_equal(read_graph(js), g)
    with pytest.raises(ValueError, match=".graphml or .json"):
        write_graph(g, tmp_path / "c.txt")


def test_compare_graphs_finds_removed_edges_and_correlation(random_model):
    layers = ("conv2d1", "conv2d2")
    a = circuit_graph(random_model, layers, threshold=0.01)
    edit = zero_weights(["conv2d1:0", "conv2d1:1"], "conv2d2:5", network=V1)
    with edit.applied(random_model):
        b = circuit_graph(random_model, layers, threshold=0.01)
    c = compare_graphs(a, b)
    removed = {(s, "conv2d2:5") for s in ("conv2d1:0", "conv2d1:1")} & set(a.edges)
    assert set(c.only_a) == removed and c.only_b == []
    assert c.correlation == pytest.approx(1.0)
    # Hand-made graphs: correlation against numpy.
    x, y = nx.DiGraph(), nx.DiGraph()
    vals = [(1.0, 2.0), (2.0, 1.0), (3.0, 5.0), (-1.0, 0.5)]
    for i, (p, q) in enumerate(vals):
        x.add_edge("s", f"d{i}", sum=p)
        y.add_edge("s", f"d{i}", sum=q)
    x.add_edge("s", "only_x", sum=1.0)
    c = compare_graphs(x, y)
    assert c.correlation == pytest.approx(np.corrcoef(*zip(*vals))[0, 1])
    assert c.only_a == [("s", "only_x")] and c.sign_agreement == pytest.approx(0.75)


def test_plot_is_laid_out_by_layer(random_model, tmp_path):
    g = circuit_graph(random_model, ("conv2d2", "mixed3b"), units="mixed3b:curves", top_k=2)
    pos = layout(g)
    for n, (x, y) in pos.items():
        assert x == ["conv2d2", "mixed3a", "mixed3b"].index(g.nodes[n]["layer"]) and 0 <= y <= 1
    out = plot_graph(g, tmp_path / "c.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(layers=("mixed3b", "mixed3a")), "downstream"),
        (dict(layers=("mixed3a", "mixed3b_5x5")), "not a unit layer"),
        (dict(layers=("mixed3a", "mixd3b")), "did you mean"),
        (dict(layers=("mixed3a", "mixed3b"), top_k=0), "top_k"),
        (dict(layers=("mixed3a", "mixed3b"), granularity="layer"), "granularity"),
        (dict(layers=("mixed3a", "mixed3b"), units="conv2d2:lines"), "one of the graph's layers"),
    ],
)
def test_bad_graph_requests(random_model, kwargs, match):
    with pytest.raises((ValueError, KeyError), match=match):
        circuit_graph(random_model, **kwargs)


# --- CLI -----------------------------------------------------------------------


def test_cli_graph_writes_graph_and_plot(tmp_path, capsys):
    out, png = tmp_path / "g.graphml", tmp_path / "g.png"
    rc = cli.main(["graph", "--from", "mixed3a", "--to", "mixed3b", "--family", "mixed3b:curves", "--top-k", "2",
                   "--weights", "random", "--out", str(out), "--plot", str(png)])
    assert rc == 0
    g = read_graph(out)
    assert g.number_of_edges() == 20 and png.stat().st_size > 0
    assert "20 edges" in capsys.readouterr().out
    assert cli.main(["graph", "--from", "mixed3a", "--to", "mixed3b", "--weights", "random", "--out", "g.txt"]) == 2
    assert "--out must end in .graphml or .json" in capsys.readouterr().err


def test_load_image_resizes_and_crops(tmp_path):
    from matplotlib import image as mpimg

    img = np.zeros((100, 300), dtype=np.uint8)
    img[:, 150:] = 255  # grey, right half white
    mpimg.imsave(tmp_path / "g.png", img, cmap="gray", vmin=0, vmax=255)
    x = load_image(tmp_path / "g.png", V1)
    assert x.shape == (1, 3, 224, 224)
    # 100x300 -> 224x672, centre crop keeps columns 224..447: the boundary sits in the middle.
    assert float(x[0, :, :, 0].max()) == -117.0 and float(x[0, :, :, -1].min()) == 138.0


def test_cli_ablate_reports_the_change_a_direct_run_gives(tmp_path, capsys):
    from matplotlib import image as mpimg

    import weights

    rng = np.random.default_rng(0)
    mpimg.imsave(tmp_path / "im.png", rng.integers(0, 256, (240, 224, 3), dtype=np.uint8))
    model = weights.model("random")
    model.apply_edit(zero_weights("conv2d1:0", "conv2d2:5", network=V1))
    save_edited(model, tmp_path / "w.safetensors")
    rc = cli.main(["ablate", "mixed3b:curves", "--image", str(tmp_path / "im.png"), "--weights",
                   str(tmp_path / "w.safetensors"), "--top", "2"])
    text = capsys.readouterr().out
    assert rc == 0, text
    # Reference: the same edited model, run directly with and without the ablation hooks.
    x = load_image(tmp_path / "im.png", V1)
    with torch.no_grad():
        before = model.run(x)[0]
        with model.hooks(ablate("mixed3b:curves", model=model)):
            after = model.run(x)[0]
    top = int(before.argmax())
    row = re.search(rf"^\s+{top}\s+(\S+)\s+1\s+(\S+)", text, re.M)
    assert row, text
    assert float(row.group(1)) == pytest.approx(float(before[top]), rel=1e-3)
    assert float(row.group(2)) == pytest.approx(float(after[top]), rel=1e-3)
    assert "strongest 2 units of mixed4a" in text
