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


def test_library_reads_the_models_graph_not_inceptionv1s_module_functions():
    """`circuits.core.graph`'s module-level functions (`graph.node`, `graph.receptive_field`, ...)
    are InceptionV1's graph: library code calling them would be silently wrong on another
    network. Library code asks `model.graph` / `unit.network` instead (InceptionV1 may still
    be named explicitly, e.g. as a default: `graph.INCEPTION_V1`)."""
    import ast

    from circuits.core import graph as graph_module

    aliases = {name for name in dir(graph_module)
               if getattr(graph_module, name) is not None
               and getattr(getattr(graph_module, name), "__self__", None) is graph_module.INCEPTION_V1}
    aliases.add("NODES")
    assert {"node", "branch_of", "receptive_field", "output_hw"} <= aliases
    root = Path(__file__).resolve().parents[1]
    bad = []
    for path in sorted((root / "circuits").rglob("*.py")):
        if path.name == "graph.py" and path.parent.name == "core":
            continue
        tree = ast.parse(path.read_text())
        names = set()
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and n.module == "circuits.core":
                names |= {a.asname or a.name for a in n.names if a.name == "graph"}
            elif isinstance(n, ast.Import):
                names |= {a.asname for a in n.names if a.name == "circuits.core.graph" and a.asname}
        for n in ast.walk(tree):
            if (isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in names
                    and n.attr in aliases):
                bad.append(f"{path.relative_to(root)}:{n.lineno}: {n.value.id}.{n.attr}")
    assert not bad, "InceptionV1 module functions used in library code:\n  " + "\n  ".join(bad)
