"""The JSON API of the Train mode (docs/serve.md, "Train mode API"): one run per server, started,
controlled and watched by any number of pages; every method takes the decoded request and returns
the JSON-ready answer, or raises :class:`~scratchnet.serve.api.RequestError` with a 4xx status.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scratchnet.core import notation
from scratchnet.core.errors import ScratchnetError
from scratchnet.core.settings import OPTIMIZERS
from scratchnet.data import Dataset, load_dataset
from scratchnet.data.datasets import has_dataset
from scratchnet.serve.api import RequestError, check_fields, whole
from scratchnet.serve.toy_data import TOY_SETS, toy_dataset
from scratchnet.serve.train_inspect import inspect
from scratchnet.serve.train_request import (
    BACKENDS,
    DEFAULTS,
    EVENT_STREAMS,
    IDLE_SECONDS,
    IMAGE_SETS,
    LIMITS,
    STEP_STEPS,
    DataRequest,
    number,
    start_request,
    text,
)
from scratchnet.serve.train_save import download, save_run
from scratchnet.serve.train_session import Frame, TrainRun
from scratchnet.serve.train_uploads import Download, Uploads
from scratchnet.serve.train_views import Viewer, points_json

ACTIONS = ("pause", "resume", "step", "reset", "lr", "sample")
EVENT_PERIOD = 0.2  # seconds between the events of a stream (5 a second at most)
DRAW_SHARE = 0.05  # the most of the time that drawing the states of a running run may take
KEEP_ALIVE = 5.0  # seconds between keep-alive comments of a quiet stream
MAX_IMAGE_TRAIN = 10000


class TrainAPI:
    """The Train mode of one server: its run (at most one), the data it can load, and its limits."""

    def __init__(
        self,
        models: str | os.PathLike[str] = "models",
        data_dir: str | os.PathLike[str] | None = None,
        *,
        idle_seconds: float = IDLE_SECONDS,
        model_mode: bool = False,
    ) -> None:
        self.models = Path(models)
        self.data_dir = data_dir
        self.idle_seconds = idle_seconds
        self.model_mode = model_mode
        self.lock = threading.Lock()  # for self.run and self.run_count (a start, a reset)
        self.run: TrainRun | None = None
        self.run_count = 0
        self.view_lock = threading.Lock()  # the viewer draws one frame at a time
        self.drawn: tuple[int, tuple[str, int], int, dict[str, Any]] | None = None  # (run, sample, version, state)
        self.next_draw = 0.0  # time.monotonic() before which a running run's state is not drawn again
        self.streams = 0
        self.streams_lock = threading.Lock()
        self.datasets: dict[str, Dataset] = {}
        self.uploads = Uploads()

    # ---- info ----

    def info(self) -> dict[str, Any]:
        """``GET /api/train/info``."""
        return {
            "toy_sets": {
                name: {"classes": default, "classes_choosable": choosable}
                for name, (_, default, choosable) in TOY_SETS.items()
            },
            "datasets": {name: {"available": self.dataset_available(name)} for name in IMAGE_SETS},
            "optimizers": list(OPTIMIZERS),
            "backends": list(BACKENDS),
            "actions": list(ACTIONS),
            "defaults": DEFAULTS,
            "limits": LIMITS,
            "models": str(self.models),
            "model_mode": self.model_mode,
        }

    def dataset_available(self, name: str) -> bool:
        """Whether the dataset's files are in the data folder (they are read and checked at a start)."""
        try:
            return name in self.datasets or has_dataset(name, self.data_dir)
        except ScratchnetError:
            return False

    # ---- data ----

    def load_images(self, name: str) -> Dataset:
        """MNIST or Fashion-MNIST from the data folder (never downloaded here), loaded once."""
        if name not in self.datasets:
            self.datasets[name] = load_dataset(name, self.data_dir, download=False, progress=False)
        return self.datasets[name]

    def data_of(self, request: DataRequest) -> Dataset:
        if request.kind == "toy":
            return toy_dataset(
                request.name, request.points, request.noise, request.classes, request.test_fraction, request.seed
            )
        if request.kind in IMAGE_SETS:
            try:
                full = self.load_images(request.kind)
            except ScratchnetError as error:
                raise RequestError(f"{request.kind} is not in the data folder: {error}", 404) from None
            limit, test_limit = (
                min(request.limit, len(full.train_labels)),
                min(request.test_limit, len(full.test_labels)),
            )
            return Dataset(
                full.name,
                full.train_images[:limit],
                full.train_labels[:limit],
                full.test_images[:test_limit],
                full.test_labels[:test_limit],
                full.class_names,
                full.scale,
            )
        return self.uploads.dataset(request.upload, request.test_fraction)

    # ---- the run ----

    def start(self, body: Any) -> dict[str, Any]:
        """``POST /api/train/start``: a new run, replacing one that is not running (409 while it runs)."""
        request = start_request(body)
        with self.lock:
            old = self.run
            if old is not None and old.status == "running":
                raise RequestError("a run is in progress: pause it before starting another", 409)
            data = self.data_of(request.data)
            try:
                run = TrainRun(request, data, self.run_count + 1, idle_seconds=self.idle_seconds)
                viewer = Viewer(run.architecture, run.feeder, run.split.train_images)
            except RequestError:
                raise
            except ScratchnetError as error:
                raise RequestError(str(error)) from None
            run.viewer = viewer
            if old is not None:
                old.close()
            self.run_count += 1
            self.run = run
            run.begin()
        return self.state_of(run, include_run=True, fresh=True)

    def current(self) -> TrainRun:
        run = self.run
        if run is None:
            raise RequestError("there is no run: start one with POST /api/train/start", 409)
        return run

    def control(self, body: Any) -> dict[str, Any]:
        """``POST /api/train/control``."""
        if not isinstance(body, dict) or "action" not in body:
            raise RequestError(f"the body must be an object with an 'action': {', '.join(ACTIONS)}")
        action = text(body["action"], "action", ACTIONS)
        run = self.current()
        if action == "step":
            fields = check_fields(body, {"action", "steps"}, required=set())
            run.control_step(whole(fields.get("steps", 1), "steps", *STEP_STEPS))
        elif action == "lr":
            fields = check_fields(body, {"action", "lr"}, required={"lr"})
            run.control_lr(number(fields["lr"], "lr", 1e-12, 1e3))
        elif action == "sample":
            fields = check_fields(body, {"action", "split", "index"}, required={"index"})
            split = text(fields.get("split", "test"), "split", ("train", "test"))
            count = len(run.split.test_labels if split == "test" else run.split.train_labels)
            if count == 0:
                raise RequestError(f"the run has no {split} samples")
            run.sample = (split, whole(fields["index"], "index", 0, count - 1))
        else:
            check_fields(body, {"action"}, required=set())
            {"pause": run.control_pause, "resume": run.control_resume, "reset": run.control_reset}[action]()
        return self.state_of(run, include_run=action == "reset", fresh=True)

    # ---- the state ----

    def state(self, include_run: bool = True) -> dict[str, Any]:
        """``GET /api/train/state``: the run now."""
        run = self.run
        if run is None:
            return {**IDLE_STATE, "limits": LIMITS}
        return self.state_of(run, include_run)

    def state_of(self, run: TrainRun, include_run: bool, fresh: bool = False) -> dict[str, Any]:
        """The run's state: drawn afresh when it has changed, except that while it runs a state is
        drawn at most every EVENT_PERIOD seconds, and never more often than keeps drawing under
        DRAW_SHARE of the time (a draw of 20 ms waits 0.4 s for the next): streaming must not slow
        the training it shows. The answer to a control (``fresh``) and a change of status are drawn
        at once."""
        run.touch()
        with self.view_lock:
            drawn = self.drawn
            recent = not fresh and run.status == "running" and time.monotonic() < self.next_draw
            if (
                drawn is not None
                and drawn[:2] == (run.run_id, run.sample)
                and drawn[3]["status"] == run.status
                and recent
            ):
                return self.answer(run, drawn[3], include_run)
        frame = run.frame()
        with self.view_lock:
            drawn = self.drawn
            if drawn is None or drawn[:3] != (run.run_id, run.sample, frame.version):
                started = time.monotonic()
                state = self.draw(run, frame)
                took = time.monotonic() - started
                self.next_draw = time.monotonic() + max(EVENT_PERIOD, took / DRAW_SHARE)
                self.drawn = drawn = (run.run_id, run.sample, frame.version, state)
        return self.answer(run, drawn[3], include_run)

    def answer(self, run: TrainRun, drawn: dict[str, Any], include_run: bool) -> dict[str, Any]:
        state = dict(drawn)
        state["run"] = self.run_json(run) if include_run else None
        return state

    def draw(self, run: TrainRun, frame: Frame) -> dict[str, Any]:
        """The state of ``frame`` (holding the view lock)."""
        viewer = run.viewer
        assert viewer is not None
        viewer.load(frame.params)
        curves = frame.curves
        latest = {key: (values[-1] if values else None) for key, values in curves.items()}
        split, index = run.sample
        samples, labels = (
            (run.split.test_images, run.split.test_labels)
            if split == "test"
            else (run.split.train_images, run.split.train_labels)
        )
        layers = viewer.activations(samples[index])
        return {
            "status": frame.status,
            "reason": frame.reason,
            "run_id": run.run_id,
            "version": frame.version,
            "step": frame.step,
            "epoch": round(frame.epoch, 4),
            "lr": frame.lr,
            "lr_changes": frame.lr_changes,
            "train_loss": latest["train_loss"],
            "train_accuracy": latest["train_accuracy"],
            "test_loss": latest["test_loss"],
            "test_accuracy": latest["test_accuracy"],
            "curves": curves,
            "regions": viewer.regions(),
            "filters": viewer.filters(frame.params, run.data.sample_shape),
            "activations": {
                "sample": {
                    "split": split,
                    "index": index,
                    "label": int(labels[index]),
                    "predicted": int(np.argmax(layers[-1]["values"])) if layers else None,
                },
                "layers": layers,
            },
            "diagnostics": frame.diagnostics,
            "warnings": frame.warnings,
            "snapshots": frame.snapshots,
            "past": frame.past,
        }

    def run_json(self, run: TrainRun) -> dict[str, Any]:
        request = run.request
        split = run.split
        answer: dict[str, Any] = {
            "data": request.data.describe(),
            "network": {
                "layers": request.layers,
                "notation": notation.outline(run.architecture),
                "parameters": run.parameters,
            },
            "optimizer": dict(request.optimizer),
            "batch_size": request.batch_size,
            "epochs": request.epochs,
            "backend": request.backend,
            "seed": request.seed,
            "snapshot_every": request.snapshot_every,
            "steps_per_epoch": run.loop.steps_per_epoch,
            "class_names": list(run.data.class_names),
            "sizes": {"train": len(split.train_labels), "test": len(split.test_labels)},
            "points": None,
        }
        if run.viewer is not None and run.viewer.two_d:
            answer["points"] = {
                "train": points_json(split.train_images, split.train_labels),
                "test": points_json(split.test_images, split.test_labels),
            }
        return answer

    # ---- time travel ----

    def snapshots(self) -> dict[str, Any]:
        """``GET /api/train/snapshots``: the kept steps."""
        run = self.current()
        run.touch()
        with run.condition:
            return run.ring.listing()

    def snapshot(self, query: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        """``GET /api/train/snapshot?step=N``: the state as it was at kept step N."""
        step = query_number(query, "step")
        run = self.current()
        frame = run.past_frame(step)
        with self.view_lock:
            return {**self.draw(run, frame), "run": None}

    def fork(self, body: Any) -> dict[str, Any]:
        """``POST /api/train/fork {"step": N}``: go on from kept step N, paused."""
        fields = check_fields(body, {"step"}, required={"step"})
        run = self.current()
        run.fork(whole(fields["step"], "step", 0, 1 << 40))
        return self.state_of(run, include_run=False, fresh=True)

    # ---- one weight, saving ----

    def inspect(self, body: Any) -> dict[str, Any]:
        """``POST /api/train/inspect``: one weight's gradient and update (scratchnet.serve.train_inspect)."""
        run = self.current()
        run.touch()
        return inspect(run, body, run.sample)

    def save(self, body: Any) -> dict[str, Any]:
        """``POST /api/train/save``: the run as a model in the models folder."""
        return save_run(self.current(), self.models, body)

    def download(self) -> Download:
        """``GET /api/train/download``: the run as a model, one zip file."""
        data, name = download(self.current())
        return Download(data, "application/zip", name)

    def upload(self, data: bytes) -> dict[str, Any]:
        """``POST /api/train/upload``: a CSV file, kept in memory under a new id."""
        return self.uploads.add(data)

    # ---- event streams ----

    def open_stream(self) -> None:
        with self.streams_lock:
            if self.streams >= EVENT_STREAMS:
                raise RequestError(
                    f"{self.streams} event streams are open, the most this server keeps; poll GET /api/train/state", 503
                )
            self.streams += 1

    def close_stream(self) -> None:
        with self.streams_lock:
            self.streams -= 1

    def events(self, alive: Callable[[], bool]) -> Iterator[str]:
        """The states of the run as server-sent events: yields each event's text, or a keep-alive
        comment; ``alive()`` says whether the server still serves (the stream ends when it stops)."""
        sent: tuple[int, int] | None = None
        run_sent = -1
        quiet_since = time.monotonic()
        while alive():
            run = self.run
            if run is None:
                if sent != (0, 0):
                    sent = (0, 0)
                    yield event(self.state())
                    quiet_since = time.monotonic()
            else:
                state = self.state_of(run, include_run=run.run_id != run_sent)
                key = (run.run_id, state["version"])
                if key != sent:
                    sent, run_sent = key, run.run_id
                    yield event(state)
                    quiet_since = time.monotonic()
            if time.monotonic() - quiet_since >= KEEP_ALIVE:
                quiet_since = time.monotonic()
                if run is not None:
                    run.touch()
                yield ": keep-alive\n\n"
            time.sleep(EVENT_PERIOD)

    def close(self) -> None:
        """Stop the run's thread (the server is shutting down)."""
        with self.lock:
            if self.run is not None:
                self.run.close()


def event(state: Mapping[str, Any]) -> str:
    return "event: state\ndata: " + json.dumps(state, allow_nan=False, separators=(",", ":")) + "\n\n"


def query_number(query: Mapping[str, Sequence[str]], name: str) -> int:
    """The whole number ``name`` of a query string, given once and alone."""
    unknown = sorted(set(query) - {name})
    if unknown:
        raise RequestError(f"unknown query parameter {unknown[0][:40]!r}; give {name}=N")
    values = query.get(name, [])
    if len(values) != 1:
        raise RequestError(f"give {name}=N once")
    text_value = values[0]
    if not text_value.isascii() or not text_value.isdigit() or len(text_value) > 12:
        raise RequestError(f"{name} must be a whole number, got {text_value[:20]!r}")
    return int(text_value)


IDLE_STATE: dict[str, Any] = {
    "status": "idle",
    "reason": "",
    "run_id": 0,
    "version": 0,
    "run": None,
    "step": 0,
    "epoch": 0.0,
    "lr": None,
    "lr_changes": [],
    "train_loss": None,
    "train_accuracy": None,
    "test_loss": None,
    "test_accuracy": None,
    "curves": None,
    "regions": None,
    "filters": None,
    "activations": None,
    "diagnostics": None,
    "warnings": [],
    "snapshots": None,
    "past": None,
}
