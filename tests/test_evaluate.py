"""``scratchnet evaluate``: its numbers against an independent computation on a small trained model."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scratchnet.cli import main
from scratchnet.data import load_dataset
from scratchnet.io.model import load_model
from scratchnet.training.metrics import class_report, confusion_matrix, confusion_table, per_class_table
from scratchnet.training.train import TrainConfig, train


def real_data_dir() -> Path | None:
    """The same rule as the ``data_dir`` fixture, for module-scoped fixtures."""
    env = os.environ.get("SCRATCHNET_DATA_DIR")
    if env:
        return Path(env)
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    return shared if shared.is_dir() else None


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 784-32-10 model trained for one epoch on 3,000 MNIST images, and the data directory."""
    data_dir = real_data_dir()
    if data_dir is None:
        pytest.skip("no real dataset directory (set SCRATCHNET_DATA_DIR or provide ../shared/data)")
    out = tmp_path_factory.mktemp("model") / "small.json"
    config = TrainConfig(
        hidden=(32,), epochs=1, limit=3000, validation=0, batch_size=32, lr=0.003, input_mean=0.1307, input_std=0.3081
    )
    train(config, data_dir=data_dir, out=out, log=lambda line: None, check=False, progress=False)
    return out, data_dir


def independent_predictions(model: Path, data_dir: Path) -> tuple[Any, Any]:
    """Test labels and the model's predictions computed here with plain NumPy on the saved weights."""
    loaded = load_model(model)
    data = load_dataset("mnist", data_dir)
    x = (data.test_images.reshape(len(data.test_images), -1).astype(np.float64) / 255.0 - 0.1307) / 0.3081
    params = {name: np.asarray(value, dtype=np.float64) for name, value in loaded.network.params().items()}
    hidden = np.maximum(x @ params["0.weight"].T + params["0.bias"], 0.0)
    logits = hidden @ params["2.weight"].T + params["2.bias"]
    return data.test_labels.astype(np.int64), np.argmax(logits, axis=1)


def test_evaluate_prints_accuracy_per_class_and_confusion_matching_numpy(
    small_model: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    model, data_dir = small_model
    assert main(["evaluate", str(model), "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    labels, predictions = independent_predictions(model, data_dir)
    expected = np.bincount(labels * 10 + predictions, minlength=100).reshape(10, 10)
    # float32 logits can tie-break differently from float64 ones on a handful of images at most
    match = re.search(r"test accuracy (\d+\.\d+)% \((\d+) of 10000 test images", out)
    assert match is not None, out
    assert abs(int(match.group(2)) - int(np.trace(expected))) <= 3

    lines = out.splitlines()
    start = lines.index("confusion matrix (rows: true class, columns: predicted class)") + 2
    printed = np.array([[int(v) for v in line.split()[1:]] for line in lines[start : start + 10]])
    assert printed.shape == (10, 10)
    assert np.abs(printed - expected).sum() <= 6
    assert printed.sum() == 10000 and np.array_equal(printed.sum(axis=1), np.bincount(labels, minlength=10))
    assert float(match.group(1)) == pytest.approx(100 * np.trace(printed) / 10000, abs=0.005)

    header = next(i for i, line in enumerate(lines) if line.startswith("class"))
    for k in range(10):
        name, precision, recall, support = lines[header + 1 + k].split()
        assert name == str(k) and int(support) == printed[k].sum()
        assert float(precision.rstrip("%")) == pytest.approx(100 * printed[k, k] / printed[:, k].sum(), abs=0.005)
        assert float(recall.rstrip("%")) == pytest.approx(100 * printed[k, k] / printed[k].sum(), abs=0.005)


def test_evaluate_errors_are_one_line(
    tmp_path: Path, small_model: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(tmp_path / "missing.json")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("scratchnet evaluate: error:")
    model, _ = small_model
    assert main(["evaluate", str(model), "--data-dir", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]


def test_metrics_against_a_hand_count() -> None:
    labels = [0, 0, 1, 1, 1, 2]
    predictions = [0, 1, 1, 1, 2, 2]
    matrix = confusion_matrix(labels, predictions, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    report = class_report(labels, predictions, ("zero", "one", "two"))
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.precision() == pytest.approx([1.0, 2 / 3, 0.5])
    assert report.recall() == pytest.approx([0.5, 2 / 3, 1.0])
    table = per_class_table(report).splitlines()
    assert table[1].split() == ["zero", "100.00%", "50.00%", "2"]
    confusion = confusion_table(report).splitlines()
    assert confusion[2].split() == ["1", "one", "0", "2", "1"]
    never = class_report([0, 0], [0, 0], ("a", "b"))
    assert np.isnan(never.precision()[1]) and "-" in per_class_table(never).splitlines()[2].split()
