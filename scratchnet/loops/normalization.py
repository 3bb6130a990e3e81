"""Normalization layers: ``BatchNorm`` (spec/math.md, section 15), as PyTorch's BatchNorm1d/BatchNorm2d,
and ``LayerNorm`` and ``RMSNorm`` over the last axis (section 18)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from scratchnet.core.decoding import Cache
from scratchnet.core.errors import ConfigError, ShapeError
from scratchnet.loops.convolution import check_gradients, shape_name
from scratchnet.loops.tensor import Batch, Param, as_batch, as_tensor, by_sample, flatten, reshape, shape_of

Planes = list[list[list[float]]]
"""A batch by channel: ``planes[c][n]`` is channel c of sample n as a flat list (one value for a
``(C,)`` sample, H * W values for a ``(C, H, W)`` one)."""


class BatchNorm:
    """Normalizes each channel (axis 1) of ``(B, C)`` or ``(B, C, H, W)`` batches to mean 0 and
    variance 1, then scales and shifts it: y = gamma * x_hat + beta (eq. 15.1-15.4).

    In training the statistics are the batch's, over the samples (and the positions of an image),
    and the running statistics follow them (eq. 15.5); at inference the running statistics are used
    (eq. 15.6). Arrays: trained ``weight`` (gamma, starts at 1) and ``bias`` (beta, starts at 0);
    untrained ``running_mean`` (starts at 0) and ``running_var`` (starts at 1), which the layer
    updates itself.
    """

    def __init__(self, num_features: int, *, momentum: float = 0.1, eps: float = 1e-5) -> None:
        if num_features < 1:
            raise ConfigError(f"BatchNorm needs at least one feature, got {num_features}")
        if not 0.0 <= momentum <= 1.0:
            raise ConfigError(f"BatchNorm momentum must be in [0, 1], got {momentum!r}")
        if not 0.0 < eps < math.inf:
            raise ConfigError(f"BatchNorm eps must be a finite number > 0, got {eps!r}")
        self.num_features = num_features
        self.momentum = momentum
        self.eps = eps
        self.weight = [1.0] * num_features  # gamma
        self.bias = [0.0] * num_features  # beta
        self.running_mean = [0.0] * num_features
        self.running_var = [1.0] * num_features
        self.grad_weight = [0.0] * num_features
        self.grad_bias = [0.0] * num_features
        self.sample_shape: tuple[int, ...] = ()  # (C,) or (C, H, W), from the last forward pass
        self.x_hat: Planes = []  # the normalized inputs of the last forward pass
        self.inv_std: list[float] = []  # 1 / sqrt(var + eps) of each channel, as that pass used it
        self.batch_statistics = False  # whether that pass normalized with the batch's own statistics

    def forward(self, inputs: Batch, training: bool = False) -> Batch:
        """y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel, with the batch's mean and
        biased variance in training (eq. 15.1-15.4, updating the running statistics, 15.5) and the
        running statistics at inference (eq. 15.6)."""
        planes = self.planes(self.check(inputs))
        count = len(planes[0]) * len(planes[0][0])  # m: the values of one channel
        if training and count < 2:
            raise ShapeError(
                f"BatchNorm.forward: training needs more than 1 value per channel, got a batch of shape "
                f"{(len(planes[0]), *self.sample_shape)}"
            )
        self.batch_statistics = training
        self.x_hat, self.inv_std, outputs = [], [], []
        for c, channel in enumerate(planes):
            if training:
                values = [x for plane in channel for x in plane]
                mean = sum(values) / count  # (15.1)
                var = sum((x - mean) ** 2 for x in values) / count  # (15.2), biased: divided by m
                # (15.5): the running variance follows the unbiased variance, m / (m - 1) times the biased one
                self.running_mean[c] = (1.0 - self.momentum) * self.running_mean[c] + self.momentum * mean
                unbiased = var * count / (count - 1)
                self.running_var[c] = (1.0 - self.momentum) * self.running_var[c] + self.momentum * unbiased
            else:
                mean, var = self.running_mean[c], self.running_var[c]  # (15.6)
            inv_std = 1.0 / math.sqrt(var + self.eps)
            gamma, beta = self.weight[c], self.bias[c]
            x_hat = [[(x - mean) * inv_std for x in plane] for plane in channel]  # (15.3)
            outputs.append([[gamma * xh + beta for xh in plane] for plane in x_hat])  # (15.4)
            self.x_hat.append(x_hat)
            self.inv_std.append(inv_std)
        return self.samples(outputs)

    def backward(self, grad_outputs: Batch, need_input_grad: bool = True) -> Batch:
        """dL/dgamma = sum g x_hat (eq. 15.7), dL/dbeta = sum g (eq. 15.8) over each channel's values;
        dL/dx by eq. 15.9 after a training pass (the batch's statistics depend on x) or eq. 15.10
        after an inference pass (the running statistics are constants).

        With ``need_input_grad=False`` (the first layer: nobody needs dL/dx of the data) dL/dx is
        not computed and an empty list is returned.
        """
        batch_size = len(self.x_hat[0]) if self.x_hat else 0
        check_gradients("BatchNorm.backward", grad_outputs, batch_size, self.sample_shape)
        grad_planes = self.planes(grad_outputs)
        grad_inputs: Planes = []
        for c, (grads, x_hat) in enumerate(zip(grad_planes, self.x_hat)):
            grad_gamma = sum(g * xh for g_plane, xh_plane in zip(grads, x_hat) for g, xh in zip(g_plane, xh_plane))
            grad_beta = sum(g for g_plane in grads for g in g_plane)
            self.grad_weight[c], self.grad_bias[c] = grad_gamma, grad_beta
            if not need_input_grad:
                continue
            if self.batch_statistics:
                # (15.9): dL/dx = gamma / (m sqrt(var + eps)) * (m g - dL/dbeta - x_hat dL/dgamma)
                count = len(grads) * len(grads[0])
                scale = self.weight[c] * self.inv_std[c] / count
                grad_inputs.append(
                    [
                        [scale * (count * g - grad_beta - xh * grad_gamma) for g, xh in zip(g_plane, xh_plane)]
                        for g_plane, xh_plane in zip(grads, x_hat)
                    ]
                )
            else:
                scale = self.weight[c] * self.inv_std[c]  # (15.10): dL/dx = g gamma / sqrt(running_var + eps)
                grad_inputs.append([[scale * g for g in g_plane] for g_plane in grads])
        return self.samples(grad_inputs) if need_input_grad else []

    def check(self, inputs: Sequence[Any]) -> Batch:
        """A copy of ``inputs`` as floats; ShapeError unless it is a batch of (C,) or (C, H, W) samples."""
        if hasattr(inputs, "tolist"):
            inputs = inputs.tolist()
        shape = shape_of(inputs)
        if len(inputs) > 0 and (len(shape) not in (2, 4) or shape[1] != self.num_features):
            raise ShapeError(
                f"BatchNorm.forward: expects a batch of ({self.num_features},) or ({self.num_features}, height, width) "
                f"samples, got a batch of shape {shape}"
            )
        batch = as_batch(inputs, shape[1:] if len(inputs) > 0 else None, "BatchNorm.forward")
        self.sample_shape = shape[1:]
        return batch

    def planes(self, batch: Batch) -> Planes:
        """The batch by channel: ``planes[c][n]`` is channel c of sample n, flat."""
        if len(self.sample_shape) == 1:
            return [[[sample[c]] for sample in batch] for c in range(self.num_features)]
        return [[flatten(sample[c]) for sample in batch] for c in range(self.num_features)]

    def samples(self, planes: Planes) -> Batch:
        """The inverse of :meth:`planes`: a batch of samples of ``sample_shape``."""
        batch_size = len(planes[0])
        if len(self.sample_shape) == 1:
            return [[channel[n][0] for channel in planes] for n in range(batch_size)]
        return [[reshape(channel[n], self.sample_shape[1:]) for channel in planes] for n in range(batch_size)]

    def params(self) -> dict[str, Param]:
        """Copies of gamma (``weight``), beta (``bias``) and the running statistics."""
        return {
            "weight": list(self.weight),
            "bias": list(self.bias),
            "running_mean": list(self.running_mean),
            "running_var": list(self.running_var),
        }

    def grads(self) -> dict[str, Param]:
        """Copies of dL/dgamma and dL/dbeta from the last backward pass (the running statistics are not trained)."""
        return {"weight": list(self.grad_weight), "bias": list(self.grad_bias)}

    def set_params(self, named: Mapping[str, Any]) -> None:
        """Replace all four arrays with the given values (nested lists, NumPy arrays, ...)."""
        names = ("weight", "bias", "running_mean", "running_var")
        if set(named) != set(names):
            raise ShapeError(f"BatchNorm.set_params: expected the arrays {list(names)}, got {sorted(named)}")
        shape = (self.num_features,)
        try:
            values = [as_tensor(named[name], shape, name) for name in names]
        except ShapeError:
            given = ", ".join(f"{name} {shape_name(named[name])}" for name in names)
            raise ShapeError(f"BatchNorm.set_params: {given} do not all fit {shape}") from None
        self.weight, self.bias, self.running_mean, self.running_var = values

    def describe(self) -> dict[str, Any]:
        return {"type": "BatchNorm", "num_features": self.num_features, "momentum": self.momentum, "eps": self.eps}


class LastAxisNorm:
    """What LayerNorm and RMSNorm share: each row of the last axis normalized on its own, then
    scaled by ``weight`` (and shifted by ``bias``) when ``affine``; the rows are those of a
    ``(N, dim)`` or ``(N, T, dim)`` batch. Subclasses give ``normalize`` and ``normalize_backward``."""

    def __init__(self, name: str, dim: int, eps: float, affine: bool, bias: bool) -> None:
        if dim < 1:
            raise ConfigError(f"{name} needs at least one value per row, got {dim}")
        if not 0.0 < eps < math.inf:
            raise ConfigError(f"{name} eps must be a finite number > 0, got {eps!r}")
        self.name, self.dim, self.eps, self.affine = name, dim, eps, affine
        self.has_bias = affine and bias
        self.weight = [1.0] * dim if affine else []  # gamma
        self.bias = [0.0] * dim if self.has_bias else []  # beta
        self.grad_weight = [0.0] * len(self.weight)
        self.grad_bias = [0.0] * len(self.bias)
        self.x_hat: list[list[float]] = []  # each row's normalized values, from the last forward pass
        self.inv_std: list[float] = []  # each row's 1 / sqrt(var + eps) (or 1 / rms)
        self.positions = 0  # T of the last forward pass when it read sequences, else 0

    def normalize(self, x: list[float]) -> tuple[list[float], float]:
        """(x_hat, 1 / its scale) of one row."""
        raise NotImplementedError

    def normalize_backward(self, g_hat: list[float], x_hat: list[float], inv_std: float) -> list[float]:
        """dL/dx of one row, given g_hat = dL/dx_hat."""
        raise NotImplementedError

    def forward(self, inputs: Batch, training: bool = False) -> Batch:
        """y = gamma * x_hat + beta on every row of the last axis (eq. 18.3)."""
        rows = self.rows(inputs)
        self.x_hat, self.inv_std, outputs = [], [], []
        for x in rows:
            x_hat, inv_std = self.normalize(x)
            self.x_hat.append(x_hat)
            self.inv_std.append(inv_std)
            if not self.affine:
                outputs.append(list(x_hat))
            elif self.has_bias:
                outputs.append([gamma * xh + beta for gamma, xh, beta in zip(self.weight, x_hat, self.bias)])
            else:
                outputs.append([gamma * xh for gamma, xh in zip(self.weight, x_hat)])
        return by_sample(outputs, self.positions) if self.positions else outputs

    def step(self, inputs: Batch, cache: Cache) -> Batch:
        """The new position of each sequence, ``(N, 1, dim)``: each row is normalized on its own, so a
        step is the forward pass (spec/math.md, section 24; ``cache`` is unused, taken as every layer's
        step takes it)."""
        return self.forward(inputs)

    def backward(self, grad_outputs: Batch, need_input_grad: bool = True) -> Batch:
        """dL/dgamma = sum_rows g * x_hat and dL/dbeta = sum_rows g (eq. 18.4), and dL/dx by the
        subclass's rule for one row, given dL/dx_hat = gamma * g."""
        rows = [row for sample in grad_outputs for row in sample] if self.positions else grad_outputs
        if len(rows) != len(self.x_hat) or any(len(g) != self.dim for g in rows):
            raise ShapeError(
                f"{self.name}.backward: gradients of shape {shape_of(grad_outputs)} for the last forward pass"
            )
        if self.affine:
            self.grad_weight = [0.0] * self.dim
            for g, x_hat in zip(rows, self.x_hat):
                self.grad_weight = [total + gk * xh for total, gk, xh in zip(self.grad_weight, g, x_hat)]
        if self.has_bias:
            self.grad_bias = [sum(g[k] for g in rows) for k in range(self.dim)]
        if not need_input_grad:
            return []
        grad_inputs = []
        for g, x_hat, inv_std in zip(rows, self.x_hat, self.inv_std):
            g_hat = [gamma * gk for gamma, gk in zip(self.weight, g)] if self.affine else g
            grad_inputs.append(self.normalize_backward(g_hat, x_hat, inv_std))
        return by_sample(grad_inputs, self.positions) if self.positions else grad_inputs

    def rows(self, inputs: Sequence[Any]) -> list[list[float]]:
        """The rows of the last axis of a (N, dim) or (N, T, dim) batch, as floats."""
        if hasattr(inputs, "tolist"):
            inputs = inputs.tolist()
        shape = shape_of(inputs)
        if len(shape) not in (2, 3) or shape[-1] != self.dim or shape[0] == 0:
            raise ShapeError(f"{self.name}.forward: expects rows of {self.dim} values (last axis), got shape {shape}")
        self.positions = shape[1] if len(shape) == 3 else 0
        if self.positions:
            return [list(map(float, row)) for sample in inputs for row in sample]
        return [list(map(float, row)) for row in inputs]

    def params(self) -> dict[str, Param]:
        """Copies of gamma (``weight``) and beta (``bias``), those the layer has."""
        named: dict[str, Param] = {}
        if self.affine:
            named["weight"] = list(self.weight)
        if self.has_bias:
            named["bias"] = list(self.bias)
        return named

    def grads(self) -> dict[str, Param]:
        """Copies of dL/dgamma and dL/dbeta from the last backward pass."""
        named: dict[str, Param] = {}
        if self.affine:
            named["weight"] = list(self.grad_weight)
        if self.has_bias:
            named["bias"] = list(self.grad_bias)
        return named

    def set_params(self, named: Mapping[str, Any]) -> None:
        """Replace gamma and beta (nested lists, NumPy arrays, ...)."""
        names = sorted(self.params())
        if sorted(named) != names:
            raise ShapeError(f"{self.name}.set_params: expected the arrays {names}, got {sorted(named)}")
        try:
            values = {name: as_tensor(named[name], (self.dim,), name) for name in names}
        except ShapeError:
            given = ", ".join(f"{name} {shape_name(named[name])}" for name in names)
            raise ShapeError(f"{self.name}.set_params: {given} do not all fit ({self.dim},)") from None
        self.weight = values.get("weight", [])
        self.bias = values.get("bias", [])


class LayerNorm(LastAxisNorm):
    """Each row of the last axis to mean 0 and variance 1, then scaled and shifted: PyTorch's
    nn.LayerNorm(dim, eps, elementwise_affine=affine, bias=bias) (eq. 18.1-18.5)."""

    def __init__(self, dim: int, *, eps: float = 1e-5, affine: bool = True, bias: bool = True) -> None:
        super().__init__("LayerNorm", dim, eps, affine, bias)

    def normalize(self, x: list[float]) -> tuple[list[float], float]:
        """x_hat = (x - mu) / sqrt(var + eps), mu and the biased var over the row (eq. 18.1, 18.2)."""
        mean = sum(x) / self.dim
        var = sum((value - mean) ** 2 for value in x) / self.dim
        inv_std = 1.0 / math.sqrt(var + self.eps)
        return [(value - mean) * inv_std for value in x], inv_std

    def normalize_backward(self, g_hat: list[float], x_hat: list[float], inv_std: float) -> list[float]:
        """dL/dx = (1 / sqrt(var + eps)) (g_hat - mean(g_hat) - x_hat mean(g_hat x_hat)) (eq. 18.5)."""
        mean_g = sum(g_hat) / self.dim
        mean_gx = sum(g * xh for g, xh in zip(g_hat, x_hat)) / self.dim
        return [inv_std * (g - mean_g - xh * mean_gx) for g, xh in zip(g_hat, x_hat)]

    def describe(self) -> dict[str, Any]:
        return {"type": "LayerNorm", "dim": self.dim, "eps": self.eps, "affine": self.affine, "bias": self.has_bias}


class RMSNorm(LastAxisNorm):
    """Each row of the last axis divided by its root mean square, then scaled: PyTorch's
    nn.RMSNorm(dim, eps, elementwise_affine=affine) (eq. 18.6-18.8); no mean is subtracted and
    there is no bias (microgpt's is ``affine=False``)."""

    def __init__(self, dim: int, *, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__("RMSNorm", dim, eps, affine, False)

    def normalize(self, x: list[float]) -> tuple[list[float], float]:
        """x_hat = x / sqrt(mean(x^2) + eps) (eq. 18.6)."""
        inv_rms = 1.0 / math.sqrt(sum(value * value for value in x) / self.dim + self.eps)
        return [value * inv_rms for value in x], inv_rms

    def normalize_backward(self, g_hat: list[float], x_hat: list[float], inv_std: float) -> list[float]:
        """dL/dx = (1 / rms) (g_hat - x_hat mean(g_hat x_hat)) (eq. 18.8)."""
        mean_gx = sum(g * xh for g, xh in zip(g_hat, x_hat)) / self.dim
        return [inv_std * (g - xh * mean_gx) for g, xh in zip(g_hat, x_hat)]

    def describe(self) -> dict[str, Any]:
        return {"type": "RMSNorm", "dim": self.dim, "eps": self.eps, "affine": self.affine}
