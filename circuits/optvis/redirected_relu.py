"""Lucid's "redirected ReLU" gradient, as temporary hooks on the network's ReLUs.

At the start of a visualization the unit may not fire for any pixel, so a plain ReLU
passes no gradient and the optimization never starts. Lucid
(tensorflow/lucid, lucid/optvis/overrides/redirected_relu_grad.py, used by
`render.make_vis_T(..., relu_gradient_override=True)`) overrides the ReLU gradient
for the first steps only (while TensorFlow's global_step <= 16, i.e. the first 17
updates):

    relu_grad  = grad where x >= 0, else 0
    redirected = grad, except 0 where x < 0 and grad > 0
    per image b: relu_grad[b] if ||relu_grad[b]|| > 0 else redirected[b]

`grad` is the gradient of the loss being *minimized* (minus the objective), so
"grad > 0" pushes x down; where the input is already negative that push is blocked.

The hooks here stash each ReLU's input at its ``*_pre_relu`` hook point and replace
the ReLU's output with `RedirectedReLU` of it: the same values, the redirected
backward. If an earlier hook already changed the ReLU's output (an ablation, say),
that output is kept and its gradient is the plain one.

Example:
    >>> x = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    >>> RedirectedReLU.apply(x).sum().neg().backward()   # loss = -sum: grad -1 everywhere
    >>> x.grad.tolist()                                  # plain ReLU would give [0, 0]
    [[-1.0, -1.0]]
"""

from __future__ import annotations

from typing import Iterable

import torch

from circuits.core import graph
from circuits.core.hooks import HookSpec

__all__ = ["RedirectedReLU", "redirected_relu_grad", "redirected_relu_hooks", "LUCID_REDIRECT_STEPS"]

# Lucid returns the plain gradient once global_step > 16; steps 0..16 are redirected.
LUCID_REDIRECT_STEPS = 17


def redirected_relu_grad(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Lucid's redirected ReLU gradient for input `x` and incoming gradient `grad` ([B, ...])."""
    if x.dim() < 2:
        raise ValueError(f"redirected ReLU expects a batch dimension, got shape {list(x.shape)}")
    zero = torch.zeros_like(grad)
    relu_grad = torch.where(x < 0, zero, grad)
    redirected = torch.where((x < 0) & (grad > 0), zero, grad)
    has_grad = relu_grad.flatten(1).norm(dim=1) > 0
    return torch.where(has_grad.view(-1, *([1] * (x.dim() - 1))), relu_grad, redirected)


class RedirectedReLU(torch.autograd.Function):
    """relu(x) forward, Lucid's redirected gradient backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return redirected_relu_grad(x, grad)


def redirected_relu_hooks(targets: Iterable[str], network: graph.Graph) -> list[HookSpec]:
    """Hooks giving every ReLU upstream of `targets` (hook names) the redirected gradient.

    network: the graph the targets are tensors of (``model.graph``).

    >>> from circuits.core.networks import DECLARED
    >>> [name for name, _ in redirected_relu_hooks(["conv2d1"], DECLARED["InceptionV1"])]
    ['conv2d0_pre_relu', 'conv2d0', 'conv2d1_pre_relu', 'conv2d1']
    >>> [name for name, _ in redirected_relu_hooks(["activation_1"], DECLARED["InceptionV3"])]
    ['conv2d_1', 'activation_1']
    """
    targets = list(targets)
    needed: set[str] = set()
    for t in targets:
        needed |= network.ancestors(t)
    hooks: list[HookSpec] = []
    for n in network.nodes:
        if not n.kind.is_activation or n.name not in needed:
            continue
        stash: dict[str, torch.Tensor] = {}

        def keep_input(x, hook, stash=stash):
            stash["x"] = x

        def replace_output(y, hook, stash=stash):
            x = stash.pop("x", None)
            if x is None or not torch.equal(y, x.clamp(min=0)):
                return None  # changed by another hook (or not reached): leave it as it is
            return RedirectedReLU.apply(x)

        keep_input.__qualname__ = f"redirected_relu.keep_input[{n.name}]"
        replace_output.__qualname__ = f"redirected_relu[{n.name}]"
        hooks += [(n.inputs[0], keep_input), (n.name, replace_output)]
    return hooks
