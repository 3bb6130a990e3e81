"""The one interface both backends satisfy, as typing Protocols (mypy checks both against them).

The loops backend exchanges parameters as nested lists of floats, the vectorized backend as NumPy
arrays; both key them ``"<layer index>.<name>"`` with Dense weights ``(out_features, in_features)``.
``set_params`` of either backend accepts the other's, so parameters move freely between them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

BatchT = TypeVar("BatchT")
ParamT = TypeVar("ParamT")


class Layer(Protocol[BatchT, ParamT]):
    """A step of the network: ``forward`` keeps what ``backward`` needs to pass dL/d(input) back."""

    def forward(self, inputs: BatchT, training: bool = False) -> BatchT: ...
    def backward(self, grad_outputs: BatchT) -> BatchT: ...
    def params(self) -> dict[str, ParamT]: ...
    def grads(self) -> dict[str, ParamT]: ...
    def set_params(self, named: Mapping[str, Any]) -> None: ...
    def describe(self) -> dict[str, Any]: ...


class Network(Protocol[BatchT, ParamT]):
    """Layers and a loss: forward, loss, backward, predict, and named parameters and gradients."""

    def forward(self, inputs: Any, training: bool = False) -> BatchT: ...
    def loss(self, outputs: BatchT, labels: Any) -> float: ...
    def backward(self) -> None: ...
    def predict(self, inputs: Any) -> Any: ...
    def params(self) -> dict[str, ParamT]: ...
    def grads(self) -> dict[str, ParamT]: ...
    def set_params(self, named: Mapping[str, Any]) -> None: ...
    def describe(self) -> dict[str, Any]: ...


class Optimizer(Protocol):
    """Moves a network's parameters one step against its gradients; its state (step count and
    moments) can be exported and imported, so that training resumes exactly."""

    lr: float

    def step(self, network: Any) -> None: ...
    def current_lr(self) -> float: ...
    def describe(self) -> dict[str, Any]: ...
    def export_state(self) -> dict[str, Any]: ...
    def import_state(self, state: Mapping[str, Any]) -> None: ...


if TYPE_CHECKING:  # mypy proves here that each backend satisfies the Protocols; nothing runs
    import scratchnet.loops as _loops
    import scratchnet.vectorized as _vectorized
    from scratchnet.loops.tensor import Batch as _LoopsBatch
    from scratchnet.loops.tensor import Param as _LoopsParam
    from scratchnet.vectorized.tensor import Array as _Array

    def _loops_network(net: _loops.Network) -> Network[_LoopsBatch, _LoopsParam]:
        return net

    def _vectorized_network(net: _vectorized.Network) -> Network[_Array, _Array]:
        return net

    def _loops_layers(a: _loops.Dense, b: _loops.ReLU, c: _loops.Softmax, d: _loops.Dropout) -> list[Layer[_LoopsBatch, _LoopsParam]]:
        return [a, b, c, d]

    def _vectorized_layers(
        a: _vectorized.Dense, b: _vectorized.ReLU, c: _vectorized.Softmax, d: _vectorized.Dropout
    ) -> list[Layer[_Array, _Array]]:
        return [a, b, c, d]

    def _loops_optimizers(
        a: _loops.SGD, b: _loops.Adagrad, c: _loops.RMSprop, d: _loops.Adam, e: _loops.AdamW
    ) -> list[Optimizer]:
        return [a, b, c, d, e]

    def _vectorized_optimizers(
        a: _vectorized.SGD, b: _vectorized.Adagrad, c: _vectorized.RMSprop, d: _vectorized.Adam, e: _vectorized.AdamW
    ) -> list[Optimizer]:
        return [a, b, c, d, e]
