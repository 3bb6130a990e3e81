"""Activation functions on whole arrays, each rule beside its derivative (spec/math.md, section 4)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scratchnet.core.decoding import Cache
from scratchnet.core.errors import ConfigError, ShapeError
from scratchnet.core.network import ParameterFree
from scratchnet.vectorized import memory
from scratchnet.vectorized.erf import erfc, normal_cdf_single
from scratchnet.vectorized.memory import Workspace, block_per_thread, flat_in, in_blocks, result_like, storage_order
from scratchnet.vectorized.tensor import Array


class Activation(ParameterFree[Array]):
    """Shared plumbing of the activations: no arrays, and z and a remembered for backward."""

    def __init__(self) -> None:
        self.inputs: Array = np.zeros((0, 0))
        self.outputs: Array = np.zeros((0, 0))

    def forward(self, inputs: Array, training: bool = False) -> Array:
        raise NotImplementedError

    def step(self, inputs: Array, cache: Cache) -> Array:
        """The new position of each sequence, ``(N, 1, C)``: an activation reads each position alone, so
        a step is the forward pass (spec/math.md, section 24; ``cache`` is unused, taken as every
        layer's step takes it)."""
        return self.forward(inputs)


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
    """a = max(0, z); f'(z) = 1 for z > 0, else 0 (eq. 4.1).

    On arrays larger than one block (after the first convolution these are the largest arrays of a
    step) both passes sweep the memory of their arrays in order, whatever the layout (a convolution's
    output lies batch last), a cache-sized block at a time on the optimizer's threads, into result
    arrays kept from batch to batch (scratchnet/vectorized/memory.py); smaller ones take one pass.
    """

    def __init__(self) -> None:
        super().__init__()
        self.zeros: Array = np.zeros(0)
        self.order: tuple[int, ...] = (0, 1)  # the axis order z lies in memory in
        self.work = Workspace()

    def forward(self, inputs: Array, training: bool = False) -> Array:
        if inputs.size <= memory.BLOCK_VALUES:  # one block (an MLP's layers): one pass, no bookkeeping
            self.inputs = inputs
            zeros: Array = self.zeros_for(inputs.dtype)[: inputs.size].reshape(inputs.shape)
            small: Array = np.maximum(inputs, zeros)
            return small
        order = storage_order(inputs)
        if order is None:  # a view with gaps: in one pass, as it is
            inputs = np.ascontiguousarray(inputs)
            order = tuple(range(inputs.ndim))
        self.inputs, self.order = inputs, order
        outputs, flat_outputs = result_like(inputs, order, self.work, "outputs")
        flat_inputs, block_zeros = flat_in(inputs, order), self.zeros_for(inputs.dtype)

        def block(part: slice) -> None:
            # max against an array of zeros: NumPy's SIMD loop for two arrays is faster than its
            # loop for an array and the scalar 0
            np.maximum(flat_inputs[part], block_zeros[: part.stop - part.start], out=flat_outputs[part])

        in_blocks(block, flat_inputs.size, 1)
        return outputs  # not kept: backward needs only z

    def backward(self, grad_outputs: Array, need_input_grad: bool = True) -> Array:
        """dL/dz = dL/da * [z > 0] (eq. 4.1): a product with the boolean mask, in place of
        ``derivative`` (which ReLU does not need)."""
        if grad_outputs.shape != self.inputs.shape:
            raise ShapeError(
                f"ReLU.backward: gradient of shape {grad_outputs.shape} for outputs of shape {self.inputs.shape}"
            )
        if self.inputs.size <= memory.BLOCK_VALUES:
            small: Array = np.multiply(grad_outputs, self.inputs > 0.0)
            return small
        grad, flat_grad = result_like(self.inputs, self.order, self.work, "grad_inputs")
        flat_inputs, flat_delta = flat_in(self.inputs, self.order), flat_in(grad_outputs, self.order)

        def block(part: slice) -> None:
            np.multiply(flat_delta[part], flat_inputs[part] > 0.0, out=flat_grad[part])

        in_blocks(block, flat_inputs.size, 1)
        return grad

    def zeros_for(self, dtype: np.dtype[Any]) -> Array:
        """Zeros of ``dtype``, enough for one block of :func:`in_blocks`."""
        if self.zeros.dtype != dtype or self.zeros.size < memory.BLOCK_VALUES:
            self.zeros = np.zeros(memory.BLOCK_VALUES, dtype)
        return self.zeros


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


class GELU(Activation):
    """a = z Phi(z), Phi the standard normal distribution function (eq. 19.1), or its tanh
    approximation with ``approximate="tanh"`` (eq. 19.3), as PyTorch's nn.GELU. Phi comes from the
    array erfc of scratchnet/vectorized/erf.py (in float32 its normal_cdf_single); forward keeps Phi(z) (or
    (1 + tanh u) / 2) for backward."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ConfigError(f"GELU approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self.kept: Array = np.zeros(0)  # Phi(z), or sigmoid(2u) of eq. 19.3
        self.gaussian: Array = np.zeros(0)  # e^(-z^2 / 2), kept by a float32 forward pass
        self.work = Workspace()

    def forward(self, inputs: Array, training: bool = False) -> Array:
        self.inputs = inputs
        if self.approximate == "tanh":  # (19.3): (1 + tanh u) / 2 = sigmoid(2u)
            self.kept = sigmoid(2.0 * SQRT_2_OVER_PI * (inputs + GELU_CUBIC * inputs * inputs * inputs))
        elif inputs.dtype == np.float32:
            return self.forward_single(inputs)
        else:  # (19.1): Phi(z) = erfc(-z / sqrt 2) / 2, every digit kept for z < 0
            self.kept = erfc(inputs * -INV_SQRT_2)
            self.kept *= 0.5
        return inputs * self.kept

    def forward_single(self, inputs: Array) -> Array:
        """(19.1) in float32, with Phi by eq. 19.10, keeping Phi(z) and e^(-z^2/2) for backward: a block
        at a time (the formula makes about twenty passes), a block per thread, on the threads of
        scratchnet/vectorized/parallel.py."""
        z = np.ascontiguousarray(inputs)
        self.inputs = z
        kept = self.work.output("Phi", z.shape, z.dtype)
        gaussian = self.work.output("gaussian", z.shape, z.dtype)
        outputs = self.work.output("outputs", z.shape, z.dtype)
        flat_z, flat_outputs = z.reshape(-1), outputs.reshape(-1)
        flat_kept, flat_gaussian = kept.reshape(-1), gaussian.reshape(-1)

        def block(part: slice) -> None:
            phi = normal_cdf_single(flat_z[part], flat_kept[part], flat_gaussian[part])
            np.multiply(flat_z[part], phi, out=flat_outputs[part])

        in_blocks(block, z.size, 1, block_per_thread(z.size, SINGLE_BLOCK))
        self.kept, self.gaussian = kept, gaussian
        return outputs

    def backward(self, grad_outputs: Array, need_input_grad: bool = True) -> Array:
        """dL/dz = dL/da * f'(z), f' by eq. 19.2 or 19.4 (``need_input_grad`` is ignored)."""
        z, s = self.inputs, self.kept
        if self.approximate == "tanh":  # (19.4), with s = sigmoid(2u): 1 - tanh(u)^2 = 4 s (1 - s)
            slope = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * z * z)
            tanh_form: Array = grad_outputs * (s + 2.0 * z * s * (1.0 - s) * slope)
            return tanh_form
        # (19.2): Phi(z) + z phi(z), phi(z) = e^(-z^2 / 2) / sqrt(2 pi); in place on one array,
        # the operations of grad * (s + z e^((-z / 2) z) / sqrt(2 pi)) in that order
        if z.dtype != np.float32:
            return self.derivative_times(z, s, grad_outputs, np.empty_like(z))
        grad_z = self.work.output("grad_inputs", z.shape, z.dtype)
        flat_z, flat_s, flat_grad_z = z.reshape(-1), s.reshape(-1), grad_z.reshape(-1)
        flat_gaussian = self.gaussian.reshape(-1)
        flat_delta = np.ascontiguousarray(grad_outputs).reshape(-1)

        def block(part: slice) -> None:  # e^(-z^2 / 2) kept by the forward pass: no exp here
            slope = np.multiply(flat_z[part], flat_gaussian[part], out=flat_grad_z[part])
            slope *= INV_SQRT_2PI
            slope += flat_s[part]
            slope *= flat_delta[part]

        in_blocks(block, z.size, 1, block_per_thread(z.size, SINGLE_BLOCK))
        return grad_z

    @staticmethod
    def derivative_times(z: Array, s: Array, grad_outputs: Array, exact: Array) -> Array:
        """dL/da (Phi(z) + z phi(z)) into ``exact`` (eq. 19.2), Phi(z) given as ``s``."""
        np.multiply(z, -0.5, out=exact)
        exact *= z
        np.exp(exact, out=exact)
        exact *= z
        exact *= INV_SQRT_2PI
        exact += s
        exact *= grad_outputs
        return exact

    def describe(self) -> dict[str, Any]:
        return {"type": "GELU", "approximate": self.approximate}


INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715  # the tanh approximation's cubic term (Hendrycks and Gimpel, 2016)
# float32 GELU works on blocks of at least this many values, one block per thread up to
# memory.BLOCK_VALUES (memory.block_per_thread): on a (768, 512) array at 2 threads, 2.9 ms a forward
# pass with blocks of 65,536 and 1.9 with 196,608, whose passes are long enough to run at once
SINGLE_BLOCK = 1 << 16


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
        weighted = np.sum(grad_outputs * p, axis=-1, keepdims=True)  # each row of the last axis (eq. 16.2)
        grad_inputs: Array = p * (grad_outputs - weighted)
        return grad_inputs


def sigmoid(z: Array) -> Array:
    """The logistic function 1 / (1 + e^-z), computed without overflow (eq. 4.3)."""
    e = np.exp(-np.abs(z))  # never overflows: the exponent is <= 0
    a: Array = np.where(z >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))
    return a


def row_sums(a: Array) -> Array:
    """sum_j a[..., j] for each row of the last axis, as a matrix-vector product: for the ten columns
    of a classifier's output this is several times faster than np.sum(a, axis=-1), which is slow
    along a short axis."""
    sums: Array = a @ np.ones(a.shape[-1], a.dtype)
    return sums


def softmax_and_log_sum_exp(z: Array) -> tuple[Array, Array]:
    """Softmax of each row (eq. 4.6) and log sum_j e^(z_j) of each row (eq. 5.2), from one exponential:
    with m the row maximum and s = sum_j e^(z_j - m), p = e^(z - m) / s and log sum_j e^(z_j) = m + log s.
    The rows are those of the last axis, so a batch of sequences (N, T, K) has N * T (eq. 16.2)."""
    m = z.max(axis=-1)
    exps: Array = np.exp(z - m[..., None])
    sums = row_sums(exps)
    exps /= sums[..., None]
    return exps, m + np.log(sums)


def log_sum_exp(z: Array) -> Array:
    """log sum_j e^(z_j) of each row, as m + log sum_j e^(z_j - m): finite for any finite logits (eq. 5.2)."""
    m = z.max(axis=-1)
    result: Array = m + np.log(row_sums(np.exp(z - m[..., None])))
    return result
