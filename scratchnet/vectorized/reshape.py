"""``Flatten``: each sample's values in one row, in C order (spec/math.md, section 14)."""

from __future__ import annotations

import math

import numpy as np

from scratchnet.core.errors import ShapeError
from scratchnet.core.network import ParameterFree
from scratchnet.vectorized.tensor import Array


class Flatten(ParameterFree[Array]):
    """(N, C, H, W) -> (N, C H W), value [c][i][j] at column (c H + i) W + j, as ``torch.nn.Flatten``
    (eq. 14.1); the gradient is the same numbers put back in the input's shape (eq. 14.2).

    The order is the shape's, whatever the memory layout, which is what lets a Dense layer after it
    keep PyTorch's weight layout. A batch-last input (as the convolutions and poolings give it,
    scratchnet/vectorized/convolution.py) flattens without a copy: its memory is the transpose of
    the result, and the gradient goes back batch-last too.
    """

    def __init__(self) -> None:
        self.input_shape: tuple[int, ...] = ()
        self.batch_last = False

    def forward(self, inputs: Array, training: bool = False) -> Array:
        x = np.asarray(inputs)
        if x.ndim < 2 or x.shape[0] == 0:
            raise ShapeError(
                f"Flatten.forward: expected a non-empty batch of samples (batch first), got shape {x.shape}"
            )
        n, size = x.shape[0], math.prod(x.shape[1:])
        moved = np.moveaxis(x, 0, -1)
        self.input_shape, self.batch_last = x.shape, n > 1 and bool(moved.flags.c_contiguous)
        flat: Array = moved.reshape(size, n).T if self.batch_last else x.reshape(n, size)
        return flat

    def backward(self, grad_outputs: Array, need_input_grad: bool = True) -> Array:
        """dL/dx: dL/da in the input's shape (``need_input_grad`` is ignored: this is all it computes)."""
        n = self.input_shape[0] if self.input_shape else 0
        expected = (n, math.prod(self.input_shape[1:]))
        if grad_outputs.shape != expected:
            raise ShapeError(
                f"Flatten.backward: gradient of shape {grad_outputs.shape} for outputs of shape {expected}"
            )
        if self.batch_last:
            back: Array = np.ascontiguousarray(grad_outputs.T).reshape(*self.input_shape[1:], n)
            return np.moveaxis(back, -1, 0)
        return grad_outputs.reshape(self.input_shape)
