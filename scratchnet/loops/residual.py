"""A residual connection: ``Residual(layers)`` gives y = x + f(x), f the layers it holds run in
order (spec/math.md, section 23)."""

from __future__ import annotations

from collections.abc import Sequence
from operator import add

from scratchnet.core.decoding import Cache, step_layers
from scratchnet.core.errors import ConfigError
from scratchnet.core.interface import Layer
from scratchnet.core.network import Container
from scratchnet.loops.tensor import Batch, Param, elementwise


class Residual(Container[Batch, Param]):
    """y = x + f(x), where f is ``layers`` run in order on x (eq. 23.1); its arrays are its layers',
    named ``"<index>.<name>"`` (``"1.in_proj_weight"``). f must give back x's shape."""

    def __init__(self, layers: Sequence[Layer[Batch, Param]]) -> None:
        if not layers:
            raise ConfigError("Residual needs at least one layer")
        super().__init__(layers)

    def forward(self, inputs: Batch, training: bool = False) -> Batch:
        """y[n][...] = x[n][...] + f(x)[n][...] (eq. 23.1)."""
        f = inputs
        for layer in self.layers:
            f = layer.forward(f, training)
        y: Batch = elementwise(add, inputs, f)  # x_i + f_i
        return y

    def backward(self, grad_outputs: Batch, need_input_grad: bool = True) -> Batch:
        """dL/dx = dL/dy + dL/dx through f: the gradient takes both paths (eq. 23.2). Each held
        layer stores its own gradients on the way back; with ``need_input_grad=False`` the first
        of them skips dL/dx too, and an empty batch is returned."""
        grad = grad_outputs
        for index in reversed(range(len(self.layers))):
            grad = self.layers[index].backward(grad, need_input_grad or index > 0)
        if not need_input_grad:
            return []
        grad_inputs: Batch = elementwise(add, grad_outputs, grad)  # dL/dy_i + dL/dx_i through f
        return grad_inputs

    def step(self, inputs: Batch, cache: Cache) -> Batch:
        """One new position (spec/math.md section 24): y_t = x_t + f(x_t), f's layers stepping in order,
        each with its own part of ``cache`` (an attention layer's keys and values)."""
        y: Batch = elementwise(add, inputs, step_layers(self.layers, inputs, cache))  # x_i + f_i
        return y
