"""A network: layers in order, a loss, and backpropagation through them (spec/math.md, section 6)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scratchnet.core.errors import ScratchnetError
from scratchnet.core.interface import Layer, Loss
from scratchnet.core.network import Sequential
from scratchnet.loops.tensor import (
    Batch,
    Param,
    as_batch,
    as_tokens,
    check_labels,
    check_targets,
    flatten,
    is_sequence_batch,
    reshape,
    shape_of,
)


class Network(Sequential[Batch, Param]):
    """A :class:`scratchnet.core.network.Sequential` of loops layers: ``out = net.forward(x)``,
    ``net.loss(out, y)``, ``net.backward()``, then an optimizer step. In this backend :meth:`params`
    and :meth:`grads` return copies as nested lists."""

    def __init__(
        self,
        layers: Sequence[Layer[Batch, Param]],
        loss: Loss[Batch],
        *,
        l2: float = 0.0,
        l1: float = 0.0,
        input_shape: Sequence[int] | None = None,
        vocabulary: int | None = None,
    ) -> None:
        super().__init__(layers, loss, l2=l2, l1=l1, input_shape=input_shape, vocabulary=vocabulary)
        self.outputs: Batch = []
        self.loss_inputs: Batch = []
        self.labels: list[Any] = []
        self.penalty_grads: dict[str, list[float]] = {}  # d/dw of the penalties, from the last backward

    def forward(self, inputs: Sequence[Any], training: bool = False) -> Batch:
        """The output of the last layer for each sample (probabilities when it is a Softmax); a
        token network reads (N, T) ids, T at most its input length, and gives (N, T, classes)."""
        if self.vocabulary is not None:
            activations = as_tokens(inputs, self.vocabulary, self.input_shape[0], "Network.forward")
        else:
            activations = as_batch(inputs, self.input_shape, "Network.forward")
        for layer in self.layers:
            if layer is self.layers[-1]:
                self.loss_inputs = activations  # the logits, when the loss is fused with this layer
            activations = layer.forward(activations, training)
        if not self.fused:
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
        if is_sequence_batch(outputs):  # targets (N, T), ignore_index at padded positions (eq. 16.3)
            ignore = self.loss_function.describe().get("ignore_index", -100)
            shape = (len(outputs), len(outputs[0]))
            self.labels = check_targets(labels, shape, len(outputs[0][0]), ignore, "Network.loss")
        else:
            self.labels = check_labels(labels, len(outputs), len(outputs[0]), "Network.loss")
        value = self.loss_function.value(self.loss_inputs, self.labels, self.layers[-1])
        return value + self.penalty()

    def penalty(self) -> float:
        """l2/2 * sum w^2 + l1 * sum |w| over every penalized array (eq. 7.1, 7.2)."""
        if self.l2 == 0.0 and self.l1 == 0.0:
            return 0.0
        params = self.params()
        return sum(
            sum(0.5 * self.l2 * w * w + self.l1 * abs(w) for w in flatten(params[name])) for name in self.penalized
        )

    def backward(self) -> None:
        """Backpropagate the loss of the latest :meth:`loss` call through every layer (eq. 6.1-6.2)."""
        if not self.labels:
            raise ScratchnetError("Network.backward needs a loss() call first")
        grad = self.loss_function.gradient(self.loss_inputs, self.outputs, self.labels)
        layers = self.layers[:-1] if self.fused else self.layers
        for index in reversed(range(len(layers))):
            if index > 0:
                grad = layers[index].backward(grad)
            elif self.first_layer_trained:  # dL/dx of the data itself is never used
                layers[index].backward(grad, need_input_grad=False)
        self.penalty_grads = {}
        if self.l2 != 0.0 or self.l1 != 0.0:
            params = self.params()
            for name in self.penalized:  # d/dw of the penalties: l2 w + l1 sign(w) (eq. 7.1, 7.2)
                self.penalty_grads[name] = [self.l2 * w + self.l1 * sign(w) for w in flatten(params[name])]

    def predict(self, inputs: Sequence[Any]) -> list[Any]:
        """The predicted class of each sample: the largest output, or output >= 0.5 for a single one
        (of each position of a sequence: the largest score)."""
        outputs = self.forward(inputs)
        if is_sequence_batch(outputs):
            return [[max(range(len(row)), key=row.__getitem__) for row in sample] for sample in outputs]
        if len(outputs[0]) == 1:
            return [1 if row[0] >= 0.5 else 0 for row in outputs]
        return [max(range(len(row)), key=row.__getitem__) for row in outputs]

    def grads(self) -> dict[str, Param]:
        """The gradients of the last :meth:`backward` (with the penalties' share), keyed and shaped
        like :meth:`params`, for the trained arrays only."""
        grads = super().grads()
        for name, extra in self.penalty_grads.items():
            grads[name] = reshape([g + e for g, e in zip(flatten(grads[name]), extra)], shape_of(grads[name]))
        return grads


def sign(w: float) -> float:
    """sign(w): -1, 0 or 1, the derivative of |w| (taken as 0 at 0)."""
    return float((w > 0.0) - (w < 0.0))
