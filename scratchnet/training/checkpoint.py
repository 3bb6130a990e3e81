"""Checkpoints: where a run is (:class:`RunState`), where it writes, and saving and reading it.

A checkpoint is a model file (the model format) with the optimizer section and, in its metadata, a
``checkpoint`` section: the run's position and running sums, the layers' training counters (the
Dropout mask streams; the registry's ``counters``) and the number of training samples. Resuming it
continues the very run, to the model an uninterrupted run gives.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scratchnet.core.errors import ConfigError, TrainingError
from scratchnet.core.interface import Network
from scratchnet.core.jsonread import MAX_BYTES as MAX_JSON_BYTES
from scratchnet.core.jsonread import read_json
from scratchnet.core.registry import type_of
from scratchnet.data import Dataset
from scratchnet.data.images import Feeder
from scratchnet.io.model import ModelWriteError, model_paths, save
from scratchnet.training.config import TrainConfig
from scratchnet.training.feeding import feeder_of
from scratchnet.training.outputs import CHECKPOINT_FORMAT

AnyNetwork = Network[Any, Any]


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


@dataclass
class RunState:
    """Where a run is: epochs done, steps done in the current epoch, and the running sums since the
    last record (the epoch's, or with reports every N steps, those steps')."""

    epoch: int = 0  # epochs completed
    step: int = 0  # steps completed in the current epoch
    loss_sum: float = 0.0  # the sum of batch loss x batch size since the last record
    correct: int = 0  # ... the task's score (a classifier's right answers)
    seen: int = 0  # ... and the samples so far
    seconds: float = 0.0  # ... and their seconds so far
    elapsed: float = 0.0  # wall-clock seconds of the run so far (steps, validation, checkpoints)
    window_seconds: float = 0.0  # seconds and images of the completed epochs since the last report
    window_images: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)  # settings changed mid-run, for the next record

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


def counters(network: AnyNetwork) -> list[int]:
    """The training counters of the network's layers (the registry's ``counters`` of each type), in order."""
    return [int(getattr(layer, name)) for layer in network.layers for name in type_of(layer).counters]


def set_counters(network: AnyNetwork, values: Any, where: Path) -> None:
    """Restore :func:`counters`; ConfigError when ``values`` do not fit the network."""
    slots = [(layer, name) for layer in network.layers for name in type_of(layer).counters]
    if not isinstance(values, list) or len(values) != len(slots):
        raise ConfigError(f"{where}: the checkpoint's Dropout counters do not fit its network")
    for (layer, name), value in zip(slots, values):
        setattr(layer, name, int(value))


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


def checkpoint_section(state: RunState, network: AnyNetwork, train_samples: int) -> dict[str, Any]:
    """The ``checkpoint`` section of a checkpoint's metadata."""
    return {
        "format": CHECKPOINT_FORMAT,
        "state": state.to_dict(),
        "dropout_calls": counters(network),
        "train_images": train_samples,
    }


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


def remove_model_files(path: Path) -> None:
    """Delete a model pair NAME.json + NAME.npz (a finished run's checkpoint)."""
    for candidate in model_paths(path):
        with suppress(FileNotFoundError):
            candidate.unlink()
