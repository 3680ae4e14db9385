"""TensorFlow's numerics for the ops of Lucid's InceptionV1, in torch.

PyTorch's own padding and LRN differ from TensorFlow's: SAME padding puts the odd
pixel after (bottom/right) and depends on the input size, max-pool pads with -inf,
and TensorFlow's LRN does not divide alpha by the window size.

Example:
    >>> import torch
    >>> x = torch.randn(1, 3, 8, 8)
    >>> max_pool_same(x, 3, 2).shape
    torch.Size([1, 3, 4, 4])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from circuits.core.graph import same_padding

__all__ = ["conv2d_same", "max_pool_same", "lrn", "avg_pool_valid"]

LRN_DEPTH_RADIUS = 5
LRN_BIAS = 2.0
LRN_ALPHA = 1e-4
LRN_BETA = 0.5


def _pads(x: torch.Tensor, kernel: int, stride: int) -> tuple[int, int, int, int]:
    top, bottom = same_padding(x.shape[-2], kernel, stride)
    left, right = same_padding(x.shape[-1], kernel, stride)
    return top, bottom, left, right


def conv2d_same(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int = 1) -> torch.Tensor:
    """conv2d with TensorFlow SAME padding (zeros; the odd pixel bottom/right)."""
    k = weight.shape[-1]
    top, bottom, left, right = _pads(x, k, stride)
    if top == bottom and left == right:
        # Symmetric: let the convolution pad, which avoids a copy of the input.
        return F.conv2d(x, weight, bias, stride, (top, left))
    return F.conv2d(F.pad(x, (left, right, top, bottom)), weight, bias, stride)


def max_pool_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """max-pool with TensorFlow SAME padding: padded cells are -inf, never picked."""
    top, bottom, left, right = _pads(x, kernel, stride)
    if top == bottom and left == right and 2 * top <= kernel:
        # torch pads max_pool2d with -inf itself when the padding is symmetric.
        return F.max_pool2d(x, kernel, stride, (top, left))
    x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
    return F.max_pool2d(x, kernel, stride)


def avg_pool_valid(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """average pool with VALID padding (Lucid's avgpool0)."""
    return F.avg_pool2d(x, kernel, stride)


def lrn(
    x: torch.Tensor,
    depth_radius: int = LRN_DEPTH_RADIUS,
    bias: float = LRN_BIAS,
    alpha: float = LRN_ALPHA,
    beta: float = LRN_BETA,
) -> torch.Tensor:
    """TensorFlow's local response normalization over channels.

    out = x / (bias + alpha * sum_{|c'-c| <= r} x[c']^2) ** beta, alpha NOT divided by 2r+1
    (torch.nn.LocalResponseNorm divides it; that is the common porting bug).
    """
    # The windowed sum over channels as a 1x1 convolution with a band matrix: several
    # times faster on CPU than pooling over a channel axis, and exact up to the order
    # of summation.
    c = torch.arange(x.shape[1], device=x.device)
    band = ((c[:, None] - c[None, :]).abs() <= depth_radius).to(x.dtype)[:, :, None, None]
    # bias + alpha * window sum, in the one convolution.
    denom = F.conv2d(x * x, band * alpha, torch.full((x.shape[1],), float(bias), dtype=x.dtype, device=x.device))
    return x * (denom.rsqrt() if beta == 0.5 else denom.pow(-beta))
