"""A network: layers in order, a loss, and backpropagation through them (spec/math.md, section 6)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from scratchnet.core.errors import ConfigError, ScratchnetError
from scratchnet.core.interface import Layer, Loss
from scratchnet.core.network import Sequential
from scratchnet.vectorized.tensor import Array, Labels, as_batch, as_tokens, check_labels, check_targets


class Network(Sequential[Array, Array]):
    """A :class:`scratchnet.core.network.Sequential` of vectorized layers: ``out = net.forward(x)``,
    ``net.loss(out, y)``, ``net.backward()``, then an optimizer step. In this backend :meth:`params`
    and :meth:`grads` return the live arrays, views of one flat array each (:meth:`flat_params`)."""

    def __init__(
        self,
        layers: Sequence[Layer[Array, Array]],
        loss: Loss[Array],
        *,
        l2: float = 0.0,
        l1: float = 0.0,
        input_shape: Sequence[int] | None = None,
        vocabulary: int | None = None,
    ) -> None:
        super().__init__(layers, loss, l2=l2, l1=l1, input_shape=input_shape, vocabulary=vocabulary)
        dtypes = {value.dtype for layer in layers for value in layer.params().values()}
        if len(dtypes) > 1:
            raise ConfigError(f"every layer needs the same dtype, got {sorted(str(d) for d in dtypes)}")
        self.dtype: np.dtype[Any] = dtypes.pop() if dtypes else np.dtype(np.float64)
        # Every trained array lives in one flat array and every gradient in another; the layers keep
        # views of their parts, in grads() order. An elementwise optimizer then updates all of them
        # with one NumPy call per operation instead of one per array.
        self.parameters, self.gradients = share_storage(self.layers, self.trained, self.dtype)
        self.outputs: Array = np.zeros((0, 0), self.dtype)
        self.loss_inputs: Array = self.outputs
        self.labels: Labels | None = None

    def forward(self, inputs: Any, training: bool = False) -> Array:
        """The output of the last layer for each sample (probabilities when it is a Softmax); a
        token network reads (N, T) ids, T at most its input length, and gives (N, T, classes)."""
        if self.vocabulary is not None:  # integer ids, which the first layer (an Embedding) reads
            activations: Array = as_tokens(inputs, self.vocabulary, self.input_shape[0], "Network.forward")  # type: ignore[assignment]
        else:
            activations = as_batch(inputs, self.input_shape, self.dtype, "Network.forward")
        for layer in self.layers:
            if layer is self.layers[-1]:
                self.loss_inputs = activations  # the logits, when the loss is fused with this layer
            activations = layer.forward(activations, training)
        if not self.fused:
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
        if outputs.ndim == 3:  # targets (N, T), ignore_index at padded positions (eq. 16.3)
            ignore = self.loss_function.describe().get("ignore_index", -100)
            shape = (outputs.shape[0], outputs.shape[1])
            self.labels = check_targets(labels, shape, outputs.shape[2], ignore, "Network.loss")
        else:
            self.labels = check_labels(labels, outputs.shape[0], outputs.shape[1], "Network.loss")
        value = self.loss_function.value(self.loss_inputs, self.labels, self.layers[-1])
        return value + self.penalty()

    def penalty(self) -> float:
        """l2/2 * sum w^2 + l1 * sum |w| over every penalized array (eq. 7.1, 7.2)."""
        if self.l2 == 0.0 and self.l1 == 0.0:
            return 0.0
        params = self.params()
        return float(
            sum(
                0.5 * self.l2 * np.sum(params[name] * params[name]) + self.l1 * np.sum(np.abs(params[name]))
                for name in self.penalized
            )
        )

    def backward(self) -> None:
        """Backpropagate the loss of the latest :meth:`loss` call through every layer (eq. 6.1-6.2)."""
        if self.labels is None:
            raise ScratchnetError("Network.backward needs a loss() call first")
        grad = self.loss_function.gradient(self.loss_inputs, self.outputs, self.labels)
        layers = self.layers[:-1] if self.fused else self.layers
        for index in reversed(range(len(layers))):
            if index > 0:
                grad = layers[index].backward(grad)
            elif self.first_layer_trained:  # dL/dx of the data itself is never used
                layers[index].backward(grad, need_input_grad=False)
        if self.l2 != 0.0 or self.l1 != 0.0:
            params, grads = self.params(), self.grads()
            for name in self.penalized:  # d/dw of the penalties: l2 w + l1 sign(w) (eq. 7.1, 7.2)
                grads[name] += self.l2 * params[name] + self.l1 * np.sign(params[name])

    def predict(self, inputs: Any) -> npt.NDArray[np.intp]:
        """The predicted class of each sample: the largest output, or output >= 0.5 for a single one."""
        outputs = self.forward(inputs)
        if outputs.ndim == 3:  # the largest score at each position of a sequence
            positions: npt.NDArray[np.intp] = np.argmax(outputs, axis=-1)
            return positions
        if outputs.shape[1] == 1:
            return (outputs[:, 0] >= 0.5).astype(np.intp)
        classes: npt.NDArray[np.intp] = np.argmax(outputs, axis=1)
        return classes

    def flat_params(self) -> Array:
        """Every trained array in one live 1-D array, in :meth:`grads` order (those arrays are views of it)."""
        return self.parameters

    def flat_grads(self) -> Array:
        """Every gradient in one live 1-D array, in :meth:`grads` order (those arrays are views of it)."""
        return self.gradients


def share_storage(
    layers: Sequence[Layer[Array, Array]], names: Sequence[str], dtype: np.dtype[Any]
) -> tuple[Array, Array]:
    """Move the arrays ``names`` (``"<layer index>.<name>"``) into one new flat array and their
    gradients into another, leaving each layer with views of its parts; returns the two flat arrays.

    A layer keeps array ``name`` in its attribute ``name`` and the gradient in ``grad_<name>``
    (the convention of :class:`scratchnet.core.interface.Layer`), which is how they are found here;
    a dotted name ``part.name`` (attention's ``out_proj.weight``) is attribute ``name`` of the
    layer's attribute ``part``, and a number is a held layer of a container (``"3.0.weight"``).
    """
    located = [owner(layers[int(index)], name) for index, name in (key.split(".", 1) for key in names)]
    total = sum(getattr(layer, name).size for layer, name in located)
    parameters, gradients = np.empty(total, dtype), np.zeros(total, dtype)
    offset = 0
    for layer, name in located:
        value = getattr(layer, name)
        part = slice(offset, offset + value.size)
        offset += value.size
        parameters[part] = value.ravel()
        setattr(layer, name, parameters[part].reshape(value.shape))
        setattr(layer, f"grad_{name}", gradients[part].reshape(value.shape))
    return parameters, gradients


def owner(layer: Any, name: str) -> tuple[Any, str]:
    """The object holding array ``name`` of ``layer`` and its attribute name there: ``(layer, name)``,
    for ``"out_proj.weight"`` ``(layer.out_proj, "weight")``, and for ``"0.weight"`` of a container
    ``(layer.layers[0], "weight")``."""
    *path, attribute = name.split(".")
    for part in path:
        layer = layer.layers[int(part)] if part.isdigit() else getattr(layer, part)
    return layer, attribute
