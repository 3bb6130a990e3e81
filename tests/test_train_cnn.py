"""Training convolutional networks: the same run as an MLP's (checks, checkpoints, exact resume with
the batch-norm running statistics, a saved model that evaluates), in both backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_train import SMALL, interrupt_at, quiet, same_params, synthetic

from scratchnet.cli import main
from scratchnet.core.errors import ConfigError
from scratchnet.io.model import load_model
from scratchnet.training.recipes import recipe_config
from scratchnet.training.train import TrainConfig, TrainingInterrupted, architecture_of, resume, train

CNN = {
    **SMALL,
    "hidden": (128,),
    "dropout": 0.0,
    "layers": "conv(3, 5, stride=2), batchnorm, relu, maxpool(2), flatten, dropout(0.2)",
}


def test_layers_give_the_network_between_the_images_and_the_classes() -> None:
    config = TrainConfig(**CNN)  # type: ignore[arg-type]
    architecture = architecture_of(config, (28, 28), 4)
    assert architecture["input_shape"] == [1, 28, 28]
    types = [layer["type"] for layer in architecture["layers"]]
    assert types == ["Conv2D", "BatchNorm", "ReLU", "MaxPool2D", "Flatten", "Dropout", "Dense", "Softmax"]
    # (28 - 5) // 2 + 1 = 12, pooled to 6: 3 channels of 6x6 into one unit per class
    assert architecture["layers"][6] == {"type": "Dense", "in_features": 108, "out_features": 4}


def test_a_cnn_trains_checks_and_resumes_exactly_with_its_running_statistics(tmp_path: Path) -> None:
    data = synthetic()
    config = TrainConfig(**CNN)  # type: ignore[arg-type]
    lines: list[str] = []
    whole = train(config, dataset=data, out=tmp_path / "a.json", log=lines.append)
    assert any(line.startswith("cross-check passed") for line in lines), lines
    assert whole.test_accuracy > 0.9
    running = whole.network.params()["1.running_var"]
    assert not np.allclose(running, 1.0)  # the running statistics moved away from their start

    with pytest.raises(TrainingInterrupted):
        train(config, dataset=data, out=tmp_path / "b.json", log=quiet, check=False, hook=interrupt_at(0, 6))
    resumed = resume(tmp_path / "b.checkpoint.json", dataset=data, log=quiet)
    assert same_params(whole.network, resumed.network)  # running_mean and running_var included
    saved = load_model(tmp_path / "b.json", backend="loops")
    assert saved.architecture["input_shape"] == [1, 28, 28]
    assert same_params(whole.network, saved.network)


def test_the_loops_backend_trains_the_same_cnn(tmp_path: Path) -> None:
    data = synthetic(n_train=120, n_test=30)
    settings = {**CNN, "validation": 40, "batch_size": 20, "epochs": 1}
    vectorized = train(TrainConfig(**{**settings, "dtype": "float64"}), dataset=data, log=quiet, check=False)  # type: ignore[arg-type]
    loops = train(TrainConfig(**{**settings, "backend": "loops"}), dataset=data, log=quiet, check=False)  # type: ignore[arg-type]
    # The convolution's bias stands just before batch norm, which removes any shift: its gradient is
    # 0 in exact arithmetic and rounding noise in each backend, which Adam turns into steps of ~1e-9.
    for name, value in loops.network.params().items():
        np.testing.assert_allclose(np.asarray(value), vectorized.network.params()[name], rtol=1e-9, atol=1e-8)


def test_mlp_settings_with_layers_are_refused() -> None:
    with pytest.raises(ConfigError, match="dropout goes into the layers"):
        TrainConfig(**{**CNN, "dropout": 0.5})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"item 2 'dense\(3\)'"):
        architecture_of(TrainConfig(**{**CNN, "layers": "conv(3, 5), dense(3)"}), (28, 28), 4)  # type: ignore[arg-type]


@pytest.mark.parametrize("flag", [["--hidden", "32"], ["--dropout", "0.1"], ["--activation", "tanh"]])
def test_the_command_line_refuses_mlp_flags_with_a_cnn(flag: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--recipe", "cnn", *flag]) == 1
    err = capsys.readouterr().err
    assert f"{flag[0]} describe" in err and err.count("\n") == 1


def test_the_cnn_recipe_is_a_convolutional_network() -> None:
    config = recipe_config("cnn")
    types = {layer["type"] for layer in architecture_of(config, (28, 28), 10)["layers"]}
    assert {"Conv2D", "BatchNorm", "MaxPool2D", "Flatten", "Dense"} <= types


@pytest.mark.parametrize("recipe", ["cnn", "cnn-quick", "cnn-small"])
@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_every_cnn_recipe_builds_for_every_dataset(recipe: str, dataset: str) -> None:
    config = recipe_config(recipe, dataset)
    network = architecture_of(config, (28, 28), 10)
    convolutions = [layer for layer in network["layers"] if layer["type"] == "Conv2D"]
    output = network["layers"][-2]  # the Dense layer training adds, before the softmax
    assert convolutions and output["type"] == "Dense" and output["out_features"] == 10
    if recipe == "cnn-quick" and dataset == "fashion-mnist":  # the wider network that passes 92.5% (docs/training.md)
        assert [layer["out_channels"] for layer in convolutions] == [32, 64]
        assert config.flip and config.augment == 0 and config.validation == 0 and config.epochs == 22
