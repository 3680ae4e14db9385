"""Release-ready and trustworthy (issue 21): units named twice, unreadable inputs, strict JSON,
bounded sizes, ``--device``, checks before work, Ctrl-C (items 3, 4 and 5).

What each test checks against is in its docstring: a single-unit measurement, a strict
JSON parser (``parse_constant`` refusing NaN/Infinity), the bytes of a file, or whether
the expensive step ran at all (a recorder patched in its place).
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import weights
from circuits import cli

FAMILY = {"layer": "mixed3b", "name": "two", "aliases": ["two"], "family": ["mixed3b:379", "mixed3b:385"]}
BINARY = bytes(range(256)) * 4  # NUL bytes and invalid UTF-8


def _strict(text: str):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


def _one_line_error(argv, capsys, *names, code: int = 2) -> str:
    assert cli.main([str(a) for a in argv]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for n in names:
        assert str(n) in err, (n, err)
    return err


def _photo(path: Path, side: int = 120) -> Path:
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
    return path


# --- item 3: units named twice, unreadable inputs, strict JSON ---------------------------------


def test_tune_with_a_unit_named_twice_has_one_row(tmp_path, capsys):
    """`tune mixed3b:379,mixed3b:379` gave a second row of zeros on main; now one row, equal to `tune mixed3b:379`."""
    twice, once = tmp_path / "twice.json", tmp_path / "once.json"
    assert cli.main(["tune", "mixed3b:379,mixed3b:379", "--angles", "8", "--no-progress", "--json", str(twice)]) == 0
    rows = [l for l in capsys.readouterr().out.splitlines() if l.startswith("mixed3b:379")]
    assert len(rows) == 1
    assert cli.main(["tune", "mixed3b:379", "--angles", "8", "--no-progress", "--json", str(once)]) == 0
    a, b = _strict(twice.read_text()), _strict(once.read_text())
    assert a["units"] == ["mixed3b:379"] and a["curves"] == b["curves"] and max(a["curves"]["mixed3b:379"]) > 0


def test_radial_tuning_measures_a_unit_named_twice_identically():
    """The library keeps the rows it was asked for: both rows equal the unit measured alone (main: one row of zeros)."""
    from circuits.tuning.measure import radial_tuning

    m = weights.model("handbuilt")
    kw = dict(n_angles=8, curvatures=[0.5], progress=False)
    twice = radial_tuning(m, ["mixed3b:379", "mixed3b:385", "mixed3b:379"], **kw)
    alone = radial_tuning(m, ["mixed3b:379"], **kw)
    assert twice.curves.shape == (3, 8) and alone.curves[0].max() > 0
    np.testing.assert_array_equal(twice.curves[0], alone.curves[0])
    np.testing.assert_array_equal(twice.curves[2], alone.curves[0])


def test_a_folder_where_no_image_can_be_read_is_an_error(tmp_path, capsys):
    """Main scanned "successfully" and wrote NaN into the JSON; now exit 2 naming the folder, nothing written."""
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for n in ("a.png", "b.jpg"):
        (imgs / n).write_bytes(b"not an image")
    out = tmp_path / "r.json"
    _one_line_error(["dataset", "mixed3a:81", "--images", imgs, "--json", out, "--no-plots", "--quiet",
                     "--bin-width", "1"], capsys, "no image", str(imgs))
    assert not out.exists()


def test_write_json_is_strict():
    """NaN and +-inf are written as null (RFC 8259 has neither); a strict parser reads the file."""
    from circuits.core.files import write_json

    p = write_json(Path(os.environ.get("TMPDIR", "/tmp")) / f"circuits-strict-{os.getpid()}.json",
                   {"a": float("nan"), "b": [1.0, float("inf")], "c": np.array([float("-inf"), 2.0])})
    try:
        assert _strict(p.read_text()) == {"a": None, "b": [1.0, None], "c": [None, 2.0]}
    finally:
        p.unlink()


def _scan_json(tmp_path: Path) -> Path:
    from circuits.dataset.scan import FORMAT

    p = tmp_path / "scan.json"
    p.write_text(json.dumps({"format": FORMAT, "units": {"mixed3a:81": {"unit": "mixed3a:81"}}}))
    return p


@pytest.mark.parametrize("which", ["scan", "labels", "family", "load"])
def test_binary_json_and_csv_inputs_are_errors_naming_the_file(tmp_path, capsys, which):
    """A binary file where JSON or CSV is expected: main printed a bare codec error; now the file is named."""
    bad = tmp_path / ("bad.csv" if which == "labels" else "bad.json")
    bad.write_bytes(BINARY)
    argv = {
        "scan": ["dataset-labels", "--scan", bad, "--labels", bad, "--plot", tmp_path / "p.png"],
        "labels": ["dataset-labels", "--scan", _scan_json(tmp_path), "--labels", bad, "--plot", tmp_path / "p.png"],
        "family": ["tune", bad, "--angles", "4"],
        "load": ["discover", "--load", bad],
    }[which]
    _one_line_error(argv, capsys, str(bad))


def test_a_binary_checkpoint_is_an_error_naming_it(tmp_path):
    scan_mod = importlib.import_module("circuits.dataset.scan")
    from circuits.dataset.sources import skimage_source

    ck = tmp_path / "ck.json"
    ck.write_bytes(BINARY)
    with pytest.raises(ValueError, match="ck.json"):
        scan_mod.scan(weights.model("handbuilt"), "mixed3a:81", skimage_source(96), limit=1, bin_width=1.0,
                      checkpoint=ck, progress=False)


@pytest.mark.parametrize("sampling", ["grid", "random"])
def test_non_utf8_file_names_do_not_fail_a_scan(tmp_path, sampling):
    """A file named b"\\xff.png" (not UTF-8) failed main's scan at its first write; now it is scanned
    like its UTF-8-named twin (as many crops; on the grid the same values: random positions are seeded
    by the name), checkpointed, and its crops load back."""
    scan_mod = importlib.import_module("circuits.dataset.scan")
    from circuits.dataset.sources import folder_source

    root = os.fsencode(tmp_path)
    for sub, name in ((b"odd", b"\xffimg.png"), (b"even", b"img.png")):
        os.makedirs(os.path.join(root, sub))
        _photo(Path(os.fsdecode(os.path.join(root, sub, name))))
    m = weights.model("handbuilt")
    kw = dict(bin_width=1.0, sampling=sampling, per_image=5, progress=False)
    odd_src = folder_source(tmp_path / "odd", 96)
    odd = scan_mod.scan(m, "mixed3a:81", odd_src, checkpoint=tmp_path / "ck.json", **kw).to_json(odd_src.names)
    even = scan_mod.scan(m, "mixed3a:81", folder_source(tmp_path / "even", 96), **kw).to_json()
    a, b = odd["units"]["mixed3a:81"], even["units"]["mixed3a:81"]
    assert a["n_crops"] == b["n_crops"] > 0
    if sampling == "grid":
        assert a["histogram"] == b["histogram"]
    crops = scan_mod.load_crops(odd_src, [a["top_k"][0]["crop_id"]])
    assert len(crops) == 1


# --- item 4: size-like options bounded at parse time ---------------------------------------------


@pytest.mark.parametrize("argv", [
    ["vis", "mixed3b:379", "--size", "100000", "--out", "v.png"],
    ["stimuli", "--kind", "line", "--size", "100000", "--out", "s.png"],
    ["extract-curves", "mixed3b:curves", "--image", "skimage:coffee", "--size", "20000", "--out", "e.png"],
    ["trace-curve", "mixed3b:curves", "--image", "skimage:coffee", "--size", "20000", "--out", "t.png"],
    ["attribute", "mixed3b:379", "--image", "x.png", "--size", "100000", "--out", "a.png"],
    ["dataset", "mixed3b:379", "--images", "skimage", "--image-size", "100000"],
    ["dataset", "mixed3b:379", "--images", "skimage", "--bin-width", "1e-9"],
    ["dataset", "mixed3b:379", "--images", "skimage", "--top-k", "1000000000"],
    ["tune", "mixed3b:379", "--angles", "1000000000"],
    ["tune", "mixed3b:379", "--batch-size", "1000000000"],
    ["discover", "mixed3b", "--orientations", "1000000000"],
])
def test_size_options_have_an_upper_bound_checked_while_parsing(argv, capsys, monkeypatch):
    """Main grew past 22 GB (vis --size 100000, dataset --bin-width 1e-9) or ended in a traceback.
    Now exit 2 while parsing (no model is loaded: load_network would fail the test), the bound in the message."""
    monkeypatch.setattr(weights, "model", lambda *a, **k: pytest.fail("work started"))
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("at most" in err or "at least" in err), err


_SIZE_WORDS = {"size", "image_size", "batch", "batch_size", "angles", "n_angles", "orientations",
               "family_orientations", "per_image", "per_bin", "workers"}


def _subparsers():
    parser = cli.build_parser()
    return next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices


def test_every_size_like_option_of_every_command_is_bounded():
    """Whatever command is added: an option named like a size or a count of things held in memory
    has a type with an upper bound (`maximum`), so the categories hold beyond the cases listed above."""
    unbounded = []
    for name, p in _subparsers().items():
        for a in p._actions:
            if a.dest in _SIZE_WORDS and a.option_strings and not hasattr(a.type, "maximum"):
                unbounded.append(f"{name} {a.option_strings[0]}")
    assert not unbounded, unbounded


def test_attribute_refuses_an_image_too_large_for_memory_before_loading_the_model(tmp_path, capsys, monkeypatch):
    """Main ended an 8000 px attribution in a traceback. The bound scales with memory: with 64 MiB
    allowed, a 300 px image (300² x 8 KiB = 703 MiB) is refused, naming it and its size."""
    vis = importlib.import_module("circuits.cli.vis")

    monkeypatch.setattr(vis, "MEMORY_BYTES", 64 * 2**20)
    monkeypatch.setattr(weights, "model", lambda *a, **k: pytest.fail("work started"))
    img = _photo(tmp_path / "big.png", 300)
    _one_line_error(["attribute", "mixed3b:379", "--image", img, "--out", tmp_path / "a.png"], capsys,
                    "big.png", "300x300")


# --- item 5: --device, checks before work, Ctrl-C -----------------------------------------------

MODEL_COMMANDS = ("graph", "ablate", "weights", "tune", "compare", "vis", "attribute", "edit-experiment",
                  "discover", "dataset", "extract-curves", "trace-curve")


def test_every_command_that_runs_a_model_takes_device_defaulting_to_cpu():
    subs = _subparsers()
    missing = [c for c in MODEL_COMMANDS if "--device" not in subs[c]._option_string_actions]
    assert not missing, missing
    assert all(subs[c].get_default("device") == "cpu" for c in MODEL_COMMANDS)


def _tiny(tmp_path: Path) -> dict[str, list]:
    img = _photo(tmp_path / "photo.png", 120)
    imgs = tmp_path / "imgs"
    imgs.mkdir(exist_ok=True)
    _photo(imgs / "a.png", 100)
    return {
        "graph": ["graph", "--from", "mixed3a", "--to", "mixed3b", "--family", "mixed3b:379", "--top-k", "2",
                  "--out", tmp_path / "g.json"],
        "ablate": ["ablate", "mixed3b:379", "--image", img, "--top", "2"],
        "weights": ["weights", "mixed3a:81", "mixed3b:379"],
        "tune": ["tune", "mixed3b:379", "--angles", "4", "--curvatures", "0.5", "--no-progress"],
        "compare": ["compare", "mixed3b:379", "--n-angles", "4", "--no-checks"],
        "vis": ["vis", "mixed3b:379", "--steps", "2", "--size", "48", "--quiet", "--out", tmp_path / "v.png"],
        "attribute": ["attribute", "mixed3b:379", "--image", img, "--top", "2", "--out", tmp_path / "a.png"],
        "edit-experiment": ["edit-experiment", "--curves", "mixed3b:379", "--n-angles", "4", "--no-progress"],
        "discover": ["discover", "mixed3a", "--orientations", "8", "--curvatures", "0.5", "--no-progress",
                     "--top", "1"],
        "dataset": ["dataset", "mixed3a:81", "--images", imgs, "--no-plots", "--quiet", "--bin-width", "1",
                    "--image-size", "96"],
        "extract-curves": ["extract-curves", "mixed3b:379", "--image", img, "--size", "120", "--out",
                           tmp_path / "e.png"],
        "trace-curve": ["trace-curve", "mixed3b:379", "--image", img, "--size", "120", "--steps", "2",
                        "--out", tmp_path / "t.png"],
    }


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_device_that_is_not_here_is_one_line_exit_2(tmp_path, capsys, command):
    """`--device cuda:99` (no such GPU on any test machine) and `--device foo`: one line, exit 2, no traceback.
    On main most commands had no --device (a parse error) and `dataset --device cuda` gave a traceback."""
    argv = [str(a) for a in _tiny(tmp_path)[command]]
    assert cli.main(argv + ["--device", "cuda:99"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--device cuda:99" in err and err.count("\n") == 1, err
    assert cli.main(argv + ["--device", "foo"]) == 2
    assert "must be cpu, cuda, cuda:N or mps, got 'foo'" in capsys.readouterr().err


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_device_cpu_works_on_every_model_command(tmp_path, capsys, command):
    """Each command runs with `--device cpu` (tiny sizes) and exits 0."""
    argv = [str(a) for a in _tiny(tmp_path)[command]] + ["--device", "cpu"]
    assert cli.main(argv) == 0, capsys.readouterr().err


def test_device_check_moves_the_model(monkeypatch):
    """load_network(source, device) returns the model on that device (here: the CPU, the only one)."""
    from circuits.cli.device import check_device
    from circuits.cli.options import load_network

    m = load_network("handbuilt", "cpu")
    assert next(m.parameters()).device == torch.device("cpu") == check_device("cpu")


def test_compare_checks_its_families_before_the_sweep(capsys, monkeypatch):
    """`compare --family-of/--early` with an unknown family failed after the full sweep on main."""
    from circuits.tuning import compare as tc

    monkeypatch.setattr(tc, "compare_tuning", lambda *a, **k: pytest.fail("the sweep ran first"))
    _one_line_error(["compare", "mixed3b:379", "--n-angles", "4", "--family-of", "handbuilt=mixed3b:nosuch"],
                    capsys, "nosuch")
    _one_line_error(["compare", "mixed3b:379", "--n-angles", "4", "--early", "mixed3a:nosuch"], capsys, "nosuch")


def test_ctrl_c_in_vis_writes_nothing_and_exits_130(tmp_path, capsys, monkeypatch):
    """A KeyboardInterrupt at the third optimizer step: main wrote the partial image and exited 0."""
    real_step = torch.optim.Adam.step
    calls = []

    def step(self, *a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    out = tmp_path / "v.png"
    assert cli.main(["vis", "mixed3b:379", "--steps", "10", "--size", "48", "--quiet", "--out", str(out)]) == 130
    assert not out.exists() and not list(tmp_path.iterdir())
    assert "interrupted" in capsys.readouterr().err


def test_the_device_bridge_keeps_values_and_gradients(monkeypatch):
    """`place(model, "cuda")` moves the model; the model itself takes inputs to its parameters' device
    and gives results back on the input's (`Network.run`), so nothing is patched onto it. With the
    device check pointed at the CPU (no GPU here), the placed model must give the unplaced model's
    activations and input gradients exactly."""
    device = importlib.import_module("circuits.cli.device")

    monkeypatch.setattr(device, "check_device", lambda name: torch.device("cpu"))
    plain, bridged = weights.model("handbuilt"), device.place(weights.model("handbuilt"), "cuda")
    assert "_execute" not in vars(bridged) and vars(bridged).keys() == vars(plain).keys()
    x = torch.linspace(-117, 138, 3 * 64 * 64).reshape(1, 3, 64, 64)
    grads = []
    for m in (plain, bridged):
        xi = x.clone().requires_grad_(True)
        out = m.run_with_cache(xi, ["mixed3a"], detach=False)["mixed3a"]
        out[0, 81].sum().backward()
        grads.append((out.detach(), xi.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=0, atol=0)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=0, atol=0)
    assert grads[0][1].abs().sum() > 0
