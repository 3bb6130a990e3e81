"""Training: a short real-MNIST run, exact resume after Ctrl-C, the NaN guard, checkpoints."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scratchnet.core.errors import ConfigError, TrainingError
from scratchnet.data import Dataset
from scratchnet.io.model import load_model
from scratchnet.training.train import (
    TrainConfig,
    TrainingInterrupted,
    checkpoint_path_for,
    optimizer_spec,
    resume,
    split_dataset,
    steps_per_epoch,
    train,
)


def synthetic(n_train: int = 400, n_test: int = 100, classes: int = 4, seed: int = 0) -> Dataset:
    """Learnable 28x28 uint8 images: each class a bright bar in its own place, plus noise."""
    generator = np.random.default_rng(seed)

    def make(n: int) -> tuple[Any, Any]:
        labels = generator.integers(0, classes, n).astype(np.uint8)
        images = generator.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for k in range(classes):
            images[labels == k, 4 + 5 * k : 7 + 5 * k, 6:22] = 230
        return images, labels

    train_images, train_labels = make(n_train)
    test_images, test_labels = make(n_test)
    return Dataset(
        "synthetic", train_images, train_labels, test_images, test_labels, tuple(f"class{k}" for k in range(classes))
    )


def quiet(line: str) -> None:
    pass


SMALL = dict(
    dataset="synthetic",
    hidden=(16,),
    dropout=0.25,
    augment=1,
    optimizer="adam",
    lr=0.01,
    lr_schedule="cosine",
    epochs=2,
    batch_size=32,
    validation=80,
    seed=3,
)


def params_of(network: Any) -> dict[str, Any]:
    return {name: np.array(value, dtype=np.float64) for name, value in network.params().items()}


def same_params(a: Any, b: Any) -> bool:
    pa, pb = params_of(a), params_of(b)
    return pa.keys() == pb.keys() and all(np.array_equal(pa[k], pb[k]) for k in pa)


def interrupt_at(epoch: int, step: int) -> Any:
    """A hook that sends this process SIGINT (as Ctrl-C does) after the given optimizer step."""

    def hook(e: int, s: int, network: Any) -> None:
        if (e, s) == (epoch, step):
            signal.raise_signal(signal.SIGINT)

    return hook


def test_short_real_mnist_run_reaches_90_percent(data_dir: Path, tmp_path: Path) -> None:
    config = TrainConfig(hidden=(64,), epochs=2, limit=10000, validation=1000, batch_size=64, lr=0.002)
    lines: list[str] = []
    result = train(config, data_dir=data_dir, out=tmp_path / "m.json", log=lines.append, progress=False)
    assert result.test_accuracy > 0.90, lines
    assert any(line.startswith("cross-check passed") for line in lines)
    assert sum(line.startswith("epoch ") for line in lines) == 2
    loaded = load_model(tmp_path / "m.json")
    training = loaded.metadata["training"]
    assert [h["epoch"] for h in training["history"]] == [1, 2]
    assert training["final"]["test_accuracy"] == pytest.approx(result.test_accuracy)
    assert loaded.metadata["dataset"] == "mnist" and loaded.metadata["input"]["scale"] == 255.0
    assert not checkpoint_path_for(tmp_path / "m.json").exists()  # a finished run's checkpoint is removed


@pytest.mark.parametrize("epoch, step", [(0, 4), (0, 9), (1, 0)])
def test_resume_after_ctrl_c_gives_the_uninterrupted_model(tmp_path: Path, epoch: int, step: int) -> None:
    data = synthetic()
    config = TrainConfig(**SMALL)  # type: ignore[arg-type]
    assert steps_per_epoch(config, 320) == 10  # so (0, 9) is the last step of the first epoch
    whole = train(config, dataset=data, out=tmp_path / "a.json", log=quiet, check=False)

    with pytest.raises(TrainingInterrupted) as stop:
        train(config, dataset=data, out=tmp_path / "b.json", log=quiet, check=False, hook=interrupt_at(epoch, step))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    checkpoint = checkpoint_path_for(tmp_path / "b.json")
    assert stop.value.checkpoint == checkpoint and str(checkpoint) in str(stop.value)
    assert "\n" not in str(stop.value)
    assert not (tmp_path / "b.json").exists()

    resumed = resume(checkpoint, dataset=data, log=quiet)
    assert resumed.out == tmp_path / "b.json"
    assert same_params(whole.network, resumed.network)
    assert same_params(whole.network, load_model(tmp_path / "b.json").network)
    keys = ("epoch", "loss", "train_accuracy", "validation_accuracy", "lr")
    assert [{k: h[k] for k in keys} for h in whole.history] == [{k: h[k] for k in keys} for h in resumed.history]
    assert whole.test_accuracy == resumed.test_accuracy


def test_resume_on_the_loops_backend_is_exact(tmp_path: Path) -> None:
    data = synthetic(n_train=150, n_test=20)
    config = TrainConfig(**{**SMALL, "hidden": (4,), "backend": "loops", "validation": 50, "batch_size": 25})  # type: ignore[arg-type]
    whole = train(config, dataset=data, out=tmp_path / "a.json", log=quiet, check=False)
    with pytest.raises(TrainingInterrupted):
        train(config, dataset=data, out=tmp_path / "b.json", log=quiet, check=False, hook=interrupt_at(0, 1))
    resumed = resume(tmp_path / "b.checkpoint.json", dataset=data, log=quiet)
    assert same_params(whole.network, resumed.network)


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    data = synthetic()
    config = TrainConfig(**{**SMALL, "epochs": 3})  # type: ignore[arg-type]

    def poison(epoch: int, step: int, network: Any) -> None:  # a weight becomes NaN in the second epoch
        if (epoch, step) == (1, 2):
            network.layers[0].weight[0, 0] = np.nan

    with pytest.raises(TrainingError) as failure:
        train(config, dataset=data, out=tmp_path / "m.json", log=quiet, check=False, hook=poison)
    message = str(failure.value)
    checkpoint = checkpoint_path_for(tmp_path / "m.json")
    assert (
        "nan" in message and "epoch 2, step 4" in message and str(checkpoint) in message and "after epoch 1" in message
    )
    assert "\n" not in message
    kept = load_model(checkpoint)
    assert kept.metadata["checkpoint"]["state"]["epoch"] == 1
    assert all(np.isfinite(np.asarray(v)).all() for v in kept.network.params().values())
    assert not (tmp_path / "m.json").exists()


def test_an_absurd_learning_rate_is_caught_as_a_non_finite_loss(tmp_path: Path) -> None:
    config = TrainConfig(**{**SMALL, "optimizer": "sgd", "lr": 1e30, "lr_schedule": "constant", "dropout": 0.0})  # type: ignore[arg-type]
    with pytest.raises(TrainingError, match=r"the loss became (nan|inf)"):
        train(config, dataset=synthetic(), out=tmp_path / "m.json", log=quiet, check=False)
    kept = load_model(checkpoint_path_for(tmp_path / "m.json"))  # the initial checkpoint (epoch 0)
    assert kept.metadata["checkpoint"]["state"]["epoch"] == 0


def test_validation_split_and_limit() -> None:
    data = synthetic(n_train=300)
    split = split_dataset(data, TrainConfig(dataset="synthetic", validation=100, limit=50))
    assert np.array_equal(split.val_images, data.train_images[200:])
    assert np.array_equal(split.train_images, data.train_images[:50])
    split = split_dataset(data, TrainConfig(dataset="synthetic", validation=100, validation_split="start"))
    assert np.array_equal(split.val_labels, data.train_labels[:100])
    assert np.array_equal(split.train_labels, data.train_labels[100:])
    with pytest.raises(ConfigError, match="--limit 201"):
        split_dataset(data, TrainConfig(dataset="synthetic", validation=100, limit=201))
    with pytest.raises(ConfigError, match="leaves no training images"):
        split_dataset(data, TrainConfig(dataset="synthetic", validation=300))


def test_optimizer_spec_turns_epochs_into_steps() -> None:
    config = TrainConfig(
        optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, lr_schedule="step", lr_step=3, lr_gamma=0.5, epochs=9
    )
    assert optimizer_spec(config, 100) == {
        "type": "SGD",
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": True,
        "schedule": {"type": "Step", "step_size": 300, "gamma": 0.5},
    }
    cosine = TrainConfig(lr_schedule="cosine", lr_min=1e-5, epochs=4)
    assert optimizer_spec(cosine, 10)["schedule"] == {"type": "Cosine", "total_steps": 40, "min_lr": 1e-5}


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"optimizer": "adam", "momentum": 0.9}, "momentum applies to sgd and rmsprop"),
        ({"optimizer": "nadam"}, "unknown optimizer"),
        ({"dropout": 1.0}, "dropout"),
        ({"hidden": (0,)}, "hidden"),
        ({"backend": "gpu"}, "backend"),
        ({"lr_schedule": "cosine", "lr_min": 1.0, "lr": 0.1}, "lr_min"),
    ],
)
def test_bad_settings_are_config_errors(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**settings)


def test_config_round_trips_through_json() -> None:
    config = TrainConfig(hidden=(32, 16), betas=(0.8, 0.99), limit=7, recipe="default")
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ConfigError, match="unknown training settings"):
        TrainConfig.from_dict({"epochz": 3})
    assert math.isfinite(config.lr)


def test_resume_refuses_other_data_and_unknown_files(tmp_path: Path) -> None:
    data = synthetic()
    config = TrainConfig(**SMALL)  # type: ignore[arg-type]
    with pytest.raises(TrainingInterrupted):
        train(config, dataset=data, out=tmp_path / "b.json", log=quiet, check=False, hook=interrupt_at(0, 1))
    with pytest.raises(ConfigError, match="trained on 320 images"):
        resume(tmp_path / "b.checkpoint.json", dataset=synthetic(n_train=500), log=quiet)
    with pytest.raises(ConfigError, match="no such checkpoint"):
        resume(tmp_path / "absent.json", log=quiet)
    train(TrainConfig(**{**SMALL, "epochs": 1}), dataset=data, out=tmp_path / "done.json", log=quiet, check=False)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not a scratchnet training checkpoint"):
        resume(tmp_path / "done.json", log=quiet)
