"""What both backends' networks share: checking the layers against the registry, the bookkeeping
that follows from it, and the named arrays. Each backend's ``Network`` adds forward, loss,
backward and predict in its own terms (``scratchnet/loops/network.py``, ``scratchnet/vectorized/network.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic

from scratchnet.core.architecture import Plan, canonical, plan
from scratchnet.core.errors import ShapeError
from scratchnet.core.interface import BatchT, Layer, Loss, ParamT
from scratchnet.core.registry import output_for_loss


class Sequential(Generic[BatchT, ParamT]):
    """``layers`` applied in order, trained on ``loss``, with optional L2 and L1 penalties on the
    arrays the layer registry marks penalized: the weights, not the biases (eq. 7.1, 7.2).

    Arrays are named ``"<layer index>.<name>"``, e.g. ``"0.weight"``, ``"0.bias"``, ``"2.weight"``.
    ``input_shape`` (one sample's shape) is needed only when the layers do not imply it;
    ``vocabulary`` makes the input token ids 0..vocabulary-1, ``input_shape`` ``(T,)`` the longest
    sequence (spec/math.md, section 16).
    """

    def __init__(
        self,
        layers: Sequence[Layer[BatchT, ParamT]],
        loss: Loss[BatchT],
        *,
        l2: float = 0.0,
        l1: float = 0.0,
        input_shape: Sequence[int] | None = None,
        vocabulary: int | None = None,
    ) -> None:
        description: dict[str, Any] = {
            "layers": [layer.describe() for layer in layers],
            "loss": loss.describe(),
            "l2": l2,
            "l1": l1,
        }
        if input_shape is not None:
            description["input_shape"] = list(input_shape)
        if vocabulary is not None:
            description["vocabulary"] = vocabulary
        self.plan: Plan = plan(description)  # ConfigError when the layers do not fit together or the loss
        self.layers = list(layers)
        self.loss_function = loss
        self.l2 = l2
        self.l1 = l1
        self.input_shape = self.plan.input_shape
        self.vocabulary = self.plan.vocabulary
        self.fused = output_for_loss(loss.describe()["type"]) is not None  # the loss reads the logits
        self.penalized = [array.name for array in self.plan.arrays if array.penalized]
        self.trained = [array.name for array in self.plan.arrays if array.trained]
        # Nobody needs dL/dx of the data: the first layer's backward is skipped when it trains nothing.
        self.first_layer_trained = any(name.startswith("0.") for name in self.trained)

    def params(self) -> dict[str, ParamT]:
        """Every array, trained or not, as ``{"<layer>.<name>": array}``, in layer order (a
        container's as ``"<layer>.<its layer>.<name>"``)."""
        return named_arrays(self.layers, "params")

    def grads(self) -> dict[str, ParamT]:
        """The gradients of the last backward pass, keyed and shaped like :meth:`params`, for the
        trained arrays only."""
        return named_arrays(self.layers, "grads")

    def set_params(self, named: Mapping[str, Any]) -> None:
        """Load every array keyed like :meth:`params` (either backend's tensors, or anything iterable)."""
        load_arrays(self.layers, named, "set_params")

    def describe(self) -> dict[str, Any]:
        """The architecture as plain data: the layers, the loss, the penalties (and the input shape
        when the layers do not imply it)."""
        description = {
            "layers": [layer.describe() for layer in self.layers],
            "loss": self.loss_function.describe(),
            "l2": self.l2,
            "l1": self.l1,
            "input_shape": list(self.input_shape),
        }
        if self.vocabulary is not None:
            description["vocabulary"] = self.vocabulary
        return canonical(description)


def named_arrays(layers: Sequence[Any], method: str) -> dict[str, Any]:
    """``{"<index>.<name>": array}`` of each layer's ``params()`` or ``grads()`` (``method``), in
    order: a layer that holds layers names its own arrays the same way, hence ``"3.0.weight"``."""
    return {f"{i}.{name}": value for i, layer in enumerate(layers) for name, value in getattr(layer, method)().items()}


def load_arrays(layers: Sequence[Any], named: Mapping[str, Any], where: str) -> None:
    """Give each of ``layers`` its arrays of ``named`` (keyed as :func:`named_arrays` keys them),
    without the ``"<index>."`` in front; ShapeError when the names are not exactly the layers'."""
    expected = set(named_arrays(layers, "params"))
    if set(named) != expected:
        missing, extra = sorted(expected - set(named)), sorted(set(named) - expected)
        raise ShapeError(f"{where}: missing {missing}, unexpected {extra}")
    for i, layer in enumerate(layers):
        own = {key.split(".", 1)[1]: value for key, value in named.items() if key.split(".", 1)[0] == str(i)}
        layer.set_params(own)


class Container(Generic[BatchT, ParamT]):
    """What both backends' container layers share (``Residual``): the layers they hold, and their
    arrays named by the index of the layer that holds them, ``"0.weight"`` for the first one's
    weight, which the network then names ``"3.0.weight"`` (:mod:`scratchnet.core.walk`). Each
    backend's subclass writes forward and backward."""

    def __init__(self, layers: Sequence[Layer[BatchT, ParamT]]) -> None:
        self.layers = list(layers)

    def params(self) -> dict[str, ParamT]:
        return named_arrays(self.layers, "params")

    def grads(self) -> dict[str, ParamT]:
        return named_arrays(self.layers, "grads")

    def set_params(self, named: Mapping[str, Any]) -> None:
        load_arrays(self.layers, named, f"{type(self).__name__}.set_params")

    def describe(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "layers": [layer.describe() for layer in self.layers]}


class ParameterFree(Generic[ParamT]):
    """What the layers without arrays share (activations, Dropout): no params, no gradients, and a
    description that is the type alone unless the subclass has options."""

    def params(self) -> dict[str, ParamT]:
        return {}

    def grads(self) -> dict[str, ParamT]:
        return {}

    def set_params(self, named: Mapping[str, Any]) -> None:
        if named:
            raise ShapeError(f"{type(self).__name__} has no parameters, got {sorted(named)}")

    def describe(self) -> dict[str, Any]:
        return {"type": type(self).__name__}
