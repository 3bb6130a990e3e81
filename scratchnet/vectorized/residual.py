"""A residual connection: ``Residual(layers)`` gives y = x + f(x), f the layers it holds run in
order (spec/math.md, section 23)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scratchnet.core.decoding import Cache, step_layers
from scratchnet.core.errors import ConfigError
from scratchnet.core.interface import Layer
from scratchnet.core.network import Container
from scratchnet.vectorized.tensor import Array


class Residual(Container[Array, Array]):
    """y = x + f(x), where f is ``layers`` run in order on x (eq. 23.1); its arrays are its layers',
    named ``"<index>.<name>"`` (``"1.in_proj_weight"``). f must give back x's shape."""

    def __init__(self, layers: Sequence[Layer[Array, Array]]) -> None:
        if not layers:
            raise ConfigError("Residual needs at least one layer")
        super().__init__(layers)

    def forward(self, inputs: Array, training: bool = False) -> Array:
        """y = x + f(x) (eq. 23.1): a new array, for a held layer may return x itself (Identity)."""
        f = inputs
        for layer in self.layers:
            f = layer.forward(f, training)
        y: Array = np.add(inputs, f)
        return y

    def backward(self, grad_outputs: Array, need_input_grad: bool = True) -> Array:
        """dL/dx = dL/dy + dL/dx through f: the gradient takes both paths (eq. 23.2); with
        ``need_input_grad=False`` the first held layer skips dL/dx too, and an empty array is returned."""
        grad = grad_outputs
        for index in reversed(range(len(self.layers))):
            grad = self.layers[index].backward(grad, need_input_grad or index > 0)
        if not need_input_grad:
            return np.zeros((0,), grad_outputs.dtype)
        grad_inputs: Array = np.add(grad_outputs, grad)
        return grad_inputs

    def step(self, inputs: Array, cache: Cache) -> Array:
        """One new position (spec/math.md section 24): y_t = x_t + f(x_t), f's layers stepping in order."""
        y: Array = np.add(inputs, step_layers(self.layers, inputs, cache))
        return y
