"""Training a classifier on a dataset: ``train`` and ``resume``, the entry points behind ``scratchnet train``.

The data is MNIST or Fashion-MNIST (``dataset``), or your own (``data``: a CSV file, a folder of
class folders or an ``.npz``; :mod:`scratchnet.data.own`), images or a table of features.
``train(TrainConfig(...))`` loads the dataset, holds out a validation split, cross-checks the
architecture (loops against vectorized on a couple of samples), then runs the loop
(:mod:`scratchnet.training.loop`) with its callbacks and returns a :class:`TrainResult`.
Everything random is a pure function of the seed (scratchnet.core.rng): the initial weights, the
order of each epoch, the augmentations of each batch and the dropout masks, so a run is repeatable in
either backend.

Faults:

* after every record an atomic checkpoint (the model format with the optimizer section, plus the
  position, the Dropout counters and the history) is written next to the output; :func:`resume`
  continues from it and ends with exactly the model an uninterrupted run gives;
* a NaN or infinite loss stops the run with a :class:`~scratchnet.core.errors.TrainingError`, leaving the
  last good checkpoint in place;
* Ctrl-C (SIGINT) is noted and acted on between two steps: a checkpoint of that exact point is
  written and :class:`TrainingInterrupted` raised (a second Ctrl-C aborts at once).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scratchnet.builders import build_network, build_optimizer
from scratchnet.builders.network import require_backend
from scratchnet.core.architecture import plan
from scratchnet.core.errors import ConfigError, ScratchnetError, TrainingError
from scratchnet.core.interface import Network, Optimizer
from scratchnet.core.lazy import numpy_available
from scratchnet.data import Dataset
from scratchnet.data.images import Feeder
from scratchnet.io.model import load_model
from scratchnet.training.callbacks import (
    Checkpointing,
    NaNGuard,
    ProgressBar,
    ReportLine,
    StepHook,
    StopOnCtrlC,
    Validation,
)
from scratchnet.training.checkpoint import (
    RunState,
    base_metadata,
    checkpoint_path_for,
    checkpoint_section,
    json_path,
    model_path_for_checkpoint,
    read_checkpoint_config,
    remove_model_files,
    save_model,
    set_counters,
)
from scratchnet.training.config import (
    SCHEDULES,
    SettingError,
    TrainConfig,
    check_config,
    optimizer_spec,
    steps_per_epoch,
)
from scratchnet.training.feeding import (
    Batches,
    Split,
    check_fits,
    describe_data,
    feeder_of,
    load_training_data,
    noun_of,
    read_from,
    split_dataset,
)
from scratchnet.training.inference import accuracy_of, eval_chunk, predict_classes, predict_probabilities
from scratchnet.training.loop import Callback, Loop
from scratchnet.training.outputs import (
    checkpoint_position,
    claimed_outputs,
    describe_position,
    file_kind,
    previous_model,
    refuse_directory,
)
from scratchnet.training.run_notes import describe_run, output_layer_line, table_note
from scratchnet.training.task import Classification, Task

__all__ = [
    "RESUME_OVERRIDES",
    "SCHEDULES",
    "Callback",
    "Run",
    "RunState",
    "SettingError",
    "Split",
    "TrainConfig",
    "TrainResult",
    "TrainingInterrupted",
    "abandoned",
    "accuracy_of",
    "architecture_of",
    "check_config",
    "checkpoint_path_for",
    "eval_chunk",
    "model_path_for_checkpoint",
    "optimizer_spec",
    "predict_classes",
    "predict_probabilities",
    "resume",
    "save_model",
    "split_dataset",
    "steps_per_epoch",
    "train",
]

Log = Callable[[str], None]
Hook = Callable[[int, int, Any], None]
RESUME_OVERRIDES = ("lr", "weight_decay")


class TrainingInterrupted(ScratchnetError):
    """Training stopped by Ctrl-C; ``checkpoint`` holds the state to resume from."""

    def __init__(self, message: str, checkpoint: Path) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint


def architecture_of(config: TrainConfig, image_shape: tuple[int, ...], classes: int) -> dict[str, Any]:
    """The run's network for samples of ``image_shape`` (images ``(28, 28)`` or ``(3, 32, 32)``, or a
    table's ``(features,)``) and ``classes`` classes."""
    return config.network().architecture(image_shape, classes)


def cross_check_line(architecture: Mapping[str, Any], seed: int) -> str:
    """Run the loops-vs-vectorized cross-check (and a finite-difference check; with NumPy absent, that alone
    on the loops backend) on the architecture,
    narrowed when it is big (:func:`scratchnet.checks.narrow.checked_copy`), and return one line;
    TrainingError if it fails."""
    from scratchnet.checks.crosscheck import full_check, summary
    from scratchnet.checks.narrow import checked_copy

    description, what = checked_copy(architecture)
    started = time.perf_counter()
    both = numpy_available()  # without NumPy, the loops backend's gradients against finite differences
    gradients = ("vectorized",) if both else ("loops",)
    report = full_check(
        description, batch=2, steps=1, seed=seed, max_per_tensor=3, gradient_backends=gradients, compare_backends=both
    )
    seconds = time.perf_counter() - started
    line = f"{summary(report)} [{what}, 2 samples, 1 SGD step, {seconds:.1f} s]"
    if not report.passed:
        raise TrainingError(f"the architecture failed the cross-check, not training: {line}")
    return line


@dataclass
class Run:
    """A run in progress: its settings, network, optimizer and position, its data and how the data
    is fed, and where it writes and reports. ``callbacks`` are the caller's, after the run's own."""

    config: TrainConfig
    network: Network[Any, Any]
    optimizer: Optimizer
    state: RunState
    data: Dataset
    split: Split
    feeder: Feeder
    out: Path | None = None
    ckpt: Path | None = None
    log: Log = print
    progress: bool | None = None
    hook: Hook | None = None
    callbacks: tuple[Callback, ...] = ()
    task: Task = field(default_factory=Classification)
    data_dir: str | None = None  # where MNIST's or Fashion-MNIST's verified files were read

    def metadata(self) -> dict[str, Any]:
        """The model's metadata before its results: :func:`base_metadata`, and the data directory a
        built-in dataset was read from (``data_dir``, absolute: a hint for evaluate and the others)."""
        metadata = base_metadata(self.config, self.data, self.feeder)
        if self.data_dir is not None:
            metadata["data_dir"] = self.data_dir
        return metadata

    def save_checkpoint(self) -> None:
        """Write the model, the optimizer state and where the run is, atomically (the model format)."""
        assert self.ckpt is not None
        metadata = self.metadata()
        metadata["checkpoint"] = checkpoint_section(self.state, self.network, len(self.split.train_labels))
        save_model(self.network, self.ckpt, metadata, self.optimizer)

    def loop(self) -> Loop:
        """The loop of this run, with the callbacks that report, validate, checkpoint and guard it."""
        config, state, split = self.config, self.state, self.split
        settings = config.run_settings()
        checkpointing = None if self.ckpt is None else Checkpointing(self.save_checkpoint, state.epoch, state.step)
        own: list[Callback] = [
            ProgressBar(config.epochs, self.progress),
            NaNGuard(config, self.ckpt, checkpointing),
            Validation(split.val_images, split.val_labels, self.feeder),
            ReportLine(config.epochs, self.log, "rows" if self.data.kind == "features" else "img"),
        ]
        own += [] if checkpointing is None else [checkpointing]
        own += [] if self.hook is None else [StepHook(self.hook)]
        batches = Batches(settings, split.train_images, split.train_labels, self.feeder)
        return Loop(
            self.network,
            self.optimizer,
            self.task,
            batches,
            config.epochs,
            state,
            (*own, *self.callbacks),
            report_every=config.report_every,
            report_every_steps=config.report_every_steps,
        )


@dataclass
class TrainResult:
    """A finished run: the network, its history and test accuracy, and where the model went."""

    network: Any
    config: TrainConfig
    history: list[dict[str, Any]]
    test_accuracy: float
    validation_accuracy: float
    train_seconds: float
    out: Path | None
    metadata: dict[str, Any]


def train(
    config: TrainConfig,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    dataset: Dataset | None = None,
    log: Log = print,
    progress: bool | None = None,
    check: bool = True,
    hook: Hook | None = None,
    callbacks: tuple[Callback, ...] = (),
) -> TrainResult:
    """Train from scratch as ``config`` says; save the model to ``out`` (if given) and checkpoints to
    ``checkpoint`` (default: next to ``out``, ``NAME.checkpoint.json``; none when both are None).

    ``dataset`` replaces loading ``config.dataset`` (tests pass small synthetic ones). ``log`` gets
    each output line. ``hook(epoch, step, network)`` runs after every optimizer step (0-based
    indices); ``callbacks`` (:class:`~scratchnet.training.loop.Callback`) see every step and record.

    Before any work the output and checkpoint paths are checked and locked (:func:`claimed_outputs`):
    a path that cannot be written, or that another run is writing, is refused at once.
    """
    refuse_directory(out, "the output")
    refuse_directory(checkpoint, "the checkpoint")
    require_backend(config.backend)
    out_path = None if out is None else json_path(out)
    ckpt = (
        json_path(checkpoint)
        if checkpoint is not None
        else (None if out_path is None else checkpoint_path_for(out_path))
    )
    with claimed_outputs(out_path, ckpt, log=log):
        data = dataset if dataset is not None else load_training_data(config, data_dir)
        check_fits(config, data)
        split = split_dataset(data, config)
        shape, classes = data.sample_shape, data.num_classes
        log(describe_data(config, data, split))
        architecture = architecture_of(config, shape, classes)  # a ConfigError before the check
        Classification().check_output(plan(architecture).output_shape, classes)
        if config.layers is not None:
            log(output_layer_line(config, classes))
        table_note(config, data, log)
        if check:
            log(cross_check_line(architecture, config.seed))
        network: Network[Any, Any] = build_network(
            architecture, backend=config.backend, dtype=config.dtype, seed=config.seed
        )
        steps = steps_per_epoch(config, len(split.train_labels))
        optimizer: Optimizer = build_optimizer(optimizer_spec(config, steps), config.backend)
        feeder = feeder_of(config, plan(architecture).input_shape, data)
        job = Run(config, network, optimizer, RunState(), data, split, feeder, out_path, ckpt, log, progress, hook)
        job.callbacks = callbacks
        job.data_dir = read_from(config, dataset, data_dir)
        if ckpt is not None:
            job.save_checkpoint()
        return run(job)


def resume(
    checkpoint: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    dataset: Dataset | None = None,
    log: Log = print,
    progress: bool | None = None,
    hook: Hook | None = None,
    overrides: Mapping[str, Any] | None = None,
    callbacks: tuple[Callback, ...] = (),
) -> TrainResult:
    """Continue the run saved in ``checkpoint`` with its settings, to the very model it would have
    given uninterrupted. The model goes to ``out`` (default: the checkpoint's name without
    ``.checkpoint``), and new checkpoints over the old one.

    ``overrides`` changes settings of :data:`RESUME_OVERRIDES` from here on (``{"lr": 1e-4}``, to
    get past a NaN): the optimizer keeps its state, and the next history record lists the change.
    A finished checkpoint (one a failed final save left) is evaluated and saved."""
    refuse_directory(out, "the output")
    ckpt = json_path(checkpoint)
    require_backend(read_checkpoint_config(ckpt)[0].backend)  # a ConfigError for what is no checkpoint, first
    out_path = model_path_for_checkpoint(ckpt) if out is None else json_path(out)
    with claimed_outputs(out_path, ckpt, resuming=ckpt, log=log):
        job = resumed_run(ckpt, data_dir, dataset, log, overrides or {})
        job.data_dir = read_from(job.config, dataset, data_dir)
        job.out, job.progress, job.hook, job.callbacks = out_path, progress, hook, callbacks
        return run(job)


def resumed_run(
    ckpt: Path,
    data_dir: str | os.PathLike[str] | None,
    dataset: Dataset | None,
    log: Log,
    overrides: Mapping[str, Any],
) -> Run:
    """The run a checkpoint holds, with ``overrides`` applied, ready to go on."""
    config, section = read_checkpoint_config(ckpt)
    unknown = sorted(set(overrides) - set(RESUME_OVERRIDES))
    if unknown:
        raise ConfigError(f"a resume can change {' and '.join(RESUME_OVERRIDES)} only, not {', '.join(unknown)}")
    changed = {name: value for name, value in overrides.items() if getattr(config, name) != value}
    loaded = load_model(ckpt, backend=config.backend)
    network: Network[Any, Any] = loaded.network
    state = RunState.from_dict(section.get("state", {}))
    if changed:
        if state.epoch >= config.epochs:
            raise ConfigError(f"{ckpt} holds a finished run: there are no steps left for a new {', '.join(changed)}")
        old, config = config, replace(config, **changed)  # checked again: a ConfigError names a bad value
        state.changes += [
            {"setting": name, "from": getattr(old, name), "to": value, "epoch": state.epoch + 1, "step": state.step}
            for name, value in changed.items()
        ]
    set_counters(network, section.get("dropout_calls", []), ckpt)
    data = dataset if dataset is not None else load_training_data(config, data_dir)
    split = split_dataset(data, config)
    if section.get("train_images") != len(split.train_labels):
        raise ConfigError(
            f"{ckpt}: the checkpoint was trained on {section.get('train_images')} images, "
            f"but {data.name} gives {len(split.train_labels)} with its settings"
        )
    feeder = feeder_of(config, plan(loaded.architecture).input_shape, data)
    steps = steps_per_epoch(config, len(split.train_labels))
    optimizer: Optimizer = build_optimizer(optimizer_spec(config, steps), config.backend)
    if loaded.optimizer_state is not None:
        optimizer.import_state(loaded.optimizer_state)
    elif state.epoch or state.step:
        raise ConfigError(f"{ckpt}: the checkpoint has no optimizer state")
    if state.epoch >= config.epochs:
        log(f"{ckpt} holds a finished run ({state.epoch} of {config.epochs} epochs): evaluating and saving it")
    else:
        news = "".join(f", {c['setting']} {c['to']:g} (was {c['from']})" for c in state.changes if c["to"] is not None)
        log(f"resuming {ckpt} at epoch {state.epoch + 1}/{config.epochs}, step {state.step}/{steps}{news}")
    log(describe_data(config, data, split))
    return Run(config, network, optimizer, state, data, split, feeder, None, ckpt, log)


def run(job: Run) -> TrainResult:
    """The run from ``job.state`` on; then the test accuracy and the saved model.

    A KeyboardInterrupt that is not the first Ctrl-C between two steps (a second Ctrl-C, or one
    during the final evaluation or save) becomes a TrainingInterrupted naming the checkpoint on disk,
    as its file says, so the message is true whatever the interrupt cut short."""
    try:
        job.log(describe_run(job.config, job.network, job.optimizer))
        stopper = StopOnCtrlC()
        loop = job.loop()
        with stopper.catching(loop):
            finished = loop.run()
        if stopper.requested or not finished:  # Ctrl-C, or a callback that asked the loop to stop
            raise interrupted(job)
        return finish(job)
    except KeyboardInterrupt:
        raise abandoned(job.ckpt) from None


def abandoned(ckpt: Path | None) -> TrainingInterrupted:
    """The TrainingInterrupted of a run stopped at once: it names the checkpoint file as it is now."""
    if ckpt is None:
        return TrainingInterrupted("interrupted; no checkpoint file was asked for", Path())
    kind, metadata = file_kind(ckpt)
    if kind != "checkpoint":
        return TrainingInterrupted(f"interrupted before a checkpoint was saved to {ckpt}", Path())
    return TrainingInterrupted(
        f"interrupted; the checkpoint {ckpt} holds the run {describe_position(checkpoint_position(metadata))}; "
        f"continue with: scratchnet train --resume {ckpt}",
        ckpt,
    )


def interrupted(job: Run) -> TrainingInterrupted:
    """Save the exact point reached and build the error that reports it."""
    state, ckpt = job.state, job.ckpt
    where = f"epoch {state.epoch + 1}, step {state.step}" if state.step else f"the end of epoch {state.epoch}"
    if ckpt is None:
        return TrainingInterrupted(f"interrupted at {where}; no checkpoint file was asked for", Path())
    job.save_checkpoint()
    return TrainingInterrupted(
        f"interrupted at {where}; checkpoint saved to {ckpt}; continue with: scratchnet train --resume {ckpt}", ckpt
    )


def finish(job: Run) -> TrainResult:
    """After the last step: the test accuracy, the model's metadata and the saved model."""
    config, state, split, network = job.config, job.state, job.split, job.network
    test_accuracy = job.task.evaluate(network, split.test_images, split.test_labels, job.feeder)
    validation = next((h[job.task.metric] for h in reversed(state.history) if h[job.task.metric] is not None), math.nan)
    train_seconds = state.elapsed
    tested = (
        f"test accuracy {100 * test_accuracy:.2f}% ({len(split.test_labels)} test {noun_of(job.data)})"
        if len(split.test_labels)
        else "no test set"
    )
    job.log(
        f"{tested}; training time {train_seconds:.1f} s (wall clock of the epochs, with validation and checkpoints)"
    )
    metadata = job.metadata()
    metadata["training"].update(
        {
            "recipe": config.recipe,
            "optimizer": job.optimizer.describe(),
            "seed": config.seed,
            "epochs": config.epochs,
            "train_images": len(split.train_labels),
            "validation_images": len(split.val_labels),
            "history": state.history,
            "dataset": job.data.name,  # the spec's members (model-format.md 1.5), which any reader knows
            "final_metrics": {
                key: value
                for key, value in (("test_accuracy", test_accuracy), ("validation_accuracy", validation))
                if math.isfinite(value)
            },
            "final": {
                "train_loss": state.history[-1]["loss"],
                "train_accuracy": state.history[-1]["train_accuracy"],
                "validation_accuracy": None if math.isnan(validation) else validation,
                "test_accuracy": None if math.isnan(test_accuracy) else test_accuracy,
                "train_seconds": train_seconds,
            },
        }
    )
    if job.out is not None:
        save_final(job, metadata)
    return TrainResult(network, config, state.history, test_accuracy, validation, train_seconds, job.out, metadata)


def save_final(job: Run, metadata: Mapping[str, Any]) -> None:
    """Save the model to ``job.out`` (saying what it replaced), then remove the finished checkpoint."""
    out, ckpt = job.out, job.ckpt
    assert out is not None
    previous = previous_model(out)
    try:
        save_model(job.network, out, metadata)
    except TrainingError as error:
        if ckpt is None:
            raise
        raise TrainingError(
            f"{error}; the trained model is in the checkpoint {ckpt}; save it elsewhere with: "
            f"scratchnet train --resume {ckpt} --out OTHER.json"
        ) from None
    job.log(f"model saved to {out}" + ("" if previous is None else f"; it replaced the previous model ({previous})"))
    if ckpt is not None and ckpt != out:
        remove_model_files(ckpt)
