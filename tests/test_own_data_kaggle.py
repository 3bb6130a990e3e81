"""Kaggle's digit-recognizer layout, made from the MNIST IDX files: train.csv (a label column, then
pixel0 ... pixel783) trained with the default MLP recipe to at least 97%, then test.csv (no label)
predicted into a submission file (ImageId from 1, Label), checked against MNIST's own test labels."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from tool_modules import tool

from scratchnet.cli import main
from scratchnet.data import load_dataset
from scratchnet.io.model import load_model

TRAIN_ROWS = 42000  # as many as Kaggle's train.csv
EPOCHS = "5"  # the default recipe with fewer epochs: 97.8% held out, ~22 s (its 20 epochs: 98.3%, ~65 s)


def bench_csv() -> ModuleType:
    return tool("bench_csv")


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any, Any]:
    """train.csv (the first 42,000 MNIST training images) and test.csv (the 10,000 test images,
    without labels), the training rows' labels and the test set (its images and true labels)."""
    env = os.environ.get("SCRATCHNET_DATA_DIR")
    shared = Path(env) if env else Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    if not shared.is_dir():
        pytest.skip("no real dataset directory (set SCRATCHNET_DATA_DIR or provide ../shared/data)")
    mnist = load_dataset("mnist", shared, download=False)
    folder = tmp_path_factory.mktemp("kaggle")
    writer = bench_csv()
    train = writer.write_kaggle_csv(folder / "train.csv", mnist.train_images[:TRAIN_ROWS], mnist.train_labels)
    test = writer.write_kaggle_csv(folder / "test.csv", mnist.test_images, None)
    return train, test, mnist.train_labels[:TRAIN_ROWS], (mnist.test_images, mnist.test_labels)


def test_the_files_are_in_kaggles_layout(kaggle: tuple[Path, Path, Any, Any]) -> None:
    train, test, _, _ = kaggle
    with open(train) as handle:
        header = handle.readline().rstrip("\n").split(",")
        first = handle.readline().rstrip("\n").split(",")
    assert header == ["label"] + [f"pixel{k}" for k in range(784)] and len(first) == 785
    with open(test) as handle:
        assert handle.readline().rstrip("\n").split(",") == header[1:]


def test_train_on_kaggles_csv_and_submit(
    kaggle: tuple[Path, Path, Any, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, test, train_labels, (test_images, truth) = kaggle
    model = tmp_path / "models" / "train.json"
    started = time.perf_counter()
    assert main(["train", "--data", str(train), "--epochs", EPOCHS, "--out", str(model)]) == 0
    seconds = time.perf_counter() - started
    out = capsys.readouterr().out
    held = sum(round(0.2 * count) for count in np.bincount(train_labels))  # a fifth of each digit
    assert f"train: {TRAIN_ROWS - held} training images, no validation split, {held} test" in out
    assert "28x28 grey images, pixels / 255, 10 classes; test: 20% held out, stratified" in out
    assert "network 784-800-800-10 relu; dropout 0.2" in out
    line = next(line for line in out.splitlines() if line.startswith("test accuracy "))
    accuracy = float(line.split()[2].rstrip("%")) / 100
    print(f"Kaggle-layout train.csv: {line} ({seconds:.1f} s in all)")
    assert accuracy >= 0.97
    metadata = load_model(model).metadata
    assert metadata["input"] == {"kind": "image", "shape": [28, 28], "scale": 255.0, "mean": 0.0, "std": 1.0}
    assert metadata["class_names"] == [str(d) for d in range(10)]

    submission = tmp_path / "submission.csv"
    assert main(["predict", str(model), "--csv", str(test), "--out", str(submission)]) == 0
    assert f"wrote {submission}: 10000 predictions (ImageId,Label)" in capsys.readouterr().out
    with open(submission, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["ImageId", "Label"] and len(rows) == 10001
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 10001))
    labels = np.array([int(r[1]) for r in rows[1:]])
    assert np.mean(labels == truth) >= 0.97  # against MNIST's own labels of the test images

    # One test image as a picture file, made to look like MNIST's digits (which it already does)
    picture = tmp_path / "digit.png"
    Image = pytest.importorskip("PIL.Image")
    Image.fromarray(test_images[0]).save(picture)
    assert main(["predict", str(model), "--image", str(picture), "--preprocess"]) == 0
    assert f"prediction: {labels[0]}" in capsys.readouterr().out
