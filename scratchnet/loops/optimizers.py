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
from typing import Any, Protocol

from scratchnet.errors import ConfigError, ShapeError
from scratchnet.loops.tensor import Param, flatten, reshape, shape_of
from scratchnet.optimizers import (
    betas as check_betas,
    check_nesterov,
    flag,
    fraction,
    learning_rate,
    non_negative,
    parse_state,
    positive,
)
from scratchnet.schedules import Schedule, check_schedule


class Trainable(Protocol):
    """What a step needs from a network: named parameters, their gradients, and a way to write back."""

    def params(self) -> dict[str, Param]: ...
    def grads(self) -> dict[str, Param]: ...
    def set_params(self, named: Mapping[str, Any]) -> None: ...


class Optimizer:
    """What every optimizer below shares: the base rate ``lr``, an optional ``schedule``, the number
    of steps taken, and the per-parameter state."""

    def __init__(self, lr: float, schedule: Schedule | None) -> None:
        self.lr = learning_rate(lr)
        self.schedule = check_schedule(schedule, self.lr)
        self.steps = 0  # t: optimizer steps taken so far
        self.state: dict[str, list[float]] = {}  # "<param>.<slot>" -> the slot's values, flat
        self.shapes: dict[str, tuple[int, ...]] = {}  # "<param>" -> its shape, to export the state

    def slots(self) -> tuple[str, ...]:
        """The state this optimizer keeps per parameter, under PyTorch's names."""
        return ()

    def current_lr(self) -> float:
        """eta_t, the rate of the next step: the schedule's rate at t = steps taken (section 9)."""
        return self.lr if self.schedule is None else self.schedule.rate(self.lr, self.steps)

    def step(self, network: Trainable) -> None:
        """Move every parameter of ``network`` one step against the gradients of its last backward pass."""
        eta = self.current_lr()
        params = network.params()
        self.check_state(params)
        for name, grad in network.grads().items():
            self.shapes[name] = shape_of(params[name])
            p, g = flatten(params[name]), flatten(grad)
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
        """State (after a step or an import) must be for exactly this network's parameters and shapes."""
        named = {key.rsplit(".", 1)[0] for key in self.state}
        if named and named != set(params):
            raise ShapeError(f"optimizer state is for parameters {sorted(named)}, the network has {sorted(params)}")
        for name in named:
            if shape_of(params[name]) != self.shapes[name]:
                raise ShapeError(f"optimizer state for {name!r} has shape {self.shapes[name]}, "
                                 f"the parameter has {shape_of(params[name])}")

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
                raise ConfigError(f"state array {key!r} is not a vector or a matrix of numbers") from None
            if len(flat) != math.prod(shape) or shapes.setdefault(name, shape) != shape:
                raise ConfigError(f"state array {key!r} is not a vector or matrix shaped like its parameter")
            values[key] = flat
        self.steps, self.state, self.shapes = steps, values, shapes

    def settings(self) -> dict[str, Any]:
        """The constructor arguments besides ``lr`` and ``schedule``."""
        return {}

    def describe(self) -> dict[str, Any]:
        """The optimizer as plain data, for ``scratchnet.optimizers.build_optimizer``."""
        schedule = None if self.schedule is None else self.schedule.describe()
        return {"type": type(self).__name__, "lr": self.lr, **self.settings(), "schedule": schedule}


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD`` (eq. 8.1-8.4).

    ``SGD(lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *, schedule=None)``.
    PyTorch's momentum form: ``b = mu*b + (1 - dampening)*g`` (``b = g`` on the first step),
    ``p -= eta*b``, or with Nesterov ``p -= eta*(g + mu*b)``. ``weight_decay`` adds ``wd*p`` to the
    gradient of every parameter, biases included. State: ``momentum_buffer`` when momentum > 0.
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, *, schedule: Schedule | None = None) -> None:
        super().__init__(lr, schedule)
        self.momentum = fraction("momentum", momentum)
        self.dampening = fraction("dampening", dampening, closed=True)
        self.weight_decay = non_negative("weight_decay", weight_decay)
        self.nesterov = flag("nesterov", nesterov)
        check_nesterov(self.nesterov, self.momentum, self.dampening)

    def slots(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.momentum != 0.0 else ()

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

    def settings(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "dampening": self.dampening, "weight_decay": self.weight_decay,
                "nesterov": self.nesterov}


class Adagrad(Optimizer):
    """Adagrad, as ``torch.optim.Adagrad`` (eq. 8.5-8.6).

    ``Adagrad(lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, *,
    schedule=None)``. ``sum += g*g``; ``p -= eta_t / (1 + t*lr_decay) * g / (sqrt(sum) + eps)``, with
    ``g`` including ``wd*p`` (biases too). State: ``sum``, starting at ``initial_accumulator_value``.
    """

    def __init__(self, lr: float = 0.01, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, schedule: Schedule | None = None) -> None:
        super().__init__(lr, schedule)
        self.lr_decay = non_negative("lr_decay", lr_decay)
        self.weight_decay = non_negative("weight_decay", weight_decay)
        self.initial_accumulator_value = non_negative("initial_accumulator_value", initial_accumulator_value)
        self.eps = positive("eps", eps)

    def slots(self) -> tuple[str, ...]:
        return ("sum",)

    def update(self, name: str, p: list[float], g: list[float], eta: float) -> None:
        clr = eta / (1.0 + self.steps * self.lr_decay)  # eq. 8.6, t = steps taken
        total = self.slot(name, "sum", len(p), self.initial_accumulator_value)
        for i in range(len(p)):
            d_p = g[i]
            if self.weight_decay != 0.0:
                d_p += self.weight_decay * p[i]  # eq. 8.2
            total[i] += d_p * d_p  # eq. 8.5
            p[i] -= clr * d_p / (math.sqrt(total[i]) + self.eps)  # eq. 8.6

    def settings(self) -> dict[str, Any]:
        return {"lr_decay": self.lr_decay, "weight_decay": self.weight_decay,
                "initial_accumulator_value": self.initial_accumulator_value, "eps": self.eps}


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop`` (eq. 8.7-8.10).

    ``RMSprop(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, *,
    schedule=None)``. ``square_avg = alpha*square_avg + (1 - alpha)*g*g``; the denominator is
    ``sqrt(square_avg) + eps``, or centered ``sqrt(square_avg - grad_avg^2) + eps``; with momentum
    ``b = mu*b + g/denominator; p -= eta*b``, else ``p -= eta*g/denominator``. ``g`` includes ``wd*p``.
    State: ``square_avg``, plus ``momentum_buffer`` (momentum > 0) and ``grad_avg`` (centered).
    """

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False, *, schedule: Schedule | None = None) -> None:
        super().__init__(lr, schedule)
        self.alpha = fraction("alpha", alpha)
        self.eps = positive("eps", eps)
        self.weight_decay = non_negative("weight_decay", weight_decay)
        self.momentum = fraction("momentum", momentum)
        self.centered = flag("centered", centered)

    def slots(self) -> tuple[str, ...]:
        return ("square_avg",) + (("momentum_buffer",) if self.momentum > 0.0 else ()) + (
            ("grad_avg",) if self.centered else ())

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

    def settings(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay,
                "momentum": self.momentum, "centered": self.centered}


class Adam(Optimizer):
    """Adam with bias correction, as ``torch.optim.Adam`` (eq. 8.11-8.13).

    ``Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, *, schedule=None)``.
    ``m = beta1*m + (1 - beta1)*g``, ``v = beta2*v + (1 - beta2)*g*g``, and with ``t`` counting this
    step from 1: ``p -= eta * m_hat / (sqrt(v_hat) + eps)``, ``m_hat = m/(1 - beta1^t)``,
    ``v_hat = v/(1 - beta2^t)``: eps is added after the square root of the corrected second moment.
    ``weight_decay`` adds ``wd*p`` to the gradient (biases too). State: ``exp_avg``, ``exp_avg_sq``.
    """

    decoupled = False  # AdamW decays the parameters instead of the gradient

    def __init__(self, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, schedule: Schedule | None = None) -> None:
        super().__init__(lr, schedule)
        self.betas = check_betas(betas)
        self.eps = positive("eps", eps)
        self.weight_decay = non_negative("weight_decay", weight_decay)

    def slots(self) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def update(self, name: str, p: list[float], g: list[float], eta: float) -> None:
        beta1, beta2 = self.betas
        t = self.steps + 1  # this step, counted from 1
        step_size = eta / (1.0 - beta1**t)  # eq. 8.13, as PyTorch computes it
        bias_correction2_sqrt = math.sqrt(1.0 - beta2**t)
        decay = 1.0 - eta * self.weight_decay
        m = self.slot(name, "exp_avg", len(p))
        v = self.slot(name, "exp_avg_sq", len(p))
        for i in range(len(p)):
            d_p = g[i]
            if self.weight_decay != 0.0:
                if self.decoupled:
                    p[i] *= decay  # eq. 8.14 (AdamW)
                else:
                    d_p += self.weight_decay * p[i]  # eq. 8.2
            m[i] = beta1 * m[i] + (1.0 - beta1) * d_p  # eq. 8.11
            v[i] = beta2 * v[i] + (1.0 - beta2) * d_p * d_p  # eq. 8.12
            denominator = math.sqrt(v[i]) / bias_correction2_sqrt + self.eps
            p[i] -= step_size * (m[i] / denominator)  # eq. 8.13, grouped as PyTorch's addcdiv

    def settings(self) -> dict[str, Any]:
        return {"betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay}


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW`` (eq. 8.14, then 8.11-8.13).

    ``AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, *, schedule=None)``.
    First ``p *= 1 - eta*weight_decay`` (every parameter, biases too), then the Adam step on the
    undecayed gradient. State: ``exp_avg``, ``exp_avg_sq``.
    """

    decoupled = True

    def __init__(self, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, *, schedule: Schedule | None = None) -> None:
        super().__init__(lr, betas, eps, weight_decay, schedule=schedule)

