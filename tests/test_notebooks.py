"""The notebooks of docs/notebooks/ (one per section of "Curve Detectors" and one for "Curve Circuits"):
stored without outputs, importing only the public API, and executed here with nbclient.

Each notebook runs twice: its hand-built cells (every cell not tagged `inceptionv3`; the hand-built
network ships with the package, so they always run), then its InceptionV3 cells (the setup cell and
the cells tagged `inceptionv3`). The second run is skipped only where the nsfwjs@4.4.0 package that
holds InceptionV3's weights cannot be found or fetched (`weights.tfjs.TfjsFormatError`, with its
message as the reason); any error inside a cell fails the test.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the test extra (pip install -e '.[test]') installs nbformat")
nbclient = pytest.importorskip("nbclient", reason="the test extra (pip install -e '.[test]') installs nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "docs" / "notebooks").glob("*.ipynb"))
V3_TAG = "inceptionv3"


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _execute(path: Path, keep) -> None:
    nb = nbformat.read(path, as_version=4)
    setup = _code_cells(nb)[0]
    nb.cells = [c for c in nb.cells if c is setup or (c.cell_type == "code" and keep(c))]
    # the kernel imports this checkout's circuits, whatever is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)


def test_there_is_a_notebook_per_section():
    """Five notebooks: the four sections of "Curve Detectors" the issue lists and "Curve Circuits"."""
    assert len(NOTEBOOKS) == 5, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs_and_public_api_only(path):
    """Stored clean (no outputs, no execution counts), each with InceptionV3 cells; imports name no
    private module or name (`_x`), nor the test suite or the hand-built network's construction code."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    cells = _code_cells(nb)
    assert all(not c.outputs and c.execution_count is None for c in cells), f"{path.name} is stored with outputs"
    assert any(V3_TAG in _tags(c) for c in cells), f"{path.name} has no InceptionV3 cells"
    for c in cells:
        for node in ast.walk(ast.parse(c.source)):
            if isinstance(node, ast.ImportFrom):
                mods, names = [node.module or ""], [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                mods, names = [a.name for a in node.names], []
            else:
                continue
            for m in mods:
                assert not any(part.startswith("_") for part in m.split(".")), f"{path.name} imports {m}"
                assert m.split(".")[0] not in ("tests", "handbuilt"), f"{path.name} imports {m}"
            assert not any(n.startswith("_") for n in names), f"{path.name} imports private {names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_hand_built_cells_execute(path):
    """Every cell not tagged inceptionv3 runs without error on the hand-built network."""
    _execute(path, lambda c: V3_TAG not in _tags(c))


@pytest.fixture(scope="module")
def nsfwjs_package():
    """The nsfwjs@4.4.0 package (cached tarball, fetched with npm if absent); skip only if it cannot be had."""
    from weights import tfjs

    try:
        return tfjs.locate_package()
    except tfjs.TfjsFormatError as e:
        pytest.skip(f"InceptionV3 cells not run: nsfwjs@4.4.0 is not available ({e})")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_inceptionv3_cells_execute(path, nsfwjs_package):
    """The setup cell and every inceptionv3 cell run without error on the trained InceptionV3."""
    _execute(path, lambda c: V3_TAG in _tags(c))
