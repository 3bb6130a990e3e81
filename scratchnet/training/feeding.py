"""The data part of a run: loading it, holding out the validation split, and feeding batches.

Everything random is a pure function of the seed (:mod:`scratchnet.core.rng`): the order of each
epoch is ``permutation`` of stream ``epoch`` of ``derive_seed(seed, SHUFFLE_LABEL)``, and the
augmentations of each batch (:func:`augmented`) draw from stream ``step`` of
``derive_seed(seed, AUGMENT_LABEL, epoch)``, each augmentation from a seed of its own derived from
that one, so a batch depends only on (seed, epoch, step): a resumed run draws exactly the batches it
would have, and both backends get the same batches (the loops backend as lists of the same numbers).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scratchnet.core.errors import ConfigError
from scratchnet.core.lazy import lazy_module
from scratchnet.core.rng import derive_seed, permutation
from scratchnet.data import Dataset, load_dataset
from scratchnet.data.augment import affine_images, crop_images, erase_images, flip_images, shift_images
from scratchnet.data.byte_arrays import ByteArray
from scratchnet.data.datasets import resolve_data_dir
from scratchnet.data.images import Feeder, standardization, take_images
from scratchnet.data.own import Layout
from scratchnet.data.own_sets import load_data
from scratchnet.training.config import RunSettings, SettingError, TrainConfig

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    np = lazy_module("numpy", globals(), "np")

SHUFFLE_LABEL = 1001  # derive_seed(seed, SHUFFLE_LABEL): the seed of the epoch orders
AUGMENT_LABEL = 1002  # derive_seed(seed, AUGMENT_LABEL, epoch): the seed of an epoch's augmentations
AUGMENT_NEEDS_NUMPY = "the augmentations need NumPy, which is not installed: train without them"


def load_training_data(config: TrainConfig, data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """The run's data: ``config.data`` (your own) or the dataset ``config.dataset``."""
    if config.data is None:
        return load_dataset(config.dataset, data_dir)
    return load_data(config.data, test=config.test, test_fraction=config.test_fraction, options=config.data_options())


def read_from(config: TrainConfig, dataset: Dataset | None, data_dir: str | os.PathLike[str] | None) -> str | None:
    """The absolute data directory a built-in dataset was loaded from (None for your own data, or a
    dataset handed in)."""
    if config.data is not None or dataset is not None:
        return None
    return str(resolve_data_dir(data_dir).resolve())


def check_fits(config: TrainConfig, data: Dataset) -> None:
    """SettingError for a setting the loaded data cannot take: an augmentation of a table, or of images read
    without NumPy."""
    if isinstance(data.train_images, ByteArray) and config.run_settings().augmenting:
        raise ConfigError(AUGMENT_NEEDS_NUMPY)
    if data.kind != "features":
        return
    if config.augment or config.flip:
        raise SettingError(
            f"<augment> and <flip> shift and mirror images; {data.name} is a table of {data.sample_shape[0]} "
            "features: leave them out"
        )
    given = [f"<{name}>" for name in ("crop", "rotate", "scale", "erase") if getattr(config, name)]
    if given:
        raise SettingError(
            f"{', '.join(given)} change images; {data.name} is a table of {data.sample_shape[0]} features: "
            "leave them out"
        )
    if config.input_mean != 0.0 or config.input_std != 1.0:
        raise SettingError(
            f"<input_mean> and <input_std> scale pixels; {data.name} is a table, whose features are standardized "
            "one by one"
        )


def noun_of(data: Dataset) -> str:
    """What the samples are called in messages: ``images``, or ``rows`` of a table."""
    return "rows" if data.kind == "features" else "images"


def describe_augmentations(config: TrainConfig | RunSettings) -> list[str]:
    """The run's augmentations as the report says them, in the order a batch gets them."""
    said = [f"shifts up to {config.augment} px"] if config.augment else []
    said += ["random flips"] if config.flip else []
    said += [f"random crops (padding {config.crop} px)"] if config.crop else []
    said += [f"rotations up to {config.rotate:g} degrees"] if config.rotate else []
    said += [f"scaling by {1 - config.scale:g} to {1 + config.scale:g}"] if config.scale else []
    noise = " with noise" if config.erase_noise else ""
    said += [f"random erasing (p {config.erase:g}{noise})"] if config.erase else []
    return said


@dataclass(frozen=True, eq=False)
class Split:
    """The training samples, the validation samples and the test samples of a run (views)."""

    train_images: npt.NDArray[Any]
    train_labels: npt.NDArray[Any]
    val_images: npt.NDArray[Any]
    val_labels: npt.NDArray[Any]
    test_images: npt.NDArray[Any]
    test_labels: npt.NDArray[Any]

    def describe(self, config: TrainConfig | RunSettings, total: int, noun: str = "images") -> str:
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


def describe_data(config: TrainConfig | RunSettings, data: Dataset, split: Split) -> str:
    """The line a run starts with: the data and its split, and for your own data what it is."""
    line = f"{data.name}: {split.describe(config, len(data.train_labels), noun_of(data))}"
    if data.source is None:
        return line
    what = Layout.of(data).describe() + ("" if data.kind == "features" else f", pixels / {data.scale:g}")
    test, fraction = data.source.get("test"), data.source.get("test_fraction")
    held = f"test: {test}" if test else (f"test: {fraction:.0%} held out, stratified" if fraction else "no test set")
    return f"{line} ({data.source.get('path')}: {what}, {data.num_classes} classes; {held})"


def split_dataset(data: Dataset, config: TrainConfig | RunSettings) -> Split:
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


def feeder_of(
    config: TrainConfig | RunSettings, shape: tuple[int, ...] | None = None, data: Dataset | None = None
) -> Feeder:
    """How the run turns samples into inputs of ``shape`` (the network's input shape): images by
    ``(pixel / scale - input_mean) / input_std``, a table's features (``data``, whose training split
    gives each feature's mean and standard deviation) by standardization."""
    if data is not None and data.kind == "features":
        mean, std = standardization(split_dataset(data, config).train_images)
        return Feeder(config.backend, config.dtype, mean, std, shape, 1.0, "features")
    scale = 255.0 if data is None else data.scale
    return Feeder(config.backend, config.dtype, config.input_mean, config.input_std, shape, scale)


def augmented(settings: RunSettings, images: npt.NDArray[Any], epoch: int, step: int) -> npt.NDArray[Any]:
    """Batch ``step`` of epoch ``epoch`` augmented as ``settings`` say, in this order: shifted, mirrored,
    cropped from the padded image, rotated and scaled, erased (spec/math.md section 22). Each
    augmentation draws from its own seed, derived from the epoch's (so turning one on leaves the
    others' draws as they were), and stream ``step``; with all of them off the batch is returned as is."""
    seed = derive_seed(settings.seed, AUGMENT_LABEL, epoch)
    if settings.augment:
        images = shift_images(images, settings.augment, seed, step)
    if settings.flip:
        images = flip_images(images, seed, step)
    if settings.crop:
        images = crop_images(images, settings.crop, seed, step)
    if settings.rotate or settings.scale:
        images = affine_images(images, settings.rotate, settings.scale, seed, step)
    if settings.erase:
        images = erase_images(images, settings.erase, seed, step, fill="noise" if settings.erase_noise else 0.0)
    return images


class Batches:
    """The training batches of a run: batch ``step`` of epoch ``epoch`` is a pure function of the seed.

    ``batch(epoch, step)`` gives ``(inputs, targets, size)``: the inputs as the network takes them
    (the feeder's), and the labels in the same form (an array with arrays, a list with lists). Full
    -batch gradient descent without augmentations sees the same batch every step: it is converted once."""

    def __init__(
        self,
        settings: RunSettings,
        images: npt.NDArray[Any] | ByteArray,
        labels: npt.NDArray[Any] | ByteArray,
        feeder: Feeder,
    ):
        self.settings, self.images, self.labels, self.feeder = settings, images, labels, feeder
        self.size = len(labels) if settings.batch_size == 0 else settings.batch_size
        self.steps = settings.steps_per_epoch(len(labels))
        self._order: tuple[int, Any] | None = None
        self._whole: tuple[Any, Any, int] | None = None
        self.plain = isinstance(images, ByteArray)  # NumPy absent: orders are lists, samples ByteArrays
        if self.plain and settings.augmenting:
            raise ConfigError(AUGMENT_NEEDS_NUMPY)

    def order(self, epoch: int) -> Any:
        """The order of the samples in ``epoch`` (kept for the epoch's steps)."""
        if self._order is None or self._order[0] != epoch:
            n = len(self.labels)
            shuffle = derive_seed(self.settings.seed, SHUFFLE_LABEL)
            if self.plain:
                order: Any = list(range(n)) if self.steps == 1 else permutation(shuffle, epoch, n)
            else:
                order = np.arange(n) if self.steps == 1 else np.asarray(permutation(shuffle, epoch, n), dtype=np.intp)
            self._order = (epoch, order)
        return self._order[1]

    def batch(self, epoch: int, step: int) -> tuple[Any, Any, int]:
        settings = self.settings
        fixed = self.steps == 1 and not settings.augmenting
        if fixed and self._whole is not None:
            return self._whole
        indices = self.order(epoch)[step * self.size : (step + 1) * self.size]
        if isinstance(self.images, ByteArray):  # self.plain
            batch = (self.feeder.inputs(self.images[indices]), self.labels[indices].tolist(), len(indices))
            self._whole = batch if fixed else None
            return batch
        images = augmented(settings, take_images(self.images, indices), epoch, step)
        inputs = self.feeder.inputs(images)
        labels = self.labels[indices].astype(np.intp)
        batch = (inputs, labels if isinstance(inputs, np.ndarray) else labels.tolist(), len(indices))
        if fixed:
            self._whole = batch
        return batch
