"""Activation functions, each rule beside its derivative (spec/math.md, section 4).

An elementwise activation a = f(z) passes the gradient back as dL/dz = dL/da * f'(z).
"""

from __future__ import annotations

import math
from typing import Any

from scratchnet.core.decoding import Cache
from scratchnet.core.errors import ConfigError
from scratchnet.core.network import ParameterFree
from scratchnet.loops.tensor import Batch, Param, elementwise, is_sequence_batch


class Activation(ParameterFree[Param]):
    """Shared plumbing of the activations: no arrays, and z and a remembered for backward."""

    def __init__(self) -> None:
        self.inputs: Batch = []
        self.outputs: Batch = []

    def forward(self, inputs: Batch, training: bool = False) -> Batch:
        raise NotImplementedError

    def step(self, inputs: Batch, cache: Cache) -> Batch:
        """The new position of each sequence, ``(N, 1, C)``: an activation reads each position alone, so
        a step is the forward pass (spec/math.md, section 24; ``cache`` is unused, taken as every
        layer's step takes it)."""
        return self.forward(inputs)


class Elementwise(Activation):
    """An activation applied to every number on its own: subclasses give ``f`` and ``derivative``."""

    def f(self, z: float) -> float:
        raise NotImplementedError

    def derivative(self, z: float, a: float) -> float:
        """f'(z), given z and a = f(z) (some derivatives read more simply in terms of a)."""
        raise NotImplementedError

    def forward(self, inputs: Batch, training: bool = False) -> Batch:
        """a = f(z) for every number z of the batch, whatever the samples' shape."""
        self.inputs = inputs
        self.outputs = elementwise(self.f, inputs)
        return self.outputs

    def backward(self, grad_outputs: Batch, need_input_grad: bool = True) -> Batch:
        """dL/dz = dL/da * f'(z) (``need_input_grad`` is ignored: dL/dz is all this layer computes)."""
        grad_inputs: Batch = elementwise(
            lambda g, z, a: g * self.derivative(z, a), grad_outputs, self.inputs, self.outputs
        )
        return grad_inputs


class ReLU(Elementwise):
    """a = max(0, z); f'(z) = 1 for z > 0, else 0 (eq. 4.1)."""

    def f(self, z: float) -> float:
        return z if z > 0.0 else 0.0

    def derivative(self, z: float, a: float) -> float:
        return 1.0 if z > 0.0 else 0.0


class LeakyReLU(Elementwise):
    """a = z for z > 0, else alpha * z; f'(z) = 1 or alpha (eq. 4.2)."""

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        if not alpha >= 0.0:
            raise ConfigError(f"LeakyReLU alpha must be >= 0, got {alpha}")
        self.alpha = alpha

    def f(self, z: float) -> float:
        return z if z > 0.0 else self.alpha * z

    def derivative(self, z: float, a: float) -> float:
        return 1.0 if z > 0.0 else self.alpha

    def describe(self) -> dict[str, Any]:
        return {"type": "LeakyReLU", "alpha": self.alpha}


class Sigmoid(Elementwise):
    """a = 1 / (1 + e^-z), computed without overflow; f'(z) = a (1 - a) (eq. 4.3)."""

    def f(self, z: float) -> float:
        return sigmoid(z)

    def derivative(self, z: float, a: float) -> float:
        return a * (1.0 - a)


class Tanh(Elementwise):
    """a = tanh z; f'(z) = 1 - a^2 (eq. 4.4)."""

    def f(self, z: float) -> float:
        return math.tanh(z)

    def derivative(self, z: float, a: float) -> float:
        return 1.0 - a * a


class Identity(Elementwise):
    """a = z; f'(z) = 1 (eq. 4.5)."""

    def f(self, z: float) -> float:
        return z

    def derivative(self, z: float, a: float) -> float:
        return 1.0


class GELU(Elementwise):
    """a = z Phi(z), Phi the standard normal distribution function (eq. 19.1), or its tanh
    approximation with ``approximate="tanh"`` (eq. 19.3), as PyTorch's nn.GELU."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ConfigError(f"GELU approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def f(self, z: float) -> float:
        if self.approximate == "tanh":  # (19.3): (1 + tanh u) / 2 = sigmoid(2u)
            return z * sigmoid(2.0 * SQRT_2_OVER_PI * (z + GELU_CUBIC * z * z * z))
        return z * normal_cdf(z)  # (19.1)

    def derivative(self, z: float, a: float) -> float:
        if self.approximate == "tanh":  # (19.4)
            s = sigmoid(2.0 * SQRT_2_OVER_PI * (z + GELU_CUBIC * z * z * z))
            return s + 2.0 * z * s * (1.0 - s) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * z * z)
        # (19.2): Phi(z) + z phi(z), phi(z) = e^(-z^2 / 2) / sqrt(2 pi)
        return normal_cdf(z) + z * math.exp(-0.5 * z * z) * INV_SQRT_2PI

    def describe(self) -> dict[str, Any]:
        return {"type": "GELU", "approximate": self.approximate}


def normal_cdf(z: float) -> float:
    """Phi(z) = erfc(-z / sqrt 2) / 2 (eq. 19.1): for z < 0 this keeps every digit of a small Phi,
    which (1 + erf(z / sqrt 2)) / 2 would lose to cancellation."""
    return 0.5 * math.erfc(-z * INV_SQRT_2)


INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715  # the tanh approximation's cubic term (Hendrycks and Gimpel, 2016)


class Softmax(Activation):
    """p_k = e^(z_k - m) / sum_j e^(z_j - m), with m = max_j z_j so no exponent overflows (eq. 4.6).

    Each sample's row is normalised on its own. Followed by ``CrossEntropy``, the network skips this
    backward and uses the fused gradient (eq. 5.3) instead, and the loss reuses ``log_sum_exp``,
    log sum_j e^(z_j) of each row, which this forward pass keeps.
    """

    def __init__(self) -> None:
        super().__init__()
        self.log_sum_exp: list[Any] = []

    def forward(self, inputs: Batch, training: bool = False) -> Batch:
        """Each row on its own; for a batch of sequences each position's row, the last axis (eq. 16.2)."""
        self.inputs = inputs
        if is_sequence_batch(inputs):  # log_sum_exp[n][t]
            sequences = [[softmax_and_log_sum_exp(row) for row in sample] for sample in inputs]
            self.outputs = [[p for p, _ in sample] for sample in sequences]
            self.log_sum_exp = [[lse for _, lse in sample] for sample in sequences]
            return self.outputs
        rows = [softmax_and_log_sum_exp(row) for row in inputs]
        self.outputs = [p for p, _ in rows]
        self.log_sum_exp = [lse for _, lse in rows]
        return self.outputs

    def backward(self, grad_outputs: Batch, need_input_grad: bool = True) -> Batch:
        """dL/dz_k = p_k (g_k - sum_j g_j p_j), the softmax Jacobian applied to g = dL/dp (eq. 4.7);
        ``need_input_grad`` is ignored, as in every parameter-free layer."""
        if is_sequence_batch(self.outputs):  # each position's row on its own (eq. 16.2)
            layer = Softmax()
            grads = []
            for g_sample, p_sample in zip(grad_outputs, self.outputs):
                layer.outputs = p_sample
                grads.append(layer.backward(g_sample))
            return grads
        grad_inputs = []
        for g_row, p_row in zip(grad_outputs, self.outputs):
            weighted = sum(g * p for g, p in zip(g_row, p_row))
            grad_inputs.append([p * (g - weighted) for g, p in zip(g_row, p_row)])
        return grad_inputs


def sigmoid(z: float) -> float:
    """The logistic function 1 / (1 + e^-z), computed without overflow (eq. 4.3)."""
    e = math.exp(-abs(z))  # never overflows: the exponent is <= 0
    return 1.0 / (1.0 + e) if z >= 0.0 else e / (1.0 + e)


def softmax_and_log_sum_exp(z: list[float]) -> tuple[list[float], float]:
    """Softmax of one row (eq. 4.6) and log sum_j e^(z_j) (eq. 5.2), from one exponential:
    with m = max_j z_j and s = sum_j e^(z_j - m), p_j = e^(z_j - m) / s and log sum_j e^(z_j) = m + log s."""
    m = max(z)
    exps = [math.exp(value - m) for value in z]
    total = sum(exps)
    return [e / total for e in exps], m + math.log(total)


def log_sum_exp(z: list[float]) -> float:
    """log sum_j e^(z_j), as m + log sum_j e^(z_j - m): finite for any finite logits (eq. 5.2)."""
    m = max(z)
    return m + math.log(sum(math.exp(value - m) for value in z))
