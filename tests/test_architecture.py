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


# --- op knowledge only in the op table; one walk over the graph ---------------------------

# The op-table methods that carry values from node to node (a forward, a window, a
# linearization, a kernel, bounds, channel masks): calling one per node in a loop is
# walking the graph, which circuits/core/walk.py does once for everybody.
_WALK_METHODS = frozenset({
    "forward", "forward_valid", "forward_channels", "prepare_channels", "zero_channels", "input_channels",
    "input_window", "linear", "compose", "support", "bounds",
})
_OWNERS = {"circuits/core/ops.py", "circuits/core/walk.py"}


def _op_classes() -> set[str]:
    from circuits.core import ops

    return {name for name, v in vars(ops).items() if isinstance(v, type) and issubclass(v, ops.Op)}


def _mentions_kind(node) -> bool:
    import ast

    return any(isinstance(n, ast.Attribute) and n.attr == "kind" for n in ast.walk(node))


def class_dispatch(source: str, classes: set[str]) -> list[tuple[int, str]]:
    """(line, what) of each dispatch on an op's class in `source`: ``isinstance(x, ops.LRN)``,
    ``isinstance(x, LRN)`` / ``issubclass`` with a class imported from circuits.core.ops,
    ``type(...kind...)`` in a comparison, ``x.kind.__class__``, and ``x.kind.kind == "relu"``."""
    import ast

    tree = ast.parse(source)
    ops_modules, imported = set(), set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module == "circuits.core":
            ops_modules |= {a.asname or a.name for a in n.names if a.name == "ops"}
        elif isinstance(n, ast.ImportFrom) and n.module == "circuits.core.ops":
            imported |= {a.asname or a.name for a in n.names if a.name in classes}
        elif isinstance(n, ast.Import):
            ops_modules |= {a.asname for a in n.names if a.name == "circuits.core.ops" and a.asname}

    def op_class(e) -> str | None:
        if isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name) and e.value.id in ops_modules \
                and e.attr in classes:
            return f"{e.value.id}.{e.attr}"
        if isinstance(e, ast.Name) and e.id in imported:
            return e.id
        if isinstance(e, ast.Tuple):
            return next((c for c in map(op_class, e.elts) if c), None)
        return None

    from circuits.core.ops import OPS

    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("isinstance", "issubclass") \
                and len(n.args) == 2 and op_class(n.args[1]):
            found.append((n.lineno, f"{n.func.id}(..., {op_class(n.args[1])})"))
        elif isinstance(n, ast.Compare):
            sides = [n.left, *n.comparators]
            if any(isinstance(s, ast.Call) and isinstance(s.func, ast.Name) and s.func.id == "type"
                   and any(_mentions_kind(a) for a in s.args) for s in sides):
                found.append((n.lineno, "type(<op>) compared"))
            elif any(isinstance(s, ast.Attribute) and s.attr == "kind" and isinstance(s.value, ast.Attribute)
                     and s.value.attr == "kind" for s in sides) \
                    and any(isinstance(s, ast.Constant) and s.value in OPS for s in ast.walk(n)):
                found.append((n.lineno, "<op>.kind compared with an op name"))
        elif isinstance(n, ast.Attribute) and n.attr == "__class__" and _mentions_kind(n.value):
            found.append((n.lineno, "<op>.__class__"))
    return sorted(found)


def _over_inputs(loop) -> bool:
    """A loop over one node's inputs (``for s in node.inputs``, ``zip(node.inputs, xs)``): a
    step's own business, not a walk over the graph."""
    import ast

    iters = [loop.iter] if isinstance(loop, (ast.For, ast.AsyncFor)) else \
        [g.iter for g in getattr(loop, "generators", [])]
    return bool(iters) and all(any(isinstance(n, ast.Attribute) and n.attr == "inputs" for n in ast.walk(i))
                               for i in iters)


def graph_loops(source: str) -> list[tuple[int, str]]:
    """(line, method) of each op-table call that carries values between nodes
    (`_WALK_METHODS`: ``x.kind.forward(...)``, ``.bounds``, ``.compose`` ...) made inside a
    ``for`` loop or a comprehension of the same function: a hand-written walk over the
    graph. A step handed to the walk is a function of its own, so it is not one; nor is a
    loop over one node's inputs (`_over_inputs`)."""
    import ast

    found = []

    def visit(node, in_loop: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)  # a step: called by whoever walks, not a loop of its own
                continue
            loop = in_loop or (isinstance(child, (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp,
                                                  ast.DictComp, ast.GeneratorExp)) and not _over_inputs(child))
            if (loop and isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                    and child.func.attr in _WALK_METHODS and isinstance(child.func.value, ast.Attribute)
                    and child.func.value.attr == "kind"):
                found.append((child.lineno, child.func.attr))
            visit(child, loop)

    visit(ast.parse(source), False)
    return sorted(found)


def test_no_dispatch_on_op_classes_outside_the_op_table():
    """What an op is, is asked of the op table (its attributes and methods), never of its
    class: ``isinstance(node.kind, ops.LRN)`` elsewhere breaks on the next op that behaves
    like an LRN. On the code before the walk this caught
    circuits/analysis/expanded.py: ``isinstance(g.node(p).kind, ops.LRN)`` (twice) and
    ``isinstance(k, ops.Concat)`` (now `takes_operating_point` and `joins_branches`)."""
    classes = _op_classes()
    bad = []
    for path in sorted((ROOT / "circuits").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "circuits/core/ops.py":
            continue
        bad += [f"{rel}:{line}: {what}" for line, what in class_dispatch(path.read_text(), classes)]
    assert not bad, "dispatch on op classes outside circuits/core/ops.py:\n  " + "\n  ".join(bad)


def test_only_the_walk_walks_the_graph():
    """Node-by-node evaluation is written once (circuits/core/walk.py): elsewhere an
    op-table call that carries values between nodes is made only by a step the walk calls.
    On the code before the walk this caught the six loops the walk replaced:
    core/model.py `_execute` (forward), core/bounds.py `graph_bounds` (bounds),
    tuning/cone.py `_cone_windows` (input_window), `zero_channels`, `needed_channels`
    (input_channels), `_plan` (prepare_channels) and `centre_values` (input_window,
    forward_channels), editing/paths.py `linearized_path` (linear) and
    analysis/expanded.py `_support` (support), `_compose` (compose) and `_autograd` (linear)."""
    bad = []
    for path in sorted((ROOT / "circuits").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in _OWNERS:
            continue
        bad += [f"{rel}:{line}: .kind.{m}(...) in a loop" for line, m in graph_loops(path.read_text())]
    assert not bad, "graph walks outside circuits/core/walk.py:\n  " + "\n  ".join(bad)


def test_the_checks_catch_what_they_name():
    """Each check fails on the code it names (so that it cannot pass by looking at nothing)."""
    classes = _op_classes()
    old = (
        "from circuits.core import ops\n"
        "from circuits.core.ops import LRN as L\n"
        "def f(g, n, k):\n"
        "    a = isinstance(n.kind, ops.LRN)\n"
        "    b = [isinstance(k, (int, L)) for k in g]\n"
        "    c = type(n.kind) is ops.ReLU\n"
        "    d = n.kind.kind == 'relu'\n"
        "    e = isinstance(k, ops.UnsupportedOpError)\n"  # an exception class: no op dispatch
        "    return n.kind.__class__\n"
    )
    assert [line for line, _ in class_dispatch(old, classes)] == [4, 5, 6, 7, 9]
    loops = (
        "def run(g, env, step):\n"
        "    for n in g.nodes:\n"
        "        env[n.name] = n.kind.forward(n, [env[i] for i in n.inputs], None)\n"
        "    b = {n.name: n.kind.bounds(n, [], None) for n in g.nodes}\n"
        "    def ok(n, xs):\n"
        "        return n.kind.forward(n, xs, None)\n"
        "    for x in range(3):\n"
        "        n = g.node('a'); n.kind.kernel_slice(n, None, [0], [0])\n"
        "    w = [n.kind.input_window(n, None, s) for s in n.inputs]\n"
        "    for n in reversed(g.nodes):\n"
        "        w = [n.kind.input_window(n, None, s) for s in n.inputs]\n"
        "    return walk.forward(g, ('a',), {}, ok)\n"
    )
    assert graph_loops(loops) == [(3, "forward"), (4, "bounds"), (11, "input_window")]
