"""The one interface both backends satisfy, as typing Protocols, declared once for both.

The loops backend exchanges tensors as nested lists of floats, the vectorized backend as NumPy
arrays (``BatchT`` and ``ParamT`` below); both key parameters ``"<layer index>.<name>"`` with the
layouts the layer registry gives (Dense weights ``(out_features, in_features)``). ``set_params`` of
either backend accepts the other's, so parameters move freely between them. mypy checks that every
backend class satisfies these (``scratchnet/builders/network.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

BatchT = TypeVar("BatchT")
ParamT = TypeVar("ParamT")


class Layer(Protocol[BatchT, ParamT]):
    """A step of the network: ``forward`` keeps what ``backward`` needs to pass dL/d(input) back.

    ``params()`` holds every array of the layer, trained or not (a batch-norm layer's running
    statistics are not trained); ``grads()`` holds the gradients of the trained ones only. A layer
    whose backward is given ``need_input_grad=False`` (the first layer: nobody needs dL/dx of the
    data) may skip computing dL/dx and return an empty batch. In the vectorized backend a layer
    keeps array ``name`` in its attribute ``name`` and the gradient in ``grad_<name>``, so that the
    network can move them all into one flat array.
    """

    def forward(self, inputs: BatchT, training: bool = False) -> BatchT: ...
    def backward(self, grad_outputs: BatchT, need_input_grad: bool = True) -> BatchT: ...
    def params(self) -> dict[str, ParamT]: ...
    def grads(self) -> dict[str, ParamT]: ...
    def set_params(self, named: Mapping[str, Any]) -> None: ...
    def describe(self) -> dict[str, Any]: ...


class Loss(Protocol[BatchT]):
    """A number for how wrong a batch of outputs is, and its gradient (spec/math.md, section 5).

    ``inputs`` is what the loss reads: the logits entering the final layer when the registry says
    that layer is fused with this loss, else the network's outputs. ``output_layer`` is the
    network's last layer, whose forward pass may have kept what the loss needs (the Softmax keeps
    log sum exp of each row).
    """

    def value(self, inputs: BatchT, labels: Any, output_layer: Any = None) -> float: ...
    def gradient(self, inputs: BatchT, outputs: BatchT, labels: Any) -> BatchT: ...
    def describe(self) -> dict[str, Any]: ...


class Trainable(Protocol[ParamT]):
    """What an optimizer step needs from a network: every named array and the gradients of the
    trained ones (an array without a gradient is not trained), and a way to write values back."""

    def params(self) -> dict[str, ParamT]: ...
    def grads(self) -> dict[str, ParamT]: ...
    def set_params(self, named: Mapping[str, Any]) -> None: ...


class Network(Protocol[BatchT, ParamT]):
    """Layers and a loss: forward, loss, backward, predict, and named parameters and gradients."""

    @property
    def layers(self) -> Sequence[Any]: ...

    def forward(self, inputs: Any, training: bool = False) -> BatchT: ...
    def loss(self, outputs: BatchT, labels: Any) -> float: ...
    def backward(self) -> None: ...
    def predict(self, inputs: Any) -> Any: ...
    def params(self) -> dict[str, ParamT]: ...
    def grads(self) -> dict[str, ParamT]: ...
    def set_params(self, named: Mapping[str, Any]) -> None: ...
    def describe(self) -> dict[str, Any]: ...


class Optimizer(Protocol):
    """Moves a network's trained parameters one step against their gradients; its state (step count
    and moments) can be exported and imported, so that training resumes exactly."""

    lr: float

    def step(self, network: Any) -> None: ...
    def current_lr(self) -> float: ...
    def describe(self) -> dict[str, Any]: ...
    def export_state(self) -> dict[str, Any]: ...
    def import_state(self, state: Mapping[str, Any]) -> None: ...
