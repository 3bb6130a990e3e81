"""Learning-rate schedules (spec/math.md, section 9): scalar math that both backends share.

A schedule turns the optimizer's base rate ``lr`` into the rate of one step,
``eta_t = schedule.rate(lr, t)``, where ``t`` is the number of optimizer steps already taken
(``t = 0`` for the first step). Every optimizer in both backends takes ``schedule=`` and calls
``rate`` once per step, so both backends use the very same Python float. Standard library only.

Schedules are plain data: ``describe()`` gives ``{"type": "Cosine", "total_steps": 100, "min_lr": 0.0}``
and :func:`build_schedule` turns such a dict back into a schedule through a closed table.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any, Protocol

from scratchnet.core.errors import ConfigError


class Schedule(Protocol):
    """What an optimizer needs from a schedule."""

    def rate(self, base_lr: float, t: int) -> float: ...
    def describe(self) -> dict[str, Any]: ...


def finite(name: str, value: Any) -> float:
    """``value`` as a finite float; a bool, a string, NaN or infinity is a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def whole(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int >= ``minimum``; anything else is a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class Constant:
    """eta_t = lr (eq. 9.1)."""

    def rate(self, base_lr: float, t: int) -> float:
        return base_lr

    def describe(self) -> dict[str, Any]:
        return {"type": "Constant"}


class InverseTime:
    """Inverse-time decay: eta_t = lr / (1 + decay * t) (eq. 9.2). ``decay`` >= 0."""

    def __init__(self, decay: float) -> None:
        self.decay = finite("InverseTime decay", decay)
        if self.decay < 0.0:
            raise ConfigError(f"InverseTime decay must be >= 0, got {decay!r}")

    def rate(self, base_lr: float, t: int) -> float:
        return base_lr / (1.0 + self.decay * t)

    def describe(self) -> dict[str, Any]:
        return {"type": "InverseTime", "decay": self.decay}


class Step:
    """Step decay: eta_t = lr * gamma ** floor(t / step_size) (eq. 9.3), as PyTorch's StepLR
    stepped once per optimizer step. ``step_size`` >= 1, 0 < ``gamma`` <= 1."""

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = whole("Step step_size", step_size, 1)
        self.gamma = finite("Step gamma", gamma)
        if not 0.0 < self.gamma <= 1.0:
            raise ConfigError(f"Step gamma must be in (0, 1], got {gamma!r}")

    def rate(self, base_lr: float, t: int) -> float:
        return base_lr * self.gamma ** (t // self.step_size)

    def describe(self) -> dict[str, Any]:
        return {"type": "Step", "step_size": self.step_size, "gamma": self.gamma}


class Cosine:
    """Cosine annealing from lr down to ``min_lr`` over ``total_steps`` steps, then ``min_lr``:
    eta_t = min_lr + (lr - min_lr) * (1 + cos(pi * min(t, T) / T)) / 2 (eq. 9.4). With
    ``warmup_steps`` W > 0, nanoGPT's warmup comes first: eta_t = lr * (t + 1) / (W + 1) for t < W,
    then the cosine over the T - W steps left (eq. 9.5).
    ``total_steps`` >= 1, 0 <= ``min_lr`` <= the optimizer's lr (checked by the optimizer)."""

    def __init__(self, total_steps: int, min_lr: float = 0.0, warmup_steps: int = 0) -> None:
        self.total_steps = whole("Cosine total_steps", total_steps, 1)
        self.min_lr = finite("Cosine min_lr", min_lr)
        self.warmup_steps = whole("Cosine warmup_steps", warmup_steps, 0)
        if self.min_lr < 0.0:
            raise ConfigError(f"Cosine min_lr must be >= 0, got {min_lr!r}")
        if self.warmup_steps >= self.total_steps:
            raise ConfigError(
                f"Cosine warmup_steps ({self.warmup_steps}) must be fewer than its total_steps ({self.total_steps})"
            )

    def rate(self, base_lr: float, t: int) -> float:
        warmup = self.warmup_steps
        if t < warmup:
            return base_lr * (t + 1) / (warmup + 1)
        span = self.total_steps - warmup
        progress = min(t - warmup, span) / span
        return self.min_lr + (base_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress)) / 2.0

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"type": "Cosine", "total_steps": self.total_steps, "min_lr": self.min_lr}
        if self.warmup_steps:  # written only when used, so a file without warmup reads as it always did
            described["warmup_steps"] = self.warmup_steps
        return described


class Linear:
    """Linear decay from lr to 0 over ``total_steps`` steps, then 0, as microgpt decays its rate:
    eta_t = lr * (1 - min(t, T) / T) (eq. 9.6). ``total_steps`` >= 1."""

    def __init__(self, total_steps: int) -> None:
        self.total_steps = whole("Linear total_steps", total_steps, 1)

    def rate(self, base_lr: float, t: int) -> float:
        return base_lr * (1.0 - min(t, self.total_steps) / self.total_steps)

    def describe(self) -> dict[str, Any]:
        return {"type": "Linear", "total_steps": self.total_steps}


# The closed table of schedules a file or a flag may name: snake_case name -> (class, options).
SCHEDULES: dict[str, tuple[type[Constant | InverseTime | Step | Cosine | Linear], tuple[str, ...]]] = {
    "constant": (Constant, ()),
    "inverse_time": (InverseTime, ("decay",)),
    "step": (Step, ("step_size", "gamma")),
    "cosine": (Cosine, ("total_steps", "min_lr", "warmup_steps")),
    "linear": (Linear, ("total_steps",)),
}


def schedule_name(kind: Any) -> str:
    """The table name of ``kind``, given as a table name ("cosine") or a class name ("Cosine")."""
    for name, (cls, _) in SCHEDULES.items():
        if kind == name or kind == cls.__name__:
            return name
    known = ", ".join(f"{name} ({cls.__name__})" for name, (cls, _) in SCHEDULES.items())
    raise ConfigError(f"unknown schedule {kind!r}; known schedules: {known}")


def build_schedule(spec: Mapping[str, Any] | None) -> Schedule | None:
    """The schedule a ``describe()``-style dict names, or None for None.

    ``{"type": "cosine", "total_steps": 100}`` and ``{"type": "Cosine", ...}`` are both accepted;
    an unknown type or option, or an invalid value, is a ConfigError.
    """
    if spec is None:
        return None
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ConfigError(f"a schedule is an object with a 'type', got {spec!r}")
    name = schedule_name(spec["type"])
    cls, options = SCHEDULES[name]
    unknown = sorted(set(spec) - {"type", *options})
    if unknown:
        raise ConfigError(f"schedule {name!r} has unknown options {unknown}; it takes {list(options) or 'none'}")
    kwargs = {key: spec[key] for key in options if key in spec}
    try:
        return cls(**kwargs)
    except TypeError as error:  # a required option is missing
        raise ConfigError(f"schedule {name!r} needs the options {list(options)}: {error}") from None


def check_schedule(schedule: Any, base_lr: float) -> Schedule | None:
    """``schedule`` when it is None or one of the schedules above and fits ``base_lr``; else ConfigError.

    Only the closed set of schedules is accepted, so an optimizer's ``describe()`` can always be rebuilt.
    """
    if schedule is None:
        return None
    if not isinstance(schedule, (Constant, InverseTime, Step, Cosine, Linear)):
        raise ConfigError(
            f"schedule must be one of {', '.join(c.__name__ for c, _ in SCHEDULES.values())}, "
            f"got {type(schedule).__name__}"
        )
    if isinstance(schedule, Cosine) and schedule.min_lr > base_lr:
        raise ConfigError(f"Cosine min_lr {schedule.min_lr} is above the learning rate {base_lr}")
    return schedule
