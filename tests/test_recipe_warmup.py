"""A recipe's warmup shrinks with a shorter image run (scratchnet/cli/train_warmup.py): the ``cnn`` recipe
warms up over its first epoch of 20 on MNIST (469 steps of 128), and ``--epochs 1`` has 469 steps in all,
which a warmup must end before. A warmup given with ``--lr-warmup`` stays the user's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from subprocesses import run_scratchnet

from scratchnet.io.model import load_model


def shown_warmup(*flags: str) -> str:
    done = run_scratchnet("train", "--recipe", "cnn", *flags, "--show")
    assert done.returncode == 0, done.stderr
    found = re.search(r"^\s+--lr-warmup\s+(.*)$", done.stdout, re.M)
    assert found is not None, done.stdout
    return found.group(1).strip()


@pytest.mark.parametrize(
    "flags,expected",
    [
        ((), "469"),  # the recipe's own run: one epoch of 60,000 images in batches of 128
        (("--epochs", "1"), "23"),  # 469 * 1/20
        (("--epochs", "2", "--limit", "30000"), "23"),  # 469 * 2/20 * 30,000/60,000
        (("--epochs", "40"), "469"),  # a longer run keeps the recipe's warmup
        (("--epochs", "1", "--lr-warmup", "469"), "469  (given)"),  # the user's, even if it cannot end
    ],
)
def test_a_shorter_run_warms_up_for_the_same_share(flags: tuple[str, ...], expected: str) -> None:
    assert shown_warmup(*flags) == expected


def test_a_one_epoch_trial_of_the_cnn_recipe_trains(data_dir: Path, tmp_path: Path) -> None:
    """It stopped with "Cosine warmup_steps (469) must be fewer than its total_steps (469)" before."""
    out = tmp_path / "m.json"
    done = run_scratchnet(
        "train", "--recipe", "cnn", "--epochs", "1", "--limit", "512", "--no-check", "--data-dir", str(data_dir),
        "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    schedule = load_model(out).metadata["training"]
    assert schedule["epochs"] == 1 and schedule.get("lr_warmup") is None  # 469 * 1/20 * 512/60,000 rounds to 0
