"""Token and position embeddings on arrays, ``Embedding`` and ``PositionEmbedding`` (spec/math.md,
section 17); see scratchnet/loops/embedding.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scratchnet.core.decoding import Cache
from scratchnet.core.errors import ConfigError, ShapeError
from scratchnet.core.init import check_initializer, check_std, init_description
from scratchnet.vectorized.init import initial_weight
from scratchnet.vectorized.tensor import Array, Labels, as_tokens, check_dtype, copy_params


class Table:
    """What both embeddings share: a ``weight`` table of ``rows`` vectors of ``dim`` values and its gradient."""

    def __init__(
        self, name: str, rows: int, dim: int, init: str, seed: int, dtype: str, std: float | None = None
    ) -> None:
        if rows < 1 or dim < 1:
            raise ConfigError(f"{name} needs at least one row and one value per row, got {rows} x {dim}")
        self.name = name
        self.init = check_initializer(init)
        self.dtype = check_dtype(dtype)
        self.std = check_std(init, std)
        self.weight = initial_weight(init, (rows, dim), seed, self.dtype, std=self.std)
        self.grad_weight = np.zeros_like(self.weight)

    def params(self) -> dict[str, Array]:
        """The live ``weight`` table."""
        return {"weight": self.weight}

    def grads(self) -> dict[str, Array]:
        """The live dL/dweight of the last backward pass."""
        return {"weight": self.grad_weight}

    def set_params(self, named: Mapping[str, Any]) -> None:
        """Copy ``weight`` in (an array or nested lists), converting to this layer's dtype."""
        if set(named) != {"weight"}:
            raise ShapeError(f"{self.name}.set_params: expected the array ['weight'], got {sorted(named)}")
        copy_params(self.name, self.params(), named)


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
        dtype: str = "float64",
    ) -> None:
        super().__init__("Embedding", num_embeddings, embedding_dim, init, seed, dtype, std)
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.ids: Labels = np.zeros((0, 0), np.intp)

    def forward(self, inputs: Any, training: bool = False) -> Array:
        """x[n][t] = W[id[n][t]] (eq. 17.1), a gather; an id outside 0..num_embeddings-1 is a
        one-line LabelError."""
        self.ids = as_tokens(inputs, self.num_embeddings, None, "Embedding.forward")
        vectors: Array = self.weight[self.ids]
        return vectors

    def step(self, inputs: Any, cache: Cache) -> Array:
        """The new token of each sequence, ``(N, 1)``: a lookup reads one position alone, so a step is
        the forward pass (spec/math.md, section 24; ``cache`` is unused, taken as every layer's step takes it)."""
        return self.forward(inputs)

    def backward(self, grad_outputs: Array, need_input_grad: bool = True) -> Array:
        """dL/dW[i] = sum of dL/dx[n][t] over the positions that read id i (eq. 17.2): a scatter-add.
        Token ids have no gradient: an empty array is returned whatever ``need_input_grad`` says.

        The rows are grouped by id (a stable sort) and each group summed by ``add.reduceat``, in its
        own order of summation (the loops backend adds position by position): ``np.add.at``, which
        adds in C order, is five times slower (1.9 ms against 0.4 for 768 rows of 128)."""
        expected = (*self.ids.shape, self.embedding_dim)
        if grad_outputs.shape != expected:
            raise ShapeError(f"Embedding.backward: expected gradients of shape {expected}, got {grad_outputs.shape}")
        self.grad_weight[...] = 0.0
        ids = self.ids.ravel()
        if ids.size:
            order = np.argsort(ids, kind="stable")
            grouped = ids[order]
            starts = np.flatnonzero(np.concatenate(([True], grouped[1:] != grouped[:-1])))
            rows = grad_outputs.reshape(-1, self.embedding_dim)[order]
            self.grad_weight[grouped[starts]] = np.add.reduceat(rows, starts, axis=0)
        return grad_outputs[:0]

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
        self,
        max_length: int,
        dim: int,
        *,
        init: str = "gpt_normal",
        std: float | None = None,
        seed: int = 0,
        dtype: str = "float64",
    ) -> None:
        super().__init__("PositionEmbedding", max_length, dim, init, seed, dtype, std)
        self.max_length = max_length
        self.dim = dim
        self.length = 0  # T of the last forward pass

    def forward(self, inputs: Array, training: bool = False) -> Array:
        """y[n][t] = x[n][t] + P[t] (eq. 17.3); a sequence longer than ``max_length`` is a one-line ShapeError."""
        if inputs.ndim != 3 or inputs.shape[2] != self.dim or inputs.shape[0] == 0:
            raise ShapeError(
                f"PositionEmbedding.forward: expects a batch of shape (N, T, {self.dim}), got {inputs.shape}"
            )
        if inputs.shape[1] > self.max_length:
            raise ShapeError(
                f"PositionEmbedding.forward: a sequence of {inputs.shape[1]} positions, "
                f"but the layer holds {self.max_length}"
            )
        self.length = inputs.shape[1]
        outputs: Array = inputs + self.weight[: self.length]
        return outputs

    def step(self, inputs: Array, cache: Cache) -> Array:
        """y = x + P[t] for the new position t = ``cache.position`` of each sequence, ``(N, 1, dim)``
        (eq. 17.3 at one position, section 24); a position past ``max_length`` is a one-line ShapeError."""
        t = cache.position
        if t >= self.max_length:
            raise ShapeError(f"PositionEmbedding.step: position {t + 1}, but the layer holds {self.max_length}")
        outputs: Array = inputs + self.weight[t]
        return outputs

    def backward(self, grad_outputs: Array, need_input_grad: bool = True) -> Array:
        """dL/dP[t] = sum_n dL/dy[n][t] (eq. 17.4), over the batch only; dL/dx = dL/dy."""
        if grad_outputs.shape[1:] != (self.length, self.dim):
            raise ShapeError(
                f"PositionEmbedding.backward: gradients of shape {grad_outputs.shape} for T = {self.length}"
            )
        self.grad_weight[self.length :] = 0.0
        np.sum(grad_outputs, axis=0, out=self.grad_weight[: self.length])
        return grad_outputs if need_input_grad else grad_outputs[:0]

    def describe(self) -> dict[str, Any]:
        described = {"type": "PositionEmbedding", "max_length": self.max_length, "dim": self.dim}
        return {**described, **init_description(self.init, std=self.std)}
