"""Training a classifier on a dataset: the loop behind ``scratchnet train``.

The data is MNIST or Fashion-MNIST (``dataset``), or your own (``data``: a CSV file, a folder of
class folders or an ``.npz``; :mod:`scratchnet.data.own`), images or a table of features.
``train(TrainConfig(...))`` loads the dataset, holds out a validation split, cross-checks the
architecture (loops against vectorized on a couple of samples), then runs mini-batch epochs and
returns a :class:`TrainResult`. Everything random is a pure function of the seed (scratchnet.core.rng):
the initial weights, the order of each epoch (``permutation`` of stream ``epoch``), the shifts of
each batch and the dropout masks, so a run is repeatable in either backend.

Faults:

* after every epoch an atomic checkpoint (the model format with the optimizer section, plus the
  epoch, the Dropout counters and the history) is written next to the output; :func:`resume`
  continues from it and ends with exactly the model an uninterrupted run gives;
* a NaN or infinite loss stops the run with a :class:`~scratchnet.core.errors.TrainingError`, leaving the
  last good checkpoint in place;
* Ctrl-C (SIGINT) is noted and acted on between two steps: a checkpoint of that exact point is
  written and :class:`TrainingInterrupted` raised (a second Ctrl-C aborts at once).
"""

from __future__ import annotations

import math
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import numpy.typing as npt

from scratchnet.builders import BACKENDS, build_network, build_optimizer
from scratchnet.core import notation
from scratchnet.core.architecture import ACTIVATIONS, DTYPES, mlp, plan
from scratchnet.core.errors import ConfigError, ScratchnetError, TrainingError, quoted_list
from scratchnet.core.jsonread import MAX_BYTES as MAX_JSON_BYTES
from scratchnet.core.jsonread import read_json
from scratchnet.core.rng import derive_seed, permutation
from scratchnet.core.settings import optimizer_type
from scratchnet.data import Dataset, load_dataset
from scratchnet.data.images import Feeder, flip_images, shift_images, standardization, take_images
from scratchnet.data.own import DataOptions, Layout, data_name, load_data
from scratchnet.io.model import ModelWriteError, load_model, model_paths, save
from scratchnet.training.divergence import divergence_message
from scratchnet.training.outputs import (
    CHECKPOINT_FORMAT,
    checkpoint_position,
    claimed_outputs,
    describe_position,
    file_kind,
    previous_model,
)
from scratchnet.training.progress import Progress

SCHEDULES = ("constant", "cosine", "step", "inverse_time")
SPLITS = ("end", "start")
SHUFFLE_LABEL = 1001  # derive_seed(seed, SHUFFLE_LABEL): the seed of the epoch orders
AUGMENT_LABEL = 1002  # derive_seed(seed, AUGMENT_LABEL, epoch): the seed of an epoch's shifts
EVAL_CHUNK = 2000  # images per forward pass when measuring accuracy ...
EVAL_VALUES = 1 << 22  # ... fewer when a pass would hold a layer output of more values (16 MB of float32)
CHECK_MAX_PARAMS = 250_000  # above this the cross-check runs on a narrower copy of the architecture
CHECK_WIDTH = 64  # the hidden width of that narrower copy
CHECK_CHANNELS = 4  # the channels of a convolutional network's narrower copy

Log = Callable[[str], None]
Hook = Callable[[int, int, Any], None]


class TrainingInterrupted(ScratchnetError):
    """Training stopped by Ctrl-C; ``checkpoint`` holds the state to resume from."""

    def __init__(self, message: str, checkpoint: Path) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (and so is saved with the model and checkpoints).

    Optimizer options left as None take the optimizer's own (PyTorch) defaults. ``batch_size`` 0
    means the whole training set in every step (full-batch gradient descent). The validation split
    is the last ``validation`` training images (``validation_split="end"``) or the first ones
    (``"start"``); ``limit`` trains on the first ``limit`` of the images that remain. ``augment`` > 0
    shifts every training image by up to that many pixels in each direction; ``flip`` mirrors half of
    them left to right (for clothes, not digits). Image inputs are
    ``(pixel / scale - input_mean) / input_std`` (``scale`` 255, or 1 for pixels already in [0, 1]);
    a table's features are standardized with the training split's mean and standard deviation of
    each. Validation, the epoch line and the checkpoint come every ``report_every`` epochs (and after
    the last). ``layers``, when given, is the network in the compact notation of
    :mod:`scratchnet.core.notation` (for a convolutional network), without the input and the output
    layer: the input is the dataset's images (``(channels, height, width)``), or a table's features,
    and a Dense layer with one unit per class and the Softmax are added after it; ``hidden``,
    ``activation`` and ``dropout`` are then unused.

    ``data`` trains on your own data instead of ``dataset`` (which is then unused): a ``.csv`` file,
    a folder of class folders or an ``.npz`` (:func:`scratchnet.data.own.load_data`), with the test
    set from the file ``test`` or a stratified ``test_fraction`` held out (default 0.2), and the
    reading options ``label_column``, ``image_shape`` (or ``table``), ``channels`` and
    ``image_size``. The validation split, the shifts and the mirroring keep their meanings, but
    their defaults are MNIST's: with ``data``, give ``validation`` (0 for none) and leave ``augment``
    and ``flip`` off for a table.
    """

    dataset: str = "mnist"
    hidden: tuple[int, ...] = (128,)
    activation: str = "relu"
    dropout: float = 0.0
    init: str | None = None
    optimizer: str = "adam"
    lr: float = 0.001
    momentum: float | None = None
    nesterov: bool | None = None
    weight_decay: float | None = None
    betas: tuple[float, float] | None = None
    lr_schedule: str = "constant"
    lr_min: float | None = None  # cosine: the final rate (default 0)
    lr_step: int | None = None  # step: epochs between decays (default 1)
    lr_gamma: float | None = None  # step: the factor of each decay (default 0.1)
    lr_decay: float | None = None  # inverse_time: lr / (1 + decay * step) (default 0)
    epochs: int = 10
    batch_size: int = 128
    seed: int = 0
    backend: str = "vectorized"
    dtype: str = "float32"
    limit: int | None = None
    validation: int = 10000
    validation_split: str = "end"
    augment: int = 0
    flip: bool = False
    input_mean: float = 0.0
    input_std: float = 1.0
    report_every: int = 1
    recipe: str | None = None
    layers: str | None = None
    data: str | None = None
    test: str | None = None
    test_fraction: float | None = None
    label_column: str | None = None
    image_shape: tuple[int, ...] | None = None
    table: bool = False
    channels: int | None = None
    image_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        check_config(self)

    @property
    def data_name(self) -> str:
        """The name of the run's data: the dataset, or ``train`` for ``data="path/train.csv"``."""
        return self.dataset if self.data is None else data_name(self.data)

    def data_options(self) -> DataOptions:
        """How the run reads ``data`` and ``test``."""
        return DataOptions(
            label_column=DataOptions.label_column if self.label_column is None else self.label_column,
            image_shape=self.image_shape,
            table=self.table,
            channels=self.channels,
            image_size=self.image_size,
        )

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data (tuples become lists)."""
        data = asdict(self)
        for name in TUPLE_SETTINGS:
            value = getattr(self, name)
            data[name] = None if value is None else list(value)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """The inverse of :meth:`to_dict`; unknown keys are a ConfigError."""
        if not isinstance(data, Mapping):
            raise ConfigError("a training configuration must be an object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown training settings {quoted_list(unknown)}")
        values = dict(data)
        for key, (schedule, old_default) in LEGACY_SCHEDULE_DEFAULTS.items():
            # Files written before these options became None when unused held their old defaults.
            if values.get(key) == old_default and values.get("lr_schedule", "constant") != schedule:
                values[key] = None
        for name in TUPLE_SETTINGS:
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        try:
            return cls(**values)
        except TypeError as error:
            raise ConfigError(f"bad training settings: {error}") from None

    def sizes(self, inputs: int, classes: int) -> list[int]:
        return [inputs, *self.hidden, classes]


# The settings that are tuples in a TrainConfig and lists in JSON.
TUPLE_SETTINGS = ("hidden", "betas", "image_shape", "image_size")
# The settings that say how to read your own data: each needs ``data``.
DATA_SETTINGS = ("test", "test_fraction", "label_column", "image_shape", "table", "channels", "image_size")

# The schedule each schedule option belongs to, and the value files written before the options could
# be None (unused) held for it.
LEGACY_SCHEDULE_DEFAULTS = {
    "lr_min": ("cosine", 0.0),
    "lr_step": ("step", 1),
    "lr_gamma": ("step", 0.1),
    "lr_decay": ("inverse_time", 0.0),
}
SEED_MAX = 2**64 - 1  # seeds are 64-bit (scratchnet.core.rng): a larger one would be cut to its low bits


class SettingError(ConfigError):
    """A TrainConfig setting out of range or not applicable. The message names each setting as
    ``<field>`` in :attr:`template`; ``str()`` shows the field names, :meth:`naming` another spelling
    (the command line shows its flags: ``--lr-min must be in [0, --lr]``)."""

    def __init__(self, template: str) -> None:
        self.template = template
        super().__init__(self.naming(lambda field: field))

    def naming(self, name: Callable[[str], str]) -> str:
        known = {f.name for f in fields(TrainConfig)}
        return re.sub(r"<(\w+)>", lambda m: name(m.group(1)) if m.group(1) in known else m.group(0), self.template)


def check_config(config: TrainConfig) -> None:
    """SettingError for any setting out of range or not applicable to the chosen optimizer or schedule."""

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise SettingError(message)

    need(
        isinstance(config.hidden, tuple) and all(isinstance(h, int) and h >= 1 for h in config.hidden),
        f"<hidden> layer widths must be positive integers, got {config.hidden!r}",
    )
    need(
        config.activation in ACTIVATIONS,
        f"unknown <activation> {config.activation!r}; choose one of {', '.join(ACTIVATIONS)}",
    )
    need(0.0 <= config.dropout < 1.0, f"<dropout> must be in [0, 1), got {config.dropout}")
    need(
        config.layers is None or (isinstance(config.layers, str) and config.layers.strip() != ""),
        f"<layers> must be a non-empty text in the compact notation, got {config.layers!r}",
    )
    need(
        config.layers is None or config.dropout == 0.0,
        "with <layers>, dropout goes into the layers themselves (e.g. 'dropout(0.25)')",
    )
    optimizer_type(config.optimizer)  # ConfigError for an unknown optimizer
    kind = config.optimizer.lower()
    need(math.isfinite(config.lr) and config.lr > 0.0, f"<lr> (the learning rate) must be > 0, got {config.lr}")
    need(config.momentum is None or kind in ("sgd", "rmsprop"), f"<momentum> applies to sgd and rmsprop, not {kind}")
    need(config.nesterov is None or kind == "sgd", f"<nesterov> applies to sgd only, not {kind}")
    need(config.betas is None or kind in ("adam", "adamw"), f"<betas> apply to adam and adamw only, not {kind}")
    need(
        config.lr_schedule in SCHEDULES,
        f"unknown <lr_schedule> {config.lr_schedule!r}; choose one of {', '.join(SCHEDULES)}",
    )
    for key, (schedule, _) in LEGACY_SCHEDULE_DEFAULTS.items():
        need(
            getattr(config, key) is None or config.lr_schedule == schedule,
            f"<{key}> applies to the {schedule} schedule only, and this run's <lr_schedule> is {config.lr_schedule}",
        )
    need(
        config.lr_min is None or 0.0 <= config.lr_min <= config.lr,
        f"<lr_min> must be in [0, <lr>] = [0, {config.lr:g}], got {config.lr_min}",
    )
    need(
        config.lr_step is None or config.lr_step >= 1,
        f"<lr_step> (epochs between decays) must be >= 1, got {config.lr_step}",
    )
    need(
        config.lr_gamma is None or 0.0 < config.lr_gamma <= 1.0,
        f"<lr_gamma> must be in (0, 1], got {config.lr_gamma}",
    )
    need(config.lr_decay is None or config.lr_decay >= 0.0, f"<lr_decay> must be >= 0, got {config.lr_decay}")
    need(config.epochs >= 1, f"<epochs> must be >= 1, got {config.epochs}")
    need(
        config.batch_size >= 0,
        f"<batch_size> must be >= 1 (or 0 for the full training set), got {config.batch_size}",
    )
    need(
        isinstance(config.seed, int) and 0 <= config.seed <= SEED_MAX,
        f"<seed> must be an integer in 0..2^64-1, got {config.seed}",
    )
    need(config.backend in BACKENDS, f"unknown <backend> {config.backend!r}; choose one of {', '.join(BACKENDS)}")
    need(config.dtype in DTYPES, f"<dtype> must be float32 or float64, got {config.dtype!r}")
    need(config.limit is None or config.limit >= 1, f"<limit> must be >= 1, got {config.limit}")
    need(config.validation >= 0, f"<validation> must be >= 0 images, got {config.validation}")
    need(
        config.validation_split in SPLITS,
        f"<validation_split> must be 'end' or 'start', got {config.validation_split!r}",
    )
    need(0 <= config.augment <= 8, f"<augment> (pixels of random shift) must be in 0..8, got {config.augment}")
    need(
        math.isfinite(config.input_mean) and math.isfinite(config.input_std) and config.input_std > 0.0,
        f"input normalisation needs a finite <input_mean> and an <input_std> > 0, got {config.input_mean}, "
        f"{config.input_std}",
    )
    need(config.report_every >= 1, f"<report_every> must be >= 1, got {config.report_every}")
    check_data_settings(config, need)


def check_data_settings(config: TrainConfig, need: Callable[[bool, str], None]) -> None:
    """The settings of your own data (``data`` and the ones that say how to read it)."""
    if config.data is None:
        for name in DATA_SETTINGS:
            need(getattr(config, name) in (None, False), f"<{name}> is for your own data: give <data> too")
        return
    need(isinstance(config.data, str) and config.data.strip() != "", f"<data> must be a path, got {config.data!r}")
    need(
        config.test is None or config.test_fraction is None,
        "give <test> (a test file) or <test_fraction> (a part held out), not both",
    )
    need(
        config.test_fraction is None or 0.0 <= config.test_fraction < 1.0,
        f"<test_fraction> must be in [0, 1), got {config.test_fraction}",
    )
    need(
        config.label_column is None or (isinstance(config.label_column, str) and config.label_column.strip() != ""),
        f"<label_column> must be a column name or position, got {config.label_column!r}",
    )
    shape = config.image_shape
    need(
        shape is None or (len(shape) in (2, 3) and all(isinstance(n, int) and n >= 1 for n in shape)),
        f"<image_shape> must be C,H,W or H,W of positive integers, got {shape}",
    )
    need(not (config.table and shape is not None), "<table> and <image_shape> contradict each other: give one")
    need(config.channels in (None, 1, 3), f"<channels> must be 1 (grey) or 3 (RGB), got {config.channels}")
    size = config.image_size
    need(
        size is None or (len(size) == 2 and all(isinstance(n, int) and 1 <= n <= 4096 for n in size)),
        f"<image_size> must be H,W of integers in 1..4096, got {size}",
    )


def check_fits(config: TrainConfig, data: Dataset) -> None:
    """SettingError for a setting the loaded data cannot take: shifts and mirroring of a table."""
    if data.kind != "features":
        return
    if config.augment or config.flip:
        raise SettingError(
            f"<augment> and <flip> shift and mirror images; {data.name} is a table of {data.sample_shape[0]} "
            "features: leave them out"
        )
    if config.input_mean != 0.0 or config.input_std != 1.0:
        raise SettingError(
            f"<input_mean> and <input_std> scale pixels; {data.name} is a table, whose features are standardized "
            "one by one"
        )


# ---- the pieces of a run ----


@dataclass(frozen=True, eq=False)
class Split:
    """The training samples, the validation samples and the test samples of a run (views)."""

    train_images: npt.NDArray[Any]
    train_labels: npt.NDArray[Any]
    val_images: npt.NDArray[Any]
    val_labels: npt.NDArray[Any]
    test_images: npt.NDArray[Any]
    test_labels: npt.NDArray[Any]

    def describe(self, config: TrainConfig, total: int, noun: str = "images") -> str:
        where = "last" if config.validation_split == "end" else "first"
        train = f"{len(self.train_labels)} training {noun}"
        if config.limit is not None:
            train += f" (--limit {config.limit})"
        val = (
            f"{len(self.val_labels)} validation ({where} {len(self.val_labels)} of the {total} training {noun})"
            if len(self.val_labels)
            else "no validation split"
        )
        test = f"{len(self.test_labels)} test" if len(self.test_labels) else "no test set"
        return f"{train}, {val}, {test}"


def describe_data(config: TrainConfig, data: Dataset, split: Split) -> str:
    """The line a run starts with: the data and its split, and for your own data what it is."""
    line = f"{data.name}: {split.describe(config, len(data.train_labels), noun_of(data))}"
    if data.source is None:
        return line
    what = Layout.of(data).describe() + ("" if data.kind == "features" else f", pixels / {data.scale:g}")
    test, fraction = data.source.get("test"), data.source.get("test_fraction")
    held = f"test: {test}" if test else (f"test: {fraction:.0%} held out, stratified" if fraction else "no test set")
    return f"{line} ({data.source.get('path')}: {what}, {data.num_classes} classes; {held})"


def split_dataset(data: Dataset, config: TrainConfig) -> Split:
    """Hold out the validation images, then keep the first ``limit`` of the rest for training."""
    total = len(data.train_labels)
    if config.validation >= total:
        raise ConfigError(f"validation split of {config.validation} leaves no training images out of {total}")
    if config.validation_split == "end":
        cut = total - config.validation
        pool = slice(0, cut)
        held = slice(cut, total)
    else:
        pool = slice(config.validation, total)
        held = slice(0, config.validation)
    images, labels = data.train_images[pool], data.train_labels[pool]
    if config.limit is not None:
        if config.limit > len(labels):
            raise ConfigError(
                f"--limit {config.limit} is more than the {len(labels)} training images left after the validation split"
            )
        images, labels = images[: config.limit], labels[: config.limit]
    return Split(images, labels, data.train_images[held], data.train_labels[held], data.test_images, data.test_labels)


def feeder_of(config: TrainConfig, shape: tuple[int, ...] | None = None, data: Dataset | None = None) -> Feeder:
    """How the run turns samples into inputs of ``shape`` (the network's input shape): images by
    ``(pixel / scale - input_mean) / input_std``, a table's features (``data``, whose training split
    gives each feature's mean and standard deviation) by standardization."""
    if data is not None and data.kind == "features":
        mean, std = standardization(split_dataset(data, config).train_images)
        return Feeder(config.backend, config.dtype, mean, std, shape, 1.0, "features")
    scale = 255.0 if data is None else data.scale
    return Feeder(config.backend, config.dtype, config.input_mean, config.input_std, shape, scale)


def argmax_rows(outputs: Any) -> npt.NDArray[np.intp]:
    """The index of the largest output of each row, for arrays and for lists of lists."""
    result: npt.NDArray[np.intp] = np.argmax(np.asarray(outputs), axis=1)
    return result


def eval_chunk(network: Any) -> int:
    """Images per inference pass: EVAL_CHUNK, or fewer when one image's largest layer output is large
    (a first convolution's feature maps: 32x24x24 values), so that no pass holds a layer output of
    more than about EVAL_VALUES values."""
    checked = plan(network.describe())
    largest = max(math.prod(shape) for shape in (*checked.input_shapes, checked.output_shape))
    return max(1, min(EVAL_CHUNK, EVAL_VALUES // largest))


def predict_classes(network: Any, images: npt.NDArray[Any], feeder: Feeder) -> npt.NDArray[np.intp]:
    """The network's class for each image, in chunks (inference mode: no dropout)."""
    size = eval_chunk(network)
    chunks = [
        np.asarray(network.predict(feeder.inputs(images[i : i + size])), dtype=np.intp)
        for i in range(0, len(images), size)
    ]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.intp)


def predict_probabilities(network: Any, images: npt.NDArray[Any], feeder: Feeder) -> npt.NDArray[np.float64]:
    """The network's outputs (class probabilities for a softmax network) for each image, as float64."""
    size = eval_chunk(network)
    chunks = [
        np.asarray(network.forward(feeder.inputs(images[i : i + size])), dtype=np.float64)
        for i in range(0, len(images), size)
    ]
    return np.concatenate(chunks) if chunks else np.zeros((0, 0))


def accuracy_of(network: Any, images: npt.NDArray[Any], labels: npt.NDArray[Any], feeder: Feeder) -> float:
    if len(labels) == 0:
        return math.nan
    return float(np.mean(predict_classes(network, images, feeder) == labels))


def steps_per_epoch(config: TrainConfig, train_size: int) -> int:
    size = train_size if config.batch_size == 0 else config.batch_size
    return -(-train_size // size)


def optimizer_spec(config: TrainConfig, steps: int) -> dict[str, Any]:
    """The ``build_optimizer`` spec of the run: the optimizer's settings and its schedule, in steps."""
    spec: dict[str, Any] = {"type": optimizer_type(config.optimizer), "lr": config.lr}
    for key in ("momentum", "nesterov", "weight_decay"):
        value = getattr(config, key)
        if value is not None:
            spec[key] = value
    if config.betas is not None:
        spec["betas"] = list(config.betas)
    schedule: dict[str, Any] | None = None
    if config.lr_schedule == "cosine":
        min_lr = 0.0 if config.lr_min is None else config.lr_min
        schedule = {"type": "Cosine", "total_steps": config.epochs * steps, "min_lr": min_lr}
    elif config.lr_schedule == "step":
        step_size = (1 if config.lr_step is None else config.lr_step) * steps
        gamma = 0.1 if config.lr_gamma is None else config.lr_gamma
        schedule = {"type": "Step", "step_size": step_size, "gamma": gamma}
    elif config.lr_schedule == "inverse_time":
        schedule = {"type": "InverseTime", "decay": 0.0 if config.lr_decay is None else config.lr_decay}
    spec["schedule"] = schedule
    return spec


def architecture_of(config: TrainConfig, image_shape: tuple[int, ...], classes: int) -> dict[str, Any]:
    """The run's network for samples of ``image_shape`` (images ``(28, 28)`` or ``(3, 32, 32)``, or a
    table's ``(features,)``) and ``classes`` classes."""
    if config.layers is not None:
        channels = (1, *image_shape) if len(image_shape) == 2 else image_shape
        return notation.parse(f"{config.layers}, dense({classes})", input_shape=channels, init=config.init)
    inputs = math.prod(image_shape)
    return mlp(config.sizes(inputs, classes), activation=config.activation, dropout=config.dropout, init=config.init)


def checked_copy(config: TrainConfig, image_shape: tuple[int, ...], classes: int) -> tuple[dict[str, Any], str]:
    """The architecture the pre-training cross-check runs on, and how it differs from the run's.

    The loops backend computes every product in Python, so a big network is checked as a narrower
    copy with the same layer types: hidden widths at most CHECK_WIDTH for an MLP; for a
    convolutional network at most CHECK_CHANNELS channels and the smallest square image (from 8
    pixels up) its layers fit."""
    full = architecture_of(config, image_shape, classes)
    if config.layers is None:
        if plan(full).parameter_count <= CHECK_MAX_PARAMS:
            return full, plan(full).outline()
        narrowed = replace(config, hidden=tuple(min(h, CHECK_WIDTH) for h in config.hidden))
        copy = architecture_of(narrowed, image_shape, classes)
        return copy, f"{plan(copy).outline()} (the layer types of {plan(full).outline()}, narrowed)"
    layers = notation.narrowed(config.layers, CHECK_CHANNELS)
    if len(image_shape) < 2:  # a table's features: the network is checked as it is
        return full, notation.notation(full)
    for size in range(8, max(image_shape[-2:]) + 1):
        square = (*image_shape[:-2], size, size)  # the image's channels, on a smaller square
        try:
            copy = architecture_of(replace(config, layers=layers), square, classes)
        except ConfigError:
            continue
        if copy != full:
            return copy, f"{notation.notation(copy)} (the layer types of the run's network, narrowed)"
        break
    return full, notation.notation(full)


def cross_check_line(config: TrainConfig, image_shape: tuple[int, ...], classes: int) -> str:
    """Run the loops-vs-vectorized cross-check (and a finite-difference check) on the architecture,
    narrowed when it is big (:func:`checked_copy`), and return one line; TrainingError if it fails."""
    from scratchnet.checks.crosscheck import full_check, summary

    description, what = checked_copy(config, image_shape, classes)
    started = time.perf_counter()
    report = full_check(
        description, batch=2, steps=1, seed=config.seed, max_per_tensor=3, gradient_backends=("vectorized",)
    )
    seconds = time.perf_counter() - started
    line = f"{summary(report)} [{what}, 2 samples, 1 SGD step, {seconds:.1f} s]"
    if not report.passed:
        raise TrainingError(f"the architecture failed the cross-check, not training: {line}")
    return line


# ---- checkpoints ----


def checkpoint_path_for(out: Path) -> Path:
    """``models/mnist.json`` -> ``models/mnist.checkpoint.json``."""
    document = model_paths(out)[0]
    return document.with_name(document.stem + ".checkpoint.json")


def model_path_for_checkpoint(checkpoint: Path) -> Path:
    """``models/mnist.checkpoint.json`` -> ``models/mnist.json``: where a resumed run saves by default."""
    document = model_paths(checkpoint)[0]
    return document.with_name(document.stem.removesuffix(".checkpoint") + ".json")


def json_path(path: str | os.PathLike[str]) -> Path:
    """A model path (NAME, NAME.json or NAME.npz) as its ``NAME.json``."""
    return model_paths(path)[0]


def dropout_layers(network: Any) -> list[Any]:
    return [layer for layer in network.layers if hasattr(layer, "calls")]


@dataclass
class RunState:
    """Where a run is: epochs done, steps done in the current epoch, and that epoch's running sums."""

    epoch: int = 0  # epochs completed
    step: int = 0  # steps completed in the current epoch
    loss_sum: float = 0.0  # the current epoch's sum of batch loss x batch size
    correct: int = 0  # ... its correctly classified training images
    seen: int = 0  # ... and its images so far
    seconds: float = 0.0  # ... and its seconds so far
    elapsed: float = 0.0  # wall-clock seconds of the run so far (steps, validation, checkpoints)
    window_seconds: float = 0.0  # seconds and images of the completed epochs since the last report
    window_images: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)  # settings a resume changed, for the next record

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunState:
        try:
            return cls(
                epoch=int(data["epoch"]),
                step=int(data["step"]),
                loss_sum=float(data["loss_sum"]),
                correct=int(data["correct"]),
                seen=int(data["seen"]),
                seconds=float(data["seconds"]),
                elapsed=float(data["elapsed"]),
                window_seconds=float(data["window_seconds"]),
                window_images=int(data["window_images"]),
                history=[dict(h) for h in data["history"]],
                changes=[dict(c) for c in data.get("changes", [])],
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"damaged checkpoint state: {error!r}") from None


@dataclass
class Run:
    """A run in progress: its settings, network, optimizer and position, its data and how the data
    is fed, and where it writes and reports. What :func:`run` and its helpers share."""

    config: TrainConfig
    network: Any
    optimizer: Any
    state: RunState
    data: Dataset
    split: Split
    feeder: Feeder
    out: Path | None = None
    ckpt: Path | None = None
    log: Log = print
    progress: bool | None = None
    hook: Hook | None = None

    def metadata(self) -> dict[str, Any]:
        """The model's metadata before its results: :func:`base_metadata`."""
        return base_metadata(self.config, self.data, self.feeder)

    def save_checkpoint(self) -> None:
        """Write the model, the optimizer state and where the run is, atomically (the model format)."""
        assert self.ckpt is not None
        metadata = self.metadata()
        metadata["checkpoint"] = {
            "format": CHECKPOINT_FORMAT,
            "state": self.state.to_dict(),
            "dropout_calls": [layer.calls for layer in dropout_layers(self.network)],
            "train_images": len(self.split.train_labels),
        }
        save_model(self.network, self.ckpt, metadata, self.optimizer)


def save_model(network: Any, path: Path, metadata: Mapping[str, Any], optimizer: Any = None) -> None:
    """``scratchnet.save`` (which creates the folder); a failed write is a one-line TrainingError."""
    try:
        save(network, path, metadata=metadata, optimizer=optimizer)
    except ModelWriteError as error:
        raise TrainingError(str(error)) from None


def base_metadata(config: TrainConfig, dataset: Dataset, feeder: Feeder | None = None) -> dict[str, Any]:
    """What evaluate and predict need to feed the model: the dataset, class names, the input (the
    samples' kind and shape, the pixel scale, the normalization: ``feeder``'s), and for your own data
    the file it came from and how it was read (``source``)."""
    feeder = feeder_of(config, None, dataset) if feeder is None else feeder
    metadata: dict[str, Any] = {
        "dataset": dataset.name,
        "class_names": list(dataset.class_names),
        "input": feeder.metadata(dataset.sample_shape),
    }
    if dataset.source is not None:
        metadata["source"] = dict(dataset.source)
    metadata["training"] = {"config": config.to_dict()}
    return metadata


def load_training_data(config: TrainConfig, data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """The run's data: ``config.data`` (your own) or the dataset ``config.dataset``."""
    if config.data is None:
        return load_dataset(config.dataset, data_dir)
    return load_data(config.data, test=config.test, test_fraction=config.test_fraction, options=config.data_options())


def read_checkpoint_config(path: Path) -> tuple[TrainConfig, dict[str, Any]]:
    """The configuration and the checkpoint section of a checkpoint's JSON file."""
    try:
        with open(path, "rb") as handle:
            document = read_json(handle.read(MAX_JSON_BYTES + 1), "the file")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such checkpoint") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: not a readable checkpoint ({error})") from None
    metadata = document.get("metadata") if isinstance(document, dict) else None
    section = metadata.get("checkpoint") if isinstance(metadata, dict) else None
    if not isinstance(section, dict) or section.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path}: not a scratchnet training checkpoint")
    assert isinstance(metadata, dict)
    return TrainConfig.from_dict(metadata.get("training", {}).get("config", {})), section


# ---- Ctrl-C ----


class StopFlag:
    """Set by SIGINT while training; the loop checks it between steps."""

    def __init__(self) -> None:
        self.requested = False


@contextmanager
def catch_interrupt(flag: StopFlag) -> Iterator[None]:
    """While active, the first SIGINT only sets ``flag``; a second one raises KeyboardInterrupt at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if flag.requested:
            raise KeyboardInterrupt
        flag.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# ---- the run ----


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
) -> TrainResult:
    """Train from scratch as ``config`` says; save the model to ``out`` (if given) and checkpoints to
    ``checkpoint`` (default: next to ``out``, ``NAME.checkpoint.json``; none when both are None).

    ``dataset`` replaces loading ``config.dataset`` (tests pass small synthetic ones). ``log`` gets
    each output line. ``hook(epoch, step, network)`` runs after every optimizer step (0-based indices).

    Before any work the output and checkpoint paths are checked and locked (:func:`claimed_outputs`):
    a path that cannot be written, or that another run is writing, is refused at once.
    """
    out_path = None if out is None else json_path(out)
    ckpt = (
        json_path(checkpoint)
        if checkpoint is not None
        else (None if out_path is None else checkpoint_path_for(out_path))
    )
    with claimed_outputs(out_path, ckpt, log=log):
        data = dataset if dataset is not None else load_training_data(config, data_dir)
        return _train(config, data, out_path, ckpt, log, progress, check, hook)


def _train(
    config: TrainConfig,
    data: Dataset,
    out_path: Path | None,
    ckpt: Path | None,
    log: Log,
    progress: bool | None,
    check: bool,
    hook: Hook | None,
) -> TrainResult:
    """The body of :func:`train`, once its files are claimed and its data loaded."""
    check_fits(config, data)
    split = split_dataset(data, config)
    shape, classes = data.sample_shape, data.num_classes
    log(describe_data(config, data, split))
    architecture = architecture_of(config, shape, classes)  # a ConfigError before the check
    if check:
        log(cross_check_line(config, shape, classes))
    network = build_network(architecture, backend=config.backend, dtype=config.dtype, seed=config.seed)
    steps = steps_per_epoch(config, len(split.train_labels))
    optimizer = build_optimizer(optimizer_spec(config, steps), config.backend)
    feeder = feeder_of(config, plan(architecture).input_shape, data)
    job = Run(config, network, optimizer, RunState(), data, split, feeder, out_path, ckpt, log, progress, hook)
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
) -> TrainResult:
    """Continue the run saved in ``checkpoint`` with its settings, to the very model it would have
    given uninterrupted. The model goes to ``out`` (default: the checkpoint's name without
    ``.checkpoint``), and new checkpoints over the old one.

    ``overrides`` changes settings of :data:`RESUME_OVERRIDES` from here on (``{"lr": 1e-4}``, to
    get past a NaN): the optimizer keeps its state, and the next epoch's history record lists the
    change. A finished checkpoint (one a failed final save left) is evaluated and saved."""
    ckpt = json_path(checkpoint)
    read_checkpoint_config(ckpt)  # a ConfigError for what is no checkpoint, before anything is locked
    out_path = model_path_for_checkpoint(ckpt) if out is None else json_path(out)
    with claimed_outputs(out_path, ckpt, resuming=ckpt, log=log):
        return _resume(ckpt, out_path, data_dir, dataset, log, progress, hook, overrides or {})


RESUME_OVERRIDES = ("lr", "weight_decay")


def _resume(
    ckpt: Path,
    out_path: Path,
    data_dir: str | os.PathLike[str] | None,
    dataset: Dataset | None,
    log: Log,
    progress: bool | None,
    hook: Hook | None,
    overrides: Mapping[str, Any],
) -> TrainResult:
    """The body of :func:`resume`, once its files are claimed."""
    config, section = read_checkpoint_config(ckpt)
    unknown = sorted(set(overrides) - set(RESUME_OVERRIDES))
    if unknown:
        raise ConfigError(f"a resume can change {' and '.join(RESUME_OVERRIDES)} only, not {', '.join(unknown)}")
    changed = {name: value for name, value in overrides.items() if getattr(config, name) != value}
    loaded = load_model(ckpt, backend=config.backend)
    network = loaded.network
    state = RunState.from_dict(section.get("state", {}))
    if changed:
        if state.epoch >= config.epochs:
            raise ConfigError(f"{ckpt} holds a finished run: there are no steps left for a new {', '.join(changed)}")
        old, config = config, replace(config, **changed)  # checked again: a ConfigError names a bad value
        state.changes += [
            {"setting": name, "from": getattr(old, name), "to": value, "epoch": state.epoch + 1, "step": state.step}
            for name, value in changed.items()
        ]
    calls = section.get("dropout_calls", [])
    layers = dropout_layers(network)
    if not isinstance(calls, list) or len(calls) != len(layers):
        raise ConfigError(f"{ckpt}: the checkpoint's Dropout counters do not fit its network")
    for layer, count in zip(layers, calls):
        layer.calls = int(count)
    data = dataset if dataset is not None else load_training_data(config, data_dir)
    split = split_dataset(data, config)
    if section.get("train_images") != len(split.train_labels):
        raise ConfigError(
            f"{ckpt}: the checkpoint was trained on {section.get('train_images')} images, "
            f"but {data.name} gives {len(split.train_labels)} with its settings"
        )
    feeder = feeder_of(config, plan(loaded.architecture).input_shape, data)
    steps = steps_per_epoch(config, len(split.train_labels))
    optimizer = build_optimizer(optimizer_spec(config, steps), config.backend)
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
    return run(Run(config, network, optimizer, state, data, split, feeder, out_path, ckpt, log, progress, hook))


def format_epoch(record: Mapping[str, Any], epochs: int) -> str:
    width = len(str(epochs))
    val = record["validation_accuracy"]
    val_text = "-" if val is None else f"{100 * val:.2f}%"
    return (
        f"epoch {record['epoch']:>{width}}/{epochs}  loss {record['loss']:.4f}  "
        f"train {100 * record['train_accuracy']:.2f}%  val {val_text}  lr {record['lr']:.3g}  "
        f"{record['seconds']:.1f} s  {record['images_per_second']:.0f} img/s"
    )


def run(job: Run) -> TrainResult:
    """The epochs from ``state`` on; then the test accuracy and the saved model.

    A KeyboardInterrupt that is not the first Ctrl-C between two steps (a second Ctrl-C, or one
    during the final evaluation or save) becomes a TrainingInterrupted naming the checkpoint on disk,
    as its file says, so the message is true whatever the interrupt cut short."""
    try:
        return run_epochs(job)
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


def run_epochs(job: Run) -> TrainResult:
    """:func:`run` without its last-resort interrupt handling."""
    config, network, optimizer, state, split, feeder = (
        job.config,
        job.network,
        job.optimizer,
        job.state,
        job.split,
        job.feeder,
    )
    log, ckpt, out = job.log, job.ckpt, job.out
    log(describe_run(config, network, optimizer, len(split.train_labels)))
    n = len(split.train_labels)
    batch = n if config.batch_size == 0 else config.batch_size
    steps = steps_per_epoch(config, n)
    shuffle_seed = derive_seed(config.seed, SHUFFLE_LABEL)
    flag = StopFlag()
    run_started = time.perf_counter() - state.elapsed
    full_batch = None  # full-batch gradient descent without shifts sees the same batch each step: convert it once
    if steps == 1 and not config.augment and not config.flip and config.backend == "vectorized":
        full_batch = (feeder.inputs(split.train_images), split.train_labels.astype(np.intp))
    last_saved = f"after epoch {state.epoch}" + (f", step {state.step}" if state.step else "")

    with catch_interrupt(flag), np.errstate(all="ignore"):
        while state.epoch < config.epochs:
            epoch = state.epoch
            order = np.arange(n) if steps == 1 else np.asarray(permutation(shuffle_seed, epoch, n), dtype=np.intp)
            augment_seed = derive_seed(config.seed, AUGMENT_LABEL, epoch)
            bar = Progress(steps, f"epoch {epoch + 1}/{config.epochs}", enabled=job.progress)
            started = time.perf_counter() - state.seconds
            try:
                while state.step < steps:
                    if flag.requested:
                        break
                    indices = order[state.step * batch : (state.step + 1) * batch]
                    if full_batch is not None:
                        inputs, labels = full_batch
                    else:
                        images = take_images(split.train_images, indices)
                        if config.augment:
                            images = shift_images(images, config.augment, augment_seed, state.step)
                        if config.flip:
                            images = flip_images(images, augment_seed, state.step)
                        inputs, labels = feeder.inputs(images), split.train_labels[indices].astype(np.intp)
                    try:
                        outputs = network.forward(inputs, training=True)
                        loss = network.loss(outputs, labels if config.backend == "vectorized" else labels.tolist())
                    except (OverflowError, FloatingPointError, ZeroDivisionError, ValueError):
                        loss = math.nan
                    if not math.isfinite(loss):
                        message = divergence_message(config, loss, epoch + 1, state.step + 1, last_saved, ckpt)
                        raise TrainingError(message)
                    network.backward()
                    optimizer.step(network)
                    state.loss_sum += loss * len(indices)
                    state.correct += int(np.sum(argmax_rows(outputs) == labels))
                    state.seen += len(indices)
                    state.step += 1
                    bar.update(state.step, f"loss {state.loss_sum / state.seen:.4f}")
                    if job.hook is not None:
                        job.hook(epoch, state.step - 1, network)
            finally:
                bar.close()
            if state.step < steps:  # interrupted mid-epoch
                state.seconds = time.perf_counter() - started
                state.elapsed = time.perf_counter() - run_started
                raise interrupted(job)
            seconds = time.perf_counter() - started
            reported = (epoch + 1) % config.report_every == 0 or epoch + 1 == config.epochs
            window_seconds, window_images = state.window_seconds + seconds, state.window_images + state.seen
            record: dict[str, Any] = {
                "epoch": epoch + 1,
                "loss": state.loss_sum / state.seen,
                "train_accuracy": state.correct / state.seen,
                "validation_accuracy": None,
                "lr": current_lr(optimizer),
                "seconds": window_seconds,
                "images_per_second": window_images / window_seconds if window_seconds > 0 else math.inf,
            }
            if state.changes:  # what a resume changed during this epoch
                record["changed"], state.changes = state.changes, []
            state.epoch, state.step, state.loss_sum, state.correct, state.seen, state.seconds = (
                epoch + 1,
                0,
                0.0,
                0,
                0,
                0.0,
            )
            state.window_seconds, state.window_images = window_seconds, window_images
            if reported:
                state.window_seconds, state.window_images = 0.0, 0
                if len(split.val_labels):
                    record["validation_accuracy"] = accuracy_of(network, split.val_images, split.val_labels, feeder)
                state.history.append(record)
                log(format_epoch(record, config.epochs))
                if ckpt is not None:
                    state.elapsed = time.perf_counter() - run_started
                    job.save_checkpoint()
                    last_saved = f"after epoch {state.epoch}"
            if flag.requested:
                state.elapsed = time.perf_counter() - run_started
                raise interrupted(job)
        state.elapsed = time.perf_counter() - run_started

    test_accuracy = accuracy_of(network, split.test_images, split.test_labels, feeder)
    validation = next(
        (h["validation_accuracy"] for h in reversed(state.history) if h["validation_accuracy"] is not None), math.nan
    )
    train_seconds = state.elapsed
    tested = (
        f"test accuracy {100 * test_accuracy:.2f}% ({len(split.test_labels)} test {noun_of(job.data)})"
        if len(split.test_labels)
        else "no test set"
    )
    log(f"{tested}; training time {train_seconds:.1f} s (wall clock of the epochs, with validation and checkpoints)")
    data = job.data
    metadata = job.metadata()
    metadata["training"].update(
        {
            "recipe": config.recipe,
            "optimizer": optimizer.describe(),
            "seed": config.seed,
            "epochs": config.epochs,
            "train_images": len(split.train_labels),
            "validation_images": len(split.val_labels),
            "history": state.history,
            "dataset": data.name,  # the spec's members (model-format.md 1.5), which any reader knows
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
    if out is not None:
        previous = previous_model(out)
        try:
            save_model(network, out, metadata)
        except TrainingError as error:
            if ckpt is None:
                raise
            raise TrainingError(
                f"{error}; the trained model is in the checkpoint {ckpt}; save it elsewhere with: "
                f"scratchnet train --resume {ckpt} --out OTHER.json"
            ) from None
        log(f"model saved to {out}" + ("" if previous is None else f"; it replaced the previous model ({previous})"))
        if ckpt is not None and ckpt != out:
            remove_model_files(ckpt)
    return TrainResult(network, config, state.history, test_accuracy, validation, train_seconds, out, metadata)


def noun_of(data: Dataset) -> str:
    """What the samples are called in messages: ``images``, or ``rows`` of a table."""
    return "rows" if data.kind == "features" else "images"


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


def remove_model_files(path: Path) -> None:
    """Delete a model pair NAME.json + NAME.npz (a finished run's checkpoint)."""
    for candidate in model_paths(path):
        with suppress(FileNotFoundError):
            candidate.unlink()


def current_lr(optimizer: Any) -> float:
    """The learning rate the next step will use."""
    rate = getattr(optimizer, "current_lr", None)
    return float(rate()) if callable(rate) else float(optimizer.lr)


def describe_run(config: TrainConfig, network: Any, optimizer: Any, train_size: int) -> str:
    checked = plan(network.describe())
    shown = (
        f"{checked.outline()} {config.activation}" if config.layers is None else notation.notation(checked.description)
    )
    parts = [f"network {shown}"]
    if config.dropout:
        parts.append(f"dropout {config.dropout:g}")
    parts.append(
        f"{checked.parameter_count:,} parameters, {config.backend}"
        + (f" {config.dtype}" if config.backend == "vectorized" else "")
    )
    spec = optimizer.describe()
    opt = f"{spec['type']} lr {spec['lr']:g}"
    if config.lr_schedule != "constant":
        opt += f" {config.lr_schedule} schedule"
    parts.append(opt)
    epochs = f"{config.epochs} epoch" + ("s" if config.epochs != 1 else "")
    parts.append(
        f"batch {'full' if config.batch_size == 0 else config.batch_size}, {epochs}"
        + (f", shifts up to {config.augment} px" if config.augment else "")
        + (", random flips" if config.flip else "")
        + f", seed {config.seed}"
    )
    return "; ".join(parts)
