"""What a newcomer trips over (issue 14): one test (or a few) per case, each failing before the fix.

CLI cases run the command line in a subprocess (what the `circuits` script runs), as a
user would; each test says what independent fact it checks against.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import weights
from circuits import families as fam
from circuits.core import graph

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# What the `circuits` script runs (also `python -m circuits.cli`).
CLI = "import sys; from circuits.cli import main; sys.exit(main(sys.argv[1:]))"


def cli(*args, cwd=None, env=None, timeout=300) -> subprocess.CompletedProcess:
    """Run `circuits ARGS` in a fresh interpreter on this checkout."""
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", CLI, *map(str, args)],
        cwd=cwd or ROOT, env=e, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="module")
def hb():
    return weights.model("handbuilt")


@pytest.fixture()
def photo(tmp_path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    p = tmp_path / "photo.png"
    Image.fromarray((rng.random((240, 260, 3)) * 255).astype("uint8")).save(p)
    return p


# --- 1. documented names that fail ------------------------------------------------------------


def test_readme_hb_circuit_command_works_with_default_and_explicit_weights(hb):
    """`circuits weights mixed3a:hb_early_curve_bank mixed3b:curves` (the README's) runs and prints
    the same totals as the API's weights_between summed per pair (a second path to the number)."""
    from circuits.analysis.expanded import weights_between

    w = weights_between(hb, "mixed3a:hb_early_curve_bank", "mixed3b:curves")
    expect = w.sum(dim=(-1, -2))  # [dst, src]
    for extra in ([], ["--weights", "handbuilt"]):
        r = cli("weights", "mixed3a:hb_early_curve_bank", "mixed3b:curves", "--json", *extra)
        assert r.returncode == 0, r.stderr
        rows = json.loads(r.stdout)
        assert len(rows) == tuple(w.shape[:2])[0] * tuple(w.shape[:2])[1] == 10 * 24
        src = [u.id for u in fam.family("mixed3a:hb_early_curve_bank", hb).units]
        dst = [u.id for u in fam.family("mixed3b:curves", hb).units]
        got = {(row["dst"], row["src"]): row["total"] for row in rows}
        for d in (0, 5):
            for s_ in (0, 17):
                assert got[(dst[d], src[s_])] == pytest.approx(float(expect[d, s_]), rel=1e-4, abs=1e-6)
        assert any(abs(v) > 0 for v in got.values())  # the circuit is there, not zero


def test_hb_names_work_in_tune_vis_and_ablate_inputs(tmp_path, photo):
    """The hand-built names that `graph` accepted now work in tune, vis and ablate --inputs too."""
    r = cli("tune", "mixed3b:hb_curves", "--angles", "8", "--curvatures", "0.5", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "mixed3b:379" in r.stdout and "mixed3b:349" in r.stdout
    out = tmp_path / "relay.png"
    r = cli("vis", "mixed3b_5x5_bottleneck:hb_curve_relay", "--steps", "2", "--size", "96", "--quiet", "--out", out)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 0
    r = cli("ablate", "mixed3b:hb_curves", "--inputs", "mixed3b_5x5_bottleneck:hb_curve_relay", "--image", photo)
    assert r.returncode == 0, r.stderr
    assert "mixed3b_5x5_bottleneck:hb_curve_relay" in r.stdout


def test_families_lists_network_banks_with_source_and_aliases():
    """`circuits families` lists every bank of handbuilt/spec.py (the spec itself is the reference)
    as source handbuilt, and the plain table shows aliases (mixed3a:curves is also early_curves)."""
    from handbuilt.spec import SPEC

    r = cli("families")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for b in SPEC.banks:
        row = next((l for l in lines if l.split()[0] == f"{b.layer}:hb_{b.name}"), None)
        assert row is not None, f"{b.layer}:hb_{b.name} not listed"
        assert " handbuilt " in row
    curves = next(l for l in lines if l.startswith("mixed3a:curves "))
    assert "early_curves" in curves
    # A network without banks lists none of them.
    r = cli("families", "--weights", "random")
    assert r.returncode == 0 and "hb_" not in r.stdout


def test_handbuilt_families_belong_to_the_handbuilt_model_only():
    """The hand-built banks are held by the model built from them: loading it changes nothing
    process-wide (the InceptionV1 graph and a random model still have no hb_* family)."""
    import weights
    from circuits import families as f
    from circuits.core.graph import INCEPTION_V1

    m, other = weights.model("handbuilt"), weights.model("random")
    assert [x.id for x in m.families][-1] == "mixed3b:hb_curves"
    assert f.family("mixed3b:hb_curves", m).source == "handbuilt"
    for elsewhere in (INCEPTION_V1, other):
        assert not any(x.id.endswith(":hb_curves") for x in f.families(elsewhere))
        with pytest.raises(KeyError, match="hb_\\* banks exist once its weights are loaded"):
            f.family("mixed3b:hb_curves", elsewhere)


def test_channels_are_labelled_by_the_loaded_networks_families(hb, photo):
    """A hand-built bank channel is labelled by its bank, not by the published family that happens
    to own that channel id (checked against the published table: several bank ids are 'Angles',
    'Line Misc.' or 'Other Units' there)."""
    from circuits.analysis.attribution import attribute
    from circuits.analysis.circuit_graph import circuit_graph
    from circuits.core.inputs import read_image

    bank = fam.family("mixed3a:hb_early_curve_bank", hb)
    published = {fam.family_of(u).name for u in bank.units}  # a Unit knows its graph
    assert published - {"Curves"}, "the bank shares channel ids with other published families"
    assert all(fam.label_of(u, hb) is bank for u in bank.units)
    assert fam.label_of(bank.units[0], hb.graph).source == "early_vision"  # the graph: the published one

    a = attribute(hb, "mixed3b:379", read_image(photo))
    per = a.per_family(model=hb)
    assert bank.name in per
    assert sum(per.values()) == pytest.approx(float(a.per_channel().sum()), rel=1e-5, abs=1e-4)

    g = circuit_graph(hb, ("mixed3a", "mixed3b"), units="mixed3b:379", top_k=3)
    srcs = [n for n, d in g.nodes(data=True) if d["layer"] == "mixed3a"]
    assert srcs and all(g.nodes[n]["family"].startswith("mixed3a:hb_") for n in srcs)

    r = cli("attribute", "mixed3b:379", "--image", photo, "--out", photo.with_name("attr.png"), "--top", "3")
    assert r.returncode == 0, r.stderr
    assert "handbuilt early_curve_bank" in r.stdout


# --- 2. no silent useless result ------------------------------------------------------------------


def test_network_end_is_derived_from_the_weights(hb):
    """last_live_layer against its definition written out: every conv after mixed3b all zero, and
    mixed3b's own 5x5 conv not."""
    from circuits.core.extent import last_live_layer

    sd = hb.state_dict()
    after = [n for n in graph.NODES if n.param and graph.index(n.name) > graph.index("mixed3b")]
    assert after and all(not sd[f"{n.param}.weight"].any() and not sd[f"{n.param}.bias"].any() for n in after)
    assert sd["mixed3b_5x5_pre_relu_conv.weight"].any()
    assert last_live_layer(hb) == "mixed3b"
    assert last_live_layer(weights.model("random")) == "softmax2"


def test_ablate_limits_itself_to_what_the_network_computes(photo):
    r = cli("ablate", "mixed3b:curves", "--image", photo)
    assert r.returncode == 0, r.stderr
    assert "nothing past mixed3b" in r.stdout
    assert "classes of softmax2" not in r.stdout  # no uniform 0.00099 table
    assert "strongest 5 units of mixed3b" in r.stdout
    r = cli("ablate", "mixed3b:curves", "--image", photo, "--layer", "mixed4a")
    assert r.returncode == 2 and "nothing past mixed3b" in r.stderr


def test_commands_reading_past_the_end_stop_and_say_so():
    r = cli("tune", "mixed4a:1", "--angles", "8", "--no-progress")
    assert r.returncode == 2 and "nothing past mixed3b" in r.stderr
    r = cli("graph", "--from", "mixed3b", "--to", "mixed4a", "--out", "/tmp/unused.graphml")
    assert r.returncode == 2 and "nothing past mixed3b" in r.stderr


def test_vis_with_an_objective_stuck_at_zero_says_so_and_suggests_the_remedy(tmp_path):
    out = tmp_path / "v.png"
    r = cli("vis", "mixed3b:379", "--neuron", "--steps", "4", "--size", "96", "--quiet", "--out", out)
    assert r.returncode == 1 and "stayed at 0" in r.stdout and "--redirected-relu" in r.stdout
    assert not out.exists()
    r = cli("vis", "mixed3b:379", "--size", "8", "--steps", "3", "--quiet", "--out", out)
    assert r.returncode == 1 and "at least 91" in r.stdout  # the receptive field of mixed3b (graph)
    assert not out.exists()
    # The remedy works: the README's example `circuits vis mixed3b:379 --neuron --redirected-relu ...`
    # renders this neuron (test_readme_cli_examples_run).


def test_compare_plot_draws_every_model(monkeypatch, random_model, tmp_path):
    """plot_family_comparison with two models draws both: one line per unit and model (counted)."""
    import circuits.plots.compare as pc
    from circuits.tuning.measure import radial_tuning

    figs = []
    monkeypatch.setattr(pc, "save_figure", lambda fig, path: figs.append(fig) or Path(path))
    units = ["mixed3b:379", "mixed3b:406"]
    hb = weights.model("handbuilt")
    tunings = {m: radial_tuning(model, units, n_angles=8, curvatures=[0.5], progress=False)
               for m, model in (("hand-built", hb), ("trained", random_model))}
    pc.plot_family_comparison(tunings, {}, tmp_path / "f.png")
    labels = [l.get_label() for l in figs[0].axes[0].get_lines()]
    assert sorted(labels) == sorted(f"{u} {m}" for u in units for m in tunings)


def test_compare_cli_with_trained_plots(tmp_path):
    path = tmp_path / "trained.safetensors"
    from weights.checkpoint import save_safetensors

    save_safetensors(weights.load("random"), path)
    r = cli("compare", "mixed3b:379", "--trained", path, "--n-angles", "8", "--no-checks",
            "--plot", tmp_path / "f.png")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "f.png").stat().st_size > 0 and "trained" in r.stdout


def test_graph_drops_exactly_zero_edges_by_default(tmp_path, hb):
    """The written graph has no all-zero edge, and as many edges as the API graph has non-zero ones."""
    import networkx as nx

    from circuits.analysis.circuit_graph import circuit_graph

    out = tmp_path / "g.graphml"
    r = cli("graph", "--from", "mixed3a", "--to", "mixed3b", "--family", "mixed3b:curves", "--out", out)
    assert r.returncode == 0, r.stderr
    g = nx.read_graphml(out)
    full = circuit_graph(hb, ("mixed3a", "mixed3b"), units="mixed3b:curves")
    nonzero = sum(1 for *_, a in full.edges(data=True) if a["max_abs"] > 0)
    assert 0 < g.number_of_edges() == nonzero < full.number_of_edges()
    assert "all-zero kernel dropped" in r.stdout


@pytest.mark.parametrize("argv", [
    ["tune", "mixed3b:379", "--batch-size", "0"],
    ["tune", "mixed3b:379", "--batch-size", "-5"],
    ["tune", "mixed3b:379", "--angles", "3"],
    ["vis", "mixed3b:379", "--steps", "0", "--out", "x.png"],
    ["graph", "--from", "mixed3a", "--to", "mixed3b", "--top-k", "0", "--out", "g.json"],
    ["layers", "--input-size", "0"],
    ["stimuli", "--kind", "curve", "--size", "-1", "--out", "s.png"],
])
def test_numeric_options_are_validated_while_parsing(argv):
    r = cli(*argv)
    assert r.returncode == 2 and "usage:" in r.stderr and "must be" in r.stderr, r.stderr


def test_small_image_is_an_error_not_a_resize(tmp_path):
    from PIL import Image

    p = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((5, 5, 3), dtype="uint8")).save(p)
    r = cli("ablate", "mixed3b:curves", "--image", p)
    assert r.returncode == 2 and "5x5" in r.stderr and "91" in r.stderr


def test_nan_weights_are_refused_at_load_with_the_tensor_name(tmp_path):
    from weights.checkpoint import save_safetensors
    from weights.registry import NonFiniteWeightsError

    sd = weights.load("random")
    sd["mixed3a_3x3_pre_relu_conv.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / "nan.safetensors"
    from safetensors.torch import save_file

    save_file(sd, path)  # (save_safetensors checks shapes, not values)
    with pytest.raises(NonFiniteWeightsError, match="mixed3a_3x3_pre_relu_conv.weight"):
        weights.model(path)
    r = cli("tune", "mixed3b:379", "--weights", path, "--angles", "8", "--no-progress")
    assert r.returncode == 2 and "mixed3a_3x3_pre_relu_conv.weight" in r.stderr and "NaN" in r.stderr
    del save_safetensors


def test_strict_with_nothing_judged_fails(tmp_path):
    reference = ROOT.parent / "shared" / "reference"
    if (reference / "radial_tuning_curves.npz").exists():
        # The hand-built bank has no published curves: nothing to judge, so --strict fails.
        r = cli("compare", "mixed3a:hb_early_curve_bank", "--n-angles", "8", "--no-checks", "--strict",
                env={"CIRCUITS_REFERENCE": str(reference)})
        assert r.returncode == 1 and "nothing judged" in r.stdout, r.stdout + r.stderr
    r = cli("compare", "mixed3b:379", "--n-angles", "8", "--no-checks", "--strict",
            env={"CIRCUITS_REFERENCE": str(tmp_path)})  # no published curves here at all: refused up front
    assert r.returncode == 2 and "--strict" in r.stderr and r.stdout == ""


# --- 3. checks before the work -----------------------------------------------------------------


def test_output_folders_are_checked_first_and_named_as_given(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    bad = not_a_folder / "curves.png"
    # The default 720-angle sweep takes seconds; the error comes before it (nothing printed).
    r = cli("tune", "mixed3b:curves", "--plot", bad)
    assert r.returncode == 2 and str(bad) in r.stderr and ".tmp" not in r.stderr and r.stdout == ""
    for argv in (["vis", "mixed3b:379", "--steps", "1", "--out", tmp_path / "new" / "v.png"],
                 ["graph", "--from", "mixed3a", "--to", "mixed3b", "--out", tmp_path / "new" / "g.json"],
                 ["stimuli", "--kind", "curve", "--out", tmp_path / "new" / "s.png"]):
        r = cli(*argv)
        assert r.returncode == 2 and "does not exist" in r.stderr, argv
        assert not (tmp_path / "new").exists()  # no command creates a missing folder


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to any folder")
def test_unwritable_folder_is_reported_first(tmp_path):  # pragma: no cover - CI runs as a user
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    r = cli("tune", "mixed3b:curves", "--json", ro / "t.json")
    assert r.returncode == 2 and "not writable" in r.stderr and str(ro / "t.json") in r.stderr


def test_tune_overlay_without_published_curves_writes_nothing(tmp_path):
    plot, js, ov = tmp_path / "p.png", tmp_path / "t.json", tmp_path / "o.png"
    r = cli("tune", "mixed3b:379", "--angles", "8", "--no-progress", "--plot", plot, "--json", js, "--overlay", ov,
            env={"CIRCUITS_REFERENCE": str(tmp_path)})
    assert r.returncode == 2 and "--overlay" in r.stderr
    assert not plot.exists() and not js.exists() and not ov.exists()


# --- 4. rough edges -------------------------------------------------------------------------------


def test_unit_lists_are_accepted_by_every_command_that_takes_several():
    r = cli("weights", "mixed3a:81,mixed3a:104", "mixed3b:379,mixed3b:406", "--weights", "random", "--json")
    assert r.returncode == 0, r.stderr
    assert {(x["dst"], x["src"]) for x in json.loads(r.stdout)} == {
        (d, s) for d in ("mixed3b:379", "mixed3b:406") for s in ("mixed3a:81", "mixed3a:104")}
    r = cli("compare", "mixed3b:379,mixed3b:406", "--n-angles", "8", "--no-checks")
    assert r.returncode == 0, r.stderr
    assert "mixed3b:379" in r.stdout and "mixed3b:406" in r.stdout
    r = cli("tune", "mixed3b:379", "mixed3b:406,mixed3b:385", "--angles", "8", "--curvatures", "0.5", "--no-progress")
    assert r.returncode == 0 and all(u in r.stdout for u in ("mixed3b:379", "mixed3b:406", "mixed3b:385"))


def test_broken_pipe_is_quiet_and_files_are_still_written(tmp_path):
    js = tmp_path / "t.json"
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-c", CLI, "tune", "mixed3b:379,mixed3b:406", "--angles", "8",
                          "--curvatures", "0.5", "--no-progress", "--json", str(js)],
                         cwd=ROOT, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # the reader is gone before the first line (`| head -0`)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err.decode()
    assert b"Broken pipe" not in err and b"Traceback" not in err
    assert json.loads(js.read_text())["table"][0]["unit"] == "mixed3b:379"


def test_ctrl_c_prints_one_line_exits_130_and_leaves_no_file(tmp_path):
    js = tmp_path / "t.json"
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    # A suite started in the background by a non-interactive shell inherits SIGINT ignored, and Python
    # keeps an ignored SIGINT ignored: give the command the default disposition a terminal gives it.
    p = subprocess.Popen([sys.executable, "-c", CLI, "tune", "mixed3b:curves", "--json", str(js)],
                         cwd=ROOT, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = b""
    deadline = time.time() + 120
    while b"stim" not in seen and time.time() < deadline:  # the sweep's progress bar has started
        seen += os.read(p.stderr.fileno(), 256)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    err = (seen + err).decode()
    assert p.returncode == 130, err
    assert "Traceback" not in err and "circuits tune: interrupted" in err
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one


def test_model_run_outside_gradient_code_has_no_grad():
    m = weights.model("random")
    x = torch.zeros(1, 3, 64, 64)
    assert not m.run(x, until="conv2d0").requires_grad
    assert not m.run_with_cache(x, ["conv2d0"], detach=False)["conv2d0"].requires_grad
    assert m.run(x, until="conv2d0", grad=True).requires_grad  # gradients w.r.t. the weights
    xg = x.clone().requires_grad_()
    y = m.run(xg, until="conv2d0")
    assert y.requires_grad
    with torch.no_grad():
        assert not m.run(xg, until="conv2d0").requires_grad


def test_random_bytes_and_wrong_types_get_accurate_diagnoses(tmp_path):
    from weights.checkpoint import CheckpointError

    p = tmp_path / "random.pth"
    p.write_bytes(bytes([0x3F]) + np.random.default_rng(0).bytes(4095))
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint") as e:
        weights.load(p)
    assert "pickled Python objects" not in str(e.value)
    with pytest.raises(TypeError, match=r"weight source must be a registered name or a file path .*, got int 123"):
        weights.model(123)


@pytest.mark.parametrize("argv", [["--help"], ["layers"], ["unit", "mixed3b:379"], ["families"]])
def test_light_commands_do_not_import_torch(argv):
    code = ("import sys\nfrom circuits.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('TORCH', 'torch' in sys.modules, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    assert "TORCH False" in r.stderr, r.stderr


# --- 5. weight of the install ----------------------------------------------------------------------


def test_pb_reads_without_tensorboard_or_protobuf(tmp_path):
    """A GraphDef written by Google's protobuf (tensorboard's protos, independent of our reader) is
    read in a process where tensorboard and protobuf cannot be imported, with the same arrays."""
    tb = pytest.importorskip("tensorboard.compat.proto.graph_pb2")
    from tensorboard.util import tensor_util

    rng = np.random.default_rng(0)
    arrays = {"a_w": rng.standard_normal((2, 3, 4, 5)).astype(np.float32), "b_b": np.float32([2.5] * 7)}
    gd = tb.GraphDef()
    for name, a in arrays.items():
        node = gd.node.add(name=name, op="Const")
        if name == "b_b":  # the float_val form: one value for the whole shape
            proto = tensor_util.make_tensor_proto(np.float32(2.5), shape=[7])
        else:
            proto = tensor_util.make_tensor_proto(a)
        node.attr["value"].tensor.CopyFrom(proto)
    gd.node.add(name="i", op="Const").attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(np.int32(3)))
    path = tmp_path / "g.pb"
    path.write_bytes(gd.SerializeToString())
    code = ("import sys, numpy as np\nsys.modules['tensorboard'] = None\nsys.modules['google.protobuf'] = None\n"
            "from weights.lucid_pb import read_consts\nc = read_consts(sys.argv[1])\n"
            "np.savez(sys.argv[2], **c)")
    r = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "c.npz")], capture_output=True,
                       text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    assert r.returncode == 0, r.stderr
    got = dict(np.load(tmp_path / "c.npz"))
    assert sorted(got) == sorted(arrays)  # the int Const is not a weight
    for k, a in arrays.items():
        np.testing.assert_array_equal(got[k], a)


def test_install_is_light_and_the_readme_says_how_to_get_cpu_torch():
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = " ".join(meta["dependencies"])
    assert "tensorboard" not in deps and "protobuf" not in deps
    assert "download.pytorch.org/whl/cpu" in README.read_text()


# --- 6. the radial plot --------------------------------------------------------------------------------


def _wcag_contrast_with_white(rgb) -> float:
    # WCAG 2 relative luminance (sRGB linearized), written out here independently of the library.
    def lin(c):
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb[:3])
    lum = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return 1.05 / (lum + 0.05)


def test_radial_plot_names_what_it_shows_and_stays_visible_on_white(monkeypatch, tmp_path):
    import matplotlib.colors as mc

    import circuits.plots.tuning as pt

    figs = []
    monkeypatch.setattr(pt, "save_figure", lambda fig, path: figs.append(fig) or Path(path))
    a = np.arange(720) * 0.5
    curves = {f"u{k}": np.exp(8 * (np.cos(np.deg2rad(a - k * 22.5)) - 1)) * 3 for k in range(16)}
    pt.plot_radial(a, curves, tmp_path / "r.png")
    fig = figs[0]
    ax = fig.axes[0]
    texts = " ".join([ax.get_title()] + [t.get_text() for t in fig.texts + ax.texts])
    assert "post-ReLU" in texts and "mean over curvature" in texts and "raw units" in texts
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert any(re.fullmatch(r"[0-9.]+", t) for t in ticks), ticks  # the radial axis has values
    for line in ax.get_lines():
        assert _wcag_contrast_with_white(mc.to_rgb(line.get_color())) >= 3.0, line.get_label()


# --- the architecture items that live in these files ------------------------------------------------------


def test_one_weights_option_for_every_command():
    from circuits.cli import build_parser
    from circuits.cli.options import DEFAULT_WEIGHTS

    assert DEFAULT_WEIGHTS == weights.DEFAULT
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    with_weights = {}
    for name, p in sub.choices.items():
        opts = [a for a in p._actions if "--weights" in a.option_strings]
        if opts:
            with_weights[name] = (opts[0].dest, opts[0].default)
    # every command that reads a network (layers, unit and families: its graph only)
    runs_a_model = {"layers", "unit", "families", "weights", "graph", "ablate", "tune", "compare", "vis", "attribute",
                    "edit-experiment", "discover", "dataset", "extract-curves", "trace-curve", "joint-tuning", "heatmaps",
                    "factorize", "report"}
    assert set(with_weights) == runs_a_model
    assert set(with_weights.values()) == {("weights", weights.DEFAULT)}


def test_one_matplotlib_setup():
    """Only circuits/plots/setup.py selects a backend or imports pyplot."""
    offenders = []
    for path in (ROOT / "circuits").rglob("*.py"):
        if path.name == "setup.py" and path.parent.name == "plots":
            continue
        text = path.read_text()
        if "matplotlib.use(" in text or "import matplotlib.pyplot" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_stimulus_kinds_listed_by_the_cli_match_the_library():
    from circuits.cli.tune import KINDS
    from circuits.tuning.stimuli import KINDS as LIB

    assert list(KINDS) == list(LIB)


# --- the README: every example and documented name through the API and the CLI ------------------------------


def _readme_cli_examples() -> list[str]:
    block = re.search(r"Examples \(each runs in a test.*?```bash\n(.*?)```", README.read_text(), flags=re.S)
    assert block, "the README's command-line examples block"
    return [l.strip() for l in block.group(1).splitlines() if l.strip().startswith("circuits ")]


@pytest.mark.parametrize("command", _readme_cli_examples())
def test_readme_cli_examples_run(command, tmp_path):
    r = cli(*command.split()[1:], cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_every_unit_and_family_name_in_the_readme_resolves_in_api_and_cli(hb):
    from circuits.families import resolve_units

    docs = "\n".join(p.read_text() for p in [README, *sorted((ROOT / "docs").glob("*.md"))])  # the README's pages too
    names = sorted(set(re.findall(r"`[^`]*?\b((?:conv2d\d|mixed\d[a-z])(?:_[a-z0-9]+)*:[a-z0-9_]+)\b", docs)))
    assert "mixed3a:hb_early_curve_bank" in names and "mixed3a:early_curves" in names
    r = cli("families", "--json")
    assert r.returncode == 0, r.stderr
    listed = {f"{row['layer']}:{a}" for row in json.loads(r.stdout) for a in row["aliases"]}
    for name in names:
        assert resolve_units(name, hb), name  # the API
        if not name.split(":")[1].isdigit():
            assert name in listed, f"{name} is not listed by `circuits families`"  # the CLI
    units = [n for n in names if n.split(":")[1].isdigit()]
    for u in units[:3]:
        r = cli("unit", u)
        assert r.returncode == 0 and u in r.stdout


def test_python_m_circuits_cli_runs():
    r = subprocess.run([sys.executable, "-m", "circuits.cli", "unit", "mixed3b:379"], capture_output=True, text=True,
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    assert r.returncode == 0 and "mixed3b_5x5 channel 59" in r.stdout
