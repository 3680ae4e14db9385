"""InceptionV1 built from `circuits.core.graph`, with a hook point at every named tensor.

The forward pass is an interpreter over `graph.NODES`: each node's op is applied to
its inputs and the result passes through that node's `HookPoint`. A run computes only
the ancestors of the tensors it was asked for and stops after the last of them.

Example:
    >>> import torch
    >>> from circuits import InceptionV1
    >>> model = InceptionV1()                       # zero weights; see weights.model()
    >>> x = torch.zeros(1, 3, 224, 224)
    >>> cache = model.run_with_cache(x, ["mixed3b"])  # stops after mixed3b
    >>> cache["mixed3b"].shape
    torch.Size([1, 480, 28, 28])
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Iterable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from circuits.core import graph
from circuits.core import ops
from circuits.core.hooks import HookFn, HookHandle, HookPoint, HookSpec, temporary_hooks

__all__ = ["InceptionV1", "check_state_dict", "StateDictError"]

OUTPUT = "softmax2"


class StateDictError(ValueError):
    """A checkpoint whose keys or shapes do not match the graph."""


def check_state_dict(state_dict: Mapping[str, torch.Tensor]) -> None:
    """Raise StateDictError naming every missing, extra or misshapen tensor.

    >>> check_state_dict({})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    circuits.core.model.StateDictError: checkpoint does not match InceptionV1: 116 missing (conv2d0_pre_relu_conv.weight, ...
    """
    expected = graph.parameter_shapes()
    missing = [k for k in expected if k not in state_dict]
    extra = [k for k in state_dict if k not in expected]
    wrong = [
        f"{k}: {tuple(v.shape)} (expected {expected[k]})"
        for k, v in state_dict.items()
        if k in expected and tuple(getattr(v, "shape", ())) != expected[k]
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", extra), ("misshapen", wrong)):
        if items:
            shown = ", ".join(items[:6]) + (", ..." if len(items) > 6 else "")
            problems.append(f"{len(items)} {label} ({shown})")
    if problems:
        raise StateDictError("checkpoint does not match InceptionV1: " + "; ".join(problems))
    bad = [k for k, v in state_dict.items() if not torch.is_floating_point(v)]
    if bad:
        raise StateDictError(f"checkpoint tensors must be floating point: {', '.join(bad[:6])}")


def _grad_mode(x, grad: bool | None):
    """Record autograd only in gradient code: grad=True, or grad enabled and `x` requiring grad."""
    if grad is None:
        grad = isinstance(x, torch.Tensor) and x.requires_grad
    return contextlib.nullcontext() if grad and torch.is_grad_enabled() else torch.no_grad()


def _zeros_conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    conv = torch.nn.utils.skip_init(nn.Conv2d, cin, cout, k)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
    return conv


class InceptionV1(nn.Module):
    """Lucid's InceptionV1 with TensorFlow numerics and a hook point at every tensor.

    The input is RGB in Lucid's range [-117, 138] (pixels in [0, 255] minus 117); see
    `circuits.core.inputs.to_model_input`. State-dict keys are those of the PyTorch port's
    `inception5h.pth`. Weights start at zero: use `weights.model(source)` for a
    ready network.

    >>> model = InceptionV1()
    >>> model.run(torch.zeros(2, 3, 224, 224)).shape
    torch.Size([2, 1008])
    """

    def __init__(self, state_dict: Mapping[str, torch.Tensor] | None = None):
        super().__init__()
        for n in graph.NODES:
            if n.op == "conv":
                cin = graph.node(n.inputs[0]).channels
                self.add_module(n.param, _zeros_conv(cin, n.channels, n.kernel))
            elif n.op == "linear":
                cin = graph.node(n.inputs[0]).channels
                lin = torch.nn.utils.skip_init(nn.Linear, cin, n.channels)
                with torch.no_grad():
                    lin.weight.zero_()
                    lin.bias.zero_()
                self.add_module(n.param, lin)
        self.hook_points = nn.ModuleDict({n.name: HookPoint(n.name) for n in graph.NODES})
        self.warn_on_unit_range = True
        # Records of applied weight edits, oldest first (managed by circuits.editing.edits).
        self.applied_edits: list = []
        if state_dict is not None:
            self.load_weights(state_dict)

    # --- weights -----------------------------------------------------------

    def load_weights(self, state_dict: Mapping[str, torch.Tensor]) -> "InceptionV1":
        """Copy a checked state dict into the model (keys and shapes must match exactly)."""
        if self.applied_edits:
            raise ValueError(
                f"the model has {len(self.applied_edits)} weight edits applied; undo them first "
                "(circuits.editing.edits.undo_all(model)) so that they are not silently lost"
            )
        check_state_dict(state_dict)
        self.load_state_dict(dict(state_dict), strict=True)
        return self

    # --- weight edits (circuits.editing.edits) ------------------------------------

    @property
    def is_edited(self) -> bool:
        """Whether any weight edit is applied."""
        return bool(self.applied_edits)

    @property
    def edits(self) -> list[str]:
        """One line per applied weight edit, oldest first."""
        from circuits.editing.edits import descriptions

        return descriptions(self)

    def apply_edit(self, edit) -> None:
        """Apply a `circuits.editing.edits.Edit` permanently (until `undo_edit`)."""
        from circuits.editing.edits import apply_edit

        apply_edit(self, edit)

    def undo_edit(self, edit=None) -> None:
        """Undo `edit`, or the last edit applied."""
        from circuits.editing.edits import undo_edit

        undo_edit(self, edit)

    def editing(self, *edits):
        """Context manager: apply `edits` for the block, undone also on an exception."""
        from circuits.editing.edits import editing

        return editing(self, *edits)

    def extra_repr(self) -> str:
        return f"edited: {len(self.applied_edits)} weight edits" if self.applied_edits else ""

    # --- hooks -------------------------------------------------------------

    @property
    def hook_names(self) -> list[str]:
        """Every hook name, in execution order."""
        return list(self.hook_points.keys())

    @contextlib.contextmanager
    def hooks(self, hooks: Iterable[HookSpec]) -> Iterator[list[HookHandle]]:
        """Temporary hooks, removed when the block ends (also on an exception).

        >>> m = InceptionV1()
        >>> with m.hooks([("conv2d0", lambda x, h: x + 1)]):
        ...     out = m.run(torch.zeros(1, 3, 32, 32), until="conv2d0")
        >>> float(out.detach().min()), m.permanent_hooks
        (1.0, [])
        """
        with temporary_hooks(self.hook_points, hooks) as handles:
            yield handles

    def add_hook(self, name: str, fn: HookFn) -> HookHandle:
        """Add a permanent hook; it stays until `remove_hook(handle)` or `clear_hooks()`."""
        graph.node(name)
        return self.hook_points[name].add(fn, permanent=True)

    def remove_hook(self, handle: HookHandle) -> None:
        hp = self.hook_points[handle.name]
        if not any(h.id == handle.id for h in hp.hooks):
            raise ValueError(f"{handle!r} is not on this model (already removed?)")
        hp.remove(handle)

    @property
    def permanent_hooks(self) -> list[HookHandle]:
        return [h for hp in self.hook_points.values() for h in hp.hooks if h.permanent]

    @property
    def active_hooks(self) -> list[HookHandle]:
        """Every hook currently attached, temporary and permanent."""
        return [h for hp in self.hook_points.values() for h in hp.hooks]

    def clear_hooks(self) -> None:
        """Remove every permanent hook (temporary ones belong to their `with` block)."""
        for h in self.permanent_hooks:
            self.hook_points[h.name].remove(h)

    # --- running -----------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """softmax2 probabilities, shape [N, 1008]."""
        return self.run(x)

    def run(self, x: torch.Tensor, until: str = OUTPUT, *, grad: bool | None = None) -> torch.Tensor:
        """The tensor `until`, computing only what it needs.

        Outside gradient code the result carries no autograd graph (no
        ``requires_grad``, no memory kept for a backward pass). A graph is recorded
        when gradients are enabled and `x` requires grad (feature visualization,
        gradients with respect to the input), or when ``grad=True`` (e.g.
        gradients with respect to the weights or to a hooked tensor).

        >>> m = InceptionV1()
        >>> m.run(torch.zeros(1, 3, 32, 32), until="conv2d0").requires_grad
        False
        >>> x = torch.zeros(1, 3, 32, 32, requires_grad=True)
        >>> m.run(x, until="conv2d0").requires_grad
        True
        """
        with _grad_mode(x, grad):
            return self._execute(x, (until,))[until]

    def run_with_cache(
        self, x: torch.Tensor, names: Iterable[str] | str, detach: bool = True, *, grad: bool | None = None
    ) -> dict[str, torch.Tensor]:
        """Copies of the named tensors only; the run stops after the last of them.

        grad: as in `run` (with ``detach=False``, the tensors keep their graph).

        >>> m = InceptionV1()
        >>> sorted(m.run_with_cache(torch.zeros(1, 3, 64, 64), ["conv2d0", "maxpool0"]))
        ['conv2d0', 'maxpool0']
        """
        names = [names] if isinstance(names, str) else list(names)
        if not names:
            raise ValueError("run_with_cache needs at least one hook name (see `circuits layers`)")
        with _grad_mode(x, grad):
            out = self._execute(x, tuple(names))
            return {n: (out[n].detach() if detach else out[n]).clone() for n in names}

    def run_with_hooks(
        self, x: torch.Tensor, hooks: Iterable[HookSpec], until: str = OUTPUT, *, grad: bool | None = None
    ) -> torch.Tensor:
        """Run to `until` with temporary hooks, removed afterwards whatever happens."""
        with self.hooks(hooks):
            return self.run(x, until, grad=grad)

    # --- the interpreter ---------------------------------------------------

    @staticmethod
    @functools.lru_cache(maxsize=256)
    def _plan(targets: tuple[str, ...]) -> tuple[tuple[graph.Node, tuple[str, ...]], ...]:
        """Nodes to run for `targets`, each with the tensors that can be freed after it."""
        needed: set[str] = set()
        for t in targets:
            needed |= graph.ancestors(t)
        last = max(graph.index(t) for t in targets)
        order = [n for n in graph.NODES[: last + 1] if n.name in needed]
        last_use: dict[str, int] = {}
        for i, n in enumerate(order):
            for src in n.inputs:
                last_use[src] = i
        keep = set(targets)
        free: list[list[str]] = [[] for _ in order]
        for name, i in last_use.items():
            if name not in keep:
                free[i].append(name)
        return tuple((n, tuple(f)) for n, f in zip(order, free))

    def _check_input(self, x: torch.Tensor, targets: tuple[str, ...]) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor of shape [N, 3, H, W], got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"input must have shape [N, 3, H, W] (RGB), got {list(x.shape)}")
        if not torch.is_floating_point(x):
            raise TypeError(
                f"input must be floating point in Lucid's range [-117, 138], got {x.dtype}; "
                "use circuits.to_model_input(images) to convert uint8 or [0, 1] images"
            )
        for t in targets:
            graph.check_input_size(t, tuple(x.shape[-2:]))
        if self.warn_on_unit_range and x.numel() and not x.requires_grad:
            lo, hi = torch.aminmax(x.detach())
            if lo >= 0 and hi <= 1 and hi > lo:
                warnings.warn(
                    "all input values lie in [0, 1], but InceptionV1 expects RGB in [-117, 138] "
                    "(pixels 0..255 minus 117); convert with circuits.to_model_input(images)",
                    stacklevel=4,
                )

    def _execute(self, x: torch.Tensor, targets: tuple[str, ...]) -> dict[str, torch.Tensor]:
        for t in targets:
            graph.node(t)
        self._check_input(x, targets)
        env: dict[str, torch.Tensor] = {graph.INPUT: self.hook_points[graph.INPUT](x)}
        for n, free in self._plan(targets)[1:]:
            env[n.name] = self.hook_points[n.name](self._apply_node(n, env))
            for f in free:
                del env[f]
        return env

    def _apply_node(self, n: graph.Node, env: dict[str, torch.Tensor]) -> torch.Tensor:
        op = n.op
        if op == "conv":
            m = getattr(self, n.param)
            return ops.conv2d_same(env[n.inputs[0]], m.weight, m.bias, n.stride)
        if op == "relu":
            return F.relu(env[n.inputs[0]])
        if op == "maxpool":
            return ops.max_pool_same(env[n.inputs[0]], n.kernel, n.stride)
        if op == "lrn":
            return ops.lrn(env[n.inputs[0]])
        if op == "concat":
            return torch.cat([env[i] for i in n.inputs], dim=1)
        if op == "avgpool":
            return ops.avg_pool_valid(env[n.inputs[0]], n.kernel, n.stride)
        if op == "linear":
            x = env[n.inputs[0]]
            if x.shape[-2:] != (1, 1):
                raise ValueError(
                    f"{n.name} needs {n.inputs[0]} to be 1x1, got {x.shape[-2]}x{x.shape[-1]}: "
                    "use an input of 193 to 224 pixels for the classifier (any size works up to mixed5b)"
                )
            m = getattr(self, n.param)
            return F.linear(x.flatten(1), m.weight, m.bias)
        if op == "softmax":
            return F.softmax(env[n.inputs[0]], dim=1)
        raise AssertionError(f"unknown op {op}")  # pragma: no cover
