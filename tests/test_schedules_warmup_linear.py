"""Warmup then cosine (eq. 9.5, nanoGPT's) and linear decay (eq. 9.6, microgpt's), against PyTorch's
schedulers and against the published formulas written out here; reachable through --optimizer JSON."""

from __future__ import annotations

import math

import pytest

from scratchnet.builders import build_optimizer
from scratchnet.core.errors import ConfigError
from scratchnet.core.schedules import Cosine, Linear, build_schedule
from scratchnet.training.config import TrainConfig, optimizer_settings, optimizer_spec


def nanogpt_lr(it: int, lr: float, warmup: int, decay_iters: int, min_lr: float) -> float:
    """nanoGPT's get_lr, written from its description."""
    if it < warmup:
        return lr * (it + 1) / (warmup + 1)
    if it > decay_iters:
        return min_lr
    ratio = (it - warmup) / (decay_iters - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


def test_warmup_cosine_is_nanogpts_schedule() -> None:
    schedule = Cosine(2000, min_lr=1e-4, warmup_steps=100)
    for t in [0, 1, 50, 99, 100, 101, 1000, 1999, 2000, 2500]:
        assert schedule.rate(1e-3, t) == pytest.approx(nanogpt_lr(t, 1e-3, 100, 2000, 1e-4), rel=1e-12, abs=1e-15)


def test_linear_decay_is_microgpts_schedule() -> None:
    schedule = Linear(1000)
    assert [schedule.rate(0.01, t) for t in (0, 1, 500, 999, 1000, 1200)] == pytest.approx(
        [0.01 * (1 - t / 1000) for t in (0, 1, 500, 999)] + [0.0, 0.0], abs=1e-15
    )


def test_a_cosine_without_warmup_is_unchanged_and_describes_as_before() -> None:
    assert Cosine(10, 0.1).describe() == {"type": "Cosine", "total_steps": 10, "min_lr": 0.1}
    assert build_schedule(Cosine(10, 0.1, 3).describe()).describe() == Cosine(10, 0.1, 3).describe()  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="warmup_steps"):
        Cosine(10, 0.0, 10)


def test_the_schedules_match_pytorch() -> None:
    torch = pytest.importorskip("torch")
    parameter = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def rates(make: object, steps: int) -> list[float]:
        optimizer = torch.optim.SGD([parameter], lr=1e-3)
        scheduler = make(optimizer)  # type: ignore[operator]
        seen = []
        for _ in range(steps):
            seen.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return seen

    lr_sched = torch.optim.lr_scheduler
    linear = rates(lambda o: lr_sched.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=50), 60)
    assert linear == pytest.approx([Linear(50).rate(1e-3, t) for t in range(60)], rel=1e-9, abs=1e-15)
    warm = rates(
        lambda o: lr_sched.SequentialLR(
            o,
            [
                lr_sched.LinearLR(o, start_factor=1 / 11, end_factor=1.0, total_iters=10),
                lr_sched.CosineAnnealingLR(o, T_max=90, eta_min=1e-4),
            ],
            milestones=[10],
        ),
        100,
    )
    assert warm == pytest.approx([Cosine(100, 1e-4, 10).rate(1e-3, t) for t in range(100)], rel=1e-9)


def test_the_optimizer_json_reaches_warmup_and_linear_decay() -> None:
    settings = optimizer_settings(
        {"type": "adamw", "schedule": {"type": "cosine", "warmup_steps": 100, "min_lr": 1e-4}}
    )
    config = TrainConfig(**settings)
    spec = optimizer_spec(config, 200)  # 10 epochs of 200 steps
    assert spec["schedule"] == {"type": "Cosine", "total_steps": 2000, "min_lr": 1e-4, "warmup_steps": 100}
    for backend in ("loops", "vectorized"):
        optimizer = build_optimizer(spec, backend)
        assert optimizer.current_lr() == pytest.approx(config.lr / 101)
    linear = TrainConfig(**optimizer_settings({"type": "adam", "schedule": {"type": "linear"}}), epochs=1)
    assert optimizer_spec(linear, 1000)["schedule"] == {"type": "Linear", "total_steps": 1000}
    with pytest.raises(ConfigError, match="lr_warmup"):
        TrainConfig(lr_warmup=5)  # the warmup belongs to the cosine schedule
