"""The training loop: steps and epochs, and hooks for everything else.

A step draws batch ``step`` of epoch ``epoch`` (a pure function of the seed), runs the network
forward, asks the task for the loss, runs backward and lets the optimizer move the parameters.
After the last step of an epoch the loop makes the epoch's record (every ``report_every`` epochs),
or, with ``report_every_steps``, a record every N steps. Everything else is a :class:`Callback`:
the progress bar, validation, the report line, checkpoints, Ctrl-C, the NaN guard, a user's hook.

The loop can be driven one step at a time (:meth:`Loop.step`), run until it ends or is asked to
stop (:meth:`Loop.run`, :meth:`Loop.request_stop`), and its learning rate changed mid-run
(:meth:`Loop.set_lr`), which the next record lists under ``changed``. It never asks which backend
it runs on: the batches come in the form the network takes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from scratchnet.core.errors import TrainingError
from scratchnet.core.interface import Network, Optimizer
from scratchnet.core.lazy import quiet_floats
from scratchnet.training.checkpoint import RunState
from scratchnet.training.task import Task

# What a forward pass or loss may raise when the numbers blow up: the loss is then NaN.
NUMERIC_ERRORS = (OverflowError, FloatingPointError, ZeroDivisionError, ValueError)


class BatchSource(Protocol):
    """The batches of a run: ``steps`` per epoch; ``batch(epoch, step)`` is ``(inputs, targets, size)``."""

    steps: int

    def batch(self, epoch: int, step: int) -> tuple[Any, Any, int]: ...


class Callback:
    """A hook object handed to the loop; every method does nothing unless overridden.

    In a run: ``on_epoch_start``; per step ``on_loss`` (before backward: raise to stop, as the NaN
    guard does) and ``on_step_end``; ``on_epoch_end`` after an epoch's steps; at each record
    ``on_measure`` (add held-out metrics to it) and, once it is in the history, ``on_record``;
    ``on_stop`` when the run stops before its end; ``on_close`` however :meth:`Loop.run` ends."""

    def on_epoch_start(self, loop: Loop) -> None: ...
    def on_loss(self, loop: Loop, loss: float) -> None: ...
    def on_step_end(self, loop: Loop, loss: float) -> None: ...
    def on_epoch_end(self, loop: Loop) -> None: ...
    def on_measure(self, loop: Loop, record: dict[str, Any]) -> None: ...
    def on_record(self, loop: Loop, record: dict[str, Any]) -> None: ...
    def on_stop(self, loop: Loop) -> None: ...
    def on_close(self, loop: Loop) -> None: ...


@dataclass
class Loop:
    """A run in progress: its network, optimizer, task, batches, length and position (``state``)."""

    network: Network[Any, Any]
    optimizer: Optimizer
    task: Task
    batches: BatchSource
    epochs: int
    state: RunState = field(default_factory=RunState)
    callbacks: Sequence[Callback] = ()
    report_every: int = 1  # epochs between records ...
    report_every_steps: int | None = None  # ... or steps between them, when given
    data_steps: float | None = None  # the steps of one pass over the data, when a loop epoch is not one
    stop_requested: bool = False
    _in_epoch: bool = False  # on_epoch_start has been called for the current epoch
    _clock: tuple[float, float] | None = None  # perf_counter() minus the run's and the window's seconds

    @property
    def steps_per_epoch(self) -> int:
        return self.batches.steps

    @property
    def global_step(self) -> int:
        return self.state.epoch * self.steps_per_epoch + self.state.step

    @property
    def finished(self) -> bool:
        return self.state.epoch >= self.epochs

    def lr(self) -> float:
        """The learning rate the next step will use."""
        return float(self.optimizer.current_lr())

    def set_lr(self, lr: float) -> None:
        """Change the base learning rate from the next step on; the next record lists the change."""
        change = {"setting": "lr", "from": self.optimizer.lr, "to": lr, "epoch": self.state.epoch + 1}
        self.state.changes.append({**change, "step": self.state.step})
        self.optimizer.lr = lr

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop before its next step (a pause; Ctrl-C's handler calls this)."""
        self.stop_requested = True

    def emit(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def run(self) -> bool:
        """Step until the run ends (True) or a stop is requested (False)."""
        self.stop_requested = False
        try:
            with quiet_floats():  # a blown-up loss is the NaN guard's to report, not a warning
                while not self.finished and not self.stop_requested:
                    self.step()
            if not self.finished:
                self.pause()
                self.emit("on_stop")
            self.mark_time()
            return self.finished
        finally:
            self.emit("on_close")

    def step(self) -> float:
        """One optimizer step (and the epoch's end and the record it completes); the batch's loss."""
        state = self.state
        if self.finished:
            raise TrainingError(f"the run has finished its {self.epochs} epochs: there is no step left")
        if self._clock is None:
            self.start_clock()
        if not self._in_epoch:
            self._in_epoch = True
            self.emit("on_epoch_start")
        inputs, targets, size = self.batches.batch(state.epoch, state.step)
        with quiet_floats():
            try:
                outputs = self.network.forward(inputs, training=True)
                loss = self.task.loss(self.network, outputs, targets)
            except NUMERIC_ERRORS:
                loss = math.nan
            self.emit("on_loss", loss)
            self.network.backward()
            self.optimizer.step(self.network)
        state.loss_sum += loss * size
        state.correct += self.task.score(outputs, targets)
        state.seen += size
        state.step += 1
        self.emit("on_step_end", loss)
        if state.step == self.steps_per_epoch:
            self.end_epoch()
        every = self.report_every_steps
        if every is not None and (self.global_step % every == 0 or self.finished):
            passes = self.global_step / (self.data_steps or self.steps_per_epoch)  # the record's epoch
            self.record({"step": self.global_step, "epoch": round(passes, 4)})
        return loss

    def end_epoch(self) -> None:
        """After an epoch's last step: its record (every ``report_every`` epochs, and after the last)."""
        state = self.state
        epoch = state.epoch + 1
        self._in_epoch = False
        self.emit("on_epoch_end")
        state.epoch, state.step = epoch, 0
        if self.report_every_steps is not None:
            return
        state.window_seconds += self.window_time()
        state.window_images += state.seen
        recorded = epoch % self.report_every == 0 or epoch == self.epochs
        self.record({"epoch": epoch}, keep=recorded)

    def record(self, record: dict[str, Any], keep: bool = True) -> None:
        """Complete ``record`` with the window's loss, the task's metrics, the rate and the speed;
        reset the window; when ``keep``, measure it, add it to the history and pass it on."""
        state = self.state
        if self.report_every_steps is not None:
            state.window_seconds, state.window_images = self.window_time(), state.seen
        seconds = state.window_seconds
        record.update(
            {"loss": state.loss_sum / state.seen, **self.task.train_metrics(state.correct, state.seen)},
            **{self.task.metric: None, "lr": self.lr(), "seconds": seconds},
        )
        record["images_per_second"] = state.window_images / seconds if seconds > 0 else math.inf
        if state.changes:  # what was changed since the last record
            record["changed"], state.changes = state.changes, []
        state.loss_sum, state.correct, state.seen, state.seconds = 0.0, 0, 0, 0.0
        if keep:
            state.window_seconds, state.window_images = 0.0, 0
            self.emit("on_measure", record)
            state.history.append(record)
            self.mark_time()
            self.emit("on_record", record)
        self.start_clock(window=0.0)  # the next window's seconds leave out validation and checkpoints

    def start_clock(self, window: float | None = None) -> None:
        """Start timing from the state's seconds (a resumed run goes on from where it stopped)."""
        now = time.perf_counter()
        run_started = now - self.state.elapsed if self._clock is None else self._clock[0]
        self._clock = (run_started, now - (self.state.seconds if window is None else window))

    def window_time(self) -> float:
        assert self._clock is not None
        return time.perf_counter() - self._clock[1]

    def mark_time(self) -> None:
        """Write the run's wall-clock seconds so far into the state."""
        if self._clock is not None:
            self.state.elapsed = time.perf_counter() - self._clock[0]

    def pause(self) -> None:
        """Write the window's seconds and the run's into the state (before it is saved), and stop the clock."""
        if self._clock is not None:
            self.state.seconds = self.window_time() if self.state.seen else 0.0
            self.mark_time()
            self._clock = None
        self._in_epoch = False
