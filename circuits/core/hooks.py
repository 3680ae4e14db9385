"""Named identity modules at every tensor, and hooks that are always removed.

A `HookPoint` sits on every tensor the graph names. A hook is a function
`fn(activation, hook_point) -> Tensor | None`; returning a tensor replaces the
activation. Temporary hooks live only inside a `with` block (`HookPoints.hooks`),
and are removed when it ends, also when an exception is raised; permanent hooks
are added and removed explicitly and can be listed.

Hooks owned by an applied weight edit (`circuits.editing`) are kept apart from the
user's (`HookPoint.edit_hooks`): they are part of the network the model computes,
so they run before the user's hooks (which see and may change the edited tensor),
or, for hooks that only read a tensor (`reads_output`), after them, so that they
see the value the rest of the network sees. Clearing or ending the user's hooks
never touches them; they go when their edit is undone.

Example:
    >>> hp = HookPoint("conv2d0")
    >>> with temporary_hooks({"conv2d0": hp}, [("conv2d0", lambda x, h: x * 0)]):
    ...     len(hp.hooks)
    1
    >>> len(hp.hooks)
    0
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping

import torch
from torch import nn

from circuits.core import graph

HookFn = Callable[[torch.Tensor, "HookPoint"], "torch.Tensor | None"]
HookSpec = tuple[str, HookFn]

__all__ = ["HookPoint", "HookPoints", "HookHandle", "HookFn", "HookSpec", "temporary_hooks"]

_ids = itertools.count()


@dataclass(frozen=True)
class HookHandle:
    """Identifies one hook on one hook point; pass it back to remove the hook."""

    name: str
    fn: HookFn
    permanent: bool
    id: int
    #: the applied edit this hook belongs to (None: the user's)
    owner: object = field(default=None, compare=False)
    #: an edit hook that only reads the tensor, after the user's hooks changed it
    reads_output: bool = False

    def __repr__(self) -> str:
        fn = getattr(self.fn, "__qualname__", type(self.fn).__name__)
        if self.owner is not None:
            return f"<edit hook #{self.id} on {self.name}: {fn} (owned by {self.owner})>"
        kind = "permanent" if self.permanent else "temporary"
        return f"<{kind} hook #{self.id} on {self.name}: {fn}>"


class HookPoint(nn.Module):
    """Identity module at one named tensor; runs its hooks in the order added.

    Edit-owned hooks that change the tensor run first, then the user's hooks
    (`hooks`), then edit-owned hooks that only read the result.

    >>> hp = HookPoint("t")
    >>> _ = hp.add_owned(lambda x, h: x + 1, owner="edit A")
    >>> _ = hp.add(lambda x, h: x * 10)
    >>> float(hp(torch.zeros(1)))   # (0 + 1) * 10: the user's hook sees the edited tensor
    10.0
    """

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.hooks: list[HookHandle] = []  # the user's, temporary and permanent
        self.edit_hooks: list[HookHandle] = []  # owned by applied edits

    def _call(self, h: HookHandle, x: torch.Tensor) -> torch.Tensor:
        out = h.fn(x, self)
        if out is None:
            return x
        if h.reads_output:
            raise ValueError(f"hook {h!r} only reads its tensor and must return None, got {type(out).__name__}")
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            raise ValueError(
                f"hook {h!r} must return None or a tensor of shape {tuple(x.shape)}, "
                f"got {getattr(out, 'shape', type(out).__name__)}"
            )
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for h in self.edit_hooks:
            if not h.reads_output:
                x = self._call(h, x)
        for h in self.hooks:
            x = self._call(h, x)
        for h in self.edit_hooks:
            if h.reads_output:
                self._call(h, x)
        return x

    def add(self, fn: HookFn, permanent: bool = False) -> HookHandle:
        if not callable(fn):
            raise TypeError(f"a hook must be callable fn(activation, hook_point), got {fn!r}")
        h = HookHandle(self.name, fn, permanent, next(_ids))
        self.hooks.append(h)
        return h

    def add_owned(self, fn: HookFn, owner: object, *, reads_output: bool = False, first: bool = False) -> HookHandle:
        """Add a hook owned by `owner` (an applied edit); only `remove(handle)` takes it off.

        first: run before the other edit hooks on this tensor (a hook that replaces it).
        """
        if not callable(fn):
            raise TypeError(f"a hook must be callable fn(activation, hook_point), got {fn!r}")
        if owner is None:
            raise ValueError("an owned hook needs an owner (the edit it belongs to)")
        h = HookHandle(self.name, fn, True, next(_ids), owner, reads_output)
        if first:
            self.edit_hooks.insert(0, h)
        else:
            self.edit_hooks.append(h)
        return h

    def remove(self, handle: HookHandle) -> None:
        """Remove the hook of `handle`, the user's or an edit's."""
        self.hooks = [h for h in self.hooks if h.id != handle.id]
        self.edit_hooks = [h for h in self.edit_hooks if h.id != handle.id]

    def extra_repr(self) -> str:
        owned = f", {len(self.edit_hooks)} edit hooks" if self.edit_hooks else ""
        return f"{self.name!r}, {len(self.hooks)} hooks{owned}"


class HookPoints(nn.ModuleDict):
    """The hook points of a network by tensor name, dotted names included (a traced
    network's ``layer2.1.relu_1``; torch forbids dots in module names, so they are stored
    under an escaped key and read back by the real name).

    >>> hp = HookPoints({"layer2.1.relu_1": HookPoint("layer2.1.relu_1")})
    >>> list(hp), "layer2.1.relu_1" in hp
    (['layer2.1.relu_1'], True)
    """

    _DOT = "\N{ONE DOT LEADER}"

    @classmethod
    def _key(cls, name: str) -> str:
        return name.replace(".", cls._DOT)

    def __init__(self, points: Mapping[str, HookPoint]):
        super().__init__({self._key(k): v for k, v in points.items()})

    def __getitem__(self, name: str) -> HookPoint:
        return super().__getitem__(self._key(name))

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and super().__contains__(self._key(name))

    def keys(self):
        return [k.replace(self._DOT, ".") for k in super().keys()]

    def __iter__(self):
        return iter(self.keys())

    def items(self):
        return list(zip(self.keys(), self.values()))


def _check(points: Mapping[str, HookPoint], hooks: Iterable[HookSpec]) -> list[HookSpec]:
    hooks = list(hooks)
    for spec in hooks:
        if not (isinstance(spec, tuple) and len(spec) == 2):
            raise TypeError(f"hooks are (hook_name, fn) pairs, got {spec!r}")
        name = spec[0]
        if name not in points:
            # The model's own hook points, not one network's table: InceptionV1's names
            # are no hooks of an InceptionV3.
            raise graph.UnknownNameError(
                f"unknown layer or hook name {name!r}{graph.suggest(str(name), points)} "
                f"(run `circuits layers` for the full list)"
            )
    return hooks


@contextlib.contextmanager
def temporary_hooks(points: Mapping[str, HookPoint], hooks: Iterable[HookSpec]) -> Iterator[list[HookHandle]]:
    """Add `hooks` ((name, fn) pairs) for the duration of the block; always removed."""
    hooks = _check(points, hooks)  # validate all before adding any
    handles: list[HookHandle] = []
    try:
        for name, fn in hooks:
            handles.append(points[name].add(fn))
        yield handles
    finally:
        for h in handles:
            points[h.name].remove(h)
