"""Training a language model on a text file: :func:`train_text` and :func:`resume_text`, through the one loop.

The text is read by :func:`scratchnet.data.text.load_text` (documents or running text, its character
vocabulary and its fixed split); the network is ``input(tokens V x T), LAYERS, dense(V)`` (V the
vocabulary, T the context); the task is :class:`~scratchnet.training.next_token.NextToken` and the
batches :class:`~scratchnet.training.text_feeding.TextBatches`. Everything else is the image run's:
the cross-check (narrowed), the callbacks (progress, NaN guard, report line, checkpoints), Ctrl-C and
an exact ``--resume``. The model records its vocabulary (``metadata["vocabulary"]``), the file's path,
size, SHA-256 and split (``metadata["source"]``) and the text settings (``metadata["text"]``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scratchnet.builders import build_network, build_optimizer
from scratchnet.builders.network import require_backend
from scratchnet.core import notation
from scratchnet.core.architecture import plan
from scratchnet.core.errors import ConfigError
from scratchnet.core.interface import Network, Optimizer
from scratchnet.data.text import DEFAULT_SPLIT_SEED, DOCUMENTS, TextData, Vocabulary, load_recorded_text, load_text
from scratchnet.data.text_batches import steps_per_epoch
from scratchnet.io.model import load_model
from scratchnet.training.callbacks import Checkpointing, NaNGuard, ProgressBar, ReportLine, StopOnCtrlC
from scratchnet.training.checkpoint import (
    RunState,
    checkpoint_path_for,
    checkpoint_section,
    json_path,
    model_path_for_checkpoint,
    read_checkpoint_config,
    remove_model_files,
    save_model,
    set_counters,
)
from scratchnet.training.config import TrainConfig, optimizer_spec
from scratchnet.training.loop import Callback, Loop
from scratchnet.training.next_token import NextToken, TextValidation, describe_loss, text_loss
from scratchnet.training.outputs import claimed_outputs, previous_model
from scratchnet.training.text_feeding import TextBatches
from scratchnet.training.text_recipes import CONTEXT, VOCABULARY
from scratchnet.training.train import Log, TrainingInterrupted, TrainResult, abandoned, cross_check_line

DEFAULT_WIDTH = 64
DEFAULT_RUNNING_CONTEXT = 64
VALIDATION_ROWS = 200  # held-out rows of the estimate in each record (evaluate scores them all)
REPORTS = 10  # records in a run whose --eval-every is not given
TOKENS = "tokens"  # what the report line's speed counts: scored positions (characters and end tokens) a second


@dataclass(frozen=True)
class TextSettings:
    """What a text run adds to a :class:`TrainConfig`: the ``layout`` (None: detect), the ``context``
    (None: the longest document and its start token, at most 64, or 64 for running text), the run's
    length in ``steps`` (None: ``config.epochs`` passes over the training documents; running text needs
    steps), the seed of the documents split, and the steps between validation estimates."""

    layout: str | None = None
    context: int | None = None
    steps: int | None = None
    split_seed: int = DEFAULT_SPLIT_SEED
    eval_every: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "context": self.context,
            "steps": self.steps,
            "split_seed": self.split_seed,
            "eval_every": self.eval_every,
        }

    @classmethod
    def from_dict(cls, data: Any) -> TextSettings:
        if not isinstance(data, dict):
            raise ConfigError("the checkpoint's text settings are missing")
        try:
            return cls(**data)
        except TypeError as error:
            raise ConfigError(f"the checkpoint's text settings are not understood: {error}") from None


def default_layers(width: int, context: int | str) -> str:
    """A small GPT without its input and its output layer: two blocks of ``width`` dimensions, 4 heads."""
    block = f"residual(layernorm, attention(4)), residual(layernorm, dense({4 * width}), gelu, dense({width}))"
    return f"embedding({width}), positions({context}), {block}, {block}, layernorm"


def context_of(settings: TextSettings, data: TextData) -> int:
    if settings.context is not None:
        return settings.context
    return min(data.longest + 1, DEFAULT_RUNNING_CONTEXT) if data.layout == DOCUMENTS else DEFAULT_RUNNING_CONTEXT


def text_architecture(config: TrainConfig, vocabulary: int, context: int) -> dict[str, Any]:
    """``input(tokens V x T), LAYERS, dense(V)`` (and the Softmax the loss needs). In LAYERS,
    ``{vocabulary}`` and ``{context}`` stand for V and T, and a last item ``dense({vocabulary}, ...)``
    is the output layer itself, with its options (a text recipe's ``bias=false``): none is added."""
    layers = config.layers if config.layers is not None else default_layers(DEFAULT_WIDTH, context)
    items = notation.split_top_level(layers)
    own_output = bool(items) and items[-1].strip().startswith(f"dense({VOCABULARY}")
    layers = layers.replace(VOCABULARY, str(vocabulary)).replace(CONTEXT, str(context))
    output = "" if own_output else f", dense({vocabulary})"
    return notation.parse(f"input(tokens {vocabulary} x {context}), {layers}{output}", init=config.init)


def run_length(settings: TextSettings, config: TrainConfig, data: TextData) -> tuple[int, int]:
    """(loop epochs, steps per loop epoch): ``settings.steps`` as one epoch, or passes over the documents."""
    if settings.steps is not None:
        return 1, settings.steps
    per_epoch = steps_per_epoch(data, max(config.batch_size, 1))
    if per_epoch is None:
        raise ConfigError("running text has no epochs: give the run's length in steps (--steps N)")
    return config.epochs, per_epoch


@dataclass
class TextRun:
    """A language-model run in progress: its settings, text, network, optimizer and position."""

    config: TrainConfig
    settings: TextSettings
    data: TextData
    context: int
    network: Network[Any, Any]
    optimizer: Optimizer
    state: RunState
    out: Path | None = None
    ckpt: Path | None = None
    log: Log = print
    progress: bool | None = None
    callbacks: tuple[Callback, ...] = ()
    task: NextToken = field(default_factory=NextToken)

    @property
    def length(self) -> tuple[int, int]:
        return run_length(self.settings, self.config, self.data)

    def metadata(self) -> dict[str, Any]:
        return {
            "dataset": Path(self.data.path).stem,
            "vocabulary": self.data.vocabulary.to_dict(),
            "source": self.data.source,
            "text": {**self.settings.to_dict(), "layout": self.data.layout, "context": self.context},
            "training": {"config": self.config.to_dict()},
        }

    def save_checkpoint(self) -> None:
        assert self.ckpt is not None
        metadata = self.metadata()
        metadata["checkpoint"] = checkpoint_section(self.state, self.network, self.data.split.train)
        save_model(self.network, self.ckpt, metadata, self.optimizer)

    def loop(self) -> Loop:
        epochs, steps = self.length
        config = self.config
        checkpointing = (
            None if self.ckpt is None else Checkpointing(self.save_checkpoint, self.state.epoch, self.state.step)
        )
        own: list[Callback] = [
            ProgressBar(epochs, self.progress),
            NaNGuard(config, self.ckpt, checkpointing),
            TextValidation(self.data, self.context, VALIDATION_ROWS),
            ReportLine(epochs, self.log, TOKENS),
        ]
        own += [] if checkpointing is None else [checkpointing]
        every = self.settings.eval_every or max(1, epochs * steps // REPORTS)
        batches = TextBatches(self.data, steps, max(config.batch_size, 1), self.context, config.seed)
        return Loop(
            self.network, self.optimizer, self.task, batches, epochs, self.state, (*own, *self.callbacks),
            report_every_steps=every, data_steps=self.data_steps(),
        )  # fmt: skip

    def data_steps(self) -> float:
        """The steps of one pass over the training text, the epoch of the progress lines: the documents'
        epoch, or as many blocks as the training characters (a run given in ``--steps`` is one loop epoch,
        which is not a pass over the text)."""
        batch_size = max(self.config.batch_size, 1)
        per_pass = steps_per_epoch(self.data, batch_size)
        if per_pass is not None:
            return per_pass
        return max(self.data.split.train, 1) / (batch_size * self.context)


def train_text(
    config: TrainConfig,
    settings: TextSettings,
    *,
    out: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    log: Log = print,
    progress: bool | None = None,
    check: bool = True,
    callbacks: tuple[Callback, ...] = (),
) -> TrainResult:
    """Train a language model on the text file ``config.data`` as ``settings`` say; save it to ``out``."""
    if config.data is None:
        raise ConfigError("a language model trains on a text file: give it with --data FILE.txt")
    require_backend(config.backend)
    out_path = None if out is None else json_path(out)
    ckpt = (
        json_path(checkpoint)
        if checkpoint is not None
        else (None if out_path is None else checkpoint_path_for(out_path))
    )
    with claimed_outputs(out_path, ckpt, log=log):
        data = load_text(config.data, layout=settings.layout, seed=settings.split_seed, backend=config.backend)
        log(data.description)
        context = context_of(settings, data)
        architecture = text_architecture(config, data.vocabulary.size, context)
        if check:
            log(cross_check_line(architecture, config.seed))
        network: Network[Any, Any] = build_network(
            architecture, backend=config.backend, dtype=config.dtype, seed=config.seed
        )
        job = TextRun(config, settings, data, context, network, _optimizer(config, settings, data), RunState())
        job.out, job.ckpt, job.log, job.progress, job.callbacks = out_path, ckpt, log, progress, callbacks
        if ckpt is not None:
            job.save_checkpoint()
        return run_text(job)


def _optimizer(config: TrainConfig, settings: TextSettings, data: TextData) -> Optimizer:
    epochs, steps = run_length(settings, config, data)
    optimizer: Optimizer = build_optimizer(optimizer_spec(TrainConfigView(config, epochs), steps), config.backend)
    return optimizer


class TrainConfigView:
    """A config whose ``epochs`` are the loop's (one epoch of N steps for a run given in steps), so that a
    schedule spans the whole run; every other setting is the config's."""

    def __init__(self, config: TrainConfig, epochs: int) -> None:
        self._config, self.epochs = config, epochs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._config, name)


def resume_text(
    checkpoint: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    log: Log = print,
    progress: bool | None = None,
    callbacks: tuple[Callback, ...] = (),
) -> TrainResult:
    """Continue the language-model run saved in ``checkpoint``, to the model it would have given."""
    ckpt = json_path(checkpoint)
    config, section = read_checkpoint_config(ckpt)
    require_backend(config.backend)
    out_path = model_path_for_checkpoint(ckpt) if out is None else json_path(out)
    with claimed_outputs(out_path, ckpt, resuming=ckpt, log=log):
        loaded = load_model(ckpt, backend=config.backend)
        metadata = loaded.metadata
        settings = TextSettings.from_dict(metadata.get("text"))
        data = load_recorded_text(metadata.get("source", {}), recorded_vocabulary(metadata, ckpt), config.backend)
        log(data.description)
        network: Network[Any, Any] = loaded.network
        set_counters(network, section.get("dropout_calls", []), ckpt)
        state = RunState.from_dict(section.get("state", {}))
        optimizer = _optimizer(config, settings, data)
        if loaded.optimizer_state is not None:
            optimizer.import_state(loaded.optimizer_state)
        context = int(settings.context or plan(loaded.architecture).input_shape[0])
        job = TextRun(
            config, settings, data, context, network, optimizer, state, out_path, ckpt, log, progress, callbacks
        )
        epochs, steps = job.length
        log(f"resuming {ckpt} at step {state.epoch * steps + state.step} of {epochs * steps}")
        return run_text(job)


def recorded_vocabulary(metadata: Mapping[str, Any], where: object) -> Vocabulary:
    """The vocabulary a language model records (``metadata["vocabulary"]``); ConfigError when none."""
    recorded = metadata.get("vocabulary")
    if not isinstance(recorded, Mapping):
        raise ConfigError(f"{where} records no vocabulary: it is not a language model")
    return Vocabulary.from_dict(recorded)


def run_text(job: TextRun) -> TrainResult:
    """The run from ``job.state`` on; then the held-out loss and the saved model."""
    try:
        epochs, steps = job.length
        job.log(describe_text_run(job, epochs * steps))
        stopper = StopOnCtrlC()
        loop = job.loop()
        with stopper.catching(loop):
            finished = loop.run()
        if stopper.requested or not finished:
            raise interrupted(job, steps)
        return finish_text(job)
    except KeyboardInterrupt:
        raise abandoned(job.ckpt) from None


def describe_text_run(job: TextRun, total_steps: int) -> str:
    spec = job.optimizer.describe()
    checked = plan(job.network.describe())
    shown = notation.notation(checked.description)
    batch = max(job.config.batch_size, 1)
    return (
        f"network {shown}; {checked.parameter_count:,} parameters, {job.config.backend}; "
        f"{spec['type']} lr {spec['lr']:g}; batch {batch} x context {job.context}, {total_steps} steps, "
        f"seed {job.config.seed}"
    )


def interrupted(job: TextRun, steps: int) -> TrainingInterrupted:
    done = job.state.epoch * steps + job.state.step
    if job.ckpt is None:
        return TrainingInterrupted(f"interrupted at step {done}; no checkpoint file was asked for", Path())
    job.save_checkpoint()
    return TrainingInterrupted(
        f"interrupted at step {done}; checkpoint saved to {job.ckpt}; "
        f"continue with: scratchnet train --resume {job.ckpt}",
        job.ckpt,
    )


def finish_text(job: TextRun) -> TrainResult:
    """After the last step: the loss on the whole held-out text, the model's metadata, the saved model."""
    state = job.state
    validation, count = text_loss(job.network, job.data, job.context)
    if count:
        job.log(
            f"held-out loss {describe_loss(validation)} over {count:,} positions; training time {state.elapsed:.1f} s"
        )
    else:
        job.log(f"no held-out text; training time {state.elapsed:.1f} s")
    metadata = job.metadata()
    last = state.history[-1] if state.history else {}
    metadata["training"].update(
        {
            "optimizer": job.optimizer.describe(),
            "seed": job.config.seed,
            "history": state.history,
            "dataset": metadata["dataset"],
            "final_metrics": {"validation_loss": validation} if count else {},
            "final": {"train_loss": last.get("loss"), "validation_loss": validation if count else None,
                      "train_seconds": state.elapsed},
        }
    )  # fmt: skip
    if job.out is not None:
        previous = previous_model(job.out)
        save_model(job.network, job.out, metadata)
        job.log(
            f"model saved to {job.out}" + ("" if previous is None else f"; it replaced the previous model ({previous})")
        )
        if job.ckpt is not None and job.ckpt != job.out:
            remove_model_files(job.ckpt)
    return TrainResult(
        job.network, job.config, state.history, float("nan"), validation, state.elapsed, job.out, metadata
    )
