"""``scratchnet plot augmentations``: a grid of one test image's augmented versions, from a dataset or a
model's test set, with one-line errors for what it cannot draw."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from subprocesses import run_scratchnet, run_without
from test_plots import BLOCKED, model, png_size

from scratchnet.cli import main
from scratchnet.cli.plot import augmentation_rows
from scratchnet.data.datasets import load_dataset

__all__ = ["model"]  # the fixture, used by name


def test_the_grid_from_a_dataset(tmp_path: Path, data_dir: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "aug.png"
    flags = ["--index", "0", "--rotate", "10", "--scale", "0.1", "--erase", "0.5", "--crop", "2", "--dpi", "50"]
    done = run_scratchnet(
        "plot", "augmentations", "--dataset", "mnist", "--data-dir", str(data_dir), *flags, "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    width, height = png_size(out)
    assert f"wrote {out} ({width}x{height} px)" in done.stdout
    # 8 versions beside a label column (1.4 + 0.9 * 8 inches), 5 rows: original, crop, affine, erase, all
    assert width == 430 and height in (262, 263)


def test_the_rows_are_the_image_and_its_versions(data_dir: Path) -> None:
    args = argparse.Namespace(
        model=None,
        data=None,
        dataset="fashion-mnist",
        data_dir=str(data_dir),
        index=3,
        shift=2,
        flip=True,
        crop=None,
        rotate=None,
        scale=None,
        erase=0.5,
        erase_noise=True,
        count=5,
        seed=1,
    )
    rows, source = augmentation_rows(args)
    image = load_dataset("fashion-mnist", str(data_dir), splits=("test",)).test_images[3]
    assert source == "fashion-mnist test image 3 (Trouser)"
    assert [name for name, _ in rows] == [
        "original",
        "shift ±2 px",
        "mirror (p 0.5)",
        "erase (p 0.5)",
        "all, in\nthis order",
    ]
    assert np.array_equal(rows[0][1][0], image) and len(rows[0][1]) == 1
    assert all(len(versions) == 5 for _, versions in rows[1:])
    mirrored = [np.array_equal(v, image[:, ::-1]) for v in rows[2][1]]
    assert all(m or np.array_equal(v, image) for m, v in zip(mirrored, rows[2][1])) and any(mirrored)


def test_from_a_model_s_test_set(model: Path, tmp_path: Path, data_dir: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "aug.png"
    command = ["plot", "augmentations", str(model), "--data-dir", str(data_dir), "--flip", "--count", "3"]
    assert main([*command, "--dpi", "40", "--out", str(out)]) == 0
    assert png_size(out)[0] == round((1.4 + 0.9 * 3) * 40)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ([], "needs one or more of --shift, --flip, --crop, --rotate, --scale, --erase"),
        (["--flip", "--dataset", "mnist", "--index", "10000"], "--index 10000: mnist has test images 0..9999"),
        (["--rotate", "200", "--dataset", "mnist"], "--rotate 200: rotations go up to 180 degrees"),
        (["--erase", "1.5", "--dataset", "mnist"], "--erase 1.5: a probability"),
        (["--erase-noise", "--flip", "--dataset", "mnist"], "give --erase too"),
        (["--flip", "--count", "17", "--dataset", "mnist"], "at most 16 versions"),
        (["--flip"], "give a model, --dataset NAME or --data PATH"),
    ],
)
def test_errors_are_one_line(
    flags: list[str], message: str, tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "never.png"
    assert main(["plot", "augmentations", *flags, "--data-dir", str(data_dir), "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not out.exists()


def test_other_kinds_still_need_a_model_and_refuse_the_new_flags(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    assert main(["plot", "curves", "--out", str(tmp_path / "c.png")]) == 1
    assert "plot curves draws a model: give its file" in capsys.readouterr().err
    assert main(["plot", "curves", str(model), "--erase-noise", "--out", str(tmp_path / "c.png")]) == 1
    assert "--erase-noise goes with plot augmentations, not curves" in capsys.readouterr().err


def test_without_matplotlib_a_clear_message(tmp_path: Path) -> None:
    out = tmp_path / "never.png"
    done = run_without(
        "matplotlib", BLOCKED, "plot", "augmentations", "--dataset", "mnist", "--flip", "--out", str(out)
    )
    assert done.returncode == 1 and "plotting needs matplotlib" in done.stderr and not out.exists()
