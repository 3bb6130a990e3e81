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
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from scratchnet.core import notation
from scratchnet.core.architecture import plan
from scratchnet.core.errors import ConfigError, quoted_list
from scratchnet.core.registry import output_for_loss
from scratchnet.data.own import DataOptions, data_name
from scratchnet.training.config_checks import (
    DATA_SETTINGS as DATA_SETTINGS,
)
from scratchnet.training.config_checks import (
    LEGACY_SCHEDULE_DEFAULTS as LEGACY_SCHEDULE_DEFAULTS,
)
from scratchnet.training.config_checks import (
    SCHEDULES as SCHEDULES,
)
from scratchnet.training.config_checks import (
    SEED_MAX as SEED_MAX,
)
from scratchnet.training.config_checks import (
    SETTING_NAMES,
)
from scratchnet.training.config_checks import (
    SPLITS as SPLITS,
)
from scratchnet.training.config_checks import (
    SettingError as SettingError,
)
from scratchnet.training.config_checks import (
    check_config as check_config,
)
from scratchnet.training.config_checks import (
    need as need,
)
from scratchnet.training.optimizer import optimizer_settings as optimizer_settings  # re-exported
from scratchnet.training.optimizer import optimizer_spec as optimizer_spec  # re-exported

# A classifier's output layer, one unit per class, and what turns its scores into probabilities
# (what a CrossEntropy network ends in, as the registry says).
OUTPUT_LAYER = "Dense"
PROBABILITIES = output_for_loss("CrossEntropy")

DATA_DEFAULT = -1  # a TrainConfig's validation left to the data: DATASET_VALIDATION, or 0 for your own data
DATASET_VALIDATION = 10000  # MNIST's and Fashion-MNIST's validation split (the last 10,000 training images)


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


SETTING_NAMES.update(f.name for f in fields(TrainConfig))  # the names a SettingError writes as <name>

# The settings that are tuples in a TrainConfig and lists in JSON.

TUPLE_SETTINGS = ("hidden", "betas", "image_shape", "image_size")
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
            if kind == PROBABILITIES and number != len(items):
                raise SettingError(
                    f"<layers> item {number} {item.strip()!r}: a Softmax comes last only, after the output layer "
                    f"(dense({classes}), one unit per class), whose scores it turns into probabilities"
                )
        if kinds and kinds[-1][0] == PROBABILITIES:
            if len(kinds) < 2 or kinds[-2] != (OUTPUT_LAYER, classes):
                raise SettingError(
                    f"<layers> item {len(items)} {items[-1].strip()!r}: a Softmax comes after the output layer, "
                    f"dense({classes}) (one unit per class): end the layers with 'dense({classes}), softmax', or "
                    "leave the softmax out and the output layer is added"
                )
            return True
        return bool(kinds) and kinds[-1] == (OUTPUT_LAYER, classes)

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
    return kind, units if kind == OUTPUT_LAYER and isinstance(units, int) else None


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


def steps_per_epoch(config: TrainConfig, train_size: int) -> int:
    return config.run_settings().steps_per_epoch(train_size)
