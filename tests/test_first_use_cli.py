"""Issue 15, items 13, 14, 15 (plot), 17 and 18: the command line's rough edges.

A terminal without the drawing characters gets ASCII ones instead of a traceback; flags refuse what
they would silently ignore or change, and errors name flags; ``train --show`` prints a recipe's
settings; ``check`` says at once what it checks and narrows a big MLP as training does; ``inspect``
shows the dataset and the final accuracy; ``plot misclassified`` says "36 of 352"; the progress bar
fits the terminal.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from subprocesses import run_scratchnet
from test_train import SMALL, quiet, synthetic

import scratchnet
from scratchnet.builders import build_network
from scratchnet.cli import main
from scratchnet.core.architecture import mlp
from scratchnet.core.errors import ConfigError
from scratchnet.training.progress import Progress
from scratchnet.training.train import TrainConfig, train

ASCII_ENV = {"PYTHONIOENCODING": "ascii"}


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# ---- item 13: an ASCII terminal ----


def digit_model(tmp_path: Path) -> tuple[Path, Path]:
    """A 784-10 model that needs no dataset, and a 28x28 stroke to predict."""
    scratchnet.save(build_network(mlp([784, 10]), backend="vectorized", seed=0), tmp_path / "m")
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 12:16] = 255
    np.save(tmp_path / "one.npy", image)
    return tmp_path / "m.json", tmp_path / "one.npy"


def test_predict_on_an_ascii_terminal_draws_in_ascii(tmp_path: Path) -> None:
    model, image = digit_model(tmp_path)
    done = run_scratchnet("predict", str(model), "--image", str(image), env=ASCII_ENV)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout.isascii()
    lines = done.stdout.splitlines()
    assert lines[1] == "+" + "-" * 56 + "+" and lines[30] == "+" + "-" * 56 + "+"
    assert lines[2 + 4] == "|" + "  " * 12 + "##" * 4 + "  " * 12 + "|"  # the stroke, in the same places
    utf8 = run_scratchnet("predict", str(model), "--image", str(image), env={"PYTHONIOENCODING": "utf-8"})
    assert len(utf8.stdout.splitlines()) == len(lines) and "█" in utf8.stdout


def test_demo_spiral_on_a_latin1_terminal_runs(tmp_path: Path) -> None:
    done = run_scratchnet("demo", "spiral", "--points", "15", "--epochs", "3", env={"PYTHONIOENCODING": "latin-1"})
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert re.search(r"loss \S+ -> \S+ [_.\-=+*%#]+", done.stdout)  # the sparkline in ASCII blocks


def test_train_on_an_ascii_terminal_prints_its_sparkline(data_dir: Path, tmp_path: Path) -> None:
    argv = ["train", "--data-dir", str(data_dir), "--recipe", "small", "--limit", "500", "--epochs", "3"]
    done = run_scratchnet(*argv, "--no-check", "--out", str(tmp_path / "m.json"), env=ASCII_ENV)
    assert done.returncode == 0, done.stderr
    assert done.stdout.isascii() and "loss per epoch " in done.stdout


# ---- item 14: flags ----


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--hidden", "32,,32"], "argument --hidden: expected comma-separated positive integers, got '32,,32'"),
        (["--hidden", "32,"], "argument --hidden: expected comma-separated positive integers"),
        (["--seed", str(2**64)], "argument --seed: expected an integer in 0..2^64-1"),
        (["--seed", "-1"], "argument --seed: expected an integer in 0..2^64-1"),
        (["--lr", "-1"], "argument --lr: expected a finite number > 0, got '-1'"),
        (["--lr", "0"], "argument --lr: expected a finite number > 0, got '0'"),
    ],
)
def test_flags_refuse_what_they_would_change(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert message in usage_error(["train", *argv], capsys)


def test_the_largest_seed_is_kept_as_given() -> None:
    assert TrainConfig(seed=2**64 - 1).seed == 2**64 - 1
    with pytest.raises(ConfigError, match=r"seed must be an integer in 0\.\.2\^64-1"):
        TrainConfig(seed=2**64)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lr-step", "3"], "--lr-step applies to the step schedule only, and this run's --lr-schedule is cosine"),
        (["--lr-schedule", "constant", "--lr-gamma", "0.5"], "--lr-gamma applies to the step schedule only"),
        (["--lr-decay", "0.1"], "--lr-decay applies to the inverse_time schedule only"),
        (["--lr-schedule", "step", "--lr-min", "0.1"], "--lr-min applies to the cosine schedule only"),
        (["--lr", "0.01", "--lr-min", "0.1"], "--lr-min must be in [0, --lr] = [0, 0.01], got 0.1"),
        (["--optimizer", "adam", "--momentum", "0.9"], "--momentum applies to sgd and rmsprop, not adam"),
    ],
)
def test_settings_that_do_not_apply_are_refused_by_their_flags(
    tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in one_line_error(["train", "--data-dir", str(tmp_path), *argv], capsys)


def test_the_library_refuses_schedule_options_the_schedule_ignores() -> None:
    with pytest.raises(ConfigError, match="lr_gamma applies to the step schedule only"):
        TrainConfig(lr_gamma=0.5)
    assert TrainConfig(lr_schedule="step", lr_step=2, lr_gamma=0.5).lr_gamma == 0.5
    legacy = {**TrainConfig().to_dict(), "lr_min": 0.0, "lr_step": 1, "lr_gamma": 0.1, "lr_decay": 0.0}
    assert TrainConfig.from_dict(legacy) == TrainConfig()  # checkpoints written before stay readable


def test_every_setting_flag_has_help_with_each_recipes_value() -> None:
    done = run_scratchnet("train", "--help", env={"COLUMNS": "400"})
    entries = re.split(r"\n(?=  -)", done.stdout)  # one entry per option, its help on the same line or the next
    lines = {entry.split()[0]: " ".join(entry.split()) for entry in entries if entry.startswith("  --")}
    for flag in ("--epochs", "--batch-size", "--seed", "--validation", "--lr", "--hidden", "--backend"):
        assert "[recipes: " in lines[flag] or "[every recipe: " in lines[flag], lines[flag]
    for part in ("[recipes: default 10000 (fashion-mnist 0), classic 1000, ", " small 1000]"):
        assert part in lines["--validation"]
    for part in ("[recipes: default 20 (fashion-mnist 40), classic 500, ", " small 5]"):
        assert part in lines["--epochs"]
    assert "default 10000)" not in lines["--validation"]


def test_train_show_prints_a_recipes_settings_without_training(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--recipe", "small", "--epochs", "3", "--show", "--data-dir", "/nowhere"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("recipe small for mnist: 784-32-10")
    settings = {line.split()[0]: line.split(None, 1)[1] for line in lines[1:] if line.strip().startswith("--")}
    assert settings["--hidden"] == "32" and settings["--lr"] == "0.002" and settings["--validation"] == "1000"
    assert settings["--epochs"] == "3  (given)" and settings["--batch-size"] == "32"
    config = TrainConfig(dataset="mnist", recipe="small", **{**scratchnet_recipe("small"), "epochs": 3})
    assert settings["--seed"] == str(config.seed) and settings["--optimizer"] == config.optimizer


def scratchnet_recipe(name: str) -> dict[str, Any]:
    from scratchnet.training.recipes import recipe_settings

    return recipe_settings(name, "mnist")


# ---- item 15: plot --out into a missing folder ----


def test_plot_creates_missing_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    result = train(TrainConfig(**{**SMALL, "epochs": 2}), dataset=synthetic(), out=tmp_path / "m", log=quiet)  # type: ignore[arg-type]
    out = tmp_path / "new" / "folder" / "curves.png"
    assert main(["plot", "curves", str(result.out), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- item 17: check a big MLP ----


def test_check_says_at_once_what_it_checks_and_narrows_a_big_mlp() -> None:
    done = run_scratchnet("check", "--layers", "784,800,800,10", timeout=120)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("checking 784-64-64-10, a copy of 784-800-800-10 (1,276,810 parameters)")
    assert "--full checks every parameter" in first
    seconds = float(re.findall(r"passed in (\S+) s", done.stdout)[0])
    assert seconds < 30  # the whole network took 38 s (68 s on a loaded machine) with no output
    small = run_scratchnet("check", "--layers", "20,8,3")
    assert small.stdout.splitlines()[0] == "checking 20-8-3 (195 parameters) ..."


# ---- item 18: inspect, plot misclassified, the progress bar ----


def test_inspect_shows_the_dataset_and_the_final_accuracy(tmp_path: Path) -> None:
    result = train(TrainConfig(**SMALL), dataset=synthetic(), out=tmp_path / "m", log=quiet, check=False)  # type: ignore[arg-type]
    done = run_scratchnet("inspect", str(tmp_path / "m.json"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    training = next(line for line in lines if line.startswith("training: "))
    assert training.startswith("training: dataset synthetic, 2 epochs, seed 3")
    final = next(line for line in lines if line.startswith("final metrics: "))
    assert f"test accuracy {100 * result.test_accuracy:.2f}%" in final
    assert f"validation accuracy {100 * result.validation_accuracy:.2f}%" in final


def test_plot_misclassified_says_how_many_of_how_many(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    from scratchnet.teaching import plots

    headings: list[str] = []
    monkeypatch.setattr(plots, "save", lambda figure, out: headings.append(figure._suptitle.get_text()))
    images = [np.zeros((28, 28), np.uint8)] * 36
    plots.plot_misclassified(images, [1] * 36, [2] * 36, list(range(36)), list("0123456789"), "x.png", total=352)
    plots.plot_misclassified(images[:5], [1] * 5, [2] * 5, list(range(5)), list("0123456789"), "x.png", total=5)
    assert headings == ["36 of 352 misclassified test images", "5 misclassified test images"]


@pytest.mark.parametrize("columns", [40, 60, 80, 200])
def test_the_progress_bar_fits_the_terminal(columns: int) -> None:
    terminal = io.StringIO()
    bar = Progress(391, "epoch 13/20", stream=terminal, enabled=True, columns=columns)
    bar.update(391, "loss 0.1234")
    drawn = terminal.getvalue().removeprefix("\r")
    assert drawn.startswith("epoch 13/20  [") and len(drawn) <= columns - 1
    if columns >= 80:
        assert drawn.endswith("391/391  loss 0.1234")
    text = bar.render(120, "loss 0.1234", 10.0, 60)
    assert len(text) <= 60 and re.search(r"\[#+\.+\]", text)


@pytest.mark.parametrize("columns", [0, 1])
def test_a_terminal_reporting_no_width_gets_a_bar_of_the_usual_width(columns: int) -> None:
    terminal = io.StringIO()
    bar = Progress(391, "epoch 1/20", stream=terminal, enabled=True, columns=columns)
    for done in (1, 391):
        bar.last_draw = 0.0  # draw every update
        bar.update(done, "loss 0.1234")
    drawn = terminal.getvalue().split("\r")
    bars = [text.rstrip() for text in drawn if text.strip()]
    assert len(bars) == 2 and all(text.startswith("epoch 1/20  [") for text in bars), drawn
    assert bars[-1].endswith("391/391  loss 0.1234") and len(bars[-1]) <= 79
