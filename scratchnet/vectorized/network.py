"""A network: layers in order, a loss, and backpropagation through them (spec/math.md, section 6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from scratchnet.architecture import check_architecture
from scratchnet.errors import ConfigError, ScratchnetError, ShapeError
from scratchnet.vectorized.activations import Softmax
from scratchnet.vectorized.layers import Dense
from scratchnet.vectorized.losses import CrossEntropy
from scratchnet.vectorized.tensor import Array, Labels, as_batch, check_labels


class Layer(Protocol):
    def forward(self, inputs: Array, training: bool = False) -> Array: ...
    def backward(self, grad_outputs: Array) -> Array: ...
    def params(self) -> dict[str, Array]: ...
    def grads(self) -> dict[str, Array]: ...
    def set_params(self, named: Mapping[str, Any]) -> None: ...
    def describe(self) -> dict[str, Any]: ...


class Loss(Protocol):
    fused_activation: str | None

    def value(self, inputs: Array, labels: Labels) -> float: ...
    def gradient(self, inputs: Array, outputs: Array, labels: Labels) -> Array: ...
    def describe(self) -> dict[str, Any]: ...


class Network:
    """``layers`` applied in order, trained on ``loss``, with optional L2 and L1 penalties on the
    Dense weights (biases are not penalised; eq. 7.1, 7.2).

    Use: ``out = net.forward(x)``, ``net.loss(out, y)``, ``net.backward()``, then an optimizer step.
    Parameters are named ``"<layer index>.<name>"``, e.g. ``"0.weight"``, ``"0.bias"``, ``"2.weight"``.
    In this backend :meth:`params` and :meth:`grads` return the live arrays.
    """

    def __init__(self, layers: Sequence[Layer], loss: Loss, *, l2: float = 0.0, l1: float = 0.0) -> None:
        check_architecture(layers, loss, l2, l1)
        dtypes = {layer.dtype for layer in layers if isinstance(layer, Dense)}
        if len(dtypes) > 1:
            raise ConfigError(f"every Dense layer needs the same dtype, got {sorted(str(d) for d in dtypes)}")
        self.dtype: np.dtype[Any] = dtypes.pop() if dtypes else np.dtype(np.float64)
        self.layers = list(layers)
        self.loss_function = loss
        self.l2 = l2
        self.l1 = l1
        # Every Dense weight and bias lives in one flat array and every gradient in another; the layers
        # keep views of their parts, in params() order. An elementwise optimizer then updates all of
        # them with one NumPy call per operation instead of one per parameter array.
        self.parameters, self.gradients = share_storage(self.dense_layers(), self.dtype)
        self.outputs: Array = np.zeros((0, 0), self.dtype)
        self.loss_inputs: Array = self.outputs
        self.labels: Labels | None = None

    def forward(self, inputs: Any, training: bool = False) -> Array:
        """The output of the last layer for each sample (probabilities when it is a Softmax)."""
        activations = as_batch(inputs, None, self.dtype, "Network.forward")
        for layer in self.layers:
            if layer is self.layers[-1]:
                self.loss_inputs = activations  # the logits, when the loss is fused with this layer
            activations = layer.forward(activations, training)
        if self.loss_function.fused_activation is None:
            self.loss_inputs = activations
        self.outputs = activations
        return activations

    def loss(self, outputs: Array, labels: Sequence[int] | npt.NDArray[Any]) -> float:
        """The mean loss of the batch plus the penalties (eq. 5.2-5.5, 7.1, 7.2).

        ``outputs`` must be what the latest :meth:`forward` returned: the loss reads the logits that
        call kept, which is what keeps cross-entropy finite for any logits.
        """
        if outputs is not self.outputs:
            raise ScratchnetError("Network.loss needs the outputs returned by the latest forward() call")
        self.labels = check_labels(labels, outputs.shape[0], outputs.shape[1], "Network.loss")
        last = self.layers[-1]
        if isinstance(self.loss_function, CrossEntropy) and isinstance(last, Softmax):
            # the Softmax computed log sum_k e^z[n][k] of each row already; the loss reuses it (eq. 5.2)
            value = self.loss_function.value(self.loss_inputs, self.labels, last.log_sum_exp)
        else:
            value = self.loss_function.value(self.loss_inputs, self.labels)
        return value + self.penalty()

    def penalty(self) -> float:
        """l2/2 * sum w^2 + l1 * sum |w| over every Dense weight (eq. 7.1, 7.2)."""
        if self.l2 == 0.0 and self.l1 == 0.0:
            return 0.0
        return float(sum(0.5 * self.l2 * np.sum(d.weight * d.weight) + self.l1 * np.sum(np.abs(d.weight))
                         for d in self.dense_layers()))

    def backward(self) -> None:
        """Backpropagate the loss of the latest :meth:`loss` call through every layer (eq. 6.1-6.2)."""
        if self.labels is None:
            raise ScratchnetError("Network.backward needs a loss() call first")
        grad = self.loss_function.gradient(self.loss_inputs, self.outputs, self.labels)
        layers = self.layers[:-1] if self.loss_function.fused_activation else self.layers
        for index in reversed(range(len(layers))):
            layer = layers[index]
            if index == 0 and isinstance(layer, Dense):
                layer.backward(grad, need_input_grad=False)  # dL/dx of the data itself is never used
            else:
                grad = layer.backward(grad)
        if self.l2 != 0.0 or self.l1 != 0.0:
            for dense in self.dense_layers():  # d/dw of the penalties: l2 w + l1 sign(w) (eq. 7.1, 7.2)
                dense.grad_weight += self.l2 * dense.weight + self.l1 * np.sign(dense.weight)

    def predict(self, inputs: Any) -> npt.NDArray[np.intp]:
        """The predicted class of each sample: the largest output, or output >= 0.5 for a single one."""
        outputs = self.forward(inputs)
        if outputs.shape[1] == 1:
            return (outputs[:, 0] >= 0.5).astype(np.intp)
        classes: npt.NDArray[np.intp] = np.argmax(outputs, axis=1)
        return classes

    def params(self) -> dict[str, Array]:
        """Every parameter as ``{"<layer>.<name>": array}``, in layer order (live arrays)."""
        return {f"{i}.{name}": value for i, layer in enumerate(self.layers) for name, value in layer.params().items()}

    def grads(self) -> dict[str, Array]:
        """The gradients of the last :meth:`backward`, keyed and shaped like :meth:`params` (live arrays)."""
        return {f"{i}.{name}": value for i, layer in enumerate(self.layers) for name, value in layer.grads().items()}

    def flat_params(self) -> Array:
        """Every parameter in one live 1-D array, in :meth:`params` order (those arrays are views of it)."""
        return self.parameters

    def flat_grads(self) -> Array:
        """Every gradient in one live 1-D array, in :meth:`grads` order (those arrays are views of it)."""
        return self.gradients

    def set_params(self, named: Mapping[str, Any]) -> None:
        """Load parameters keyed like :meth:`params` (arrays or nested lists), converting the dtype."""
        expected = set(self.params())
        if set(named) != expected:
            missing, extra = sorted(expected - set(named)), sorted(set(named) - expected)
            raise ShapeError(f"set_params: missing {missing}, unexpected {extra}")
        for i, layer in enumerate(self.layers):
            own = {key.split(".", 1)[1]: value for key, value in named.items() if key.split(".", 1)[0] == str(i)}
            layer.set_params(own)

    def dense_layers(self) -> list[Dense]:
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    def describe(self) -> dict[str, Any]:
        """The architecture as plain data: the layers, the loss and the penalties."""
        return {
            "layers": [layer.describe() for layer in self.layers],
            "loss": self.loss_function.describe(),
            "l2": self.l2,
            "l1": self.l1,
        }


def share_storage(layers: Sequence[Dense], dtype: np.dtype[Any]) -> tuple[Array, Array]:
    """Move the weight and bias of each layer into one new flat array and their gradients into another,
    leaving each layer with views of its parts; returns the two flat arrays."""
    total = sum(dense.weight.size + dense.bias.size for dense in layers)
    parameters, gradients = np.empty(total, dtype), np.zeros(total, dtype)
    offset = 0

    def move(value: Array) -> tuple[Array, Array]:
        """The parts of the two flat arrays at ``offset`` shaped like ``value``, the first holding its values."""
        nonlocal offset
        part = slice(offset, offset + value.size)
        offset += value.size
        parameters[part] = value.ravel()
        return parameters[part].reshape(value.shape), gradients[part].reshape(value.shape)

    for dense in layers:
        dense.weight, dense.grad_weight = move(dense.weight)
        dense.bias, dense.grad_bias = move(dense.bias)
    return parameters, gradients
