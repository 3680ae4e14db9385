"""The README's Python examples run as written (on the embedded hand-built network)."""

import re
from pathlib import Path

import pytest

import weights

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has Python examples"
    monkeypatch.chdir(tmp_path)  # examples write files (e.g. curves.graphml)
    env: dict = {}
    for code in blocks:
        if "nsfwjs-inception-v3" in code and not _nsfwjs_available():
            continue  # the InceptionV3 example needs the npm package (tests/test_cli_v3.py covers it)
        exec(compile(code, str(README), "exec"), env)
    assert (tmp_path / "curves.graphml").exists()


def _nsfwjs_available() -> bool:
    from weights import tfjs

    try:
        tfjs.locate_package()
    except tfjs.TfjsFormatError:
        return False
    return True
