"""InceptionV1 built from `circuits.core.graph`, with a hook point at every named tensor.

The forward pass is an interpreter over the graph's nodes: each node's op is applied to
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
import warnings
from typing import Iterable, Iterator, Mapping

import torch
from torch import nn

from circuits.core import graph, walk
from circuits.core.inputs import to_model_input
from circuits.core.units import Unit, parse_unit
from circuits.core.inception_v3 import INCEPTION_V3
from circuits.core.hooks import HookFn, HookHandle, HookPoint, HookPoints, HookSpec, temporary_hooks

__all__ = ["Network", "InceptionV1", "InceptionV3", "check_state_dict", "StateDictError"]



class StateDictError(ValueError):
    """A checkpoint whose keys or shapes do not match the graph."""


def check_state_dict(state_dict: Mapping[str, torch.Tensor], network: graph.Graph) -> None:
    """Raise StateDictError naming every missing, extra or misshapen tensor of `network`.

    >>> check_state_dict({}, graph.INCEPTION_V1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    circuits.core.model.StateDictError: checkpoint does not match InceptionV1: 116 missing (conv2d0_pre_relu_conv.weight, ...
    """
    expected = network.parameter_shapes()
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
        raise StateDictError(f"checkpoint does not match {network.name}: " + "; ".join(problems))
    bad = [k for k, v in state_dict.items() if not torch.is_floating_point(v)]
    if bad:
        raise StateDictError(f"checkpoint tensors must be floating point: {', '.join(bad[:6])}")


def _grad_mode(x, grad: bool | None):
    """Record autograd only in gradient code: grad=True, or grad enabled and `x` requiring grad."""
    if grad is None:
        grad = isinstance(x, torch.Tensor) and x.requires_grad
    return contextlib.nullcontext() if grad and torch.is_grad_enabled() else torch.no_grad()


class Network(nn.Module):
    """A declared network (`graph`) with TensorFlow numerics and a hook point at every tensor.

    Subclasses name the graph (`InceptionV1`); everything else -- parameters, hook
    points, truncated runs, input checks -- derives from it. Weights start at zero:
    use `weights.model(source)` for a ready network.
    """

    #: the network this model runs (its declaration and everything derived from it)
    graph: graph.Graph = graph.INCEPTION_V1

    def __init__(self, state_dict: Mapping[str, torch.Tensor] | None = None, *,
                 graph: graph.Graph | None = None, modules: Mapping[str, nn.Module] | None = None,
                 families: Iterable = (), source: str | None = None):
        """graph: the network to run, for a graph made at run time (`circuits.trace`);
        default the class's. modules: ready parameter modules by `node.param` (a traced
        network's, an opaque node's code); the others start at zero. families: the
        families this network defines (`circuits.families`: the hand-built banks), held
        by the model (`register_family(model, ...)` adds to them). source: where the
        weights came from (a weight source's name or a file), for records and reports."""
        super().__init__()
        #: the families this model holds (its own; the published ones belong to its graph)
        self.families: list = list(families)
        #: the weight source these weights came from (None: built here)
        self.source = source
        if graph is not None:
            self.graph = graph
        g = self.graph
        modules = dict(modules or {})
        for n in g.nodes:
            if n.param is None:
                continue
            if n.param in modules:
                self.add_module(n.param, modules.pop(n.param))
            elif n.kind.has_params:
                self.add_module(n.param, n.kind.make_module(n, g.node(n.inputs[0]).channels))
            else:
                raise ValueError(f"{g.name}: node {n.name} ({n.op}) needs its module {n.param!r}, which was not given")
        if modules:
            raise ValueError(f"modules for no node of {g.name}: {', '.join(sorted(modules))}")
        self.hook_points = HookPoints({n.name: HookPoint(n.name) for n in g.nodes})
        self.warn_on_unit_range = True
        # Records of applied weight edits, oldest first (managed by circuits.editing.edits).
        self.applied_edits: list = []
        if state_dict is not None:
            self.load_weights(state_dict)

    # --- weights -----------------------------------------------------------

    @property
    def input_range(self) -> tuple[float, float]:
        """(low, high) of the RGB input this network expects."""
        return self.graph.input_range

    def unit(self, spec) -> "Unit":
        """A unit id of this network, validated against its graph.

        >>> InceptionV3().unit("mixed2:67").branch
        'activation_22'
        """
        return parse_unit(spec, self.graph)

    def to_input(self, images) -> torch.Tensor:
        """Images (uint8 in [0, 255] or floats in [0, 1]) in this network's input range."""
        return to_model_input(images, self.input_range)

    def load_weights(self, state_dict: Mapping[str, torch.Tensor]) -> "Network":
        """Copy a checked state dict into the model (keys and shapes must match exactly)."""
        if self.applied_edits:
            raise ValueError(
                f"the model has {len(self.applied_edits)} weight edits applied; undo them first "
                "(circuits.editing.edits.undo_all(model)) so that they are not silently lost"
            )
        check_state_dict(state_dict, self.graph)
        self.load_state_dict(dict(state_dict), strict=True)
        return self

    # --- weight edits (circuits.editing.edits) ------------------------------------

    @property
    def is_edited(self) -> bool:
        """Whether any weight edit is applied."""
        return bool(self.applied_edits)

    # The edit objects (circuits.editing) do the work; the model only keeps their records
    # (`applied_edits`), so the core does not depend on the editing package.

    @property
    def edits(self) -> list[str]:
        """One line per applied weight edit, oldest first."""
        return [r.description for r in self.applied_edits]

    def apply_edit(self, edit) -> None:
        """Apply a `circuits.editing.Edit` permanently (until `undo_edit`)."""
        if not callable(getattr(edit, "apply", None)):
            raise TypeError(f"expected an Edit (e.g. WeightEdit, Reexpress), got {type(edit).__name__}")
        edit.apply(self)

    def undo_edit(self, edit=None) -> None:
        """Undo `edit`, or the last edit applied."""
        if edit is None:
            if not self.applied_edits:
                raise ValueError("cannot undo: the model has no edits applied")
            edit = self.applied_edits[-1].edit
        edit.undo(self)

    @contextlib.contextmanager
    def editing(self, *edits) -> Iterator["Network"]:
        """Context manager: apply `edits` in order for the block; undone newest first,
        also on an exception (including one raised while applying a later edit)."""
        if len(edits) == 1 and not callable(getattr(edits[0], "apply", None)):
            edits = tuple(edits[0])
        with contextlib.ExitStack() as stack:
            for e in edits:
                stack.enter_context(e.applied(self))
            yield self

    def extra_repr(self) -> str:
        return f"edited: {len(self.applied_edits)} weight edits" if self.applied_edits else ""

    # --- hooks -------------------------------------------------------------

    @property
    def hook_names(self) -> list[str]:
        """Every hook name, in execution order."""
        return list(self.hook_points.keys())

    @contextlib.contextmanager
    def hooks(self, hooks: Iterable[HookSpec]) -> Iterator[list[HookHandle]]:
        """Temporary hooks, removed when the block ends (also on an exception); the hooks of
        applied edits stay (`edit_hooks`).

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
        self.graph.node(name)
        return self.hook_points[name].add(fn, permanent=True)

    def remove_hook(self, handle: HookHandle) -> None:
        hp = self.hook_points[handle.name]
        if any(h.id == handle.id for h in hp.edit_hooks):
            raise ValueError(f"{handle!r} belongs to an applied edit; undo the edit to remove it (model.undo_edit(edit))")
        if not any(h.id == handle.id for h in hp.hooks):
            raise ValueError(f"{handle!r} is not on this model (already removed?)")
        hp.remove(handle)

    @property
    def permanent_hooks(self) -> list[HookHandle]:
        return [h for hp in self.hook_points.values() for h in hp.hooks if h.permanent]

    @property
    def edit_hooks(self) -> list[HookHandle]:
        """The hooks of applied edits: part of the edited network, removed only by undoing the edit."""
        return [h for hp in self.hook_points.values() for h in hp.edit_hooks]

    @property
    def active_hooks(self) -> list[HookHandle]:
        """Every hook currently attached: temporary, permanent and the edits' own."""
        return [h for hp in self.hook_points.values() for h in (*hp.edit_hooks, *hp.hooks)]

    def clear_hooks(self) -> None:
        """Remove every permanent hook of the user's (temporary ones belong to their `with`
        block; an applied edit's hooks belong to the edit and stay until it is undone)."""
        for h in self.permanent_hooks:
            self.hook_points[h.name].remove(h)

    # --- running -----------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network's output (`graph.output`; InceptionV1: softmax2 probabilities [N, 1008])."""
        return self.run(x)

    def run(self, x: torch.Tensor, until: str | None = None, *, grad: bool | None = None) -> torch.Tensor:
        """The tensor `until` (default: the network's output), computing only what it needs.

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
        until = until or self.graph.output
        with _grad_mode(x, grad):
            return self._execute(self._to_device(x), (until,))[until].to(x.device)

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
            out = self._execute(self._to_device(x), tuple(names))
            return {n: (out[n].detach() if detach else out[n]).clone().to(x.device) for n in names}

    def run_with_hooks(
        self, x: torch.Tensor, hooks: Iterable[HookSpec], until: str | None = None, *, grad: bool | None = None
    ) -> torch.Tensor:
        """Run to `until` with temporary hooks, removed afterwards whatever happens."""
        with self.hooks(hooks):
            return self.run(x, until, grad=grad)

    # --- the interpreter ---------------------------------------------------

    def _to_device(self, x):
        """`x` on the device of the model's parameters. The library builds its inputs
        (stimuli, images, optimized parameters) on the CPU; a model moved to a GPU
        (``model.to("cuda")``) takes them there and gives each result back on the
        input's device, with gradients flowing through the copies."""
        if not isinstance(x, torch.Tensor):
            return x  # _check_input names the bad type
        p = next(self.parameters(), None)
        return x if p is None or p.device == x.device else x.to(p.device)

    def _check_input(self, x: torch.Tensor, targets: tuple[str, ...]) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor of shape [N, 3, H, W], got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"input must have shape [N, 3, H, W] (RGB), got {list(x.shape)}")
        lo_in, hi_in = self.input_range
        if not torch.is_floating_point(x):
            raise TypeError(
                f"input must be floating point in {self.graph.name}'s range [{lo_in:g}, {hi_in:g}], got {x.dtype}; "
                "use model.to_input(images) to convert uint8 or [0, 1] images"
            )
        for t in targets:
            self.graph.check_input_size(t, tuple(x.shape[-2:]))
        if self.warn_on_unit_range and x.numel() and not x.requires_grad and (lo_in, hi_in) != (0.0, 1.0):
            lo, hi = torch.aminmax(x.detach())
            if lo >= 0 and hi <= 1 and hi > lo:
                warnings.warn(
                    f"all input values lie in [0, 1], but {self.graph.name} expects RGB in [{lo_in:g}, {hi_in:g}]; "
                    "convert with model.to_input(images)",
                    stacklevel=4,
                )

    def _execute(self, x: torch.Tensor, targets: tuple[str, ...]) -> dict[str, torch.Tensor]:
        for t in targets:
            self.graph.node(t)
        self._check_input(x, targets)
        hp = self.hook_points

        # One step of the walk (circuits.core.walk owns the order and frees each tensor
        # after its last use): the node's op, then its hook point.
        def step(n: graph.Node, xs: list) -> torch.Tensor:
            return hp[n.name](n.kind.forward(n, xs, getattr(self, n.param) if n.param else None))

        return walk.forward(self.graph, targets, {graph.INPUT: hp[graph.INPUT](x)}, step)


class InceptionV1(Network):
    """Lucid's InceptionV1 ("inception5h") with TensorFlow numerics and a hook point at every tensor.

    The input is RGB in Lucid's range [-117, 138] (pixels in [0, 255] minus 117); see
    `circuits.core.inputs.to_model_input`. State-dict keys are those of the PyTorch port's
    `inception5h.pth`.

    >>> model = InceptionV1()
    >>> model.run(torch.zeros(2, 3, 224, 224)).shape
    torch.Size([2, 1008])
    """

    graph = graph.INCEPTION_V1


class InceptionV3(Network):
    """keras.applications' InceptionV3 trunk (through mixed10) with Keras's tensor names.

    The input is RGB in [-1, 1] (Keras's x / 127.5 - 1), at least 75 px; ``conv2d_N`` is
    the conv with its batch norm folded in (pre-ReLU), ``activation_N`` its ReLU. See
    `circuits.core.inception_v3`; `weights.model("nsfwjs-inception-v3")` loads trained
    weights.

    >>> model = InceptionV3()
    >>> model.run(torch.zeros(1, 3, 75, 75)).shape
    torch.Size([1, 2048, 1, 1])
    """

    graph = INCEPTION_V3
