"""``scratchnet train`` on the command line: errors in one line, a short real run, Ctrl-C."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from subprocesses import run_scratchnet

import scratchnet.cli.train as cli_train
from scratchnet.cli import main
from scratchnet.io.model import load_model
from scratchnet.training.train import TrainingInterrupted

REPO = Path(__file__).resolve().parent.parent


def error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_a_missing_data_directory_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    assert main(["train", "--data-dir", str(missing)]) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1
    assert (
        lines[0].startswith("scratchnet train: error: ") and str(missing) in lines[0] and "does not exist" in lines[0]
    )


def test_an_empty_data_directory_says_where_to_put_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SCRATCHNET_DATA_DIR", raising=False)
    import scratchnet.data.datasets as datasets

    def offline(*args: Any, **kwargs: Any) -> Path:
        from scratchnet.core.errors import DatasetError

        raise DatasetError("no network")

    monkeypatch.setattr(datasets, "download_file", offline)
    assert main(["train", "--data-dir", str(tmp_path), "--no-check"]) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and "train-images-idx3-ubyte.gz" in lines[0] and str(tmp_path / "mnist") in lines[0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "0"], "argument --epochs: expected a positive integer"),
        (["--optimizer", "nadam"], "argument --optimizer: invalid choice"),
        (["--hidden", "512,x"], "argument --hidden: expected comma-separated positive integers"),
        (["--dropout", "1.5"], "argument --dropout"),
        (["--batch-size", "half"], "argument --batch-size"),
        (["--lr", "-1"], "argument --lr"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_flags_are_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["train", *argv])
    assert exit_.value.code == 2
    assert message in error_lines(capsys)[-1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--optimizer", "adam", "--momentum", "0.9"], "momentum applies to sgd and rmsprop, not adam"),
        (["--optimizer", "sgd", "--betas", "0.9,0.99"], "betas apply to adam and adamw only"),
        (["--resume", "run.checkpoint.json", "--epochs", "3"], "drop --epochs"),
    ],
)
def test_settings_that_do_not_fit_are_one_line_errors(
    tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--data-dir", str(tmp_path), *argv]) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and message in lines[0]


def test_ctrl_c_is_one_line_and_exit_130(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise TrainingInterrupted(
            "interrupted at epoch 2, step 17; checkpoint saved to x.checkpoint.json; "
            "continue with: scratchnet train --resume x.checkpoint.json",
            tmp_path,
        )

    monkeypatch.setattr(cli_train, "train", interrupted)
    assert main(["train", "--data-dir", str(tmp_path)]) == 130
    lines = error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("scratchnet train: interrupted at epoch 2")


def test_a_short_real_run_from_the_command_line(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "small.json"
    status = main(
        [
            "train",
            "--data-dir",
            str(data_dir),
            "--recipe",
            "small",
            "--limit",
            "3000",
            "--epochs",
            "2",
            "--out",
            str(out),
            "--seed",
            "1",
        ]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    lines = captured.out.splitlines()
    assert lines[0].startswith("mnist: 3000 training images")
    assert lines[1].startswith("cross-check passed") and "784-32-10" in lines[1]
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == ["1/2", "2/2"]
    epoch_line = next(line for line in lines if line.startswith("epoch 1/2"))
    for part in ("loss ", "train ", "val ", " s ", "img/s"):
        assert part in epoch_line
    assert any(line.startswith("test accuracy ") for line in lines)
    assert captured.err == ""  # no progress bar when not on a terminal
    training = load_model(out).metadata["training"]
    assert (
        training["config"]["hidden"] == [32] and training["config"]["limit"] == 3000 and training["recipe"] == "small"
    )
    assert len(training["history"]) == 2 and training["final"]["test_accuracy"] > 0.8


def test_python_dash_m_scratchnet_train_works() -> None:
    done = run_scratchnet("train", "--help", timeout=60)
    assert done.returncode == 0
    for flag in (
        "--dataset",
        "--data-dir",
        "--hidden",
        "--activation",
        "--dropout",
        "--optimizer",
        "--lr",
        "--momentum",
        "--weight-decay",
        "--lr-schedule",
        "--epochs",
        "--batch-size",
        "--seed",
        "--backend",
        "--dtype",
        "--limit",
        "--out",
        "--recipe",
        "--resume",
        "--validation",
    ):
        assert flag in done.stdout


def test_tools_train_mnist_trains_then_evaluates(data_dir: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "train_mnist.py"),
            "--data-dir",
            str(data_dir),
            "--recipe",
            "small",
            "--limit",
            "1000",
            "--epochs",
            "1",
            "--no-check",
            "--out",
            str(tmp_path / "m.json"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "model saved to" in done.stdout and "confusion matrix" in done.stdout
    assert done.stdout.count("test accuracy") == 2  # train's line, then evaluate's
