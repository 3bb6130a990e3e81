"""Activation functions on whole arrays, each rule beside its derivative (spec/math.md, section 4)."""

from __future__ import annotations

from typing import Any

import numpy as np

from scratchnet.core.errors import ConfigError
from scratchnet.core.network import ParameterFree
from scratchnet.vectorized.tensor import Array


class Activation(ParameterFree[Array]):
    """Shared plumbing of the activations: no arrays, and z and a remembered for backward."""

    def __init__(self) -> None:
        self.inputs: Array = np.zeros((0, 0))
        self.outputs: Array = np.zeros((0, 0))


class Elementwise(Activation):
    """An activation applied to every number on its own: subclasses give ``f`` and ``derivative``."""

    def f(self, z: Array) -> Array:
        raise NotImplementedError

    def derivative(self, z: Array, a: Array) -> Array:
        """f'(z), given z and a = f(z)."""
        raise NotImplementedError

    def forward(self, inputs: Array, training: bool = False) -> Array:
        self.inputs = inputs
        self.outputs = self.f(inputs)
        return self.outputs

    def backward(self, grad_outputs: Array, need_input_grad: bool = True) -> Array:
        """dL/dz = dL/da * f'(z) (``need_input_grad`` is ignored: dL/dz is all this layer computes)."""
        return grad_outputs * self.derivative(self.inputs, self.outputs)


class ReLU(Elementwise):
    """a = max(0, z); f'(z) = 1 for z > 0, else 0 (eq. 4.1)."""

    def __init__(self) -> None:
        super().__init__()
        self.zeros: Array = np.zeros((0, 0))

    def f(self, z: Array) -> Array:
        # max against an array of zeros, kept from call to call: NumPy's SIMD loop for two arrays
        # is about 4x faster than its loop for an array and the scalar 0
        if self.zeros.shape != z.shape or self.zeros.dtype != z.dtype:
            self.zeros = np.zeros_like(z)
        return np.maximum(z, self.zeros)

    def backward(self, grad_outputs: Array, need_input_grad: bool = True) -> Array:
        """dL/dz = dL/da * [z > 0] (eq. 4.1): a product with the boolean mask, one pass, in place of
        ``derivative`` (which ReLU does not need)."""
        grad: Array = np.multiply(grad_outputs, self.inputs > 0.0)
        return grad


class LeakyReLU(Elementwise):
    """a = z for z > 0, else alpha * z; f'(z) = 1 or alpha (eq. 4.2)."""

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        if not alpha >= 0.0:
            raise ConfigError(f"LeakyReLU alpha must be >= 0, got {alpha}")
        self.alpha = alpha

    def f(self, z: Array) -> Array:
        return np.where(z > 0.0, z, self.alpha * z)

    def derivative(self, z: Array, a: Array) -> Array:
        return np.where(z > 0.0, 1.0, self.alpha).astype(z.dtype)

    def describe(self) -> dict[str, Any]:
        return {"type": "LeakyReLU", "alpha": self.alpha}


class Sigmoid(Elementwise):
    """a = 1 / (1 + e^-z), computed without overflow; f'(z) = a (1 - a) (eq. 4.3)."""

    def f(self, z: Array) -> Array:
        return sigmoid(z)

    def derivative(self, z: Array, a: Array) -> Array:
        return a * (1.0 - a)


class Tanh(Elementwise):
    """a = tanh z; f'(z) = 1 - a^2 (eq. 4.4)."""

    def f(self, z: Array) -> Array:
        return np.tanh(z)

    def derivative(self, z: Array, a: Array) -> Array:
        return 1.0 - a * a


class Identity(Elementwise):
    """a = z; f'(z) = 1 (eq. 4.5)."""

    def f(self, z: Array) -> Array:
        return z

    def derivative(self, z: Array, a: Array) -> Array:
        return np.ones_like(z)


class Softmax(Activation):
    """p_k = e^(z_k - m) / sum_j e^(z_j - m), with m the row maximum so no exponent overflows (eq. 4.6).

    Followed by ``CrossEntropy``, the network skips this backward and uses the fused gradient (eq. 5.3),
    and the loss reuses ``log_sum_exp``, log sum_j e^(z_j) of each row, which this forward pass keeps.
    """

    def __init__(self) -> None:
        super().__init__()
        self.log_sum_exp: Array = np.zeros(0)

    def forward(self, inputs: Array, training: bool = False) -> Array:
        self.inputs = inputs
        self.outputs, self.log_sum_exp = softmax_and_log_sum_exp(inputs)
        return self.outputs

    def backward(self, grad_outputs: Array, need_input_grad: bool = True) -> Array:
        """dL/dz_k = p_k (g_k - sum_j g_j p_j), the softmax Jacobian applied to g = dL/dp (eq. 4.7);
        ``need_input_grad`` is ignored, as in every parameter-free layer."""
        p = self.outputs
        weighted = np.sum(grad_outputs * p, axis=1, keepdims=True)
        grad_inputs: Array = p * (grad_outputs - weighted)
        return grad_inputs


def sigmoid(z: Array) -> Array:
    """The logistic function 1 / (1 + e^-z), computed without overflow (eq. 4.3)."""
    e = np.exp(-np.abs(z))  # never overflows: the exponent is <= 0
    a: Array = np.where(z >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))
    return a


def row_sums(a: Array) -> Array:
    """sum_j a[n][j] for each row n, as a matrix-vector product: for the ten columns of a classifier's
    output this is several times faster than np.sum(a, axis=1), which is slow along a short axis."""
    sums: Array = a @ np.ones(a.shape[1], a.dtype)
    return sums


def softmax_and_log_sum_exp(z: Array) -> tuple[Array, Array]:
    """Softmax of each row (eq. 4.6) and log sum_j e^(z_j) of each row (eq. 5.2), from one exponential:
    with m the row maximum and s = sum_j e^(z_j - m), p = e^(z - m) / s and log sum_j e^(z_j) = m + log s."""
    m = z.max(axis=1)
    exps: Array = np.exp(z - m[:, None])
    sums = row_sums(exps)
    exps /= sums[:, None]
    return exps, m + np.log(sums)


def log_sum_exp(z: Array) -> Array:
    """log sum_j e^(z_j) of each row, as m + log sum_j e^(z_j - m): finite for any finite logits (eq. 5.2)."""
    m = z.max(axis=1)
    result: Array = m + np.log(row_sums(np.exp(z - m[:, None])))
    return result
