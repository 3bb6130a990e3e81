"""The checks of a training run's settings, each part checking its own: :mod:`scratchnet.training.config`
holds the settings and calls :func:`check_config` when a TrainConfig is made. A setting out of range is
a :class:`SettingError`, whose message the command line words in flags (``--lr``) and the Python API in
fields (``lr``)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from scratchnet.builders import BACKENDS, build_optimizer
from scratchnet.core.architecture import ACTIVATION_LAYERS, DTYPES
from scratchnet.core.errors import ConfigError
from scratchnet.core.settings import optimizer_type
from scratchnet.training.optimizer import OPTIMIZER_FIELDS, optimizer_spec

SCHEDULES = ("constant", "cosine", "step", "inverse_time", "linear")
SPLITS = ("end", "start")
SEED_MAX = 2**64 - 1  # seeds are 64-bit (scratchnet.core.rng): a larger one would be cut to its low bits
# The settings that say how to read your own data: each needs ``data``.
DATA_SETTINGS = ("test", "test_fraction", "label_column", "image_shape", "table", "channels", "image_size")

# The schedule each schedule option belongs to, and the value files written before the options could
# be None (unused) held for it.
LEGACY_SCHEDULE_DEFAULTS = {
    "lr_min": ("cosine", 0.0),
    "lr_step": ("step", 1),
    "lr_gamma": ("step", 0.1),
    "lr_time_decay": ("inverse_time", 0.0),
    "lr_warmup": ("cosine", 0),
}

# The names of TrainConfig's fields, which a SettingError's template writes as <name>: registered by
# scratchnet.training.config when it defines TrainConfig.
SETTING_NAMES: set[str] = set()

# ``config`` below is a TrainConfig (scratchnet.training.config), which imports these checks: typed
# Any here, so that the two modules do not import each other.


class SettingError(ConfigError):
    """A TrainConfig setting out of range or not applicable. The message names each setting as
    ``<field>`` in :attr:`template`; ``str()`` shows the field names, :meth:`naming` another spelling
    (the command line shows its flags: ``--lr-min must be in [0, --lr]``)."""

    def __init__(self, template: str) -> None:
        self.template = template
        super().__init__(self.naming(lambda field: field))

    def naming(self, name: Callable[[str], str]) -> str:
        known = SETTING_NAMES
        return re.sub(r"<(\w+)>", lambda m: name(m.group(1)) if m.group(1) in known else m.group(0), self.template)


def need(ok: bool, message: str) -> None:
    """SettingError(message) unless ``ok``."""
    if not ok:
        raise SettingError(message)


def check_config(config: Any) -> None:
    """Each part checks itself: the network, the optimizer, the run and the data."""
    check_network(config)
    check_optimizer(config)
    check_run(config)
    check_data_settings(config)


def check_network(config: Any) -> None:
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


def check_optimizer(config: Any) -> None:
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
        # core's ConfigError for a bad option or value; the schedule waits for the run's length in steps
        # (a warmup is checked against the steps the run will take, not one step an epoch)
        build_optimizer({**optimizer_spec(config, 1), "schedule": None}, "loops")


def check_run(config: Any) -> None:
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


def check_augmentations(config: Any) -> None:
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


def check_data_settings(config: Any) -> None:
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
