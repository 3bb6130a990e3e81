"""Recipes: the classic tutorial's setup exactly, and the default recipes' settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_train import synthetic

from scratchnet.builders import build_network
from scratchnet.core.errors import ConfigError
from scratchnet.training.recipes import RECIPES, recipe_config
from scratchnet.training.train import architecture_of, optimizer_spec, split_dataset, steps_per_epoch, train


def test_classic_is_the_tutorial_network_and_training() -> None:
    config = recipe_config("classic", "mnist")
    architecture = architecture_of(config, (28, 28), 10)
    assert architecture["layers"] == [
        {"type": "Dense", "in_features": 784, "out_features": 10, "init": "uniform"},
        {"type": "ReLU"},
        {"type": "Dense", "in_features": 10, "out_features": 10, "init": "uniform"},
        {"type": "Softmax"},
    ]
    assert architecture["loss"] == {"type": "CrossEntropy"} and architecture["l2"] == 0.0
    net = build_network(architecture, dtype=config.dtype, seed=config.seed)
    for name, value in net.params().items():  # weights AND biases uniform in [-0.5, 0.5)
        assert value.min() >= -0.5 and value.max() < 0.5 and value.std() > 0.15, name
    # full-batch gradient descent, learning rate 0.1, 500 iterations
    assert config.batch_size == 0 and steps_per_epoch(config, 59000) == 1 and config.epochs == 500
    assert optimizer_spec(config, 1) == {"type": "SGD", "lr": 0.1, "schedule": None}
    assert config.dropout == 0.0 and config.augment == 0 and config.input_mean == 0.0 and config.input_std == 1.0
    # the first 1,000 training images are the dev set, the other 59,000 the training set
    data = synthetic(n_train=1500)
    split = split_dataset(data, config)
    assert np.array_equal(split.val_images, data.train_images[:1000])
    assert np.array_equal(split.train_images, data.train_images[1000:])


def test_a_short_classic_run_learns(data_dir: Path) -> None:
    """60 of the 500 full-batch iterations on 10,000 images: well on the way (the full run gives ~85%)."""
    lines: list[str] = []
    config = recipe_config("classic", "mnist", epochs=60, limit=10000, report_every=30)
    result = train(config, data_dir=data_dir, log=lines.append, check=False, progress=False)
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == ["30/60", "60/60"]
    assert len(result.history) == 2 and result.history[0]["images_per_second"] > 0
    assert result.validation_accuracy > 0.45
    assert result.history[1]["loss"] < result.history[0]["loss"]


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_default_recipes_are_valid(dataset: str) -> None:
    config = recipe_config("default", dataset)
    assert config.backend == "vectorized" and config.dtype == "float32" and config.recipe == "default"
    assert len(config.hidden) >= 1 and config.validation == (10000 if dataset == "mnist" else 0)


def test_overrides_and_unknown_recipes() -> None:
    config = recipe_config("small", "mnist", backend="loops", limit=2000)
    assert config.hidden == (32,) and config.backend == "loops" and config.limit == 2000
    assert set(RECIPES) >= {"default", "classic", "small"}
    with pytest.raises(ConfigError, match="unknown recipe"):
        recipe_config("fancy", "mnist")
