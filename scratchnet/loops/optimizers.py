"""Optimizers: how parameters move given their gradients (spec/math.md, sections 8 and 9).

Every optimizer follows PyTorch's definition (``torch.optim``), with the same constructor arguments
and defaults, because that is what users compare against. Each loops over every element of every
parameter. The loops backend's ``params()`` returns copies, so a step reads them, updates them
element by element and writes them back.

Per-parameter state (momentum buffers, moment estimates) is kept as flat lists under PyTorch's slot
names, keyed ``"<param>.<slot>"``, e.g. ``"0.weight.exp_avg"``; ``export_state``/``import_state``
move it, with the step count, between optimizers and between backends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from scratchnet.core import optimizers
from scratchnet.core.errors import ConfigError, ShapeError
from scratchnet.core.interface import Trainable
from scratchnet.core.schedules import Schedule
from scratchnet.core.settings import parse_state
from scratchnet.loops.tensor import Param, flatten, reshape, shape_of


class Optimizer(optimizers.Rule):
    """The state plumbing every optimizer below shares: per-parameter state as flat lists, moved
    between optimizers and backends by ``export_state``/``import_state``. Settings, the learning
    rate and ``describe`` are :class:`scratchnet.core.optimizers.Rule`'s; each subclass writes ``update``."""

    def __init__(self, lr: float, schedule: Schedule | None) -> None:
        super().__init__(lr, schedule)
        self.state: dict[str, list[float]] = {}  # "<param>.<slot>" -> the slot's values, flat
        self.shapes: dict[str, tuple[int, ...]] = {}  # "<param>" -> its shape, to export the state

    def step(self, network: Trainable[Param]) -> None:
        """Move every trained parameter of ``network`` one step against the gradients of its last
        backward pass (arrays without a gradient, such as running statistics, are left alone)."""
        eta = self.current_lr()
        params, grads = network.params(), network.grads()
        self.check_state({name: params[name] for name in grads})
        scale = 1.0
        if self.max_grad_norm is not None:  # eq. 8.15: the norm of every gradient entry together
            scale = self.clip_coefficient(math.sqrt(sum(x * x for grad in grads.values() for x in flatten(grad))))
        for name, grad in grads.items():
            self.shapes[name] = shape_of(params[name])
            p, g = flatten(params[name]), flatten(grad)
            if scale < 1.0:
                g = [scale * x for x in g]
            with self.decay_for(self.shapes[name]):
                self.update(name, p, g, eta)
            params[name] = reshape(p, self.shapes[name])
        network.set_params(params)
        self.steps += 1

    def update(self, name: str, p: list[float], g: list[float], eta: float) -> None:
        """Update the flat parameter ``p`` in place from its flat gradient ``g`` at rate ``eta``."""
        raise NotImplementedError

    def slot(self, name: str, slot: str, size: int, initial: float = 0.0) -> list[float]:
        """The ``slot`` state of parameter ``name``, created as ``size`` copies of ``initial`` on first use."""
        return self.state.setdefault(f"{name}.{slot}", [initial] * size)

    def check_state(self, params: Mapping[str, Param]) -> None:
        """State (after a step or an import) must be for exactly these trained parameters and shapes."""
        named = {key.rsplit(".", 1)[0] for key in self.state}
        if named and named != set(params):
            raise ShapeError(f"optimizer state is for parameters {sorted(named)}, the network has {sorted(params)}")
        for name in named:
            if shape_of(params[name]) != self.shapes[name]:
                raise ShapeError(
                    f"optimizer state for {name!r} has shape {self.shapes[name]}, "
                    f"the parameter has {shape_of(params[name])}"
                )

    def export_state(self) -> dict[str, Any]:
        """``{"step": t, "arrays": {"<param>.<slot>": nested list shaped like the parameter}}`` (copies)."""
        arrays = {key: reshape(values, self.shapes[key.rsplit(".", 1)[0]]) for key, values in self.state.items()}
        return {"step": self.steps, "arrays": arrays}

    def import_state(self, state: Mapping[str, Any]) -> None:
        """Replace the state with an exported one; its tensors may be nested lists or NumPy arrays."""
        steps, arrays = parse_state(type(self).__name__, state, self.slots())
        values: dict[str, list[float]] = {}
        shapes: dict[str, tuple[int, ...]] = {}
        for key, (name, tensor) in arrays.items():
            nested = tensor.tolist() if hasattr(tensor, "tolist") else tensor
            try:
                shape, flat = shape_of(nested), flatten(nested)
            except (TypeError, ValueError, IndexError):
                raise ConfigError(f"state array {key!r} is not a vector or a tensor of numbers") from None
            if not shape or len(flat) != math.prod(shape) or shapes.setdefault(name, shape) != shape:
                raise ConfigError(f"state array {key!r} is not a tensor shaped like its parameter")
            values[key] = flat
        self.steps, self.state, self.shapes = steps, values, shapes


class SGD(optimizers.SGD, Optimizer):
    """SGD (:class:`scratchnet.core.optimizers.SGD`): the update, element by element (eq. 8.1-8.4)."""

    def update(self, name: str, p: list[float], g: list[float], eta: float) -> None:
        mu, wd = self.momentum, self.weight_decay
        first = f"{name}.momentum_buffer" not in self.state
        b = self.slot(name, "momentum_buffer", len(p)) if mu != 0.0 else []
        for i in range(len(p)):
            d_p = g[i]
            if wd != 0.0:
                d_p += wd * p[i]  # eq. 8.2
            if mu != 0.0:
                b[i] = d_p if first else mu * b[i] + (1.0 - self.dampening) * d_p  # eq. 8.3
                d_p = d_p + mu * b[i] if self.nesterov else b[i]  # eq. 8.4
            p[i] -= eta * d_p  # eq. 8.1


class Adagrad(optimizers.Adagrad, Optimizer):
    """Adagrad (:class:`scratchnet.core.optimizers.Adagrad`): the update, element by element (eq. 8.5-8.6)."""

    def update(self, name: str, p: list[float], g: list[float], eta: float) -> None:
        clr = eta / (1.0 + self.steps * self.lr_decay)  # eq. 8.6, t = steps taken
        total = self.slot(name, "sum", len(p), self.initial_accumulator_value)
        for i in range(len(p)):
            d_p = g[i]
            if self.weight_decay != 0.0:
                d_p += self.weight_decay * p[i]  # eq. 8.2
            total[i] += d_p * d_p  # eq. 8.5
            p[i] -= clr * d_p / (math.sqrt(total[i]) + self.eps)  # eq. 8.6


class RMSprop(optimizers.RMSprop, Optimizer):
    """RMSprop (:class:`scratchnet.core.optimizers.RMSprop`): the update, element by element (eq. 8.7-8.10)."""

    def update(self, name: str, p: list[float], g: list[float], eta: float) -> None:
        alpha, mu = self.alpha, self.momentum
        square_avg = self.slot(name, "square_avg", len(p))
        grad_avg = self.slot(name, "grad_avg", len(p)) if self.centered else []
        b = self.slot(name, "momentum_buffer", len(p)) if mu > 0.0 else []
        for i in range(len(p)):
            d_p = g[i]
            if self.weight_decay != 0.0:
                d_p += self.weight_decay * p[i]  # eq. 8.2
            square_avg[i] = alpha * square_avg[i] + (1.0 - alpha) * d_p * d_p  # eq. 8.7
            if self.centered:
                grad_avg[i] = alpha * grad_avg[i] + (1.0 - alpha) * d_p  # eq. 8.8
                variance = max(square_avg[i] - grad_avg[i] * grad_avg[i], 0.0)  # >= 0 against rounding
                denominator = math.sqrt(variance) + self.eps  # eq. 8.9
            else:
                denominator = math.sqrt(square_avg[i]) + self.eps  # eq. 8.9
            if mu > 0.0:
                b[i] = mu * b[i] + d_p / denominator  # eq. 8.10
                p[i] -= eta * b[i]
            else:
                p[i] -= eta * d_p / denominator  # eq. 8.10


class Adam(optimizers.Adam, Optimizer):
    """Adam (:class:`scratchnet.core.optimizers.Adam`): the update, element by element (eq. 8.11-8.14)."""

    def update(self, name: str, p: list[float], g: list[float], eta: float) -> None:
        """Each equation once over the whole array, element by element (a comprehension per equation)."""
        beta1, beta2, eps, sqrt = *self.betas, self.eps, math.sqrt
        t = self.steps + 1  # this step, counted from 1
        step_size = eta / (1.0 - beta1**t)  # eq. 8.13, as PyTorch computes it
        bias_correction2_sqrt = sqrt(1.0 - beta2**t)
        if self.weight_decay != 0.0 and self.decoupled:
            decay = 1.0 - eta * self.weight_decay
            p[:] = [p_i * decay for p_i in p]  # eq. 8.14 (AdamW)
        elif self.weight_decay != 0.0:
            g = [g_i + self.weight_decay * p_i for g_i, p_i in zip(g, p)]  # eq. 8.2
        m = self.slot(name, "exp_avg", len(p))
        v = self.slot(name, "exp_avg_sq", len(p))
        one_minus_beta1, one_minus_beta2 = 1.0 - beta1, 1.0 - beta2  # once, not once per element
        m[:] = [beta1 * m_i + one_minus_beta1 * g_i for m_i, g_i in zip(m, g)]  # eq. 8.11
        v[:] = [beta2 * v_i + one_minus_beta2 * g_i * g_i for v_i, g_i in zip(v, g)]  # eq. 8.12
        # eq. 8.13, grouped as PyTorch's addcdiv: p -= step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
        p[:] = [p_i - step_size * (m_i / (sqrt(v_i) / bias_correction2_sqrt + eps)) for p_i, m_i, v_i in zip(p, m, v)]


class AdamW(optimizers.AdamW, Adam):
    """AdamW: :class:`scratchnet.core.optimizers.AdamW`'s settings with :class:`Adam`'s update
    (eq. 8.14, 8.11-8.13; ``decoupled`` is set)."""
