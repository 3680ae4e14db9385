"""Ablation of units as ordinary hooks: zero, constant, mean or clamp.

`ablate(...)` returns (hook_name, fn) pairs for `model.hooks(...)`, so an ablation
is temporary and always undone. A unit of a concatenation (``mixed3b:379``) is
ablated on its branch tensor (``mixed3b_5x5`` channel 59), so the change reaches the
concatenation, its synthesized ``_pre_relu`` twin and everything downstream.
Units of any network work (each unit's branch comes from its own network's graph);
pass ``model=`` to have them checked against the model's network.

Example:
    >>> import torch
    >>> from circuits import InceptionV1
    >>> m = InceptionV1()
    >>> with m.hooks(ablate(["conv2d0:3"], "constant", value=5.0, model=m)):
    ...     out = m.run(torch.zeros(1, 3, 16, 16), until="conv2d0")
    >>> out[0, 3].unique().tolist(), out[0, 2].unique().tolist()
    ([5.0], [0.0])
"""

from __future__ import annotations

from collections import defaultdict
from typing import Mapping, Sequence

import torch

from circuits.analysis.networks import resolve
from circuits.core.hooks import HookSpec
from circuits.core.units import Unit

__all__ = ["ablate", "MODES"]

MODES = ("zero", "constant", "mean", "clamp")


def ablate(
    units,
    mode: str = "zero",
    *,
    value: float | None = None,
    means: Mapping[str, float] | Sequence[float] | torch.Tensor | None = None,
    clamp: tuple[float | None, float | None] | None = None,
    mask: torch.Tensor | None = None,
    model=None,
) -> list[HookSpec]:
    """Hooks that ablate `units` (unit ids, family ids or a list of them).

    model: the model (or Graph) the hooks are for; the units must be of its network
    (a unit of another network raises, naming both). It may be left out only for
    resolved Units (``model.unit("mixed3b:379")``), which know their network.

    mode:
      - "zero": set to 0;
      - "constant": set to `value`;
      - "mean": set to the unit's mean, from `means`: a per-channel sequence/tensor
        for the units' layer, or a mapping from unit id to value;
      - "clamp": clamp to `clamp=(low, high)` (either may be None).
    mask: optional [H, W] boolean tensor (or broadcastable to [N, 1, H, W]); only
        positions where it is True are changed, the rest of the channel is untouched.
    """
    if mode not in MODES:
        raise ValueError(f"unknown ablation mode {mode!r}; use one of {', '.join(MODES)}")
    units = resolve(units, model)
    if mode == "constant" and value is None:
        raise ValueError("mode 'constant' needs value=")
    if mode == "mean" and means is None:
        raise ValueError("mode 'mean' needs means= (per-channel means of the layer, or {unit id: mean})")
    if mode == "clamp" and (clamp is None or len(clamp) != 2 or clamp == (None, None)):
        raise ValueError("mode 'clamp' needs clamp=(low, high), with at least one bound")
    if mode != "constant" and value is not None:
        raise ValueError(f"value= is only used by mode 'constant', not {mode!r}")

    targets = [(u, _fill_value(u, mode, value, means)) for u in units]
    by_branch: dict[str, list[tuple[int, float | None]]] = defaultdict(list)
    for u, v in targets:
        by_branch[u.branch].append((u.branch_channel, v))
    return [(b, _hook(chans, mode, clamp, mask)) for b, chans in by_branch.items()]


def _fill_value(u: Unit, mode: str, value, means) -> float | None:
    if mode == "zero":
        return 0.0
    if mode == "constant":
        return float(value)
    if mode == "mean":
        if isinstance(means, Mapping):
            if u.id not in means:
                raise KeyError(f"means has no entry for {u.id} (keys like 'mixed3b:379')")
            return float(means[u.id])
        m = torch.as_tensor(means).flatten()
        need = u.network.node(u.layer).channels
        if m.numel() != need:
            raise ValueError(f"means for {u.layer} must have {need} values (one per channel), got {m.numel()}")
        return float(m[u.channel])
    return None


def _hook(chans: list[tuple[int, float | None]], mode, clamp, mask):
    idx = [c for c, _ in chans]
    vals = [v for _, v in chans]

    def fn(x: torch.Tensor, hook) -> torch.Tensor:
        x = x.clone()
        sel = x[:, idx]
        if mode == "clamp":
            lo, hi = clamp
            new = sel.clamp(min=lo, max=hi)
        else:
            new = torch.tensor(vals, dtype=x.dtype, device=x.device).view(1, -1, 1, 1).expand_as(sel)
        if mask is not None:
            m = torch.as_tensor(mask, device=x.device, dtype=torch.bool)
            if m.shape[-2:] != x.shape[-2:]:
                raise ValueError(f"mask of shape {list(m.shape)} does not fit {hook.name} of spatial size {list(x.shape[-2:])}")
            new = torch.where(m, new, sel)
        x[:, idx] = new
        return x

    fn.__qualname__ = f"ablate[{mode}]({', '.join(str(i) for i in idx[:8])}{', ...' if len(idx) > 8 else ''})"
    return fn
