"""The callbacks ``scratchnet train`` hands to the loop: each one job that is not the loop's.

* :class:`ProgressBar`: the bar of the current epoch, on a terminal;
* :class:`Validation`: the task's held-out metric in each record;
* :class:`ReportLine`: one line per record;
* :class:`Checkpointing`: a checkpoint after each record (and knowing which was the last);
* :class:`NaNGuard`: a NaN or infinite loss stops the run before the step is taken;
* :class:`StopOnCtrlC` (a context, not a callback): the first Ctrl-C asks the loop to stop between two steps;
* :class:`StepHook`: ``hook(epoch, step, network)`` after every step.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from scratchnet.core.errors import TrainingError
from scratchnet.data.images import Feeder
from scratchnet.training.divergence import divergence_message
from scratchnet.training.loop import Callback, Loop
from scratchnet.training.progress import Progress
from scratchnet.training.task import Classification, Task

Log = Callable[[str], None]
Hook = Callable[[int, int, Any], None]


class ProgressBar(Callback):
    """A progress bar per epoch with the running loss (shown on a terminal only, unless ``enabled``)."""

    def __init__(self, epochs: int, enabled: bool | None = None) -> None:
        self.epochs, self.enabled = epochs, enabled
        self.bar: Progress | None = None

    def on_epoch_start(self, loop: Loop) -> None:
        self.bar = Progress(loop.steps_per_epoch, f"epoch {loop.state.epoch + 1}/{self.epochs}", enabled=self.enabled)

    def on_step_end(self, loop: Loop, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(loop.state.step, f"loss {loop.state.loss_sum / loop.state.seen:.4f}")

    def on_epoch_end(self, loop: Loop) -> None:
        self.on_close(loop)

    def on_stop(self, loop: Loop) -> None:
        self.on_close(loop)

    def on_close(self, loop: Loop) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Validation(Callback):
    """The task's metric on the held-out samples, in every record (when there are any)."""

    def __init__(self, samples: Any, targets: Any, feeder: Feeder) -> None:
        self.samples, self.targets, self.feeder = samples, targets, feeder

    def on_measure(self, loop: Loop, record: dict[str, Any]) -> None:
        if len(self.targets):
            record[loop.task.metric] = loop.task.evaluate(loop.network, self.samples, self.targets, self.feeder)


def format_record(record: Mapping[str, Any], epochs: int, task: Task | None = None, unit: str = "img") -> str:
    """``epoch  3/20  loss 0.1234  train 96.50%  val 97.10%  lr 0.001  4.2 s  12000 img/s`` (or
    ``step 500 (epoch 1.25)  ...`` for a record of a run that reports every N steps); the task
    (default: a classifier) writes its metrics; ``unit`` names the samples of the speed (``rows`` of
    a table)."""
    width = len(str(epochs))
    where = (
        f"step {record['step']} (epoch {record['epoch']:g})"
        if "step" in record
        else f"epoch {record['epoch']:>{width}}/{epochs}"
    )
    metrics = (task or Classification()).format_metrics(record)
    return (
        f"{where}  loss {record['loss']:.4f}  {metrics}  lr {record['lr']:.3g}  "
        f"{record['seconds']:.1f} s  {record['images_per_second']:.0f} {unit}/s"
    )


class ReportLine(Callback):
    """One line per record, to ``log``."""

    def __init__(self, epochs: int, log: Log, unit: str = "img") -> None:
        self.epochs, self.log, self.unit = epochs, log, unit

    def on_record(self, loop: Loop, record: dict[str, Any]) -> None:
        self.log(format_record(record, self.epochs, loop.task, self.unit))


class Checkpointing(Callback):
    """``save()`` after every record; ``last_saved`` says where the last checkpoint is (for the
    NaN guard's message). ``save`` writes the whole run: its model, optimizer and state."""

    def __init__(self, save: Callable[[], None], state_epoch: int, state_step: int) -> None:
        self.save = save
        self.last_saved = f"after epoch {state_epoch}" + (f", step {state_step}" if state_step else "")

    def on_record(self, loop: Loop, record: dict[str, Any]) -> None:
        self.save()
        step = loop.state.step
        self.last_saved = f"after epoch {loop.state.epoch}" + (f", step {step}" if step else "")


class NaNGuard(Callback):
    """A non-finite loss is a TrainingError before the step is taken: the last checkpoint stays good.
    The message names the setting to blame (:mod:`scratchnet.training.divergence`)."""

    def __init__(self, config: Any, checkpoint: Path | None, checkpointing: Checkpointing | None) -> None:
        self.config, self.checkpoint, self.checkpointing = config, checkpoint, checkpointing

    def on_loss(self, loop: Loop, loss: float) -> None:
        if not math.isfinite(loss):
            last = self.checkpointing.last_saved if self.checkpointing is not None else ""
            state = loop.state
            message = divergence_message(self.config, loss, state.epoch + 1, state.step + 1, last, self.checkpoint)
            raise TrainingError(message)


class StepHook(Callback):
    """``hook(epoch, step, network)`` after every optimizer step (0-based indices)."""

    def __init__(self, hook: Hook) -> None:
        self.hook = hook

    def on_step_end(self, loop: Loop, loss: float) -> None:
        self.hook(loop.state.epoch, loop.state.step - 1, loop.network)


class StopOnCtrlC:
    """While :meth:`catching` is active, the first SIGINT asks the loop to stop between two steps;
    a second one raises KeyboardInterrupt at once. (Outside the main thread signals cannot be
    caught: there it does nothing.)"""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def catching(self, loop: Loop) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            loop.request_stop()

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
