"""What each optimizer is, shared by both backends: its settings (checked once, here), the state it
keeps per parameter, its learning rate at each step, and its description as data.

Every optimizer follows PyTorch's definition (``torch.optim``), with the same constructor arguments
and defaults. The backends' classes (``scratchnet/loops/optimizers.py``,
``scratchnet/vectorized/optimizers.py``) derive from these and from their backend's state plumbing,
and write only the update rule, e.g. ``class SGD(optimizers.SGD, Optimizer)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from scratchnet.core.schedules import Schedule, check_schedule
from scratchnet.core.settings import betas as check_betas
from scratchnet.core.settings import check_nesterov, flag, fraction, learning_rate, non_negative, positive


class Rule:
    """The base rate ``lr``, an optional ``schedule``, and the number of steps taken; ``max_grad_norm``
    (None: off) clips the gradients to that global norm before each step (eq. 8.15)."""

    max_grad_norm: float | None = None
    decay_matrices_only: bool = False  # weight decay on arrays of 2 or more axes only (nanoGPT's; eq. 8.16)

    def __init__(self, lr: float, schedule: Schedule | None) -> None:
        self.lr = learning_rate(lr)
        self.schedule = check_schedule(schedule, self.lr)
        self.steps = 0  # t: optimizer steps taken so far

    def slots(self) -> tuple[str, ...]:
        """The state this optimizer keeps per parameter, under PyTorch's names."""
        return ()

    def current_lr(self) -> float:
        """eta_t, the rate of the next step: the schedule's rate at t = steps taken (section 9)."""
        return self.lr if self.schedule is None else self.schedule.rate(self.lr, self.steps)

    def settings(self) -> dict[str, Any]:
        """The constructor arguments besides ``lr`` and ``schedule``."""
        return {}

    @contextmanager
    def decay_for(self, shape: tuple[int, ...]) -> Iterator[None]:
        """Within the block the weight decay is the one an array of ``shape`` gets: 0 for a vector (a bias,
        a norm's gain) when ``decay_matrices_only`` is on (eq. 8.16), else the optimizer's own."""
        kept = getattr(self, "weight_decay", 0.0)
        if not self.decay_matrices_only or len(shape) >= 2 or not kept:
            yield
            return
        self.weight_decay = 0.0
        try:
            yield
        finally:
            self.weight_decay = kept

    def clip_coefficient(self, norm: float) -> float:
        """The factor every gradient is multiplied by before the step, for gradients of global norm
        ``norm``: ``min(1, max_grad_norm / (norm + 1e-6))``, PyTorch's ``clip_grad_norm_`` (eq. 8.15)."""
        if self.max_grad_norm is None:
            return 1.0
        return min(1.0, self.max_grad_norm / (norm + 1e-6))

    def describe(self) -> dict[str, Any]:
        """The optimizer as plain data, for ``scratchnet.builders.build_optimizer``."""
        schedule = None if self.schedule is None else self.schedule.describe()
        described = {"type": type(self).__name__, "lr": self.lr, **self.settings(), "schedule": schedule}
        if self.max_grad_norm is not None:  # written only when on, so other optimizers describe as before
            described["max_grad_norm"] = self.max_grad_norm
        if self.decay_matrices_only:
            described["decay_matrices_only"] = True
        return described


class SGD(Rule):
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD`` (eq. 8.1-8.4).

    ``SGD(lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *, schedule=None)``.
    PyTorch's momentum form: ``b = mu*b + (1 - dampening)*g`` (``b = g`` on the first step),
    ``p -= eta*b``, or with Nesterov ``p -= eta*(g + mu*b)``. ``weight_decay`` adds ``wd*p`` to the
    gradient of every parameter, biases included. State: ``momentum_buffer`` when momentum > 0.
    """

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(lr, schedule)
        self.momentum = fraction("momentum", momentum)
        self.dampening = fraction("dampening", dampening, closed=True)
        self.weight_decay = non_negative("weight_decay", weight_decay)
        self.nesterov = flag("nesterov", nesterov)
        check_nesterov(self.nesterov, self.momentum, self.dampening)

    def slots(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.momentum != 0.0 else ()

    def settings(self) -> dict[str, Any]:
        return {
            "momentum": self.momentum,
            "dampening": self.dampening,
            "weight_decay": self.weight_decay,
            "nesterov": self.nesterov,
        }


class Adagrad(Rule):
    """Adagrad, as ``torch.optim.Adagrad`` (eq. 8.5-8.6).

    ``Adagrad(lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, *,
    schedule=None)``. ``sum += g*g``; ``p -= eta_t / (1 + t*lr_decay) * g / (sqrt(sum) + eps)``, with
    ``g`` including ``wd*p`` (biases too). State: ``sum``, starting at ``initial_accumulator_value``.
    """

    def __init__(
        self,
        lr: float = 0.01,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(lr, schedule)
        self.lr_decay = non_negative("lr_decay", lr_decay)
        self.weight_decay = non_negative("weight_decay", weight_decay)
        self.initial_accumulator_value = non_negative("initial_accumulator_value", initial_accumulator_value)
        self.eps = positive("eps", eps)

    def slots(self) -> tuple[str, ...]:
        return ("sum",)

    def settings(self) -> dict[str, Any]:
        return {
            "lr_decay": self.lr_decay,
            "weight_decay": self.weight_decay,
            "initial_accumulator_value": self.initial_accumulator_value,
            "eps": self.eps,
        }


class RMSprop(Rule):
    """RMSprop, as ``torch.optim.RMSprop`` (eq. 8.7-8.10).

    ``RMSprop(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, *,
    schedule=None)``. ``square_avg = alpha*square_avg + (1 - alpha)*g*g``; the denominator is
    ``sqrt(square_avg) + eps``, or centered ``sqrt(square_avg - grad_avg^2) + eps``; with momentum
    ``b = mu*b + g/denominator; p -= eta*b``, else ``p -= eta*g/denominator``. ``g`` includes ``wd*p``.
    State: ``square_avg``, plus ``momentum_buffer`` (momentum > 0) and ``grad_avg`` (centered).
    """

    def __init__(
        self,
        lr: float = 0.01,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(lr, schedule)
        self.alpha = fraction("alpha", alpha)
        self.eps = positive("eps", eps)
        self.weight_decay = non_negative("weight_decay", weight_decay)
        self.momentum = fraction("momentum", momentum)
        self.centered = flag("centered", centered)

    def slots(self) -> tuple[str, ...]:
        return (
            ("square_avg",)
            + (("momentum_buffer",) if self.momentum > 0.0 else ())
            + (("grad_avg",) if self.centered else ())
        )

    def settings(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "momentum": self.momentum,
            "centered": self.centered,
        }


class Adam(Rule):
    """Adam with bias correction, as ``torch.optim.Adam`` (eq. 8.11-8.13).

    ``Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, *, schedule=None)``.
    ``m = beta1*m + (1 - beta1)*g``, ``v = beta2*v + (1 - beta2)*g*g``, and with ``t`` counting this
    step from 1: ``p -= eta * m_hat / (sqrt(v_hat) + eps)``, ``m_hat = m/(1 - beta1^t)``,
    ``v_hat = v/(1 - beta2^t)``: eps is added after the square root of the corrected second moment.
    ``weight_decay`` adds ``wd*p`` to the gradient (biases too). State: ``exp_avg``, ``exp_avg_sq``.
    """

    decoupled = False  # AdamW decays the parameters instead of the gradient

    def __init__(
        self,
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(lr, schedule)
        self.betas = check_betas(betas)
        self.eps = positive("eps", eps)
        self.weight_decay = non_negative("weight_decay", weight_decay)

    def slots(self) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def settings(self) -> dict[str, Any]:
        return {"betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay}


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW`` (eq. 8.14, then 8.11-8.13).

    ``AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, *, schedule=None)``.
    First ``p *= 1 - eta*weight_decay`` (every parameter, biases too), then the Adam step on the
    undecayed gradient. State: ``exp_avg``, ``exp_avg_sq``.
    """

    decoupled = True

    def __init__(
        self,
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        *,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(lr, betas, eps, weight_decay, schedule=schedule)
