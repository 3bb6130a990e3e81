"""Layers with parameters or randomness: ``Dense`` and ``Dropout`` (spec/math.md, sections 3 and 7)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scratchnet.core.decoding import Cache
from scratchnet.core.errors import ConfigError, ShapeError
from scratchnet.core.init import check_initializer, check_std, dense_description
from scratchnet.core.network import ParameterFree
from scratchnet.vectorized import rng
from scratchnet.vectorized.init import initial_bias, initial_weight
from scratchnet.vectorized.tensor import Array, as_batch, check_dtype


class Dense:
    """A fully connected layer: ``out_features`` neurons, each seeing all ``in_features`` inputs.

    Parameters are ``weight`` ``(out_features, in_features)`` (row j is neuron j's weights) and
    ``bias`` ``(out_features,)``, which ``bias=False`` leaves out (PyTorch's nn.Linear(..., bias=False)).
    Given a batch of sequences ``(N, T, in_features)`` it is applied at every position, as PyTorch's
    nn.Linear on the last axis (eq. 16.1). ``std`` is the spread of ``init="normal"`` (eq. 10.12).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        init: str = "he_normal",
        std: float | None = None,
        seed: int = 0,
        dtype: str = "float64",
    ) -> None:
        if in_features < 1 or out_features < 1:
            raise ConfigError(f"Dense needs at least one input and one output, got {in_features} -> {out_features}")
        self.in_features = in_features
        self.out_features = out_features
        self.has_bias = bias
        self.init = check_initializer(init)
        self.std = check_std(init, std)
        self.dtype = check_dtype(dtype)
        self.weight = initial_weight(init, (out_features, in_features), seed, self.dtype, std=self.std)
        self.bias = initial_bias(init, out_features if bias else 0, seed, self.dtype)
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = np.zeros_like(self.bias)
        self.inputs: Array = np.zeros((0, in_features), self.dtype)
        self.positions = 0  # T of the last forward pass when it read sequences, else 0

    def forward(self, inputs: Array, training: bool = False) -> Array:
        """z = x W^T + b: every neuron on every sample (eq. 3.1); a batch of sequences is N * T
        rows, one matrix product (eq. 16.1)."""
        if np.ndim(inputs) == 3:
            sequences = np.asarray(inputs)
            rows = self.forward(sequences.reshape(-1, sequences.shape[2]), training)
            self.positions = sequences.shape[1]
            return rows.reshape(sequences.shape[0], self.positions, self.out_features)
        self.positions = 0
        self.inputs = as_batch(inputs, (self.in_features,), self.dtype, "Dense.forward")
        z = self.inputs @ self.weight.T
        if self.has_bias:
            z += self.bias
        return z

    def step(self, inputs: Array, cache: Cache) -> Array:
        """The new position of each sequence, ``(N, 1, in_features)``: the layer reads each position
        alone (eq. 16.1), so a step is the forward pass (spec/math.md, section 24; ``cache`` is unused,
        taken as every layer's step takes it)."""
        return self.forward(inputs)

    def backward(self, grad_outputs: Array, need_input_grad: bool = True) -> Array:
        """Given dL/dz, the gradients summed over the batch, and dL/dx (eq. 3.2-3.4).

        With ``need_input_grad=False`` (the first layer: nobody needs dL/dx of the data) dL/dx is
        not computed and an empty array is returned.
        """
        if self.positions:  # sequences: N * T rows, as in forward (eq. 16.1)
            positions, self.positions = self.positions, 0
            grad_rows = self.backward(grad_outputs.reshape(-1, self.out_features), need_input_grad)
            self.positions = positions
            return grad_rows.reshape(-1, positions, self.in_features) if need_input_grad else grad_rows
        if grad_outputs.shape != (self.inputs.shape[0], self.out_features):
            raise ShapeError(
                f"Dense.backward: gradient of shape {grad_outputs.shape} for outputs of shape "
                f"{(self.inputs.shape[0], self.out_features)}"
            )
        np.matmul(grad_outputs.T, self.inputs, out=self.grad_weight)  # eq. 3.2: sum_n delta[n][j] x[n][i]
        if self.has_bias:
            grad_outputs.sum(axis=0, out=self.grad_bias)  # eq. 3.3: over the batch axis only
        if not need_input_grad:
            return self.inputs[:0]
        return grad_outputs @ self.weight  # eq. 3.4

    def params(self) -> dict[str, Array]:
        """The live ``weight`` and ``bias`` arrays (copy them to keep a snapshot); no ``bias`` without one."""
        return {"weight": self.weight, "bias": self.bias} if self.has_bias else {"weight": self.weight}

    def grads(self) -> dict[str, Array]:
        """The live dL/dW and dL/db arrays of the last backward pass."""
        return {"weight": self.grad_weight, "bias": self.grad_bias} if self.has_bias else {"weight": self.grad_weight}

    def set_params(self, named: Mapping[str, Any]) -> None:
        """Copy ``weight`` and ``bias`` (when the layer has one) in from arrays or nested lists,
        converting to this layer's dtype."""
        weight, bias = np.asarray(named["weight"]), np.asarray(named["bias"] if self.has_bias else self.bias)
        if weight.shape != self.weight.shape or bias.shape != self.bias.shape:
            raise ShapeError(
                f"Dense.set_params: weight {weight.shape} and bias {bias.shape} do not fit "
                f"{self.weight.shape} and {self.bias.shape}"
            )
        if weight is not self.weight:
            np.copyto(self.weight, weight, casting="unsafe")
        if bias is not self.bias:
            np.copyto(self.bias, bias, casting="unsafe")

    def describe(self) -> dict[str, Any]:
        return dense_description(self.in_features, self.out_features, self.has_bias, self.init, self.std)


class Dropout(ParameterFree[Array]):
    """Inverted dropout: in training, each input is kept with probability 1 - rate and scaled by
    1 / (1 - rate); at inference it is the identity (eq. 7.3).

    The mask of the k-th training forward pass comes from stream k of ``seed``, the same numbers
    the loops backend draws, so both backends drop exactly the same units.
    """

    def __init__(self, rate: float, *, seed: int = 0) -> None:
        if not 0.0 <= rate < 1.0:
            raise ConfigError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.seed = seed
        self.calls = 0  # training forward passes so far: the stream of the next mask
        self.mask: Array | None = None

    def forward(self, inputs: Array, training: bool = False) -> Array:
        if not training or self.rate == 0.0:
            self.mask = None
            return inputs
        draws = rng.uniforms(self.seed, self.calls, inputs.size).reshape(inputs.shape)
        self.calls += 1
        self.mask = np.where(draws >= self.rate, 1.0 / (1.0 - self.rate), 0.0).astype(inputs.dtype)
        return inputs * self.mask

    def step(self, inputs: Array, cache: Cache) -> Array:
        """Decoding is inference, where dropout is the identity (spec/math.md, section 24; ``cache`` is
        unused, taken as every layer's step takes it)."""
        return self.forward(inputs)

    def backward(self, grad_outputs: Array, need_input_grad: bool = True) -> Array:
        """dL/dx = dL/da * mask (``need_input_grad`` is ignored: this is all the layer computes)."""
        return grad_outputs if self.mask is None else grad_outputs * self.mask

    def describe(self) -> dict[str, Any]:
        return {"type": "Dropout", "rate": self.rate, "seed": self.seed}
