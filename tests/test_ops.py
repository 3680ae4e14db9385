"""The op table's forwards for what InceptionV3 needs, against TensorFlow's formulas in numpy.

Reference: TensorFlow's documented padding rules ("Notes on padding" in tf.nn), written out
here with plain loops over output cells -- SAME: out = ceil(n / s), total padding
max((out - 1) s + k - n, 0), of which floor(total / 2) goes before (the odd pixel after);
VALID: out = (n - k) // s + 1, no padding. A conv sums the in-image cells (zero padding),
max-pool takes their max, SAME avg-pool their mean (TF excludes padding from the count).
Batch norm in inference mode is Keras's formula gamma (y - mean) / sqrt(var + eps) + beta.
Nothing here calls torch's conv or pooling for the expected values.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from circuits.core import ops
from circuits.core.graph import Node
from circuits.core.ops import OPS
from weights import tfjs


def tf_geometry(n: int, k: int, s: int, padding: str) -> tuple[int, int]:
    """(output size, padding before) along one axis, from TF's documented rule."""
    if padding == "valid":
        return (n - k) // s + 1, 0
    out = math.ceil(n / s)
    return out, max((out - 1) * s + k - n, 0) // 2


def np_window(x: np.ndarray, kh: int, kw: int, s: int, padding: str, reduce):
    """Apply `reduce(window_cells [N, C, h, w], (dy0, dx0))` to each output cell's in-image window."""
    n, c, h, w = x.shape
    oh, top = tf_geometry(h, kh, s, padding)
    ow, left = tf_geometry(w, kw, s, padding)
    out = None
    for i in range(oh):
        for j in range(ow):
            y0, x0 = i * s - top, j * s - left
            ys, xs = slice(max(y0, 0), min(y0 + kh, h)), slice(max(x0, 0), min(x0 + kw, w))
            v = reduce(x[:, :, ys, xs], (ys.start - y0, xs.start - x0))
            if out is None:
                out = np.zeros((n, v.shape[1], oh, ow))
            out[:, :, i, j] = v
    return out


def np_conv(x, weight, bias, s, padding):
    """TF conv: sum over the in-image cells of the window (zero padding), weight [O, I, kh, kw]."""
    kh, kw = weight.shape[-2:]

    def cell(win, off):
        wk = weight[:, :, off[0]:off[0] + win.shape[2], off[1]:off[1] + win.shape[3]]
        return np.einsum("ncyx,ocyx->no", win, wk) + bias

    return np_window(x, kh, kw, s, padding, cell)


def np_maxpool(x, k, s, padding):
    return np_window(x, k[0], k[1], s, padding, lambda win, off: win.max(axis=(2, 3)))


def np_avgpool(x, k, s, padding):
    return np_window(x, k[0], k[1], s, padding, lambda win, off: win.mean(axis=(2, 3)))


def run_op(op: str, x: np.ndarray, kernel, stride, padding, weight=None, bias=None) -> np.ndarray:
    channels = weight.shape[0] if weight is not None else x.shape[1]
    node = Node("t", op, ("input",), kernel=tuple(kernel), stride=stride, channels=channels, padding=padding)
    m = None if weight is None else SimpleNamespace(weight=torch.from_numpy(weight), bias=torch.from_numpy(bias))
    out = OPS[op].forward(node, [torch.from_numpy(x)], m)
    assert tuple(out.shape[-2:]) == tuple(OPS[op].out_size(node, x.shape[a + 2], a) for a in (0, 1))
    return out.numpy()


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# --- convolutions ---------------------------------------------------------------------


@pytest.mark.parametrize("kernel", [(1, 7), (7, 1), (1, 3), (3, 1), (3, 3), (5, 5)])
@pytest.mark.parametrize("hw", [(9, 9), (10, 8), (8, 11)])
@pytest.mark.parametrize("stride", [1, 2])
def test_same_conv_asymmetric_kernels(kernel, hw, stride):
    # Even sizes with stride 2 give an odd total padding: the odd pixel must go after.
    x, w, b = rand(2, 3, *hw), rand(4, 3, *kernel, seed=1), rand(4, seed=2)
    got = run_op("conv", x, kernel, stride, "same", w, b)
    np.testing.assert_allclose(got, np_conv(x, w, b, stride, "same"), rtol=1e-10, atol=1e-10)


def test_same_conv_puts_the_odd_pixel_after():
    # 1x2 all-ones kernel on an even width with SAME: TF pads one zero on the right only,
    # so the last column sees the image edge and the first does not.
    x = np.arange(1.0, 5.0).reshape(1, 1, 1, 4)
    got = run_op("conv", x, (1, 2), 1, "same", np.ones((1, 1, 1, 2)), np.zeros(1))
    assert got.ravel().tolist() == [3.0, 5.0, 7.0, 4.0]


@pytest.mark.parametrize("kernel,stride", [((3, 3), 2), ((3, 3), 1), ((1, 1), 1), ((1, 7), 1)])
@pytest.mark.parametrize("hw", [(9, 9), (10, 12)])
def test_valid_conv(kernel, stride, hw):
    x, w, b = rand(2, 3, *hw), rand(5, 3, *kernel, seed=3), rand(5, seed=4)
    got = run_op("conv", x, kernel, stride, "valid", w, b)
    np.testing.assert_allclose(got, np_conv(x, w, b, stride, "valid"), rtol=1e-10, atol=1e-10)


def test_valid_conv_geometry_is_keras_stem():
    # keras.applications' stem on 299 px: 3x3/2 valid -> 149, 3x3/1 valid -> 147.
    node = Node("t", "conv", ("input",), kernel=(3, 3), stride=2, channels=1, padding="valid")
    assert OPS["conv"].out_size(node, 299, 0) == 149
    node = Node("t", "conv", ("input",), kernel=(3, 3), stride=1, channels=1, padding="valid")
    assert OPS["conv"].out_size(node, 149, 0) == 147


# --- batch norm folding -------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_conv_then_batchnorm_equals_folded_conv(padding):
    x, w = rand(2, 3, 9, 8), rand(6, 3, 3, 3, seed=5)
    mean, var = rand(6, seed=6), np.abs(rand(6, seed=7)) + 0.1
    beta, gamma, eps = rand(6, seed=8), rand(6, seed=9), 1e-3
    y = np_conv(x, w, np.zeros(6), 1, padding)
    sh = (1, -1, 1, 1)
    expected = gamma.reshape(sh) * (y - mean.reshape(sh)) / np.sqrt(var.reshape(sh) + eps) + beta.reshape(sh)

    t = torch.from_numpy
    fw, fb = ops.fold_batchnorm(t(w), None, t(mean), t(var), t(beta), t(gamma), eps=eps)
    got = run_op("conv", x, (3, 3), 1, padding, fw.numpy(), fb.numpy())
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)

    # The numpy folding the tfjs reader uses (Keras HWIO kernel, float32 out) agrees too.
    tw, tb = tfjs.fold_batchnorm(w.transpose(2, 3, 1, 0), mean, var, beta, gamma, eps=eps)
    got32 = run_op("conv", x, (3, 3), 1, padding, tw.astype(np.float64), tb.astype(np.float64))
    np.testing.assert_allclose(got32, expected, rtol=1e-5, atol=1e-5)


def test_keras_batchnorm_without_gamma():
    # InceptionV3's BNs have scale=False (no gamma): gamma = 1.
    x, w = rand(1, 2, 5, 5), rand(3, 2, 1, 1, seed=10)
    mean, var, beta = rand(3, seed=11), np.abs(rand(3, seed=12)) + 0.5, rand(3, seed=13)
    y = np_conv(x, w, np.zeros(3), 1, "valid")
    sh = (1, -1, 1, 1)
    expected = (y - mean.reshape(sh)) / np.sqrt(var.reshape(sh) + 1e-3) + beta.reshape(sh)
    fw, fb = ops.fold_batchnorm(torch.from_numpy(w), None, torch.from_numpy(mean), torch.from_numpy(var),
                                torch.from_numpy(beta))
    np.testing.assert_allclose(run_op("conv", x, (1, 1), 1, "valid", fw.numpy(), fb.numpy()), expected, rtol=1e-10)


# --- pools -------------------------------------------------------------------------------


@pytest.mark.parametrize("hw", [(9, 9), (10, 10), (11, 8)])
@pytest.mark.parametrize("stride", [1, 2])
def test_valid_maxpool(hw, stride):
    x = rand(2, 3, *hw)
    np.testing.assert_array_equal(run_op("maxpool", x, (3, 3), stride, "valid"), np_maxpool(x, (3, 3), stride, "valid"))


@pytest.mark.parametrize("hw", [(9, 9), (10, 10), (11, 8), (1, 2)])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", [(3, 3), (2, 2), (1, 3)])
def test_same_avgpool_excludes_padding(hw, stride, kernel):
    x = rand(2, 3, *hw)
    got = run_op("avgpool", x, kernel, stride, "same")
    np.testing.assert_allclose(got, np_avgpool(x, kernel, stride, "same"), rtol=1e-12, atol=1e-12)


def test_same_avgpool_corner_is_mean_of_four():
    # A 3x3/1 SAME window at a corner holds 4 in-image cells: TF divides by 4, not 9.
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 0, 0] = 4.0
    got = run_op("avgpool", x, (3, 3), 1, "same")
    assert got[0, 0, 0, 0] == 1.0 and got[0, 0, 1, 1] == pytest.approx(4.0 / 9.0)


@pytest.mark.parametrize("hw", [(8, 8), (9, 17)])
def test_valid_avgpool(hw):
    x = rand(1, 2, *hw)
    np.testing.assert_allclose(run_op("avgpool", x, (8, 8), 8, "valid"), np_avgpool(x, (8, 8), 8, "valid"), rtol=1e-12)
