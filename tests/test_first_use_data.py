"""Issue 15, items 9 and 16 (data): the data directory and the dataset a model is used with.

``evaluate`` and ``predict`` read the test files only; an explicit data directory is the only one
looked in, and downloads go there; a model used on another dataset than its own says so and names
the true labels by that dataset's classes; the dataset a model records in the spec's documented
``training.dataset`` is found.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from test_evaluate import small_model  # noqa: F401  (the module-scoped fixture)

import scratchnet
import scratchnet.data.datasets as datasets
from scratchnet.builders import build_network
from scratchnet.cli import main
from scratchnet.core.architecture import mlp
from scratchnet.core.errors import DatasetError
from scratchnet.data import DATASETS, load_dataset


def only_test_files(data_dir: Path, tmp_path: Path) -> Path:
    """A data directory holding MNIST's two test files and nothing else (links to the real ones)."""
    folder = tmp_path / "test-only" / "mnist"
    folder.mkdir(parents=True)
    for spec in (DATASETS["mnist"].test_images, DATASETS["mnist"].test_labels):
        os.symlink((data_dir / "mnist" / spec.filename).resolve(), folder / spec.filename)
    return folder.parent


def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Path:
        raise AssertionError(f"tried to download {args[0]}")

    monkeypatch.setattr(datasets, "download_file", refuse)


def test_evaluate_and_predict_need_only_the_test_files(
    small_model: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model, data_dir = small_model
    test_only = only_test_files(data_dir, tmp_path)
    no_downloads(monkeypatch)
    assert main(["evaluate", str(model), "--data-dir", str(test_only)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert main(["predict", str(model), "--data-dir", str(test_only), "--index", "3"]) == 0
    assert main(["predict", str(model), "--data-dir", str(test_only), "--misclassified", "1"]) == 0
    assert main(["explain", str(model), "--data-dir", str(test_only), "--index", "3", "--layer", "2"]) == 0
    test = load_dataset("mnist", test_only, splits=("test",))
    assert test.train_images.shape == (0, 28, 28) and test.test_images.shape == (10000, 28, 28)


def test_an_explicit_data_dir_is_the_only_place_looked_in(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCRATCHNET_DATA_DIR", str(data_dir))  # the real data, which must not be used
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError) as caught:
        load_dataset("mnist", empty, download=False)
    assert str(caught.value).endswith(f"looked in {empty}")
    assert load_dataset("mnist", splits=("test",)).test_labels[0] == 7  # no argument: the variable's folder
    with pytest.raises(DatasetError, match="the data directory name is empty"):
        load_dataset("mnist", "", download=False)


def fashion_model(path: Path) -> Path:
    """An untrained 784-10 network that says it was trained on Fashion-MNIST."""
    net = build_network(mlp([784, 10]), backend="vectorized", seed=0)
    names = list(DATASETS["fashion-mnist"].class_names)
    scratchnet.save(net, path, metadata={"dataset": "fashion-mnist", "class_names": names})
    return path


def test_a_model_used_on_another_dataset_says_so_and_names_labels_by_that_dataset(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = fashion_model(tmp_path / "fashion.json")
    argv = ["predict", str(model), "--data-dir", str(data_dir), "--dataset", "mnist", "--index", "0"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        f"scratchnet predict: warning: {model} was trained on fashion-mnist, not mnist: "
        "its classes are fashion-mnist's, the true labels mnist's\n"
    )
    assert "true label: 7" in captured.out.splitlines()  # MNIST's 7, not "7 Sneaker"
    assert main(["evaluate", str(model), "--data-dir", str(data_dir), "--dataset", "mnist"]) == 0
    assert "warning: " in capsys.readouterr().err


def test_the_dataset_recorded_where_the_spec_documents_it_is_found(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = build_network(mlp([784, 10]), backend="vectorized", seed=0)
    scratchnet.save(net, tmp_path / "m", metadata={"training": {"dataset": "mnist", "epochs": 10}})
    assert main(["evaluate", str(tmp_path / "m.json"), "--data-dir", str(data_dir)]) == 0
    assert "on mnist" in capsys.readouterr().out.splitlines()[0]
