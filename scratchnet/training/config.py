"""The description of a training run, in four parts that each check themselves.

* **the network** (:class:`NetworkSpec`): the compact notation of :mod:`scratchnet.core.notation`,
  without the input and the output layer; ``hidden``/``activation``/``dropout`` are a convenience
  that writes the notation of an MLP (:func:`mlp_layers`); ``label_smoothing`` is its loss's;
* **the optimizer**: the nested ``build_optimizer`` spec (schedule included) of
  :mod:`scratchnet.builders.optimizer`, which ``core/optimizers`` checks (:func:`optimizer_spec`);
* **the data**: the dataset, or your own file and its :class:`~scratchnet.data.own.DataOptions`;
* **the run** (:class:`RunSettings`): epochs, batch size, seed, backend, dtype, validation,
  augmentation (:data:`AUGMENTATIONS`, in the order a batch gets them) and reporting.

:class:`TrainConfig` is the flat form of the four, as model files and checkpoints record it
(``metadata.training.config``; spec/model-format.md gives the mapping): every file written before
keeps loading through :meth:`TrainConfig.from_dict`. ``optimizer_options`` holds every optimizer
option that has no field of its own (``eps``, ``dampening``, ``alpha``, ``centered``, Adagrad's
``lr_decay`` and ``initial_accumulator_value``), so a new optimizer option needs no new field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from scratchnet.builders import BACKENDS, build_optimizer
from scratchnet.core import notation
from scratchnet.core.architecture import ACTIVATION_LAYERS, DTYPES, plan
from scratchnet.core.errors import ConfigError, quoted_list
from scratchnet.core.settings import optimizer_type
from scratchnet.data.own import DataOptions, data_name
from scratchnet.training.optimizer import OPTIMIZER_FIELDS
from scratchnet.training.optimizer import optimizer_settings as optimizer_settings  # re-exported
from scratchnet.training.optimizer import optimizer_spec as optimizer_spec  # re-exported

SCHEDULES = ("constant", "cosine", "step", "inverse_time", "linear")
SPLITS = ("end", "start")
DATA_DEFAULT = -1  # a TrainConfig's validation left to the data: DATASET_VALIDATION, or 0 for your own data
DATASET_VALIDATION = 10000  # MNIST's and Fashion-MNIST's validation split (the last 10,000 training images)
SEED_MAX = 2**64 - 1  # seeds are 64-bit (scratchnet.core.rng): a larger one would be cut to its low bits


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (and so is saved with the model and checkpoints).

    Optimizer options left as None take the optimizer's own (PyTorch) defaults; ``optimizer_options``
    gives the others (``{"eps": 1e-7}``). ``batch_size`` 0 means the whole training set in every
    step (full-batch gradient descent). The validation split is the last ``validation`` training
    images (``validation_split="end"``) or the first ones (``"start"``); ``limit`` trains on the
    first ``limit`` of the images that remain. ``augment`` > 0 shifts every training image by up to
    that many pixels in each direction; ``flip`` mirrors half of them left to right (for clothes,
    not digits). Image inputs are ``(pixel / scale - input_mean) / input_std`` (``scale`` 255, or 1
    for pixels already in [0, 1]); a table's features are standardized with the training split's
    mean and standard deviation of each. Validation, the report line and the checkpoint come every
    ``report_every`` epochs (and after the last), or every ``report_every_steps`` steps when that
    is given. ``layers``, when given, is the network in the compact notation of
    :mod:`scratchnet.core.notation` (for a convolutional network), without the input and the output
    layer: the input is the dataset's images (``(channels, height, width)``), or a table's
    features, and a Dense layer with one unit per class and the Softmax are added after it;
    ``hidden``, ``activation`` and ``dropout`` are then unused. ``label_smoothing`` is the
    cross-entropy's eps in [0, 1] (spec/math.md eq. 5.7), written into the network's loss.

    The augmentations of each training batch, in this order (:data:`AUGMENTATIONS`,
    :mod:`scratchnet.data.augment`): the shifts (``augment``), the mirroring (``flip``), random crops
    of the image padded by ``crop`` pixels, a random rotation by up to ``rotate`` degrees and scaling
    by a factor in [1 - ``scale``, 1 + ``scale``], and random erasing of a rectangle with probability
    ``erase`` (filled with black, or with random pixels when ``erase_noise``). All off (0) by default.

    ``data`` trains on your own data instead of ``dataset`` (which is then unused): a ``.csv`` file,
    a folder of class folders or an ``.npz`` (:func:`scratchnet.data.own_sets.load_data`), with the test
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
    lr_time_decay: float | None = None  # inverse_time: lr / (1 + decay * step) (default 0); files say lr_decay
    epochs: int = 10
    batch_size: int = 128
    seed: int = 0
    backend: str = "vectorized"
    dtype: str = "float32"
    limit: int | None = None
    validation: int = -1  # DATA_DEFAULT: 10000 (MNIST's images), or 0 with ``data``
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
    optimizer_options: dict[str, Any] | None = None
    report_every_steps: int | None = None
    crop: int = 0
    rotate: float = 0.0
    scale: float = 0.0
    erase: float = 0.0
    erase_noise: bool = False
    label_smoothing: float = 0.0
    lr_warmup: int | None = None  # cosine: steps of linear warmup first (default 0; eq. 9.5)

    def __post_init__(self) -> None:
        if self.validation == DATA_DEFAULT:  # the CLI's default, for the data the run has
            object.__setattr__(self, "validation", DATASET_VALIDATION if self.data is None else 0)
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

    def network(self) -> NetworkSpec:
        """The network part: ``layers``, or the notation the MLP settings write."""
        if self.layers is not None:
            return NetworkSpec(self.layers, flat=False, init=self.init, label_smoothing=self.label_smoothing)
        init = self.init or ("he_normal" if self.activation in ("relu", "leaky_relu") else "glorot_normal")
        layers = mlp_layers(self.hidden, self.activation, self.dropout)
        return NetworkSpec(layers, flat=True, init=init, label_smoothing=self.label_smoothing)

    def run_settings(self) -> RunSettings:
        """The run part."""
        return RunSettings(**{name: getattr(self, name) for name in RUN_FIELDS})

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data (tuples become lists)."""
        data = asdict(self)
        for name in TUPLE_SETTINGS:
            value = getattr(self, name)
            data[name] = None if value is None else list(value)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """The inverse of :meth:`to_dict`, and of every flat form written before (see
        :data:`RENAMED` and :data:`LEGACY_SCHEDULE_DEFAULTS`); unknown keys are a ConfigError."""
        if not isinstance(data, Mapping):
            raise ConfigError("a training configuration must be an object")
        values = dict(data)
        for old, new in RENAMED.items():
            if old in values:
                value = values.pop(old)
                if values.get(new) is None:
                    values[new] = value
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"unknown training settings {quoted_list(unknown)}")
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


# The settings that are tuples in a TrainConfig and lists in JSON.
TUPLE_SETTINGS = ("hidden", "betas", "image_shape", "image_size")
# The settings that say how to read your own data: each needs ``data``.
DATA_SETTINGS = ("test", "test_fraction", "label_column", "image_shape", "table", "channels", "image_size")
# The flat settings of an MLP, which write its notation; ``layers`` replaces them.
MLP_SETTINGS = ("hidden", "activation", "dropout")
# The flat settings of the run part.
RUN_FIELDS = (
    "epochs",
    "batch_size",
    "seed",
    "backend",
    "dtype",
    "limit",
    "validation",
    "validation_split",
    "augment",
    "flip",
    "crop",
    "rotate",
    "scale",
    "erase",
    "erase_noise",
    "input_mean",
    "input_std",
    "report_every",
    "report_every_steps",
)
# The run's augmentations, in the order each training batch gets them (scratchnet.training.feeding.augmented):
# each draws from a stream of its own (scratchnet.data.augment_checks), so turning one on changes no other.
AUGMENTATIONS = ("augment", "flip", "crop", "rotate", "scale", "erase", "erase_noise")
# Flat settings renamed since files were first written: old name -> new name.
RENAMED = {"lr_decay": "lr_time_decay"}  # Adagrad has an lr_decay of its own (optimizer_options)
# The schedule each schedule option belongs to, and the value files written before the options could
# be None (unused) held for it.
LEGACY_SCHEDULE_DEFAULTS = {
    "lr_min": ("cosine", 0.0),
    "lr_step": ("step", 1),
    "lr_gamma": ("step", 0.1),
    "lr_time_decay": ("inverse_time", 0.0),
    "lr_warmup": ("cosine", 0),
}


@dataclass(frozen=True)
class NetworkSpec:
    """The network part: ``layers`` in the compact notation, without the input and the output layer.
    ``flat``: each sample is fed flattened (an MLP's ``(784,)``), else in its shape (``(1, 28, 28)``).
    ``init`` is the initializer of every layer that takes one and is not given one; ``label_smoothing``
    the cross-entropy's eps (not written into the loss when 0)."""

    layers: str
    flat: bool = False
    init: str | None = None
    label_smoothing: float = 0.0

    def input_shape(self, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
        """What the network takes: a sample flattened (an MLP), or ``(channels, height, width)``."""
        if self.flat:
            return (math.prod(sample_shape),)
        return (1, *sample_shape) if len(sample_shape) == 2 else sample_shape

    def ends_in_output(self, classes: int) -> bool:
        """Whether the layers end as a Keras model does, in a Dense layer of one unit per class
        (optionally then a Softmax): that layer is the output layer, and nothing is added. A Softmax
        anywhere else is a SettingError naming its item."""
        items = [item for item in notation.split_top_level(self.layers) if item.strip()]
        kinds = [_layer_kind(item) for item in items]
        for number, (item, (kind, _)) in enumerate(zip(items, kinds), start=1):
            if kind == "Softmax" and number != len(items):
                raise SettingError(
                    f"<layers> item {number} {item.strip()!r}: a Softmax comes last only, after the output layer "
                    f"(dense({classes}), one unit per class), whose scores it turns into probabilities"
                )
        if kinds and kinds[-1][0] == "Softmax":
            if len(kinds) < 2 or kinds[-2] != ("Dense", classes):
                raise SettingError(
                    f"<layers> item {len(items)} {items[-1].strip()!r}: a Softmax comes after the output layer, "
                    f"dense({classes}) (one unit per class): end the layers with 'dense({classes}), softmax', or "
                    "leave the softmax out and the output layer is added"
                )
            return True
        return bool(kinds) and kinds[-1] == ("Dense", classes)

    def architecture(self, sample_shape: tuple[int, ...], classes: int) -> dict[str, Any]:
        """The architecture for samples of ``sample_shape`` (images ``(28, 28)`` or ``(3, 32, 32)``,
        or a table's ``(features,)``) and ``classes`` classes: the layers, then ``dense(classes)``
        and the Softmax (unless the layers end in them: :meth:`ends_in_output`). Layers whose
        outputs are not one row per sample get no output layer added: a SettingError suggests the
        ``flatten`` it needs."""
        shape = self.input_shape(sample_shape)
        smoothing = self.label_smoothing
        if not self.layers.strip():
            return notation.parse(f"dense({classes})", input_shape=shape, init=self.init, label_smoothing=smoothing)
        if self.ends_in_output(classes):
            return notation.parse(self.layers, input_shape=shape, init=self.init, label_smoothing=smoothing)
        flattened = notation.parse(f"{self.layers}, flatten", input_shape=shape, init=self.init, loss="mse")
        ends = plan(flattened).input_shapes[-1]  # what the layers give, before the flatten added to see it
        if len(ends) != 1:
            raise SettingError(
                f"the layers (<layers>) end in outputs of shape {'x'.join(map(str, ends))} per sample, and the "
                f"output layer added after them, dense({classes}) (one unit per class), needs one row of features: "
                f"end them with a flatten ('{self.layers.strip()}, flatten')"
            )
        return notation.parse(
            f"{self.layers}, dense({classes})", input_shape=shape, init=self.init, label_smoothing=smoothing
        )


def _layer_kind(item: str) -> tuple[str, int | None]:
    """An item's layer type and, for a Dense layer, its units: ``("Dense", 10)``; ``("", None)`` for
    a name the registry does not know (parsing names it later)."""
    try:
        name, positional, named = notation.parse_item(item)
        kind = notation.resolve(name).name
    except ConfigError:
        return "", None
    units = named.get("out_features", positional[0] if positional else None)
    return kind, units if kind == "Dense" and isinstance(units, int) else None


def mlp_layers(hidden: tuple[int, ...], activation: str, dropout: float) -> str:
    """The notation of an MLP's hidden layers: ``dense(800), relu, dropout(0.2), dense(800), ...``."""
    dropped = f", dropout({dropout!r})" if dropout else ""
    return ", ".join(f"dense({width}), {activation}{dropped}" for width in hidden)


@dataclass(frozen=True)
class RunSettings:
    """The run part: how long, in what batches and order, on which backend, and how often it reports.
    Checked by :func:`check_run` when it is built from a TrainConfig."""

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
    crop: int = 0
    rotate: float = 0.0
    scale: float = 0.0
    erase: float = 0.0
    erase_noise: bool = False
    input_mean: float = 0.0
    input_std: float = 1.0
    report_every: int = 1
    report_every_steps: int | None = None

    @property
    def augmenting(self) -> bool:
        """Whether any augmentation is on (without, a full batch is the same in every step)."""
        return any(getattr(self, name) for name in AUGMENTATIONS)

    def steps_per_epoch(self, train_size: int) -> int:
        size = train_size if self.batch_size == 0 else self.batch_size
        return -(-train_size // size)


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


def need(ok: bool, message: str) -> None:
    """SettingError(message) unless ``ok``."""
    if not ok:
        raise SettingError(message)


def check_config(config: TrainConfig) -> None:
    """Each part checks itself: the network, the optimizer, the run and the data."""
    check_network(config)
    check_optimizer(config)
    check_run(config)
    check_data_settings(config)


def check_network(config: TrainConfig) -> None:
    """The network part: the MLP's settings, or ``layers`` (whose notation the registry checks when
    the run builds it: only then are the input's shape and the classes known)."""
    need(
        isinstance(config.hidden, tuple) and all(isinstance(h, int) and h >= 1 for h in config.hidden),
        f"<hidden> layer widths must be positive integers, got {config.hidden!r}",
    )
    need(
        config.activation in ACTIVATION_LAYERS,
        f"unknown <activation> {config.activation!r}; choose one of {', '.join(ACTIVATION_LAYERS)}",
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
    need(
        is_number(config.label_smoothing) and 0.0 <= config.label_smoothing <= 1.0,
        f"<label_smoothing> (the cross-entropy's eps) must be in [0, 1], got {config.label_smoothing!r}",
    )


def check_optimizer(config: TrainConfig) -> None:
    """The optimizer part: which options apply to the chosen optimizer and schedule, then every value
    as ``core/optimizers`` checks it (by building the optimizer of the spec)."""
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
        config.lr_gamma is None or 0.0 < config.lr_gamma <= 1.0, f"<lr_gamma> must be in (0, 1], got {config.lr_gamma}"
    )
    need(
        config.lr_time_decay is None or config.lr_time_decay >= 0.0,
        f"<lr_time_decay> must be >= 0, got {config.lr_time_decay}",
    )
    need(
        config.lr_warmup is None or (isinstance(config.lr_warmup, int) and config.lr_warmup >= 0),
        f"<lr_warmup> (steps of warmup) must be an integer >= 0, got {config.lr_warmup}",
    )
    options = config.optimizer_options
    need(options is None or isinstance(options, dict), f"<optimizer_options> must be an object, got {options!r}")
    shadowed = sorted(set(options or {}) & {"type", "schedule", *OPTIMIZER_FIELDS})
    need(not shadowed, f"<optimizer_options> {shadowed} have settings of their own: give them there")
    if options:
        build_optimizer(optimizer_spec(config, 1), "loops")  # core's ConfigError for a bad option or value


def check_run(config: TrainConfig) -> None:
    """The run part."""
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
    check_augmentations(config)
    need(
        math.isfinite(config.input_mean) and math.isfinite(config.input_std) and config.input_std > 0.0,
        f"input normalisation needs a finite <input_mean> and an <input_std> > 0, got {config.input_mean}, "
        f"{config.input_std}",
    )
    need(config.report_every >= 1, f"<report_every> must be >= 1, got {config.report_every}")
    need(
        config.report_every_steps is None or config.report_every_steps >= 1,
        f"<report_every_steps> must be >= 1, got {config.report_every_steps}",
    )


def is_number(value: Any) -> bool:
    """A finite int or float that is not a bool (a JSON file may hold anything)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_augmentations(config: TrainConfig) -> None:
    """The crops (up to 8 pixels, as the shifts), the rotation and scaling, and the erasing (the ranges
    of scratchnet.data.augment_checks)."""
    need(
        isinstance(config.crop, int) and not isinstance(config.crop, bool) and 0 <= config.crop <= 8,
        f"<crop> (pixels of padding around a random crop) must be in 0..8, got {config.crop!r}",
    )
    need(
        is_number(config.rotate) and 0.0 <= config.rotate <= 180.0,
        f"<rotate> (degrees of random rotation either way) must be in [0, 180], got {config.rotate!r}",
    )
    need(
        is_number(config.scale) and 0.0 <= config.scale < 1.0,
        f"<scale> (random scaling by 1 - S to 1 + S) must be in [0, 1), got {config.scale!r}",
    )
    need(
        is_number(config.erase) and 0.0 <= config.erase <= 1.0,
        f"<erase> (the probability of random erasing) must be in [0, 1], got {config.erase!r}",
    )
    need(isinstance(config.erase_noise, bool), f"<erase_noise> must be true or false, got {config.erase_noise!r}")
    need(
        not config.erase_noise or config.erase > 0.0,
        "<erase_noise> says what <erase> fills its rectangles with: give <erase> a probability too",
    )


def check_data_settings(config: TrainConfig) -> None:
    """The data part: the settings of your own data (``data`` and the ones that say how to read it)."""
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


def steps_per_epoch(config: TrainConfig, train_size: int) -> int:
    return config.run_settings().steps_per_epoch(train_size)
