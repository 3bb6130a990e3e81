"""Why a run's loss became NaN or infinite, and which setting to change when it is resumed.

The NaN guard of :mod:`scratchnet.training.train` names the last good checkpoint; resuming it with
the same settings retraces the same steps to the same NaN, so the message names the setting to
change (``scratchnet train --resume CKPT --lr ...`` or ``--weight-decay ...``, which a resume
accepts). A setting outside the range in which the optimizer is stable (spec/math.md section 8) is
named when there is one; otherwise the learning rate, the usual cause.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Above these learning rates training is rarely stable: the adaptive optimizers take steps of about
# lr per parameter, plain SGD steps of lr times the gradient.
HIGH_LR = {"sgd": 1.0, "adagrad": 0.1, "rmsprop": 0.1, "adam": 0.1, "adamw": 0.1}
# Weight decay that multiplies the weights by 1 - lr * wd each step (SGD's coupled decay, AdamW's
# decoupled one) flips their sign and grows them when lr * wd >= 1; in Adam, RMSprop and Adagrad
# it is added to the gradient, and above this it outweighs the gradient of the loss itself.
HIGH_ADDED_DECAY = 1.0
SHRINKING = ("sgd", "adamw")


@dataclass(frozen=True)
class Diagnosis:
    """The likely cause, as a clause, and the resume flag that changes it (``--lr 0.0001``)."""

    cause: str
    flag: str


def diagnose(config: Any) -> Diagnosis:
    """The setting of ``config`` (a TrainConfig) to blame for a non-finite loss."""
    kind = str(config.optimizer).lower()
    lr = float(config.lr)
    decay = float(config.weight_decay or 0.0)
    if decay and kind in SHRINKING and lr * decay >= 1.0:
        return Diagnosis(
            f"the weight decay {decay:g} is out of range: each {kind} step multiplies the weights by "
            f"1 - lr x weight decay = 1 - {lr:g} x {decay:g} = {1 - lr * decay:g}, which must stay in (0, 1)",
            f"--weight-decay {0.01 / lr:.1g}",
        )
    if decay >= HIGH_ADDED_DECAY and kind not in SHRINKING:
        return Diagnosis(
            f"the weight decay {decay:g} is out of range: {kind} adds weight decay x weight to the gradient, "
            f"and from {HIGH_ADDED_DECAY:g} up that outweighs the gradient of the loss (usual values: 1e-5 to 1e-2)",
            "--weight-decay 0.0001",
        )
    high = HIGH_LR.get(kind, 0.1)
    if lr > high:
        return Diagnosis(
            f"the learning rate {lr:g} is out of range for {kind} (stable up to about {high:g})",
            f"--lr {min(lr, high) / 10:g}",
        )
    return Diagnosis(f"the learning rate {lr:g} may be too high", f"--lr {lr / 10:g}")


def divergence_message(config: Any, loss: float, epoch: int, step: int, last_saved: str, checkpoint: Any) -> str:
    """The one line of the TrainingError that stops a diverged run (epoch and step 1-based)."""
    diagnosis = diagnose(config)
    stopped = f"the loss became {loss} at epoch {epoch}, step {step}: training stopped; {diagnosis.cause}"
    if checkpoint is None:
        return f"{stopped}; no checkpoint file was asked for: train again with {diagnosis.flag}"
    return (
        f"{stopped}; last good checkpoint ({last_saved}): {checkpoint}; continue it with "
        f"scratchnet train --resume {checkpoint} {diagnosis.flag}"
    )
