"""The optimizer part of a run: the ``build_optimizer`` spec its flat settings give, and how an
optimizer object (``--optimizer '{"type": "adam", "eps": 1e-7}'``, a recipe's optimizer) maps onto
them. Every option of every optimizer is reachable: those without a flat setting of their own go to
``optimizer_options``, and ``core/optimizers`` checks them when the spec is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from scratchnet.core.errors import ConfigError
from scratchnet.core.settings import optimizer_type


class OptimizerSettings(Protocol):
    """The flat settings of the optimizer part (a TrainConfig's), read-only."""

    @property
    def optimizer(self) -> str: ...
    @property
    def lr(self) -> float: ...
    @property
    def momentum(self) -> float | None: ...
    @property
    def nesterov(self) -> bool | None: ...
    @property
    def weight_decay(self) -> float | None: ...
    @property
    def betas(self) -> tuple[float, float] | None: ...
    @property
    def optimizer_options(self) -> dict[str, Any] | None: ...
    @property
    def lr_schedule(self) -> str: ...
    @property
    def lr_min(self) -> float | None: ...
    @property
    def lr_step(self) -> int | None: ...
    @property
    def lr_gamma(self) -> float | None: ...
    @property
    def lr_time_decay(self) -> float | None: ...
    @property
    def lr_warmup(self) -> int | None: ...
    @property
    def epochs(self) -> int: ...


# The optimizer options that have flat settings of their own (so not in ``optimizer_options``).
OPTIMIZER_FIELDS = ("lr", "momentum", "nesterov", "weight_decay", "betas")


def optimizer_spec(config: OptimizerSettings, steps: int) -> dict[str, Any]:
    """The ``build_optimizer`` spec of the run: the optimizer's settings and its schedule, in steps
    (``steps`` per epoch)."""
    spec: dict[str, Any] = {"type": optimizer_type(config.optimizer), "lr": config.lr}
    for key in ("momentum", "nesterov", "weight_decay"):
        value = getattr(config, key)
        if value is not None:
            spec[key] = value
    if config.betas is not None:
        spec["betas"] = list(config.betas)
    spec.update(config.optimizer_options or {})
    schedule: dict[str, Any] | None = None
    if config.lr_schedule == "cosine":
        min_lr = 0.0 if config.lr_min is None else config.lr_min
        schedule = {"type": "Cosine", "total_steps": config.epochs * steps, "min_lr": min_lr}
        if config.lr_warmup:
            schedule["warmup_steps"] = config.lr_warmup
    elif config.lr_schedule == "step":
        step_size = (1 if config.lr_step is None else config.lr_step) * steps
        gamma = 0.1 if config.lr_gamma is None else config.lr_gamma
        schedule = {"type": "Step", "step_size": step_size, "gamma": gamma}
    elif config.lr_schedule == "inverse_time":
        schedule = {"type": "InverseTime", "decay": 0.0 if config.lr_time_decay is None else config.lr_time_decay}
    elif config.lr_schedule == "linear":
        schedule = {"type": "Linear", "total_steps": config.epochs * steps}
    spec["schedule"] = schedule
    return spec


# How a ``--optimizer`` JSON object's schedule keys map onto the flat settings.
SCHEDULE_KEYS = {
    "min_lr": "lr_min",
    "step_epochs": "lr_step",
    "gamma": "lr_gamma",
    "decay": "lr_time_decay",
    "warmup_steps": "lr_warmup",
}


def optimizer_settings(given: Mapping[str, Any]) -> dict[str, Any]:
    """The flat settings of an optimizer object such as ``{"type": "adam", "eps": 1e-7, "schedule":
    {"type": "cosine", "min_lr": 1e-5}}``: ``type`` is ``optimizer``; ``lr``, ``momentum``,
    ``nesterov``, ``weight_decay`` and ``betas`` their settings; the schedule's ``type`` is
    ``lr_schedule`` and its ``min_lr``, ``step_epochs``, ``gamma`` and ``decay`` are ``lr_min``,
    ``lr_step``, ``lr_gamma`` and ``lr_time_decay``; every other option goes to ``optimizer_options``
    (which the optimizer checks)."""
    if not isinstance(given, Mapping):
        raise ConfigError(f'an optimizer is an object such as {{"type": "adam", "eps": 1e-7}}, got {given!r}')
    settings: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for key, value in given.items():
        if key == "type":
            settings["optimizer"] = str(value).lower() if isinstance(value, str) else value
        elif key in OPTIMIZER_FIELDS:
            settings[key] = tuple(value) if key == "betas" and isinstance(value, list) else value
        elif key == "schedule":
            settings.update(schedule_settings(value))
        else:
            options[key] = value
    if options:
        settings["optimizer_options"] = options
    return settings


def schedule_settings(given: Any) -> dict[str, Any]:
    """The flat settings of a schedule object (see :func:`optimizer_settings`); None is constant."""
    if given is None:
        return {"lr_schedule": "constant"}
    if not isinstance(given, Mapping) or "type" not in given:
        raise ConfigError(f'a schedule is an object with a \'type\' such as {{"type": "cosine"}}, got {given!r}')
    unknown = sorted(set(given) - {"type", *SCHEDULE_KEYS})
    if unknown:
        raise ConfigError(f"unknown schedule options {unknown}; a schedule takes type, {', '.join(SCHEDULE_KEYS)}")
    settings = {SCHEDULE_KEYS[key]: value for key, value in given.items() if key != "type"}
    settings["lr_schedule"] = str(given["type"]).lower().replace("inversetime", "inverse_time")
    return settings
