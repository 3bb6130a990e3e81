"""The Train mode's run: the real :class:`~scratchnet.training.loop.Loop` on the real backends,
stepped by a background thread, paused, stepped, resumed and re-rated from the page's requests.

Only the worker thread steps the network. A reader (a state request, an event stream) never waits
for a step to end by taking turns on the lock with a busy thread: it raises :attr:`TrainRun.wanted`
and the worker copies the parameters out after its step (:meth:`TrainRun.frame`); while the worker
is idle, the reader copies them itself. The pictures (regions, filters, activations) are drawn from
that copy by a vectorized twin of the network (:mod:`scratchnet.serve.train_views`), outside the lock.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scratchnet.builders import build_network, build_optimizer
from scratchnet.core.architecture import plan
from scratchnet.core.errors import ConfigError
from scratchnet.core.interface import Network, Optimizer
from scratchnet.data import Dataset
from scratchnet.serve.api import RequestError
from scratchnet.serve.snapshots import Snapshot, SnapshotRing, take
from scratchnet.serve.train_request import CURVE_ENTRIES, IDLE_SECONDS, MAX_PARAMETERS, StartRequest
from scratchnet.serve.train_views import Viewer
from scratchnet.training.checkpoint import RunState
from scratchnet.training.config import TrainConfig, optimizer_spec, steps_per_epoch
from scratchnet.training.diagnostics import Diagnostics
from scratchnet.training.feeding import Batches, feeder_of, split_dataset
from scratchnet.training.loop import Callback, Loop
from scratchnet.training.optimizer import optimizer_settings
from scratchnet.training.task import Classification

MAX_WARNINGS = 20  # the diagnostics' warnings a state lists (the latest)
FRAME_WAIT = 1.0  # seconds a reader waits for the worker to copy the parameters out
IDLE_POLL = 0.5  # seconds between the idle worker's looks at the clock


def copied(params: dict[str, Any]) -> dict[str, np.ndarray[Any, Any]]:
    """The arrays copied out of a network (the loops backend's nested lists become float64 arrays)."""
    return {name: np.array(value) for name, value in params.items()}


@dataclass
class Frame:
    """What a state shows, copied out of the run at one moment: its step, parameters and curves."""

    version: int
    step: int
    epoch: float
    lr: float
    status: str
    reason: str
    params: dict[str, np.ndarray[Any, Any]]
    curves: dict[str, list[Any]]
    lr_changes: list[dict[str, Any]]
    diagnostics: dict[str, Any] | None
    warnings: list[str]
    snapshots: dict[str, Any]
    past: int | None = None
    made: float = field(default_factory=time.monotonic)


class Measure(Callback):
    """At each record: the test set's loss and accuracy into the record, then the curves."""

    def __init__(self, run: TrainRun) -> None:
        self.run = run

    def on_measure(self, loop: Loop, record: dict[str, Any]) -> None:
        record["test_loss"], record["test_accuracy"] = self.run.test_measure()

    def on_record(self, loop: Loop, record: dict[str, Any]) -> None:
        samples = record.get("diagnostics")
        if samples:
            self.run.diagnostics = samples[-1]
        self.run.add_curve_point(record)
        self.run.keep_snapshot()


class TrainRun:
    """One run: its data, network, optimizer and loop, the worker thread and its controls."""

    def __init__(
        self, request: StartRequest, data: Dataset, run_id: int, *, idle_seconds: float = IDLE_SECONDS
    ) -> None:
        self.request, self.data, self.run_id = request, data, run_id
        try:
            self.config = TrainConfig(
                dataset=data.name,
                layers=request.layers,
                batch_size=request.batch_size,
                epochs=request.epochs,
                seed=request.seed,
                backend=request.backend,
                dtype="float64" if request.backend == "loops" else "float32",
                validation=0,
                report_every_steps=request.snapshot_every,
                **optimizer_settings(request.optimizer),
            )
        except TypeError as error:  # a setting TrainConfig does not have
            raise ConfigError(f"bad optimizer settings: {error}") from None
        self.split = split_dataset(data, self.config)
        self.architecture = self.config.network().architecture(data.sample_shape, data.num_classes)
        checked = plan(self.architecture)
        self.parameters = checked.parameter_count  # counted before anything is allocated
        most = MAX_PARAMETERS[request.backend]
        if self.parameters > most:
            raise RequestError(
                f"the network has {self.parameters} parameters; the {request.backend} backend takes at most {most}"
            )
        self.input_shape = tuple(checked.input_shape)
        self.feeder = feeder_of(self.config, self.input_shape, data)
        self.test_inputs = self.feeder.inputs(self.split.test_images)
        self.test_labels = self.split.test_labels.astype(np.intp)
        self.condition = threading.Condition()
        self.version = 0
        self.status, self.reason = "paused", ""
        self.steps_left = 0
        self.closing = False
        self.wanted = False
        self.frame_made: Frame | None = None
        self.touched = time.monotonic()
        self.idle_seconds = idle_seconds
        self.viewer: Viewer | None = None  # what draws its states (set by the API, which draws them)
        # the sample whose activations the states show and that inspect differentiates (control "sample")
        self.sample: tuple[str, int] = ("test", 0) if len(self.test_labels) else ("train", 0)
        self.build()
        self.thread = threading.Thread(target=self.work, name=f"train-run-{run_id}", daemon=True)

    def begin(self) -> None:
        """Start the worker thread, and the steps unless the request said ``"paused": true``."""
        with self.condition:
            self.frame_made = self.frame_now()  # step 0: a state to show however long the first step takes
        self.thread.start()
        if not self.request.paused:
            self.control_resume()

    def build(self) -> None:
        """Fresh weights of the run's seed, a fresh optimizer and loop: step 0."""
        request = self.request
        self.network: Network[Any, Any] = build_network(
            self.architecture, backend=request.backend, dtype=self.config.dtype, seed=request.seed
        )
        per_epoch = steps_per_epoch(self.config, len(self.split.train_labels))
        self.optimizer: Optimizer = build_optimizer(optimizer_spec(self.config, per_epoch), request.backend)
        batches = Batches(self.config.run_settings(), self.split.train_images, self.split.train_labels, self.feeder)
        self.curves: dict[str, list[Any]] = {key: [] for key in CURVES}
        self.lr_changes: list[dict[str, Any]] = []
        self.diagnostics: dict[str, Any] | None = None
        self.warnings: list[str] = []
        watch = Diagnostics(request.snapshot_every, warn=self.warn)
        self.loop = Loop(
            self.network,
            self.optimizer,
            Classification(),
            batches,
            request.epochs,
            RunState(),
            (watch, Measure(self)),  # the diagnostics first: their record is complete when Measure reads it
            report_every_steps=request.snapshot_every,
        )
        self.ring = SnapshotRing(request.snapshot_every)
        self.measure_start()
        self.keep_snapshot()

    def warn(self, line: str) -> None:
        self.warnings = [*self.warnings, line][-MAX_WARNINGS:]

    # ---- measures ----

    def test_measure(self) -> tuple[float | None, float | None]:
        """The test set's mean loss and accuracy now (None without a test set)."""
        if len(self.test_labels) == 0:
            return None, None
        labels: Any = self.test_labels if isinstance(self.test_inputs, np.ndarray) else self.test_labels.tolist()
        with np.errstate(all="ignore"):
            outputs = self.network.forward(self.test_inputs, training=False)
            loss = float(self.network.loss(outputs, labels))
        accuracy = float(np.mean(np.argmax(np.asarray(outputs), axis=1) == self.test_labels))
        return (loss if math.isfinite(loss) else None), accuracy

    def measure_start(self) -> None:
        """The curves' first point, before any step (train measures as the test's: no batch yet)."""
        loss, accuracy = self.test_measure()
        record = {"step": 0, "epoch": 0.0, "loss": None, "train_accuracy": None, "lr": self.loop.lr()}
        self.add_curve_point({**record, "test_loss": loss, "test_accuracy": accuracy})

    def add_curve_point(self, record: dict[str, Any]) -> None:
        for key, source in CURVES.items():
            value = record.get(source)
            self.curves[key].append(None if isinstance(value, float) and not math.isfinite(value) else value)
        if len(self.curves["step"]) > CURVE_ENTRIES:  # thin the older half: every other one
            for key, values in self.curves.items():
                self.curves[key] = values[:-1:2] + values[-1:]
        history = self.loop.state.history
        if len(history) > CURVE_ENTRIES:
            self.loop.state.history = history[:-1:2] + history[-1:]

    # ---- time travel ----

    def keep_snapshot(self) -> None:
        loop = self.loop
        self.ring.keep(
            take(
                loop.global_step,
                loop.global_step / loop.steps_per_epoch,
                self.network.params(),
                self.optimizer.export_state(),
                self.optimizer.lr,
                loop.state,
                self.curves,
                self.lr_changes,
            )
        )

    def fork(self, step: int) -> None:
        """Pause, and go on from kept step ``step``: its exact parameters, optimizer state and rate,
        its place in the loop and its curves; the snapshots after it are dropped."""
        with self.condition:
            snapshot = self.ring.find(step)
            self.loop.pause()
            params: dict[str, Any] = snapshot.params
            if self.request.backend == "loops":
                params = {name: value.tolist() for name, value in params.items()}
            self.network.set_params(params)
            self.optimizer.import_state(copy.deepcopy(snapshot.optimizer))
            self.optimizer.lr = snapshot.lr
            state = copy.copy(snapshot.state)
            state.history, state.changes = list(state.history), list(state.changes)
            self.loop.state = state
            self.curves = {key: list(values) for key, values in snapshot.curves.items()}
            self.lr_changes = copy.deepcopy(snapshot.lr_changes)
            self.ring.drop_after(step)
            self.status, self.reason, self.steps_left = "paused", f"forked from step {step}", 0
            self.version += 1
            self.condition.notify_all()

    def past_frame(self, step: int) -> Frame:
        """What the state showed at kept step ``step``."""
        self.touch()
        with self.condition:
            snapshot: Snapshot = self.ring.find(step)
            return Frame(
                version=-1,
                step=snapshot.step,
                epoch=snapshot.epoch,
                lr=snapshot.lr,
                status=self.status,
                reason=self.reason,
                params=snapshot.params,
                curves=snapshot.curves,
                lr_changes=snapshot.lr_changes,
                diagnostics=None,
                warnings=[],
                snapshots=self.ring.bounds(),
                past=step,
            )

    # ---- the worker ----

    def work(self) -> None:
        """Step while running (or while steps are left), copy a frame out when a reader wants one,
        stop when no page has asked for the run for ``idle_seconds``."""
        while True:
            with self.condition:
                while not self.closing and self.status != "running" and self.steps_left == 0:
                    if self.wanted:
                        self.frame_made = self.frame_now()
                        self.wanted = False
                        self.condition.notify_all()
                    self.condition.wait(IDLE_POLL)
                if self.closing:
                    return
                try:
                    self.step_once()
                except Exception as error:  # a bug or no memory: the run stops and says why, the server goes on
                    self.stop(f"the run failed at step {self.loop.global_step}: {type(error).__name__}: {error}"[:300])
                if self.wanted:
                    self.frame_made = self.frame_now()
                    self.wanted = False
                self.condition.notify_all()
            time.sleep(0)  # let a waiting reader's thread in

    def step_once(self) -> None:
        """One step of the loop (holding the condition), and what it ends: a count of steps, the run."""
        if self.status == "running" and time.monotonic() - self.touched > self.idle_seconds:
            self.stop(f"no page has asked for the run for {self.idle_seconds:g} seconds")
            return
        if self.loop.finished:
            self.status, self.steps_left = "finished", 0
            return
        loss = self.loop.step()
        self.version += 1
        if not math.isfinite(loss):
            self.stop(f"the loss is {loss} at step {self.loop.global_step}: the run diverged")
        elif self.loop.finished:
            self.loop.pause()
            self.status, self.steps_left = "finished", 0
        elif self.steps_left:
            self.steps_left -= 1
            if self.steps_left == 0:
                self.loop.pause()
                self.status = "paused"

    def stop(self, reason: str) -> None:
        self.loop.pause()
        self.status, self.reason, self.steps_left = "stopped", reason, 0
        self.version += 1

    # ---- controls (from the request threads) ----

    def control_pause(self) -> None:
        with self.condition:
            if self.status == "running":
                self.loop.pause()
                self.status = "paused"
                self.version += 1
            self.steps_left = 0
            self.condition.notify_all()

    def control_resume(self) -> None:
        with self.condition:
            if self.loop.finished:
                raise RequestError(f"the run has finished its {self.request.epochs} epochs", 409)
            self.status, self.reason, self.steps_left = "running", "", 0
            self.touched = time.monotonic()
            self.version += 1
            self.condition.notify_all()

    def control_step(self, steps: int) -> None:
        with self.condition:
            if self.loop.finished:
                raise RequestError(f"the run has finished its {self.request.epochs} epochs", 409)
            if self.status == "running":
                raise RequestError("the run is running: pause it before stepping", 409)
            self.status, self.reason, self.steps_left = "paused", "", steps
            self.condition.notify_all()
        self.wait_steps()

    def wait_steps(self) -> None:
        """Wait until the worker has taken the steps asked for (bounded: a step is short)."""
        with self.condition:
            self.condition.wait_for(lambda: self.steps_left == 0 or self.closing, timeout=30.0)

    def control_lr(self, lr: float) -> None:
        with self.condition:
            before = self.loop.optimizer.lr
            self.loop.set_lr(lr)
            self.lr_changes.append({"step": self.loop.global_step, "from": before, "to": lr})
            self.version += 1

    def control_reset(self) -> None:
        with self.condition:
            self.loop.pause()
            self.build()
            self.status, self.reason, self.steps_left = "paused", "", 0
            self.version += 1

    def close(self) -> None:
        with self.condition:
            self.closing = True
            self.condition.notify_all()
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout=30.0)

    def touch(self) -> None:
        """A page has asked for the run: it is watched."""
        self.touched = time.monotonic()

    # ---- frames ----

    def frame_now(self) -> Frame:
        """The run now (holding the condition)."""
        loop = self.loop
        return Frame(
            version=self.version,
            step=loop.global_step,
            epoch=loop.global_step / loop.steps_per_epoch,
            lr=loop.lr(),
            status=self.status,
            reason=self.reason,
            params=copied(self.network.params()),
            curves={key: list(values) for key, values in self.curves.items()},
            lr_changes=copy.deepcopy(self.lr_changes),
            diagnostics=self.diagnostics,
            warnings=list(self.warnings),
            snapshots=self.ring.bounds(),
        )

    def frame(self) -> Frame:
        """The run as it is now, copied out by the worker when it is busy (a reader never holds the
        lock through a stream of steps), else here."""
        self.touch()
        with self.condition:
            last = self.frame_made
            if last is not None and last.version == self.version:
                return last
            if self.status != "running" and self.steps_left == 0:
                self.frame_made = self.frame_now()
                return self.frame_made
            self.wanted = True
            asked = time.monotonic()
            self.condition.wait_for(
                lambda: self.frame_made is not None and self.frame_made.made >= asked, timeout=FRAME_WAIT
            )
            if self.frame_made is None:  # (a step longer than FRAME_WAIT: the last frame will do, if any)
                raise RequestError("the training thread did not answer within a second; try again", 503)
            return self.frame_made


# curve name -> the record's key it comes from
CURVES = {
    "step": "step",
    "train_loss": "loss",
    "train_accuracy": "train_accuracy",
    "test_loss": "test_loss",
    "test_accuracy": "test_accuracy",
    "lr": "lr",
}
