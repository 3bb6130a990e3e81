"""Token and position embeddings, ``Embedding`` and ``PositionEmbedding`` (spec/math.md, section 17).

An embedding is a table of learned vectors: row ``i`` of ``weight`` is the vector of token ``i``
(or of position ``i``). Its forward pass is a lookup; its backward pass adds each position's
gradient into the row it read (a scatter-add).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scratchnet.core.decoding import Cache
from scratchnet.core.errors import ConfigError, ShapeError
from scratchnet.core.init import check_initializer, check_std, init_description
from scratchnet.loops.convolution import check_gradients, shape_name
from scratchnet.loops.init import initial_weight
from scratchnet.loops.tensor import Batch, Matrix, Param, as_tensor, as_tokens, shape_of


class Table:
    """What both embeddings share: a ``weight`` table of ``rows`` vectors of ``dim`` values and its gradient."""

    def __init__(self, name: str, rows: int, dim: int, init: str, seed: int, std: float | None = None) -> None:
        if rows < 1 or dim < 1:
            raise ConfigError(f"{name} needs at least one row and one value per row, got {rows} x {dim}")
        self.name = name
        self.init = check_initializer(init)
        self.std = check_std(init, std)
        self.weight: Matrix = initial_weight(init, (rows, dim), seed, std=self.std)
        self.grad_weight: Matrix = [[0.0] * dim for _ in range(rows)]

    def params(self) -> dict[str, Param]:
        """A copy of the ``weight`` table."""
        return {"weight": [list(row) for row in self.weight]}

    def grads(self) -> dict[str, Param]:
        """A copy of dL/dweight from the last backward pass."""
        return {"weight": [list(row) for row in self.grad_weight]}

    def set_params(self, named: Mapping[str, Any]) -> None:
        """Replace ``weight`` (nested lists, a NumPy array, ...)."""
        shape = (len(self.weight), len(self.weight[0]))
        if set(named) != {"weight"}:
            raise ShapeError(f"{self.name}.set_params: expected the array ['weight'], got {sorted(named)}")
        try:
            self.weight = as_tensor(named["weight"], shape, "weight")
        except ShapeError:
            raise ShapeError(
                f"{self.name}.set_params: weight {shape_name(named['weight'])} does not fit {shape}"
            ) from None


class Embedding(Table):
    """Token ids ``(N, T)`` to vectors ``(N, T, embedding_dim)``: x[n][t] = W[id[n][t]] (eq. 17.1),
    with ``weight`` ``(num_embeddings, embedding_dim)`` as PyTorch's nn.Embedding."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        *,
        init: str = "gpt_normal",
        std: float | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__("Embedding", num_embeddings, embedding_dim, init, seed, std)
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.ids: list[list[int]] = []

    def forward(self, inputs: Batch, training: bool = False) -> Batch:
        """x[n][t] = W[id[n][t]], a copy of the row (eq. 17.1); an id outside 0..num_embeddings-1
        is a one-line LabelError."""
        self.ids = as_tokens(inputs, self.num_embeddings, None, "Embedding.forward")
        return [[list(self.weight[i]) for i in sequence] for sequence in self.ids]

    def step(self, inputs: Batch, cache: Cache) -> Batch:
        """The new token of each sequence, ``(N, 1)``: a lookup reads one position alone, so a step is
        the forward pass (spec/math.md, section 24; ``cache`` is unused, taken as every layer's step takes it)."""
        return self.forward(inputs)

    def backward(self, grad_outputs: Batch, need_input_grad: bool = True) -> Batch:
        """dL/dW[i] = sum of dL/dx[n][t] over the positions that read id i (eq. 17.2), a scatter-add.
        Token ids have no gradient: an empty list is returned whatever ``need_input_grad`` says."""
        length = len(self.ids[0]) if self.ids else 0
        check_gradients("Embedding.backward", grad_outputs, len(self.ids), (length, self.embedding_dim))
        grad = [[0.0] * self.embedding_dim for _ in range(self.num_embeddings)]
        for sequence, g_sequence in zip(self.ids, grad_outputs):
            for i, g in zip(sequence, g_sequence):
                grad[i] = [total + value for total, value in zip(grad[i], g)]
        self.grad_weight = grad
        return []

    def describe(self) -> dict[str, Any]:
        return {
            "type": "Embedding",
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            **init_description(self.init, std=self.std),
        }


class PositionEmbedding(Table):
    """GPT-2's learned positions: y[n][t] = x[n][t] + P[t] for a ``(N, T, dim)`` input, T at most
    ``max_length`` (eq. 17.3); ``weight`` is P, ``(max_length, dim)``."""

    def __init__(
        self, max_length: int, dim: int, *, init: str = "gpt_normal", std: float | None = None, seed: int = 0
    ) -> None:
        super().__init__("PositionEmbedding", max_length, dim, init, seed, std)
        self.max_length = max_length
        self.dim = dim
        self.shape: tuple[int, ...] = ()  # (N, T, dim) of the last forward pass

    def forward(self, inputs: Batch, training: bool = False) -> Batch:
        """y[n][t][c] = x[n][t][c] + P[t][c] (eq. 17.3); a sequence longer than ``max_length`` is a
        one-line ShapeError."""
        if hasattr(inputs, "tolist"):
            inputs = inputs.tolist()
        shape = shape_of(inputs)
        if len(shape) != 3 or shape[2] != self.dim or shape[0] == 0:
            raise ShapeError(f"PositionEmbedding.forward: expects a batch of shape (N, T, {self.dim}), got {shape}")
        if shape[1] > self.max_length:
            raise ShapeError(
                f"PositionEmbedding.forward: a sequence of {shape[1]} positions, but the layer holds {self.max_length}"
            )
        self.shape = shape
        return [
            [[float(x) + p for x, p in zip(row, position)] for row, position in zip(sample, self.weight)]
            for sample in inputs
        ]

    def step(self, inputs: Batch, cache: Cache) -> Batch:
        """y = x + P[t] for the new position t = ``cache.position`` of each sequence, ``(N, 1, dim)``
        (eq. 17.3 at one position, section 24); a position past ``max_length`` is a one-line ShapeError."""
        t = cache.position
        if t >= self.max_length:
            raise ShapeError(f"PositionEmbedding.step: position {t + 1}, but the layer holds {self.max_length}")
        return [[[float(x) + p for x, p in zip(row, self.weight[t])] for row in sample] for sample in inputs]

    def backward(self, grad_outputs: Batch, need_input_grad: bool = True) -> Batch:
        """dL/dP[t] = sum_n dL/dy[n][t] (eq. 17.4), over the batch only; dL/dx = dL/dy."""
        check_gradients("PositionEmbedding.backward", grad_outputs, self.shape[0], self.shape[1:])
        grad = [[0.0] * self.dim for _ in range(self.max_length)]
        for sample in grad_outputs:
            for t, g in enumerate(sample):
                grad[t] = [total + value for total, value in zip(grad[t], g)]
        self.grad_weight = grad
        return grad_outputs if need_input_grad else []

    def describe(self) -> dict[str, Any]:
        described = {"type": "PositionEmbedding", "max_length": self.max_length, "dim": self.dim}
        return {**described, **init_description(self.init, std=self.std)}
