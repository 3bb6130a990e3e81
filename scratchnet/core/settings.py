"""The optimizer table and the checks on optimizer settings and exported state, shared by both
backends so that they accept and refuse exactly the same values.

``OPTIMIZERS`` and ``OPTIONS`` are closed tables of the optimizer types and the options each takes
(never a ``getattr`` on a name read from input); ``scratchnet.builders.build_optimizer`` reads them.
Standard library only.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from scratchnet.core.errors import ConfigError
from scratchnet.core.schedules import finite

# Registry name -> the class name in both backends (also the "type" that describe() gives).
OPTIMIZERS: dict[str, str] = {
    "sgd": "SGD",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "adam": "Adam",
    "adamw": "AdamW",
}

# The options each optimizer takes besides "type" and "schedule", with their kinds (as in PyTorch).
OPTIONS: dict[str, dict[str, str]] = {
    "SGD": {"lr": "number", "momentum": "number", "dampening": "number", "weight_decay": "number", "nesterov": "bool"},
    "Adagrad": {
        "lr": "number",
        "lr_decay": "number",
        "weight_decay": "number",
        "initial_accumulator_value": "number",
        "eps": "number",
    },
    "RMSprop": {
        "lr": "number",
        "alpha": "number",
        "eps": "number",
        "weight_decay": "number",
        "momentum": "number",
        "centered": "bool",
    },
    "Adam": {"lr": "number", "betas": "pair", "eps": "number", "weight_decay": "number"},
    "AdamW": {"lr": "number", "betas": "pair", "eps": "number", "weight_decay": "number"},
}


# ---- checks on settings, shared by both backends' constructors ----


def learning_rate(value: Any) -> float:
    """The base learning rate: finite and > 0."""
    lr = finite("learning rate lr", value)
    if not lr > 0.0:
        raise ConfigError(f"learning rate lr must be > 0, got {value!r}")
    return lr


def non_negative(name: str, value: Any) -> float:
    """A finite number >= 0 (weight decay, lr_decay, initial_accumulator_value)."""
    number = finite(name, value)
    if number < 0.0:
        raise ConfigError(f"{name} must be >= 0, got {value!r}")
    return number


def positive(name: str, value: Any) -> float:
    """A finite number > 0 (eps)."""
    number = finite(name, value)
    if not number > 0.0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")
    return number


def fraction(name: str, value: Any, *, closed: bool = False) -> float:
    """A number in [0, 1), or in [0, 1] when ``closed`` (momentum, alpha, betas; dampening)."""
    number = finite(name, value)
    if not (0.0 <= number <= 1.0 if closed else 0.0 <= number < 1.0):
        raise ConfigError(f"{name} must be in [0, 1{']' if closed else ')'}, got {value!r}")
    return number


def flag(name: str, value: Any) -> bool:
    """A bool (nesterov, centered)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def betas(value: Any) -> tuple[float, float]:
    """Adam's (beta1, beta2), each in [0, 1)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ConfigError(f"betas must be a pair (beta1, beta2), got {value!r}")
    return fraction("beta1", value[0]), fraction("beta2", value[1])


def check_nesterov(nesterov: bool, momentum: float, dampening: float) -> None:
    """Nesterov momentum needs a momentum > 0 and zero dampening (as PyTorch requires)."""
    if nesterov and (momentum <= 0.0 or dampening != 0.0):
        raise ConfigError(
            f"nesterov=True needs momentum > 0 and dampening = 0, got momentum={momentum}, dampening={dampening}"
        )


# ---- exported state, shared by both backends' import_state ----


def parse_state(kind: str, state: Any, slots: Sequence[str]) -> tuple[int, dict[str, tuple[str, Any]]]:
    """Check an exported state ``{"step": int, "arrays": {"<param>.<slot>": tensor}}`` against the
    ``slots`` an optimizer of ``kind`` keeps; return the step and ``{key: (param name, tensor)}``.

    Every parameter named must have every slot; anything else is a ConfigError.
    """
    if not isinstance(state, Mapping) or set(state) != {"step", "arrays"}:
        raise ConfigError(f"{kind} state must be an object with exactly 'step' and 'arrays', got {state!r:.80}")
    step = state["step"]
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or int(step) < 0:
        raise ConfigError(f"{kind} state 'step' must be an integer >= 0, got {step!r}")
    arrays = state["arrays"]
    if not isinstance(arrays, Mapping):
        raise ConfigError(f"{kind} state 'arrays' must be an object of named arrays")
    parsed: dict[str, tuple[str, Any]] = {}
    found: dict[str, set[str]] = {}
    for key, tensor in arrays.items():
        if not isinstance(key, str) or "." not in key or key.rsplit(".", 1)[1] not in slots:
            raise ConfigError(
                f"{kind} state has an unexpected array {key!r}; "
                f"it keeps {', '.join(slots) or 'no arrays'} per parameter, as '<param>.<slot>'"
            )
        param, slot = key.rsplit(".", 1)
        found.setdefault(param, set()).add(slot)
        parsed[key] = (param, tensor)
    for param, have in found.items():
        if have != set(slots):
            raise ConfigError(f"{kind} state for {param!r} lacks {sorted(set(slots) - have)}")
    if int(step) > 0 and slots and not parsed:
        raise ConfigError(f"{kind} state after {step} steps has no arrays; it needs {', '.join(slots)}")
    return int(step), parsed


# ---- the optimizer types ----


def optimizer_type(kind: Any) -> str:
    """The class name for a registry name ("adam") or a class name ("Adam"); else ConfigError."""
    if isinstance(kind, str):
        if kind in OPTIMIZERS:
            return OPTIMIZERS[kind]
        if kind in OPTIONS:
            return kind
    known = ", ".join(f"{name} ({cls})" for name, cls in OPTIMIZERS.items())
    raise ConfigError(f"unknown optimizer {kind!r}; known optimizers: {known}")
