"""The architecture as tests: import layering (import-linter contracts in pyproject.toml)
and op dispatch only in the op table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    """lint-imports checks the contracts of pyproject.toml against the real import graph:
    no library module imports weights/handbuilt/the CLI, and packages form layers."""
    pytest.importorskip("importlinter")
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def _dispatch_pattern() -> re.Pattern:
    """An op kind compared by name: `n.op == "conv"`, `node.op in ("relu", ...)`, `op != "lrn"`."""
    from circuits.core.ops import OPS

    kinds = "|".join(OPS)
    return re.compile(rf"""\bop\b\s*(==|!=|(not\s+)?in)\s*[(\[{{]?\s*["']({kinds})["']""")


def test_op_dispatch_lives_only_in_the_op_table():
    """What an op does is written once, in circuits/core/ops.py: nothing else branches on op names."""
    dispatch = _dispatch_pattern()
    offenders = []
    for path in sorted([*ROOT.glob("circuits/**/*.py"), *ROOT.glob("handbuilt/*.py"), *ROOT.glob("experiments/*.py")]):
        if path == ROOT / "circuits/core/ops.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if dispatch.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "op dispatch outside the op table:\n" + "\n".join(offenders)
