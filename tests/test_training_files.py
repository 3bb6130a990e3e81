"""Files written before the training redesign (issue 24) still load, evaluate and resume exactly.

The fixture ``fixtures/training-before-redesign.json`` was written by the code before the redesign
(the script is described below): a run on a small table (``write_tables``, no random numbers) with
the flat 39-setting configuration, Dropout, Adam with betas and the inverse-time schedule under its
old name ``lr_decay``. It holds, as text, the JSON documents of the finished model (``full``) and
of the checkpoint of the same run interrupted by Ctrl-C at epoch 2, step 3 (``cut.checkpoint``),
and the values of every array of their ``.npz`` files. The test writes them back byte for byte.

Generated with the code at commit af10117, in an empty folder, by: ``write_tables(folder)``;
``TrainConfig(**SETTINGS)`` trained to ``full.json``, and again to ``cut.json`` with a hook that
sends SIGINT after step 3 of epoch 2; then each document's text and ``np.load`` of each ``.npz``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scratchnet.cli import main
from scratchnet.io.model import load_model
from scratchnet.training.config import TrainConfig
from scratchnet.training.train import resume

FIXTURE = Path(__file__).parent / "fixtures" / "training-before-redesign.json"
# The flat configuration the code before the redesign wrote (every one of its 39 settings).
SETTINGS: dict[str, Any] = {
    "dataset": "mnist",
    "hidden": [6],
    "activation": "relu",
    "dropout": 0.1,
    "init": None,
    "optimizer": "adam",
    "lr": 0.01,
    "momentum": None,
    "nesterov": None,
    "weight_decay": None,
    "betas": [0.9, 0.99],
    "lr_schedule": "inverse_time",
    "lr_min": None,
    "lr_step": None,
    "lr_gamma": None,
    "lr_decay": 0.05,
    "epochs": 3,
    "batch_size": 16,
    "seed": 7,
    "backend": "vectorized",
    "dtype": "float32",
    "limit": None,
    "validation": 30,
    "validation_split": "end",
    "augment": 0,
    "flip": False,
    "input_mean": 0.0,
    "input_std": 1.0,
    "report_every": 1,
    "recipe": None,
    "layers": None,
    "data": "train.csv",
    "test": "test.csv",
    "test_fraction": None,
    "label_column": None,
    "image_shape": None,
    "table": False,
    "channels": None,
    "image_size": None,
}


def write_tables(folder: Path) -> None:
    """Three classes of 4 features, from sines (no random generator): train.csv 150 rows, test.csv 45."""
    for name, rows, offset in (("train.csv", 150, 0), ("test.csv", 45, 1000)):
        lines = ["f0,f1,f2,f3,label"]
        for i in range(rows):
            n = i + offset
            label = n % 3
            values = [round(2.0 * (label == k % 3) + math.sin(1.7 * n + 0.3 * k), 4) for k in range(4)]
            lines.append(",".join(str(v) for v in values) + f",{label}")
        (folder / name).write_text("\n".join(lines) + "\n")


def write_model(folder: Path, stem: str, saved: dict[str, Any]) -> Path:
    """NAME.json exactly as it was written, and NAME.npz holding the same arrays."""
    (folder / f"{stem}.json").write_text(saved["document"])
    arrays = {
        name: np.array(array["values"], dtype=array["dtype"]).reshape(array["shape"])
        for name, array in saved["arrays"].items()
    }
    np.savez(folder / f"{stem}.npz", **arrays)  # type: ignore[arg-type]
    return folder / f"{stem}.json"


@pytest.fixture
def old_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, dict[str, Any]]:
    monkeypatch.chdir(tmp_path)
    write_tables(tmp_path)
    fixture = json.loads(FIXTURE.read_text())
    model = write_model(tmp_path, "full", fixture["model"])
    checkpoint = write_model(tmp_path, "cut.checkpoint", fixture["checkpoint"])
    return model, checkpoint, fixture


def test_the_frozen_flat_configuration_is_what_the_old_files_hold(old_files: tuple[Path, Path, Any]) -> None:
    model, checkpoint, _ = old_files
    for path in (model, checkpoint):
        assert json.loads(path.read_text())["metadata"]["training"]["config"] == SETTINGS
    config = TrainConfig.from_dict(SETTINGS)
    assert config.lr_time_decay == 0.05 and config.hidden == (6,) and config.betas == (0.9, 0.99)
    assert config.optimizer_options is None and config.report_every_steps is None


def test_an_old_model_evaluates_to_its_recorded_accuracy(
    old_files: tuple[Path, Path, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    model, _, _ = old_files
    recorded = load_model(model).metadata["training"]["final_metrics"]["test_accuracy"]
    assert main(["evaluate", str(model), "--data", "test.csv"]) == 0
    out = capsys.readouterr().out
    assert f"test accuracy {100 * recorded:.2f}% " in out or f"test accuracy {100 * recorded:.2f}%\n" in out, out


def test_an_old_checkpoint_resumes_to_the_old_final_model_bit_for_bit(
    old_files: tuple[Path, Path, Any], tmp_path: Path
) -> None:
    model, checkpoint, _ = old_files
    result = resume(checkpoint, out=tmp_path / "resumed.json", log=lambda line: None, progress=False)
    expected = load_model(model).network.params()
    resumed = load_model(tmp_path / "resumed.json").network.params()
    assert sorted(expected) == sorted(resumed)
    for name, value in expected.items():
        assert np.asarray(value).tobytes() == np.asarray(resumed[name]).tobytes(), name
    assert result.test_accuracy == load_model(model).metadata["training"]["final_metrics"]["test_accuracy"]
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
