"""Two-dimensional convolution, ``Conv2D`` (spec/math.md, section 12), as matrix products over im2col.

Every sliding window of the input becomes one column of a matrix, "im2col", so that the forward
pass, dL/dW and dL/dx are one matrix product each. The matrix is copied out of a strided view
(``sliding_window_view``) in one call; col2im, its transpose, adds the gradient back one kernel
offset at a time, each offset one vectorized add (``np.add.at`` is ~10x slower: numpy issue 5922).
The matrix has one more row, of ones, so the forward product adds the bias (eq. 12.1) and the
product that gives dL/dW also sums dL/db (eq. 12.6).

Layouts. Parameters follow PyTorch (``weight`` ``(out, in, kh, kw)``), and so do the shapes of the
arrays forward and backward return, ``(N, C, H, W)``. In memory those arrays are channels first and
batch last, CHWN (``a.transpose(1, 2, 3, 0)`` is contiguous): the forward product's output rows
are the output channels and its columns the pixels (i, j, n), so returning it costs no copy;
elementwise layers keep the layout; and in the next layer every strided view (a window offset of
im2col, col2im or pooling) moves whole rows of pixels times the batch, thousands of values at a
time, where NCHW or NHWC views move kw or C values at a time. Other inputs (the images) are
copied into this layout once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from scratchnet.core.errors import ShapeError
from scratchnet.core.init import check_initializer
from scratchnet.core.registry import check_channels, window_output, window_pair
from scratchnet.vectorized.init import initial_bias, initial_weight
from scratchnet.vectorized.memory import Workspace, as_chwn, in_blocks
from scratchnet.vectorized.tensor import Array, check_dtype, copy_params

Pair = tuple[int, int]

# An inference pass builds its im2col matrix a few samples at a time when the whole batch's would
# hold more values than this (32 MB of float32): a test set at once would need gigabytes.
INFERENCE_VALUES = 1 << 23


def image_batch(inputs: Any, channels: int | None, dtype: np.dtype[Any] | None, where: str) -> Array:
    """``inputs`` as an array ``(N, C, H, W)`` of ``dtype`` (its own floating dtype when None) with
    ``channels`` channels (any when None), or a one-line ShapeError naming ``where``."""
    try:
        x = np.asarray(inputs)
        if dtype is not None and x.dtype != dtype:
            x = x.astype(dtype)
        elif dtype is None and x.dtype.kind != "f":
            x = x.astype(np.float64)
    except (ValueError, TypeError):
        raise ShapeError(f"{where}: the inputs are not a rectangular batch of numbers") from None
    wanted = "channels" if channels is None else str(channels)
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        raise ShapeError(f"{where}: expected a batch of shape (batch, {wanted}, height, width), got {x.shape}")
    if x.size == 0:
        raise ShapeError(f"{where}: the batch is empty, got shape {x.shape}")
    return x


class Conv2D:
    """A 2-D convolution (cross-correlation, as in PyTorch): ``out_channels`` filters of
    ``in_channels`` x ``kernel_size``, moved by ``stride`` over the input padded with ``padding``
    zeros on each side.

    Parameters are ``weight`` ``(out_channels, in_channels, kh, kw)`` and ``bias`` ``(out_channels,)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Pair,
        *,
        stride: int | Pair = (1, 1),
        padding: int | Pair = (0, 0),
        init: str = "he_normal",
        seed: int = 0,
        dtype: str = "float64",
    ) -> None:
        check_channels("Conv2D", in_channels, out_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = window_pair(kernel_size, "Conv2D kernel_size", 1)
        self.stride = window_pair(stride, "Conv2D stride", 1)
        self.padding = window_pair(padding, "Conv2D padding", 0)
        self.init = check_initializer(init)
        self.dtype = check_dtype(dtype)
        shape = (out_channels, in_channels, *self.kernel_size)
        self.weight = initial_weight(init, shape, seed, self.dtype)
        self.bias = initial_bias(init, out_channels, seed, self.dtype)
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = np.zeros_like(self.bias)
        self.window_size = math.prod(shape[1:])  # K = C kh kw values in each window
        self.work = Workspace()
        self.input_shape: tuple[int, ...] = ()
        self.output_shape: tuple[int, ...] = ()
        self.inputs: Array | None = None  # kept only when the forward pass did not keep its matrix

    def forward(self, inputs: Array, training: bool = False) -> Array:
        """z[n][o][i][j] = b[o] + sum_{c,u,v} w[o][c][u][v] xp[n][c][i sh + u][j sw + v] (eq. 12.1, with
        the padding of eq. 12.3 and the stride of eq. 12.4), as one product of the weights (the bias
        the weight of the row of ones) and the im2col matrix."""
        x = image_batch(inputs, self.in_channels, self.dtype, "Conv2D.forward")
        n, c, h, w = x.shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        oh, ow = window_output(h, kh, sh, self.padding[0]), window_output(w, kw, sw, self.padding[1])
        if oh < 1 or ow < 1:
            raise ShapeError(
                f"Conv2D.forward: kernel {list(self.kernel_size)} is larger than its padded input "
                f"{(c, h, w)} (padding {list(self.padding)})"
            )
        self.input_shape, self.output_shape = x.shape, (n, self.out_channels, oh, ow)
        o, padded = self.out_channels, self.padded(x)
        z = self.work.output("outputs", (o, oh, ow, n), self.dtype)
        per_pass = n if training else max(1, INFERENCE_VALUES // ((self.window_size + 1) * oh * ow))
        if per_pass >= n:
            np.matmul(self.weight_matrix(), self.im2col(padded, "cols"), out=z.reshape(o, oh * ow * n))
            self.inputs = None
        else:  # inference on a large batch: a few samples at a time, so that the matrix stays small
            weights = self.weight_matrix()
            for start in range(0, n, per_pass):
                part = slice(start, min(start + per_pass, n))
                z[..., part] = (weights @ self.im2col(padded[..., part], "part cols")).reshape(o, oh, ow, -1)
            self.work.arrays.pop("cols", None)
            self.work.arrays.pop("part cols", None)
            self.inputs = x  # should backward come, it builds the whole matrix from these
        outputs: Array = z.transpose(3, 0, 1, 2)
        return outputs

    def im2col(self, padded: Array, name: str) -> Array:
        """The (K + 1, M) matrix of a padded CHWN batch's windows, in work array ``name``: row
        (c, u, v) holds xp[n][c][i sh + u][j sw + v] for every output pixel (i, j, n), the last row 1."""
        c, _, _, n = padded.shape
        (kh, kw), (sh, sw), (_, _, oh, ow) = self.kernel_size, self.stride, self.output_shape
        k = self.window_size
        cols = self.work.get(name, (k + 1, oh * ow * n), self.dtype, fill=1.0)  # the last row stays 1
        windows = sliding_window_view(padded, (kh, kw), axis=(1, 2))  # (C, H', W', N, kh, kw)
        windows = windows[:, : sh * (oh - 1) + 1 : sh, : sw * (ow - 1) + 1 : sw]
        # one copy, whose runs are whole rows of pixels times the batch
        rows, source = cols[:k].reshape(c, kh, kw, oh, ow, n), windows.transpose(0, 4, 5, 1, 2, 3)
        in_blocks(lambda part: np.copyto(rows[part], source[part]), c, kh * kw * oh * ow * n)
        return cols

    def backward(self, grad_outputs: Array, need_input_grad: bool = True) -> Array:
        """Given dL/dz, dL/dW and dL/db from one product (eq. 12.5, 12.6), and dL/dx from another,
        added back into place by col2im (eq. 12.7).

        With ``need_input_grad=False`` (the first layer: nobody needs dL/dx of the data) dL/dx is
        not computed and an empty array is returned.
        """
        if grad_outputs.shape != self.output_shape:
            raise ShapeError(
                f"Conv2D.backward: gradient of shape {grad_outputs.shape} for outputs of shape {self.output_shape}"
            )
        n, c, h, w = self.input_shape
        _, o, oh, ow = self.output_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        k, m = self.window_size, n * oh * ow
        # dL/dz with one column per output pixel (i, j, n): free when it is channels-first and
        # batch-last in memory, as this backend's layers give it
        delta = as_chwn(grad_outputs, self.dtype).reshape(o, m)
        if self.inputs is not None:  # the forward pass went a few samples at a time
            self.im2col(self.padded(self.inputs), "cols")
            self.inputs = None
        cols, weights = self.work.arrays["cols"], self.work.arrays["weights"]  # as the forward pass used them
        # eq. 12.5-12.6: dL/dw[o][c][u][v] = sum over the pixels of delta times the window's value;
        # the row of ones sums delta itself, dL/db
        both = np.matmul(delta, cols.T, out=self.work.get("grad_weights", (o, k + 1), self.dtype))
        self.grad_weight[...] = both[:, :k].reshape(o, c, kh, kw)
        self.grad_bias[...] = both[:, k]
        if not need_input_grad:
            return np.zeros((0, c, h, w), self.dtype)
        grad_cols = np.matmul(weights[:, :k].T, delta, out=self.work.get("grad_cols", (k, m), self.dtype))  # eq. 12.7
        pieces = grad_cols.reshape(c, kh, kw, oh, ow, n)
        grad = self.work.output("grad_inputs", (c, h + 2 * ph, w + 2 * pw, n), self.dtype)

        def col2im(part: slice) -> None:
            # each window gives its share back where it was read, one kernel offset at a time; a block
            # of channels at a time, so that the sums stay in cache while the shares stream past
            target = grad[part]
            target.fill(0.0)
            for u in range(kh):
                for v in range(kw):
                    target[:, u : u + sh * (oh - 1) + 1 : sh, v : v + sw * (ow - 1) + 1 : sw] += pieces[part, u, v]

        in_blocks(col2im, c, (h + 2 * ph) * (w + 2 * pw) * n)
        result: Array = grad[:, ph : ph + h, pw : pw + w].transpose(3, 0, 1, 2)
        return result

    def weight_matrix(self) -> Array:
        """The (out, K + 1) matrix of the product: row o is filter o in (c, u, v) order, PyTorch's
        layout, with the bias last (the weight of the row of ones)."""
        o, k = self.out_channels, self.window_size
        weights = self.work.get("weights", (o, k + 1), self.dtype)
        weights[:, :k] = self.weight.reshape(o, k)
        weights[:, k] = self.bias
        return weights

    def padded(self, x: Array) -> Array:
        """``x`` ``(N, C, H, W)`` as channels-first, batch-last ``(C, H + 2 p_h, W + 2 p_w, N)``: a view
        when it lies so in memory and needs no padding, else a copy into a kept work array whose
        zero border stays zero."""
        (ph, pw), chwn = self.padding, x.transpose(1, 2, 3, 0)
        if ph == 0 and pw == 0 and chwn.flags.c_contiguous:
            return chwn
        c, h, w, n = chwn.shape
        out = self.work.get("padded", (c, h + 2 * ph, w + 2 * pw, n), self.dtype, fill=0.0)
        out[:, ph : ph + h, pw : pw + w] = chwn
        return out

    def params(self) -> dict[str, Array]:
        """The live ``weight`` and ``bias`` arrays (copy them to keep a snapshot)."""
        return {"weight": self.weight, "bias": self.bias}

    def grads(self) -> dict[str, Array]:
        """The live dL/dW and dL/db arrays of the last backward pass."""
        return {"weight": self.grad_weight, "bias": self.grad_bias}

    def set_params(self, named: Mapping[str, Any]) -> None:
        """Copy ``weight`` and ``bias`` in from arrays or nested lists, converting to this layer's dtype."""
        copy_params("Conv2D", self.params(), named)

    def describe(self) -> dict[str, Any]:
        return {
            "type": "Conv2D",
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "init": self.init,
        }
