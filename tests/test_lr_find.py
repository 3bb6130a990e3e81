"""The learning-rate finder (issue 28, item 5): the sweep's rates, smoothing, stop and suggestion, and
``scratchnet lr-find`` on MNIST through a subprocess."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from subprocesses import run_scratchnet
from test_train import quiet, synthetic

from scratchnet.core.errors import ConfigError
from scratchnet.training.config import TrainConfig
from scratchnet.training.lr_find import Sweep, find_lr, rate_at

SYNTHETIC = TrainConfig(dataset="synthetic", hidden=(16,), optimizer="adam", batch_size=32, validation=80, seed=3)


def test_the_rates_grow_exponentially_from_start_to_end() -> None:
    rates = [rate_at(k, 7, 1e-6, 1.0) for k in range(7)]
    assert rates == pytest.approx([1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0], rel=1e-12)


def test_the_suggestion_is_a_tenth_of_the_rate_at_the_smoothed_minimum() -> None:
    rates = [10.0 ** (k / 4 - 5) for k in range(17)]  # 1e-5 .. 1e-1
    smoothed = [2.0 - 0.1 * k for k in range(13)] + [1.3, 1.5, 2.0, 9.0]  # lowest at k = 12: 1e-2
    sweep = Sweep(rates, smoothed, smoothed)
    suggested, rule = sweep.suggestion()
    assert suggested == pytest.approx(1e-3)
    assert rule.startswith("a tenth of 0.01, the rate at the smoothed loss's minimum")
    early = Sweep(rates, [1.0, *[2.0] * 16], [1.0, *[2.0] * 16])  # lowest at the start: not below the range
    assert early.suggestion()[0] == rates[0] and "raised to the sweep's start" in early.suggestion()[1]


def test_a_sweep_smooths_the_loss_and_stops_when_it_diverges() -> None:
    lines: list[str] = []
    sweep = find_lr(SYNTHETIC, 1e-4, 1e4, 100, dataset=synthetic(), log=lines.append)
    taken = len(sweep.rates)
    assert 10 < taken < 100 and sweep.stopped.endswith("(the loss diverged)")
    assert sweep.rates == pytest.approx([rate_at(k, 100, 1e-4, 1e4) for k in range(taken)], rel=1e-12)
    average, expected = 0.0, []  # the bias-corrected moving average, beta 0.9
    for k, loss in enumerate(sweep.losses[: taken - 1], start=1):
        average = 0.9 * average + 0.1 * loss
        expected.append(average / (1 - 0.9**k))
    assert sweep.smoothed[: taken - 1] == pytest.approx(expected, rel=1e-12)
    assert sweep.smoothed[-1] > 4 * min(sweep.smoothed[:-1])
    assert all(s <= 4 * min(sweep.smoothed[: k + 1]) for k, s in enumerate(sweep.smoothed[:-1]))
    again = find_lr(SYNTHETIC, 1e-4, 1e4, 100, dataset=synthetic(), log=quiet)
    assert again.losses == sweep.losses  # one initialisation, the same batches: repeatable


def test_a_sweep_checks_its_range() -> None:
    with pytest.raises(ConfigError, match="the sweep needs 0 < start < end"):
        find_lr(SYNTHETIC, 1.0, 1e-3, 100, dataset=synthetic(), log=quiet)
    with pytest.raises(ConfigError, match="at least 10 steps"):
        find_lr(SYNTHETIC, 1e-3, 1.0, 5, dataset=synthetic(), log=quiet)


ROW = re.compile(r"^\s*(\d+)\s+(\S+)\s+(\S+)\s+(\S+)$")
MNIST = ("lr-find", "--limit", "1000", "--hidden", "32", "--steps", "150")


def table_of(stdout: str) -> list[tuple[int, float, float]]:
    rows = [ROW.match(line) for line in stdout.splitlines()]
    return [(int(m[1]), float(m[2]), float(m[4])) for m in rows if m is not None]


def test_lr_find_on_mnist(data_dir: Path, tmp_path: Path) -> None:
    env = {"SCRATCHNET_DATA_DIR": str(data_dir)}
    first = run_scratchnet(*MNIST, "--seed", "1", "--out", str(tmp_path / "lr.png"), env=env)
    assert first.returncode == 0, first.stderr
    rows = table_of(first.stdout)
    assert len(rows) >= 20 and rows[0][:2] == (1, 1e-6)
    steps = [step for step, _, _ in rows]
    rates = [rate for _, rate, _ in rows]
    assert steps == sorted(set(steps)) and all(a < b for a, b in zip(rates, rates[1:]))  # monotone in lr
    assert rates == pytest.approx([rate_at(s - 1, 150, 1e-6, 1.0) for s in steps], rel=5e-3)  # 3 digits shown
    (line,) = [line for line in first.stdout.splitlines() if line.startswith("suggested lr: ")]
    suggested = float(line.split()[2])
    assert 1e-6 <= suggested <= 1.0
    assert "(a tenth of " in line and "the rate at the smoothed loss's minimum" in line
    minimum = min(rows, key=lambda row: row[2])  # the printed rows include the minimum's neighbourhood
    assert suggested == pytest.approx(minimum[1] / 10, rel=1.0)  # within a factor of 2
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr.png"]  # no model, no checkpoint

    again = run_scratchnet(*MNIST, "--seed", "1", env=env)
    assert again.returncode == 0, again.stderr
    assert table_of(again.stdout) == rows and line in again.stdout.splitlines()
    other = run_scratchnet(*MNIST, "--seed", "2", env=env)
    assert other.returncode == 0, other.stderr
    assert table_of(other.stdout) != rows


def test_lr_find_refuses_what_it_does_not_take(tmp_path: Path) -> None:
    backwards = run_scratchnet("lr-find", "--start", "1", "--end", "0.001")
    assert backwards.returncode == 1
    assert (
        backwards.stderr.strip()
        == "scratchnet lr-find: error: --start 1 and --end 0.001: the sweep needs 0 < start < end"
    )
    for flag, value in (("--lr", "0.1"), ("--epochs", "3"), ("--diagnostics", "2")):
        refused = run_scratchnet("lr-find", flag, value)
        assert refused.returncode == 2 and f"unrecognized arguments: {flag} {value}" in refused.stderr
    not_png = run_scratchnet("lr-find", "--out", str(tmp_path / "lr.jpg"))
    assert not_png.returncode == 1 and "give a name ending in .png" in not_png.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_sweep_settings_replace_the_recipe_schedule() -> None:
    config = TrainConfig(dataset="synthetic", hidden=(8,), lr_schedule="cosine", lr_min=1e-5, validation=80, seed=3)
    sweep = find_lr(config, 1e-3, 1e-1, 10, dataset=synthetic(), log=quiet)
    assert np.allclose(sweep.rates, [rate_at(k, 10, 1e-3, 1e-1) for k in range(10)])
