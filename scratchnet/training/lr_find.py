"""The learning-rate finder behind ``scratchnet lr-find`` (Smith, "Cyclical learning rates", 2017,
section 3.3; the form fastai made popular).

From one initialisation (the run's seed), step ``k`` of ``steps`` trains at the rate
``start * (end / start) ** (k / (steps - 1))``, exponentially from ``start`` to ``end``, on the run's
batches. The loss of each step is smoothed by an exponential moving average with bias correction,
``avg_k = beta * avg_(k-1) + (1 - beta) * loss_k``, ``smoothed_k = avg_k / (1 - beta^k)``; the sweep
stops early when the loss is not finite or the smoothed loss exceeds ``diverge`` times its lowest.

The suggested rate is a tenth of the rate at the smoothed loss's minimum (the loss there is already
climbing out of control a little later: a tenth of it is a rate that still learns fast and stays
stable), kept inside the swept range. The rate of the steepest descent of the smoothed loss (per
log-rate) is reported beside it. Nothing is saved: the network is thrown away.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from scratchnet.builders import build_network, build_optimizer
from scratchnet.core.architecture import plan
from scratchnet.core.errors import ConfigError
from scratchnet.core.interface import Network, Optimizer
from scratchnet.data import Dataset
from scratchnet.training.checkpoint import RunState
from scratchnet.training.config import TrainConfig, optimizer_spec, steps_per_epoch
from scratchnet.training.feeding import Batches, check_fits, describe_data, feeder_of, load_training_data, split_dataset
from scratchnet.training.loop import Callback, Loop
from scratchnet.training.task import Classification

BETA = 0.9  # the smoothing of the loss: about its last 10 steps (fastai's 0.98, 50 steps, lags by a decade here)
DIVERGE = 4.0  # stop when the smoothed loss passes this many times its lowest
MIN_STEPS = 10
SCHEDULE_SETTINGS = ("lr_min", "lr_step", "lr_gamma", "lr_time_decay")


def rate_at(step: int, steps: int, start: float, end: float) -> float:
    """The rate of step ``step`` (0-based) of ``steps``: exponential from ``start`` to ``end``."""
    return float(start * (end / start) ** (step / (steps - 1)))


@dataclass
class Sweep:
    """What a sweep measured: the rate, the loss and the smoothed loss of each step taken, and why it stopped."""

    rates: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    stopped: str = ""

    def suggestion(self) -> tuple[float, str]:
        """The suggested rate and the rule, in words, with the figures it used."""
        if not self.smoothed:
            raise ConfigError("the sweep took no step")
        lowest = int(np.argmin(self.smoothed))
        at_minimum = self.rates[lowest]
        suggested = max(at_minimum / 10.0, self.rates[0])
        rule = f"a tenth of {at_minimum:.3g}, the rate at the smoothed loss's minimum"
        if suggested != at_minimum / 10.0:
            rule += ", raised to the sweep's start"
        steepest = self.steepest()
        if steepest is not None:
            rule += f"; the smoothed loss falls fastest at {steepest:.3g}"
        return suggested, rule

    def steepest(self) -> float | None:
        """The rate where the smoothed loss falls fastest per log-rate, up to its minimum."""
        lowest = int(np.argmin(self.smoothed))
        if lowest < 2:
            return None
        slopes = np.gradient(np.array(self.smoothed[: lowest + 1]), np.log(self.rates[: lowest + 1]))
        return self.rates[int(np.argmin(slopes))]


class RateSweep(Callback):
    """Set each step's rate, keep its loss, and stop after ``steps`` steps or when the loss diverges."""

    def __init__(self, start: float, end: float, steps: int, beta: float = BETA, diverge: float = DIVERGE) -> None:
        self.start, self.end, self.steps, self.beta, self.diverge = start, end, steps, beta, diverge
        self.sweep = Sweep()
        self.average = 0.0

    def on_loss(self, loop: Loop, loss: float) -> None:
        sweep, taken = self.sweep, len(self.sweep.losses) + 1
        sweep.rates.append(loop.optimizer.lr)
        sweep.losses.append(loss)
        if not math.isfinite(loss):
            sweep.smoothed.append(math.inf)
            sweep.stopped = f"stopped at step {taken}: the loss is {loss}"
            loop.request_stop()
            return
        self.average = self.beta * self.average + (1.0 - self.beta) * loss
        smoothed = self.average / (1.0 - self.beta**taken)
        sweep.smoothed.append(smoothed)
        best = min(sweep.smoothed)
        if smoothed > self.diverge * best:
            sweep.stopped = (
                f"stopped at step {taken} of {self.steps}: the smoothed loss {smoothed:.4g} passed "
                f"{self.diverge:g}x its lowest, {best:.4g} (the loss diverged)"
            )
            loop.request_stop()
        elif taken == self.steps:
            sweep.stopped = f"swept all {self.steps} steps without the loss diverging"
            loop.request_stop()

    def on_step_end(self, loop: Loop, loss: float) -> None:
        loop.optimizer.lr = rate_at(len(self.sweep.losses), self.steps, self.start, self.end)


def sweep_config(config: TrainConfig, start: float) -> TrainConfig:
    """The run's settings with a constant rate (the sweep sets it step by step) starting at ``start``."""
    cleared: dict[str, Any] = {name: None for name in SCHEDULE_SETTINGS}
    return replace(config, lr=start, lr_schedule="constant", **cleared)


def check_sweep(start: float, end: float, steps: int) -> None:
    if not (math.isfinite(start) and math.isfinite(end) and 0.0 < start < end):
        raise ConfigError(f"--start {start:g} and --end {end:g}: the sweep needs 0 < start < end")
    if steps < MIN_STEPS:
        raise ConfigError(f"--steps {steps}: the sweep needs at least {MIN_STEPS} steps")


def find_lr(
    config: TrainConfig,
    start: float,
    end: float,
    steps: int,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    dataset: Dataset | None = None,
    log: Callable[[str], None] = print,
) -> Sweep:
    """Sweep the rate from ``start`` to ``end`` over ``steps`` steps of the run ``config`` describes
    (its data, network, optimizer, batches and seed), from its initial weights; its epochs and
    schedule are not used (an epoch is as long as it is: the sweep goes on over the next ones)."""
    check_sweep(start, end, steps)
    config = sweep_config(config, start)
    data = dataset if dataset is not None else load_training_data(config, data_dir)
    check_fits(config, data)
    split = split_dataset(data, config)
    log(describe_data(config, data, split))
    architecture = config.network().architecture(data.sample_shape, data.num_classes)
    network: Network[Any, Any] = build_network(
        architecture, backend=config.backend, dtype=config.dtype, seed=config.seed
    )
    per_epoch = steps_per_epoch(config, len(split.train_labels))
    optimizer: Optimizer = build_optimizer(optimizer_spec(config, per_epoch), config.backend)
    feeder = feeder_of(config, plan(architecture).input_shape, data)
    batches = Batches(config.run_settings(), split.train_images, split.train_labels, feeder)
    sweep = RateSweep(start, end, steps)
    epochs = -(-steps // per_epoch)
    loop = Loop(network, optimizer, Classification(), batches, epochs, RunState(), (sweep,))
    loop.run()
    return sweep.sweep
