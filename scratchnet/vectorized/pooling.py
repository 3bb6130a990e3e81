"""Max and average pooling, ``MaxPool2D`` and ``AvgPool2D`` (spec/math.md, section 13).

The values at one kernel offset (u, v) of every window form one strided view of the input; when
the windows tile the input (stride = kernel) these are the slices ``[:, :, u, :, v]`` of its
reshape to ``(C, H', kh, W', kw, N)``. A pooling pass is then kh kw vectorized operations over whole
views, never a loop over windows. The work runs channels first and batch last (CHWN), the memory
layout the convolutions give (scratchnet/vectorized/convolution.py), so each view moves runs of a
whole batch; the outputs and gradients returned have that layout too, and shape (N, C, H, W).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scratchnet.core.errors import ShapeError
from scratchnet.core.network import ParameterFree
from scratchnet.core.registry import window_output, window_pair
from scratchnet.vectorized.convolution import Pair, image_batch
from scratchnet.vectorized.memory import Workspace, as_chwn, in_blocks
from scratchnet.vectorized.tensor import Array


class Pool2D(ParameterFree[Array]):
    """What both poolings share: options, shape checks, and the per-offset views of the windows."""

    def __init__(self, kernel_size: int | Pair, *, stride: int | Pair | None = None) -> None:
        self.kernel_size = window_pair(kernel_size, f"{type(self).__name__} kernel_size", 1)
        self.stride = self.kernel_size if stride is None else window_pair(stride, f"{type(self).__name__} stride", 1)
        self.dtype: np.dtype[Any] = np.dtype(np.float64)
        self.input_shape: tuple[int, ...] = ()
        self.output_shape: tuple[int, ...] = ()
        self.work = Workspace()

    def start(self, inputs: Array) -> list[Array]:
        """Check ``inputs`` ``(N, C, H, W)``, note the shapes, and return the views of its windows."""
        where = f"{type(self).__name__}.forward"
        x = image_batch(inputs, None, None, where)
        n, c, h, w = x.shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        oh, ow = window_output(h, kh, sh, 0), window_output(w, kw, sw, 0)
        if oh < 1 or ow < 1:
            raise ShapeError(f"{where}: kernel {list(self.kernel_size)} is larger than its input {(c, h, w)}")
        self.input_shape, self.output_shape, self.dtype = x.shape, (n, c, oh, ow), x.dtype
        return self.views(as_chwn(x, x.dtype))

    def delta(self, grad_outputs: Array) -> Array:
        """``grad_outputs`` ``(N, C, H', W')`` as CHWN; ShapeError if it does not fit the last forward."""
        if grad_outputs.shape != self.output_shape:
            raise ShapeError(
                f"{type(self).__name__}.backward: gradient of shape {grad_outputs.shape} "
                f"for outputs of shape {self.output_shape}"
            )
        return as_chwn(grad_outputs, self.dtype)

    def views(self, chwn: Array) -> list[Array]:
        """The kh kw views ``(C, H', W', N)`` of ``chwn``, one per kernel offset (u, v) in row-major
        order: view u kw + v holds x[n][c][i sh + u][j sw + v] at [c][i][j][n]."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        _, _, oh, ow = self.output_shape
        return [
            chwn[:, u : u + sh * (oh - 1) + 1 : sh, v : v + sw * (ow - 1) + 1 : sw]
            for u in range(kh)
            for v in range(kw)
        ]

    def input_grad(self) -> tuple[Array, bool]:
        """A new CHWN array for dL/dx, and whether each value lies in one window at most. Then every
        value a window covers is written once (the rest, beyond the last window, is zeroed here);
        otherwise it is all zeros, for the windows add their shares."""
        n, c, h, w = self.input_shape
        _, _, oh, ow = self.output_shape
        (kh, kw) = self.kernel_size
        grad = self.work.output("grad_inputs", (c, h, w, n), self.dtype)
        if self.stride != self.kernel_size:
            grad.fill(0.0)
            return grad, False
        grad[:, oh * kh :] = 0.0  # rows and columns beyond the last window (the floor of eq. 12.2)
        grad[:, :, ow * kw :] = 0.0
        return grad, True

    def describe(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "kernel_size": list(self.kernel_size), "stride": list(self.stride)}


class MaxPool2D(Pool2D):
    """a[n][c][i][j] = the largest x[n][c][i sh + u][j sw + v] of the window (eq. 13.1); the gradient
    goes to the first maximum of each window in row-major order, as in PyTorch (eq. 13.2)."""

    def __init__(self, kernel_size: int | Pair, *, stride: int | Pair | None = None) -> None:
        super().__init__(kernel_size, stride=stride)
        self.argmax: Array = np.zeros((0, 0, 0, 0), np.uint8)  # offset u kw + v of each window's first maximum

    def forward(self, inputs: Array, training: bool = False) -> Array:
        views = self.start(inputs)
        c, oh, ow, n = views[0].shape
        outputs = self.work.output("outputs", (c, oh, ow, n), self.dtype)
        self.argmax = self.work.get("argmax", outputs.shape, np.dtype(np.uint8 if len(views) <= 256 else np.uint32))

        def block(part: slice) -> None:
            out, argmax = outputs[part], self.argmax[part]
            larger = np.empty(out.shape, bool)
            np.copyto(out, views[0][part])
            argmax.fill(0)
            for offset, view in enumerate(views[1:], 1):
                # strictly larger than the maximum so far: a tie keeps the earlier offset. Offsets come
                # in increasing order, so the last one that was larger is the first maximum, and
                # argmax = max(argmax, offset [larger]) (two passes over small integers, where a masked
                # assignment is ~10x slower)
                np.greater(view[part], out, out=larger)
                np.maximum(argmax, np.multiply(larger, offset, dtype=argmax.dtype), out=argmax)
                np.maximum(out, view[part], out=out)

        in_blocks(block, c, math.prod(self.input_shape[2:]) * n)
        result: Array = outputs.transpose(3, 0, 1, 2)
        return result

    def backward(self, grad_outputs: Array, need_input_grad: bool = True) -> Array:
        """dL/dx[n][c][i sh + u][j sw + v] += dL/da[n][c][i][j] at each window's first maximum, 0
        elsewhere (eq. 13.2); ``need_input_grad`` is ignored, as in every parameter-free layer."""
        delta = self.delta(grad_outputs)
        grad, once = self.input_grad()
        places = self.views(grad)

        def block(part: slice) -> None:
            argmax, share = self.argmax[part], delta[part]
            hit = np.empty(argmax.shape, bool)
            for offset, place in enumerate(places):
                np.equal(argmax, offset, out=hit)
                if once:
                    np.multiply(share, hit, out=place[part])
                else:
                    place[part] += share * hit  # overlapping windows each add their share

        in_blocks(block, grad.shape[0], math.prod(grad.shape[1:]))
        result: Array = grad.transpose(3, 0, 1, 2)
        return result


class AvgPool2D(Pool2D):
    """a[n][c][i][j] = the mean of the window's kh kw values (eq. 13.3); each of them gets 1 / (kh kw)
    of the window's gradient (eq. 13.4)."""

    def forward(self, inputs: Array, training: bool = False) -> Array:
        views = self.start(inputs)
        outputs = self.work.output("outputs", views[0].shape, self.dtype)
        np.copyto(outputs, views[0])
        for view in views[1:]:
            outputs += view
        outputs /= len(views)
        result: Array = outputs.transpose(3, 0, 1, 2)
        return result

    def backward(self, grad_outputs: Array, need_input_grad: bool = True) -> Array:
        """dL/dx = dL/da / (kh kw) at every value of each window (eq. 13.4); ``need_input_grad`` is
        ignored, as in every parameter-free layer."""
        share = self.delta(grad_outputs) / (self.kernel_size[0] * self.kernel_size[1])
        grad, once = self.input_grad()
        for place in self.views(grad):
            if once:
                place[...] = share
            else:
                place += share
        result: Array = grad.transpose(3, 0, 1, 2)
        return result
