"""``Flatten``: each sample's values in one row, in C order (spec/math.md, section 14)."""

from __future__ import annotations

import math

from scratchnet.core.errors import ShapeError
from scratchnet.core.network import ParameterFree
from scratchnet.loops.tensor import Batch, Param, as_batch, flatten, reshape, shape_of


class Flatten(ParameterFree[Param]):
    """(B, C, H, W) -> (B, C * H * W), as ``torch.nn.Flatten``: a[n][(c * H + h) * W + w] = x[n][c][h][w]
    (eq. 14.1). The gradient is reshaped back (eq. 14.2). Samples of any shape are flattened alike."""

    def __init__(self) -> None:
        self.input_shape: tuple[int, ...] = ()  # one sample's shape in the last forward pass

    def forward(self, inputs: Batch, training: bool = False) -> Batch:
        """Each sample's values in C order (eq. 14.1)."""
        batch = as_batch(inputs, None, "Flatten.forward")  # every sample the shape of the first
        self.input_shape = shape_of(batch[0])
        if not self.input_shape:
            raise ShapeError(
                "Flatten.forward: expects a batch of samples with at least one axis, got one number per sample"
            )
        return [flatten(sample) for sample in batch]

    def backward(self, grad_outputs: Batch, need_input_grad: bool = True) -> Batch:
        """Each row of dL/da back in the sample's shape (eq. 14.2; ``need_input_grad`` is ignored, as
        in every parameter-free layer)."""
        size = math.prod(self.input_shape)
        if any(len(row) != size for row in grad_outputs):
            raise ShapeError(f"Flatten.backward: expected gradient rows of {size} values for inputs {self.input_shape}")
        return [reshape(row, self.input_shape) for row in grad_outputs]
