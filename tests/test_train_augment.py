"""Issue 29's training side: the crops, rotations and scalings, random erasing and label smoothing of
``scratchnet train`` (flags, TrainConfig fields, the batch pipeline), exact resumes, both backends fed
the same batches, and old files and recipes unchanged."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from subprocesses import run_scratchnet
from test_train import interrupt_at, quiet, same_params, synthetic

from scratchnet.cli import main
from scratchnet.core.errors import ConfigError
from scratchnet.core.rng import derive_seed
from scratchnet.data import Dataset, load_dataset
from scratchnet.data import augment as aug
from scratchnet.io.model import load_model
from scratchnet.training.config import TrainConfig
from scratchnet.training.feeding import AUGMENT_LABEL, Batches, augmented, check_fits, feeder_of
from scratchnet.training.loop import Callback, Loop
from scratchnet.training.recipes import RECIPES, Recipe, recipe_settings
from scratchnet.training.train import TrainingInterrupted, checkpoint_path_for, resume, train

FIXTURES = Path(__file__).parent / "fixtures"
# The augmentation settings, at the values that leave a run as it was; with the other settings added
# since the recipes' fixture was recorded, the new fields of a flat config.
AUGMENTATION_FIELDS = {
    "crop": 0,
    "rotate": 0.0,
    "scale": 0.0,
    "erase": 0.0,
    "erase_noise": False,
    "label_smoothing": 0.0,
}
NEW_FIELDS = {**AUGMENTATION_FIELDS, "lr_warmup": None}
EVERY_AUGMENTATION = dict(augment=1, flip=True, crop=2, rotate=12.0, scale=0.15, erase=0.6, erase_noise=True)


def error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


# ---- flags, settings and their ranges ----


def test_show_lists_the_new_settings_with_the_flags_given() -> None:
    flags = ["--crop", "3", "--rotate", "10", "--scale", "0.1", "--erase", "0.5", "--erase-noise"]
    done = run_scratchnet("train", "--recipe", "cnn", *flags, "--label-smoothing", "0.1", "--show")
    assert done.returncode == 0, done.stderr
    shown = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if line.startswith("  --")}
    assert shown["--crop"] == ["3", "(given)"] and shown["--rotate"] == ["10", "(given)"]
    assert shown["--scale"] == ["0.1", "(given)"] and shown["--erase"] == ["0.5", "(given)"]
    assert shown["--erase-noise"] == ["yes", "(given)"] and shown["--label-smoothing"] == ["0.1", "(given)"]
    plain = run_scratchnet("train", "--recipe", "default", "--show")
    lines = {line.split()[0]: line.split()[1:] for line in plain.stdout.splitlines() if line.startswith("  --")}
    assert lines["--crop"] == ["0"] and lines["--erase-noise"] == ["no"] and lines["--label-smoothing"] == ["0"]
    assert lines["--augment"] == ["2"]  # the recipe's own augmentation is as it was


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--crop", "9"], "--crop (pixels of padding around a random crop) must be in 0..8, got 9"),
        (["--rotate", "180.5"], "--rotate (degrees of random rotation either way) must be in [0, 180], got 180.5"),
        (["--scale", "1"], "--scale (random scaling by 1 - S to 1 + S) must be in [0, 1), got 1.0"),
        (["--erase", "1.01"], "--erase (the probability of random erasing) must be in [0, 1], got 1.01"),
        (["--erase-noise"], "--erase-noise says what --erase fills its rectangles with: give --erase"),
        (["--resume", "run.checkpoint.json", "--crop", "2"], "drop --crop"),
    ],
)
def test_out_of_range_settings_are_one_line_errors(
    tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--data-dir", str(tmp_path), *argv]) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and message in lines[0], lines


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--crop", "-1"], "argument --crop: expected an integer >= 0"),
        (["--crop", "1.5"], "argument --crop: expected an integer >= 0"),
        (["--rotate", "-3"], "argument --rotate: expected a finite number >= 0"),
        (["--scale", "inf"], "argument --scale: expected a finite number >= 0"),
        (["--erase", "x"], "argument --erase: expected a number >= 0"),
        (["--label-smoothing", "1.5"], "argument --label-smoothing: expected a number in [0, 1]"),
        (["--label-smoothing", "-0.1"], "argument --label-smoothing"),
    ],
)
def test_unreadable_values_are_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["train", *argv])
    assert exit_.value.code == 2
    assert message in error_lines(capsys)[-1]


def test_a_refusal_on_the_command_line_is_one_line_and_exit_1() -> None:
    done = run_scratchnet("train", "--erase", "0.5", "--rotate", "400", "--show")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "scratchnet train: error: --rotate (degrees of random rotation either way) must be in [0, 180], got 400.0"
    ]


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"crop": True}, "crop"),
        ({"crop": 2.5}, "crop"),
        ({"rotate": float("nan")}, "rotate"),
        ({"scale": -0.1}, "scale"),
        ({"erase": "0.5"}, "erase"),
        ({"erase_noise": "yes", "erase": 0.5}, "erase_noise must be true or false"),
        ({"label_smoothing": 2}, "label_smoothing"),
        ({"label_smoothing": True}, "label_smoothing"),
    ],
)
def test_a_file_with_bad_values_is_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(settings)


def test_a_table_refuses_the_image_augmentations() -> None:
    table = Dataset(
        "table", np.zeros((20, 4), np.float32), np.zeros(20, np.uint8), np.zeros((5, 4), np.float32),
        np.zeros(5, np.uint8), ("a", "b"), scale=1.0,
    )  # fmt: skip
    settings: dict[str, Any] = {"crop": 2, "rotate": 5.0, "scale": 0.1, "erase": 0.5}
    for name, value in settings.items():
        with pytest.raises(ConfigError, match=f"{name} change images; table is a table of 4 features"):
            check_fits(TrainConfig(validation=0, **{name: value}), table)
    check_fits(TrainConfig(validation=0, label_smoothing=0.1), table)  # the loss's smoothing suits any data


# ---- label smoothing: the loss description ----


def test_label_smoothing_is_written_into_the_loss_of_either_kind_of_network() -> None:
    mlp = TrainConfig(hidden=(8,), label_smoothing=0.1).network().architecture((28, 28), 10)
    assert mlp["loss"] == {"type": "CrossEntropy", "label_smoothing": 0.1}
    cnn = TrainConfig(layers="conv(4, 3), relu, flatten", label_smoothing=0.05).network().architecture((28, 28), 10)
    assert cnn["loss"] == {"type": "CrossEntropy", "label_smoothing": 0.05}
    assert TrainConfig().network().architecture((28, 28), 10)["loss"] == {"type": "CrossEntropy"}  # 0: as before


# ---- the batch pipeline ----


def mnist_sample(data_dir: Path, n_train: int, n_test: int) -> Dataset:
    data = load_dataset("mnist", data_dir)
    return Dataset(
        "mnist", data.train_images[:n_train], data.train_labels[:n_train], data.test_images[:n_test],
        data.test_labels[:n_test], data.class_names,
    )  # fmt: skip


def batch_images(config: TrainConfig, images: Any, labels: Any, epoch: int, step: int) -> Any:
    """The pixels of the run's batch (epoch, step), back from its inputs ((pixel / 255 - 0) / 1)."""
    batches = Batches(config.run_settings(), images, labels, feeder_of(config))
    inputs, _, _ = batches.batch(epoch, step)
    return np.rint(np.asarray(inputs, dtype=np.float64).reshape(-1, 28, 28) * 255.0).astype(np.uint8)


def test_each_augmentation_draws_from_its_own_stream_and_erasing_comes_last(data_dir: Path) -> None:
    data = mnist_sample(data_dir, 64, 1)
    images, labels = data.train_images, data.train_labels
    base = dict(batch_size=32, seed=11, validation=0, crop=2, rotate=10.0, dtype="float64")
    before = batch_images(TrainConfig(**base), images, labels, 1, 1)  # type: ignore[arg-type]
    after = batch_images(TrainConfig(**base, erase=1.0), images, labels, 1, 1)  # type: ignore[arg-type]
    erased = 0
    for old, new in zip(before, after, strict=True):
        changed = np.argwhere(old != new)
        if len(changed):
            (top, left), (bottom, right) = changed.min(axis=0), changed.max(axis=0)
            box = new[top : bottom + 1, left : right + 1]
            assert not box.any()  # one black rectangle, as erasing draws it (after the crop and rotation)
            erased += 1
            outside = np.ones_like(old, dtype=bool)
            outside[top : bottom + 1, left : right + 1] = False
            assert np.array_equal(old[outside], new[outside])
    assert erased >= 16  # with p = 1 nearly every image is erased where the digit is


def test_the_pipeline_is_the_documented_order_of_the_library_functions() -> None:
    images = np.random.default_rng(0).integers(0, 256, (10, 28, 28)).astype(np.uint8)
    config = TrainConfig(seed=5, **EVERY_AUGMENTATION)  # type: ignore[arg-type]
    seed = derive_seed(5, AUGMENT_LABEL, 3)  # epoch 3's augmentation seed; the stream is the step
    by_hand = aug.shift_images(images, 1, seed, 7)
    by_hand = aug.flip_images(by_hand, seed, 7)
    by_hand = aug.crop_images(by_hand, 2, seed, 7)
    by_hand = aug.affine_images(by_hand, 12.0, 0.15, seed, 7)
    by_hand = aug.erase_images(by_hand, 0.6, seed, 7, fill="noise")
    assert np.array_equal(augmented(config.run_settings(), images, 3, 7), by_hand)
    assert not np.array_equal(augmented(config.run_settings(), images, 3, 6), by_hand)
    plain = TrainConfig(seed=5).run_settings()
    assert augmented(plain, images, 3, 7) is images  # all off: the batch as it was


class Recording:
    """The loop's batches, each kept as the loop takes it."""

    def __init__(self, batches: Any, fed: list[tuple[Any, Any, int]]) -> None:
        self.inner, self.fed, self.steps = batches, fed, batches.steps

    def batch(self, epoch: int, step: int) -> tuple[Any, Any, int]:
        batch: tuple[Any, Any, int] = self.inner.batch(epoch, step)
        self.fed.append(batch)
        return batch


class Fed(Callback):
    """Records every batch the loop feeds the network."""

    def __init__(self) -> None:
        self.batches: list[tuple[Any, Any, int]] = []

    def on_epoch_start(self, loop: Loop) -> None:
        if not isinstance(loop.batches, Recording):
            loop.batches = Recording(loop.batches, self.batches)


def test_both_backends_are_fed_the_same_augmented_batches(data_dir: Path) -> None:
    data = mnist_sample(data_dir, 60, 10)
    settings = dict(hidden=(4,), epochs=2, batch_size=20, validation=0, seed=2, dtype="float64")
    fed: dict[str, list[tuple[Any, Any, int]]] = {}
    for backend in ("loops", "vectorized"):
        config = TrainConfig(backend=backend, label_smoothing=0.1, **settings, **EVERY_AUGMENTATION)  # type: ignore[arg-type]
        watch = Fed()
        train(config, dataset=data, log=quiet, check=False, callbacks=(watch,))
        fed[backend] = watch.batches
    plain = Fed()
    train(TrainConfig(**settings), dataset=data, log=quiet, check=False, callbacks=(plain,))  # type: ignore[arg-type]
    assert len(fed["loops"]) == len(fed["vectorized"]) == len(plain.batches) == 6
    for (x_loops, y_loops, n_loops), (x_vec, y_vec, n_vec), (x_plain, _, _) in zip(
        fed["loops"], fed["vectorized"], plain.batches, strict=True
    ):
        assert isinstance(x_loops, list) and isinstance(x_vec, np.ndarray)  # each backend's own form
        assert np.array_equal(np.array(x_loops), x_vec) and list(y_loops) == list(y_vec) and n_loops == n_vec
        assert not np.array_equal(x_vec, x_plain)  # and they are augmented


# ---- tiny real runs ----


@pytest.fixture(scope="module")
def mnist(data_dir: Path) -> Dataset:
    return load_dataset("mnist", data_dir)


TINY = dict(hidden=(16,), epochs=1, limit=300, validation=1000, batch_size=100, seed=4)


def tiny_run(data: Dataset, **settings: Any) -> Any:
    return train(TrainConfig(**TINY, **settings), dataset=data, log=quiet, check=False)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "settings",
    [
        {"crop": 2},
        {"rotate": 15.0},
        {"scale": 0.15},
        {"erase": 0.5},
        {"erase": 0.5, "erase_noise": True},
        {"label_smoothing": 0.1},
    ],
    ids=lambda settings: "+".join(settings),
)
def test_a_tiny_mnist_run_with_each_setting_differs_and_repeats(mnist: Dataset, settings: dict[str, Any]) -> None:
    without = tiny_run(mnist)
    first, second = tiny_run(mnist, **settings), tiny_run(mnist, **settings)
    assert not same_params(without.network, first.network)
    assert same_params(first.network, second.network)
    assert first.history[0]["loss"] == second.history[0]["loss"] != without.history[0]["loss"]
    assert first.test_accuracy == second.test_accuracy


def test_a_tiny_mnist_run_on_the_command_line_names_and_saves_its_settings(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    flags = ["--crop", "2", "--rotate", "10", "--scale", "0.1", "--erase", "0.5", "--erase-noise"]
    done = run_scratchnet(
        "train", "--data-dir", str(data_dir), "--hidden", "16", "--limit", "300", "--epochs", "1", "--no-check",
        "--validation", "1000", *flags, "--label-smoothing", "0.1", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "label smoothing 0.1" in done.stdout
    assert (
        "shifts up to 2 px, random crops (padding 2 px), rotations up to 10 degrees, scaling by 0.9 to 1.1, "
        "random erasing (p 0.5 with noise), seed 0" in done.stdout
    )
    model = load_model(out)
    assert model.architecture["loss"] == {"type": "CrossEntropy", "label_smoothing": 0.1}
    saved = model.metadata["training"]["config"]
    assert {k: saved[k] for k in AUGMENTATION_FIELDS} == {
        "crop": 2, "rotate": 10.0, "scale": 0.1, "erase": 0.5, "erase_noise": True, "label_smoothing": 0.1,
    }  # fmt: skip


# ---- resume ----


@pytest.mark.parametrize("epoch, step", [(0, 3), (1, 0)])
def test_an_interrupted_run_with_every_augmentation_resumes_bit_for_bit(tmp_path: Path, epoch: int, step: int) -> None:
    data = synthetic(n_train=200, n_test=40)
    config = TrainConfig(
        dataset="synthetic", hidden=(8,), dropout=0.2, epochs=2, batch_size=25, validation=40, seed=9,
        label_smoothing=0.1, **EVERY_AUGMENTATION,  # type: ignore[arg-type]
    )  # fmt: skip
    whole = train(config, dataset=data, out=tmp_path / "a.json", log=quiet, check=False)
    with pytest.raises(TrainingInterrupted):
        train(config, dataset=data, out=tmp_path / "b.json", log=quiet, check=False, hook=interrupt_at(epoch, step))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    checkpoint = checkpoint_path_for(tmp_path / "b.json")
    assert TrainConfig.from_dict(load_model(checkpoint).metadata["training"]["config"]) == config
    resumed = resume(checkpoint, dataset=data, log=quiet)
    assert same_params(whole.network, resumed.network)
    keys = ("epoch", "loss", "train_accuracy", "validation_accuracy", "lr")
    assert [{k: h[k] for k in keys} for h in whole.history] == [{k: h[k] for k in keys} for h in resumed.history]


# ---- old files and the recipes ----


def test_old_settings_load_with_every_new_setting_off() -> None:
    old = json.loads((FIXTURES / "training-before-redesign.json").read_text())["settings"]
    config = TrainConfig.from_dict(old)
    assert {name: getattr(config, name) for name in NEW_FIELDS} == NEW_FIELDS
    assert config.network().architecture((4,), 3)["loss"] == {"type": "CrossEntropy"}
    assert not config.run_settings().augmenting


def test_a_recipe_names_the_new_settings_as_data() -> None:
    recipe = Recipe(
        "augmented",
        "a test recipe",
        network={"layers": "conv(4, 3), relu, flatten", "label_smoothing": 0.1},
        optimizer={"type": "adam", "lr": 0.002},
        run={"crop": 2, "rotate": 8.0, "scale": 0.1, "erase": 0.25},
        per_dataset={"fashion-mnist": {"flip": True, "rotate": 0.0, "erase_noise": True}},
    )
    digits = TrainConfig(**recipe.settings_for("mnist"))
    assert (digits.crop, digits.rotate, digits.scale, digits.erase, digits.erase_noise) == (2, 8.0, 0.1, 0.25, False)
    assert digits.network().architecture((28, 28), 10)["loss"] == {"type": "CrossEntropy", "label_smoothing": 0.1}
    clothes = TrainConfig(dataset="fashion-mnist", **recipe.settings_for("fashion-mnist"))
    assert (clothes.flip, clothes.rotate, clothes.erase_noise, clothes.crop) == (True, 0.0, True, 2)


def test_the_recipes_give_the_settings_they_gave_before() -> None:
    """All 15 recipe/data pairs (5 recipes; MNIST, Fashion-MNIST and your own data), recorded at a886f90."""
    recorded = json.loads((FIXTURES / "recipes-before-augmentation.json").read_text())
    # the recipe recorded as "cnn" is "cnn-quick" now (issue 29 gave "cnn" new settings)
    renamed = {"cnn": "cnn-quick"}
    assert len(recorded) == 15 and set(RECIPES) - {
        renamed.get(key.split("/")[0], key.split("/")[0]) for key in recorded
    } == {"cnn"}
    for key, before in recorded.items():
        recorded_name, data = key.split("/")
        name = renamed.get(recorded_name, recorded_name)
        dataset = "" if data == "own data" else data
        settings = recipe_settings(name, dataset)
        assert json.loads(json.dumps(settings)) == before["recipe_settings"], key
        now = TrainConfig(dataset=dataset or "own", recipe=name, **settings).to_dict()
        assert {k: v for k, v in now.items() if k not in NEW_FIELDS} == {**before["config"], "recipe": name}, key
        assert {k: now[k] for k in NEW_FIELDS} == NEW_FIELDS, key


# ---- issue 29's cnn recipe, and a residual CNN through the training loop ----

RESIDUAL_CNN = (
    "conv(4, 3), batchnorm, relu, residual(conv(4, 3, padding=1), batchnorm, relu, conv(4, 3, padding=1), "
    "batchnorm), relu, maxpool(2), flatten"
)


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_the_cnn_recipe_names_its_settings_as_data(dataset: str) -> None:
    config = TrainConfig(dataset=dataset, recipe="cnn", **recipe_settings("cnn", dataset))
    assert config.layers is not None and config.label_smoothing == 0.1 and config.validation == 0
    assert config.layers.count("conv(") == (2 if dataset == "mnist" else 3)
    if dataset == "mnist":  # digits: cropped, turned and scaled a little, never mirrored
        assert (config.crop, config.rotate, config.scale, config.flip, config.erase) == (2, 10.0, 0.1, False, 0.0)
    else:  # clothes: mirrored only
        assert (config.crop, config.rotate, config.scale, config.flip, config.erase) == (0, 0.0, 0.0, True, 0.0)


def test_a_residual_cnn_builds_checks_and_trains() -> None:
    config = TrainConfig(
        layers=RESIDUAL_CNN, label_smoothing=0.1, crop=1, rotate=5.0, epochs=1, batch_size=16, validation=0
    )
    from scratchnet.training.train import architecture_of

    network = architecture_of(config, (28, 28), 10)
    residuals = [layer for layer in network["layers"] if layer["type"] == "Residual"]
    assert len(residuals) == 1 and network["loss"] == {"type": "CrossEntropy", "label_smoothing": 0.1}
    data = synthetic(n_train=64, n_test=16, classes=4)
    lines: list[str] = []
    result = train(config, dataset=data, log=lines.append)  # with the cross-check of the narrowed network
    assert any(line.startswith("cross-check passed") for line in lines), lines
    assert len(result.history) == 1 and result.history[0]["loss"] > 0.0
