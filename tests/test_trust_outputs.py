"""No output ever destroys an input or another output (issue 21, item 1).

Every check here is against the bytes on disk before and after the command (an input
must be byte-identical afterwards), against `os.stat` (a device node stays a device,
a symlink stays a symlink), or against whether the expensive step ran at all (a
recorder patched in place of it): a refusal must come before any work.
"""

from __future__ import annotations

import importlib
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from circuits import cli
from circuits.core.files import atomic_path

FAMILY = {"layer": "mixed3b", "name": "two", "aliases": ["two"], "family": ["mixed3b:379", "mixed3b:385"]}


def _photo(path: Path, side: int = 120) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
    return path


def _refused(argv, capsys, *names) -> str:
    """The command exits 2 with one line naming every path in `names`."""
    assert cli.main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in names:
        assert str(n) in err, (n, err)
    return err


# --- an output equal to an input ------------------------------------------------------


def test_dataset_labels_json_over_the_hand_labels_is_refused(tmp_path, capsys, monkeypatch):
    """`dataset-labels --json labels.csv` on main replaced the hand labels; the labels file is unchanged."""
    monkeypatch.chdir(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_text("crop_id,label\n\"a@0,0,5\",curve\n")
    before = labels.read_bytes()
    (tmp_path / "scan.json").write_text("{}")
    _refused(["dataset-labels", "--scan", "scan.json", "--labels", "labels.csv", "--plot", "p.png",
              "--json", "labels.csv"], capsys, "--json", "--labels")
    assert labels.read_bytes() == before


def test_tune_json_over_its_family_file_is_refused_also_by_another_spelling(tmp_path, capsys, monkeypatch):
    """`tune fam.json --json ./sub/../fam.json` names the family file by a relative detour: refused, file unchanged."""
    monkeypatch.chdir(tmp_path)
    fam = tmp_path / "fam.json"
    fam.write_text(json.dumps(FAMILY))
    (tmp_path / "sub").mkdir()
    before = fam.read_bytes()
    _refused(["tune", "fam.json", "--angles", "4", "--no-progress", "--json", "sub/../fam.json"], capsys, "fam.json")
    assert fam.read_bytes() == before


def test_output_through_a_symlink_or_hard_link_to_an_input_is_refused(tmp_path, capsys, monkeypatch):
    """An output that is a symlink (or a hard link) to the input image is the input: refused."""
    monkeypatch.chdir(tmp_path)
    img = _photo(tmp_path / "cat.png")
    before = img.read_bytes()
    os.symlink("cat.png", tmp_path / "alias.png")
    os.link(img, tmp_path / "hard.png")
    for out in ("alias.png", "hard.png"):
        _refused(["attribute", "mixed3b:379", "--image", "cat.png", "--out", out], capsys, out, "--image cat.png")
    assert img.read_bytes() == before


@pytest.mark.parametrize("argv", [
    ["attribute", "mixed3b:379", "--image", "{img}", "--out", "{img}"],
    ["extract-curves", "mixed3b:curves", "--image", "{img}", "--out", "{img}"],
    ["trace-curve", "mixed3b:curves", "--image", "{img}", "--out", "{img}"],
])
def test_out_equal_to_image_is_refused(tmp_path, capsys, argv):
    """`--out` equal to `--image` replaced the photograph on main: refused, the photograph unchanged."""
    img = _photo(tmp_path / "photo.png")
    before = img.read_bytes()
    _refused([a.format(img=img) for a in argv], capsys, "--out", "--image")
    assert img.read_bytes() == before


def test_checkpoint_equal_to_json_is_refused_before_the_scan(tmp_path, capsys, monkeypatch):
    """`dataset --checkpoint X --json X`: the next run's advice would delete the result. Refused before scanning."""
    scan_mod = importlib.import_module("circuits.dataset.scan")  # the package re-exports a function `scan`

    calls = []
    monkeypatch.setattr(scan_mod, "scan", lambda *a, **k: calls.append(1))
    _refused(["dataset", "mixed3a:81", "--images", "skimage", "--no-plots", "--json", tmp_path / "r.json",
              "--checkpoint", tmp_path / "." / "r.json"], capsys, "--json", "--checkpoint")
    assert not calls


def test_dataset_plots_folder_equal_to_the_images_folder_is_refused(tmp_path, capsys, monkeypatch):
    """Figures written into the images folder would be scanned as photographs next time."""
    scan_mod = importlib.import_module("circuits.dataset.scan")  # the package re-exports a function `scan`

    monkeypatch.setattr(scan_mod, "scan", lambda *a, **k: pytest.fail("scanned before refusing"))
    _photo(tmp_path / "a.png")
    _refused(["dataset", "mixed3a:81", "--images", tmp_path, "--plots", tmp_path / "."], capsys, "--plots", "--images")


def test_dataset_sheet_pages_into_the_scanned_images_folder_are_refused(tmp_path, capsys):
    """dataset-sheet writes sheet-NN.png: into the folder of the scanned images it would mix with them."""
    scan = tmp_path / "scan.json"
    scan.write_text(json.dumps({"format": "circuits-dataset-scan/1", "source": {"kind": "folder", "root": str(tmp_path),
                                                                               "image_size": 224, "n_images": 1}}))
    _photo(tmp_path / "a.png")
    _refused(["dataset-sheet", "--scan", scan, "--out", tmp_path], capsys, "--out")


def test_two_outputs_naming_one_file_are_refused(tmp_path, capsys):
    """`tune --plot x.png --overlay x.png`: the second would replace the first."""
    _refused(["tune", "mixed3b:379", "--plot", tmp_path / "x.png", "--overlay", tmp_path / "x.png"], capsys,
             "--plot", "--overlay")


# --- folders, special files and symlinks -------------------------------------------------


def test_dataset_plots_naming_a_file_is_refused_before_the_scan(tmp_path, capsys, monkeypatch):
    """On main `dataset --plots FILE` scanned everything and then failed with a raw "File exists"."""
    scan_mod = importlib.import_module("circuits.dataset.scan")  # the package re-exports a function `scan`

    calls = []
    monkeypatch.setattr(scan_mod, "scan", lambda *a, **k: calls.append(1))
    f = tmp_path / "figs"
    f.write_text("not a folder")
    _refused(["dataset", "mixed3a:81", "--images", "skimage", "--plots", f], capsys, "--plots", "not a folder")
    assert not calls and f.read_text() == "not a folder"


def test_dataset_sheet_out_naming_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "sheet"
    f.write_text("x")
    (tmp_path / "scan.json").write_text("{}")
    _refused(["dataset-sheet", "--scan", tmp_path / "scan.json", "--out", f], capsys, "not a folder")


def _special(tmp_path: Path, kind: str) -> str:
    """A special file of `kind` made in tmp_path: never a system one such as /dev/null, which a
    writer that fails this test would replace for the whole machine."""
    path = str(tmp_path / f"{kind}.json")
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        import socket

        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.close()
    else:  # a character device equal to /dev/null (needs root, as the reported case did)
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("making a device node needs root; the fifo and socket cases check the same path")
    return path


@pytest.mark.parametrize("kind", ["fifo", "socket", "chardev"])
def test_special_files_are_refused_as_outputs(tmp_path, capsys, kind):
    """A device node, fifo or socket is no output file: refused before work, and it stays what it was
    (on main, as root, `--json /dev/full` replaced the device node with a plain file)."""
    path = _special(tmp_path, kind)
    mode = os.stat(path).st_mode
    _refused(["tune", "mixed3b:379", "--angles", "4", "--json", path], capsys, path)
    assert os.stat(path).st_mode == mode and not stat.S_ISREG(os.stat(path).st_mode)


@pytest.mark.parametrize("kind", ["fifo", "socket", "chardev"])
def test_atomic_path_refuses_special_files(tmp_path, kind):
    """The writer itself (not only the CLI) never renames a plain file onto a device node or fifo."""
    from circuits.core.files import special_file

    path = _special(tmp_path, kind)
    with pytest.raises(ValueError, match="not a file"):
        with atomic_path(path) as tmp:
            tmp.write_text("x")
    assert special_file(path) and not stat.S_ISREG(os.stat(path).st_mode)


def test_symlinked_output_is_written_through_to_its_target(tmp_path, capsys, monkeypatch):
    """`stimuli --out link.png` with link.png -> real/target.png: the link stays, the target holds the PNG."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real").mkdir()
    os.symlink("real/target.png", "link.png")
    assert cli.main(["stimuli", "--kind", "line", "--size", "16", "--out", "link.png"]) == 0
    assert os.path.islink("link.png") and os.readlink("link.png") == "real/target.png"
    with Image.open(tmp_path / "real" / "target.png") as im:
        assert im.size == (16, 16)
    assert not [p for p in (tmp_path / "real").iterdir() if p.name.startswith(".")]  # no temporary left


def test_atomic_path_keeps_the_permissions_of_the_file_it_replaces(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("old")
    os.chmod(p, 0o640)
    with atomic_path(p) as tmp:
        tmp.write_text("new")
    assert p.read_text() == "new" and stat.S_IMODE(os.stat(p).st_mode) == 0o640


def test_target_of_resolves_links_and_dotdot(tmp_path):
    from circuits.core.files import target_of

    (tmp_path / "a").mkdir()
    os.symlink(tmp_path / "a", tmp_path / "b")
    assert target_of(tmp_path / "b" / ".." / "a" / "f") == (tmp_path / "a" / "f").resolve()


# --- the declaration covers every command ---------------------------------------------------

_OUTPUT_WORDS = ("out", "json", "plot", "plots", "overlay", "multiples", "families_plot", "sheet", "checkpoint")
_INPUT_WORDS = ("image", "images", "scan", "labels", "load", "weights", "trained", "family_of", "early_of")


def _subparsers():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices


def test_every_file_option_of_every_command_is_declared():
    """Whatever command is added, an option that names a file it writes (or reads) is declared,
    so `check_io` compares it: the categories hold for options no test above lists."""
    missing = []
    for name, p in _subparsers().items():
        decl = p.get_default("_io")
        outputs, inputs, dests, _ = decl if decl else ((), (), {}, None)
        out_dests = {dests[o.option] for o in outputs}
        in_dests = {dests[i.option] for i in inputs}
        for a in p._actions:
            if a.nargs == 0 or not a.option_strings:
                continue
            if a.dest in _OUTPUT_WORDS and a.dest not in out_dests:
                missing.append(f"{name} {a.option_strings[0]} (output)")
            if a.dest in _INPUT_WORDS and a.dest not in in_dests | out_dests:
                missing.append(f"{name} {a.option_strings[0]} (input)")
    # `families --json` and `weights --json`, `layers --json` print to stdout (flags, nargs=0).
    assert not missing, missing


def test_check_io_compares_every_declared_output_with_every_declared_input(tmp_path):
    """For each command, each file output set equal to each existing file input is refused (no list of cases)."""
    import argparse

    from circuits.cli.paths import check_io

    f = tmp_path / "in.json"
    f.write_text(json.dumps(FAMILY))
    checked = 0
    for name, p in _subparsers().items():
        decl = p.get_default("_io")
        if not decl:
            continue
        outputs, inputs, dests, _ = decl
        for o in outputs:
            if o.folder:
                continue
            for i in inputs:
                if i.kind == "folder":
                    continue
                ns = argparse.Namespace(**{d: None for d in dests.values()}, _io=decl)
                value = f"w={f}" if i.kind == "pairs" else str(f)
                setattr(ns, dests[i.option], [value] if i.kind in ("units", "pairs") else value)
                setattr(ns, dests[o.option], str(f))
                with pytest.raises(ValueError, match="in.json"):
                    check_io(ns) if not o.suffixes or f.suffix in o.suffixes else _raise_suffix(f)
                checked += 1
    assert checked >= 30


def _raise_suffix(f):
    raise ValueError(f"suffix {f}")  # an output with another suffix cannot name the .json input at all
