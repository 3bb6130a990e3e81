"""A network: layers in order, a loss, and backpropagation through them (spec/math.md, section 6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from scratchnet.architecture import check_architecture
from scratchnet.errors import ScratchnetError, ShapeError
from scratchnet.loops.activations import Softmax
from scratchnet.loops.layers import Dense
from scratchnet.loops.losses import CrossEntropy
from scratchnet.loops.tensor import Batch, Param, as_batch, check_labels


class Layer(Protocol):
    def forward(self, inputs: Batch, training: bool = False) -> Batch: ...
    def backward(self, grad_outputs: Batch) -> Batch: ...
    def params(self) -> dict[str, Param]: ...
    def grads(self) -> dict[str, Param]: ...
    def set_params(self, named: Mapping[str, Any]) -> None: ...
    def describe(self) -> dict[str, Any]: ...


class Loss(Protocol):
    fused_activation: str | None

    def value(self, inputs: Batch, labels: list[int]) -> float: ...
    def gradient(self, inputs: Batch, outputs: Batch, labels: list[int]) -> Batch: ...
    def describe(self) -> dict[str, Any]: ...


class Network:
    """``layers`` applied in order, trained on ``loss``, with optional L2 and L1 penalties on the
    Dense weights (biases are not penalised; eq. 7.1, 7.2).

    Use: ``out = net.forward(x)``, ``net.loss(out, y)``, ``net.backward()``, then an optimizer step.
    Parameters are named ``"<layer index>.<name>"``, e.g. ``"0.weight"``, ``"0.bias"``, ``"2.weight"``.
    In this backend :meth:`params` and :meth:`grads` return copies as nested lists.
    """

    def __init__(self, layers: Sequence[Layer], loss: Loss, *, l2: float = 0.0, l1: float = 0.0) -> None:
        check_architecture(layers, loss, l2, l1)
        self.layers = list(layers)
        self.loss_function = loss
        self.l2 = l2
        self.l1 = l1
        self.outputs: Batch = []
        self.loss_inputs: Batch = []
        self.labels: list[int] = []

    def forward(self, inputs: Sequence[Sequence[float]], training: bool = False) -> Batch:
        """The output of the last layer for each sample (probabilities when it is a Softmax)."""
        activations = as_batch(inputs, None, "Network.forward")
        for layer in self.layers:
            if layer is self.layers[-1]:
                self.loss_inputs = activations  # the logits, when the loss is fused with this layer
            activations = layer.forward(activations, training)
        if self.loss_function.fused_activation is None:
            self.loss_inputs = activations
        self.outputs = activations
        return activations

    def loss(self, outputs: Batch, labels: Sequence[int]) -> float:
        """The mean loss of the batch plus the penalties (eq. 5.2-5.5, 7.1, 7.2).

        ``outputs`` must be what the latest :meth:`forward` returned: the loss reads the logits that
        call kept, which is what keeps cross-entropy finite for any logits.
        """
        if outputs is not self.outputs:
            raise ScratchnetError("Network.loss needs the outputs returned by the latest forward() call")
        self.labels = check_labels(labels, len(outputs), len(outputs[0]), "Network.loss")
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
        total = 0.0
        for layer in self.dense_layers():
            for neuron in layer.neurons:
                total += sum(0.5 * self.l2 * w * w + self.l1 * abs(w) for w in neuron.weights)
        return total

    def backward(self) -> None:
        """Backpropagate the loss of the latest :meth:`loss` call through every layer (eq. 6.1-6.2)."""
        if not self.labels:
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
            for dense in self.dense_layers():
                for neuron in dense.neurons:  # d/dw of the penalties: l2 w + l1 sign(w) (eq. 7.1, 7.2)
                    neuron.grad_weights = [
                        g + self.l2 * w + self.l1 * sign(w) for g, w in zip(neuron.grad_weights, neuron.weights)
                    ]

    def predict(self, inputs: Sequence[Sequence[float]]) -> list[int]:
        """The predicted class of each sample: the largest output, or output >= 0.5 for a single one."""
        outputs = self.forward(inputs)
        if len(outputs[0]) == 1:
            return [1 if row[0] >= 0.5 else 0 for row in outputs]
        return [max(range(len(row)), key=row.__getitem__) for row in outputs]

    def params(self) -> dict[str, Param]:
        """Every parameter as ``{"<layer>.<name>": nested list}``, in layer order."""
        return {f"{i}.{name}": value for i, layer in enumerate(self.layers) for name, value in layer.params().items()}

    def grads(self) -> dict[str, Param]:
        """The gradients of the last :meth:`backward`, keyed and shaped like :meth:`params`."""
        return {f"{i}.{name}": value for i, layer in enumerate(self.layers) for name, value in layer.grads().items()}

    def set_params(self, named: Mapping[str, Any]) -> None:
        """Load parameters keyed like :meth:`params` (nested lists, NumPy arrays, anything iterable)."""
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


def sign(w: float) -> float:
    """sign(w): -1, 0 or 1, the derivative of |w| (taken as 0 at 0)."""
    return float((w > 0.0) - (w < 0.0))

