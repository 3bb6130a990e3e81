"""Batch normalization, ``BatchNorm`` (spec/math.md, section 15), as PyTorch's BatchNorm1d/2d, and
``LayerNorm`` and ``RMSNorm`` over the last axis (section 18).

It normalizes each channel (axis 1) of ``(N, C)`` or ``(N, C, H, W)`` batches over every other axis:
in training with the batch's own mean and biased variance, at inference with the running ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scratchnet.core.decoding import Cache
from scratchnet.core.errors import ConfigError, ShapeError
from scratchnet.vectorized.tensor import Array, check_dtype, column_sums, copy_params, row_sums


class BatchNorm:
    """y = weight x_hat + bias, x_hat = (x - mean) / sqrt(var + eps), per channel (eq. 15.1-15.4).

    Arrays are the trained ``weight`` (ones) and ``bias`` (zeros), and the untrained
    ``running_mean`` (zeros) and ``running_var`` (ones), which each training forward pass moves
    towards the batch's statistics by ``momentum`` (eq. 15.5); they have no gradients.
    """

    def __init__(self, num_features: int, *, momentum: float = 0.1, eps: float = 1e-5, dtype: str = "float64") -> None:
        if num_features < 1:
            raise ConfigError(f"BatchNorm needs at least one channel, got {num_features}")
        if not 0.0 <= momentum <= 1.0 or not 0.0 < eps < float("inf"):
            raise ConfigError(f"BatchNorm needs momentum in [0, 1] and eps > 0, got {momentum} and {eps}")
        self.num_features = num_features
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.dtype = check_dtype(dtype)
        self.weight = np.ones(num_features, self.dtype)
        self.bias = np.zeros(num_features, self.dtype)
        self.running_mean = np.zeros(num_features, self.dtype)
        self.running_var = np.ones(num_features, self.dtype)
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = np.zeros_like(self.bias)
        self.normalized: Array = np.zeros((0, num_features), self.dtype)  # x_hat of the last forward
        self.inv_std: Array = np.ones(num_features, self.dtype)  # 1 / sqrt(var + eps) it used
        self.batch_statistics = False  # whether it used the batch's statistics (training)

    def axes(self, x: Array) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The axes a channel's statistics run over, and the shape that broadcasts a (C,) array to x."""
        if x.ndim == 2:
            return (0,), (1, self.num_features)
        return (0, 2, 3), (1, self.num_features, 1, 1)

    def forward(self, inputs: Array, training: bool = False) -> Array:
        try:
            x = np.asarray(inputs, dtype=self.dtype)
        except (ValueError, TypeError):
            raise ShapeError("BatchNorm.forward: the inputs are not a rectangular batch of numbers") from None
        if x.ndim not in (2, 4) or x.shape[1] != self.num_features or x.shape[0] == 0:
            raise ShapeError(
                f"BatchNorm.forward: expected a batch of shape (batch, {self.num_features}) or "
                f"(batch, {self.num_features}, height, width), got {x.shape}"
            )
        axes, channel = self.axes(x)
        count = x.size // self.num_features  # values per channel
        if training:
            if count == 1:  # as PyTorch: the unbiased variance of one value is undefined
                raise ShapeError(f"BatchNorm.forward: training needs more than one value per channel, got {x.shape}")
            mean = x.mean(axis=axes)
            centered = x - mean.reshape(channel)
            squares = np.sum(centered * centered, axis=axes)
            variance = squares / count  # biased: what the batch is normalized with (eq. 15.2)
            m = self.momentum
            self.running_mean *= 1.0 - m  # eq. 15.5, with the unbiased variance, as in PyTorch
            self.running_mean += m * mean
            self.running_var *= 1.0 - m
            self.running_var += m * (squares / (count - 1))
        else:
            centered = x - self.running_mean.reshape(channel)  # eq. 15.6
            variance = self.running_var
        self.batch_statistics = training
        self.inv_std = 1.0 / np.sqrt(variance + self.eps)
        self.normalized = centered * self.inv_std.reshape(channel)  # eq. 15.3
        outputs: Array = self.normalized * self.weight.reshape(channel) + self.bias.reshape(channel)  # eq. 15.4
        return outputs

    def backward(self, grad_outputs: Array, need_input_grad: bool = True) -> Array:
        """dL/dweight = sum dL/dy x_hat, dL/dbias = sum dL/dy over each channel (eq. 15.7, 15.8), and
        dL/dx: through the batch's mean and variance in training (eq. 15.9), the affine map at
        inference (eq. 15.10). With ``need_input_grad=False`` dL/dx is skipped and an empty array returned."""
        x_hat = self.normalized
        if grad_outputs.shape != x_hat.shape:
            raise ShapeError(
                f"BatchNorm.backward: gradient of shape {grad_outputs.shape} for outputs of shape {x_hat.shape}"
            )
        axes, channel = self.axes(x_hat)
        np.sum(grad_outputs, axis=axes, out=self.grad_bias)
        np.sum(grad_outputs * x_hat, axis=axes, out=self.grad_weight)
        if not need_input_grad:
            return x_hat[:0]
        scale = (self.weight * self.inv_std).reshape(channel)
        if not self.batch_statistics:
            grad: Array = grad_outputs * scale
            return grad
        count = x_hat.size // self.num_features
        mean_grad = (self.grad_bias / count).reshape(channel)
        mean_grad_x_hat = (self.grad_weight / count).reshape(channel)
        grad = scale * (grad_outputs - mean_grad - x_hat * mean_grad_x_hat)  # eq. 15.9, divided by m
        return grad

    def params(self) -> dict[str, Array]:
        """The live arrays: ``weight``, ``bias``, and the untrained ``running_mean`` and ``running_var``."""
        return {
            "weight": self.weight,
            "bias": self.bias,
            "running_mean": self.running_mean,
            "running_var": self.running_var,
        }

    def grads(self) -> dict[str, Array]:
        """The live dL/dweight and dL/dbias of the last backward pass (the running statistics are not trained)."""
        return {"weight": self.grad_weight, "bias": self.grad_bias}

    def set_params(self, named: Mapping[str, Any]) -> None:
        """Copy all four arrays in from arrays or nested lists, converting to this layer's dtype."""
        copy_params("BatchNorm", self.params(), named)

    def describe(self) -> dict[str, Any]:
        return {"type": "BatchNorm", "num_features": self.num_features, "momentum": self.momentum, "eps": self.eps}


class LastAxisNorm:
    """What LayerNorm and RMSNorm share: each row of the last axis normalized on its own, then
    scaled by ``weight`` (and shifted by ``bias``) when ``affine``. Subclasses give ``normalize``
    and ``normalize_backward`` on the (rows, dim) matrix of every row."""

    def __init__(self, name: str, dim: int, eps: float, affine: bool, bias: bool, dtype: str) -> None:
        if dim < 1:
            raise ConfigError(f"{name} needs at least one value per row, got {dim}")
        if not 0.0 < eps < float("inf"):
            raise ConfigError(f"{name} eps must be a finite number > 0, got {eps!r}")
        self.name, self.dim, self.eps, self.affine = name, dim, float(eps), affine
        self.has_bias = affine and bias
        self.dtype = check_dtype(dtype)
        self.weight = np.ones(dim if affine else 0, self.dtype)  # gamma
        self.bias = np.zeros(dim if self.has_bias else 0, self.dtype)  # beta
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = np.zeros_like(self.bias)
        self.x_hat: Array = np.zeros((0, dim), self.dtype)  # every row's normalized values
        self.inv_std: Array = np.zeros((0, 1), self.dtype)  # every row's 1 / sqrt(var + eps) (or 1 / rms)

    def normalize(self, x: Array) -> tuple[Array, Array]:
        raise NotImplementedError

    def normalize_backward(self, g_hat: Array) -> Array:
        raise NotImplementedError

    def forward(self, inputs: Array, training: bool = False) -> Array:
        """y = gamma * x_hat + beta on every row of the last axis (eq. 18.3)."""
        if inputs.ndim not in (2, 3) or inputs.shape[-1] != self.dim:
            raise ShapeError(
                f"{self.name}.forward: expects rows of {self.dim} values (last axis), got shape {inputs.shape}"
            )
        self.x_hat, self.inv_std = self.normalize(inputs.reshape(-1, self.dim))
        if not self.affine:
            return self.x_hat.reshape(inputs.shape)
        outputs = self.x_hat * self.weight
        if self.has_bias:
            outputs += self.bias
        return outputs.reshape(inputs.shape)

    def step(self, inputs: Array, cache: Cache) -> Array:
        """The new position of each sequence, ``(N, 1, dim)``: each row is normalized on its own, so a
        step is the forward pass (spec/math.md, section 24; ``cache`` is unused, taken as every layer's
        step takes it)."""
        return self.forward(inputs)

    def backward(self, grad_outputs: Array, need_input_grad: bool = True) -> Array:
        """dL/dgamma = sum_rows g * x_hat and dL/dbeta = sum_rows g (eq. 18.4), and dL/dx by the
        subclass's rule, given dL/dx_hat = gamma * g."""
        g = grad_outputs.reshape(-1, self.dim)
        if g.shape != self.x_hat.shape:
            raise ShapeError(f"{self.name}.backward: gradients of shape {grad_outputs.shape} for the last forward pass")
        if self.affine:
            column_sums(g * self.x_hat, self.grad_weight)
        if self.has_bias:
            column_sums(g, self.grad_bias)
        if not need_input_grad:
            return grad_outputs[:0]
        return self.normalize_backward(g * self.weight if self.affine else g).reshape(grad_outputs.shape)

    def params(self) -> dict[str, Array]:
        named = {}
        if self.affine:
            named["weight"] = self.weight
        if self.has_bias:
            named["bias"] = self.bias
        return named

    def grads(self) -> dict[str, Array]:
        named = {}
        if self.affine:
            named["weight"] = self.grad_weight
        if self.has_bias:
            named["bias"] = self.grad_bias
        return named

    def set_params(self, named: Mapping[str, Any]) -> None:
        if set(named) != set(self.params()):
            raise ShapeError(
                f"{self.name}.set_params: expected the arrays {sorted(self.params())}, got {sorted(named)}"
            )
        copy_params(self.name, self.params(), named)


class LayerNorm(LastAxisNorm):
    """Each row of the last axis to mean 0 and variance 1, then scaled and shifted: PyTorch's
    nn.LayerNorm(dim, eps, elementwise_affine=affine, bias=bias) (eq. 18.1-18.5)."""

    def __init__(
        self, dim: int, *, eps: float = 1e-5, affine: bool = True, bias: bool = True, dtype: str = "float64"
    ) -> None:
        super().__init__("LayerNorm", dim, eps, affine, bias, dtype)

    def normalize(self, x: Array) -> tuple[Array, Array]:
        """x_hat = (x - mu) / sqrt(var + eps), mu and the biased var over each row (eq. 18.1, 18.2)."""
        centered = x - row_means(x)
        variance = row_means(np.square(centered))
        variance += self.eps
        inv_std = 1.0 / np.sqrt(variance, out=variance)
        centered *= inv_std
        return centered, inv_std

    def normalize_backward(self, g_hat: Array) -> Array:
        """dL/dx = (1 / sqrt(var + eps)) (g_hat - mean(g_hat) - x_hat mean(g_hat x_hat)) (eq. 18.5)."""
        mean_g = row_means(g_hat)
        mean_gx = row_means(np.multiply(g_hat, self.x_hat))
        grad: Array = g_hat - mean_g  # then in place, the same operations in the same order
        grad -= np.multiply(self.x_hat, mean_gx)
        grad *= self.inv_std
        return grad

    def describe(self) -> dict[str, Any]:
        return {"type": "LayerNorm", "dim": self.dim, "eps": self.eps, "affine": self.affine, "bias": self.has_bias}


class RMSNorm(LastAxisNorm):
    """Each row of the last axis divided by its root mean square, then scaled: PyTorch's
    nn.RMSNorm(dim, eps, elementwise_affine=affine) (eq. 18.6-18.8)."""

    def __init__(self, dim: int, *, eps: float = 1e-5, affine: bool = True, dtype: str = "float64") -> None:
        super().__init__("RMSNorm", dim, eps, affine, False, dtype)

    def normalize(self, x: Array) -> tuple[Array, Array]:
        """x_hat = x / sqrt(mean(x^2) + eps) (eq. 18.6)."""
        inv_rms = 1.0 / np.sqrt(row_means(x * x) + self.eps)
        return x * inv_rms, inv_rms

    def normalize_backward(self, g_hat: Array) -> Array:
        """dL/dx = (1 / rms) (g_hat - x_hat mean(g_hat x_hat)) (eq. 18.8)."""
        mean_gx = row_means(g_hat * self.x_hat)
        grad: Array = np.multiply(self.x_hat, mean_gx)  # then in place, the same operations
        np.subtract(g_hat, grad, out=grad)
        grad *= self.inv_std
        return grad

    def describe(self) -> dict[str, Any]:
        return {"type": "RMSNorm", "dim": self.dim, "eps": self.eps, "affine": self.affine}


def row_means(x: Array) -> Array:
    """The mean of each row of the matrix ``x`` (rows, dim), as a column (rows, 1): the sum by
    tensor.row_sums, then divided by dim."""
    means = row_sums(x)
    means /= x.shape[1]
    return means
