"""The training loop of issue 24: driven a step at a time, paused, its rate changed mid-run, records
every N steps; every optimizer option reachable; one narrowing for the cross-check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_train import SMALL, quiet, same_params, synthetic

from scratchnet.builders import build_network, build_optimizer
from scratchnet.checks.narrow import CHECK_CHANNELS, CHECK_WIDTH, checked_copy
from scratchnet.cli import main
from scratchnet.core import notation
from scratchnet.core.architecture import mlp, plan
from scratchnet.core.errors import ConfigError, TrainingError
from scratchnet.training.checkpoint import RunState
from scratchnet.training.config import TrainConfig, optimizer_settings, optimizer_spec
from scratchnet.training.feeding import Batches, feeder_of, split_dataset
from scratchnet.training.loop import Callback, Loop
from scratchnet.training.task import Classification
from scratchnet.training.train import TrainingInterrupted, architecture_of, resume, train


def fresh_loop(config: TrainConfig, callbacks: tuple[Callback, ...] = ()) -> Loop:
    """A loop over the synthetic data, built from the public pieces as a live page would."""
    data = synthetic()
    split = split_dataset(data, config)
    architecture = architecture_of(config, data.sample_shape, data.num_classes)
    network = build_network(architecture, backend=config.backend, dtype=config.dtype, seed=config.seed)
    settings = config.run_settings()
    feeder = feeder_of(config, plan(architecture).input_shape, data)
    batches = Batches(settings, split.train_images, split.train_labels, feeder)
    optimizer = build_optimizer(optimizer_spec(config, batches.steps), config.backend)
    return Loop(network, optimizer, Classification(), batches, config.epochs, RunState(), callbacks)


class StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, loop: Loop, loss: float) -> None:
        if loop.global_step == self.step:
            loop.request_stop()


def test_one_step_at_a_time_and_paused_runs_give_the_same_model_as_one_run() -> None:
    config = TrainConfig(**SMALL)  # type: ignore[arg-type]
    whole = fresh_loop(config)
    assert whole.run() is True and whole.global_step == 2 * whole.steps_per_epoch
    stepped = fresh_loop(config)
    losses = [stepped.step() for _ in range(2 * stepped.steps_per_epoch)]
    assert stepped.finished and len(losses) == 20 and all(np.isfinite(losses))
    with pytest.raises(TrainingError, match="the run has finished its 2 epochs: there is no step left"):
        stepped.step()
    paused = fresh_loop(config, (StopAt(3), StopAt(14)))
    assert paused.run() is False and paused.global_step == 3 and paused.state.step == 3
    assert paused.run() is False and paused.global_step == 14
    assert paused.run() is True
    for loop in (stepped, paused):
        assert same_params(whole.network, loop.network)
        assert [h["loss"] for h in loop.state.history] == [h["loss"] for h in whole.state.history]


def test_a_rate_changed_mid_run_is_used_and_recorded() -> None:
    config = TrainConfig(**{**SMALL, "lr_schedule": "constant"})  # type: ignore[arg-type]
    loop = fresh_loop(config)
    for _ in range(4):
        loop.step()
    loop.set_lr(0.002)
    assert loop.lr() == 0.002
    loop.run()
    first, second = loop.state.history
    assert first["changed"] == [{"setting": "lr", "from": 0.01, "to": 0.002, "epoch": 1, "step": 4}]
    assert first["lr"] == 0.002 and "changed" not in second
    assert not same_params(loop.network, fresh_loop(config).network)


def test_records_every_n_steps_train_the_same_model_and_resume_exactly(tmp_path: Path) -> None:
    by_epoch = train(TrainConfig(**SMALL), dataset=synthetic(), log=quiet, check=False)  # type: ignore[arg-type]
    config = TrainConfig(**{**SMALL, "report_every_steps": 6})  # type: ignore[arg-type]
    lines: list[str] = []
    by_step = train(config, dataset=synthetic(), out=tmp_path / "m.json", log=lines.append, check=False)
    assert same_params(by_epoch.network, by_step.network)
    assert [h["step"] for h in by_step.history] == [6, 12, 18, 20]  # 10 steps an epoch, and the last
    assert [h["epoch"] for h in by_step.history] == [0.6, 1.2, 1.8, 2.0]
    assert all(0.0 <= h["validation_accuracy"] <= 1.0 for h in by_step.history)
    assert sum(line.startswith("step ") for line in lines) == 4

    with pytest.raises(TrainingInterrupted, match="interrupted at epoch 1, step 8; checkpoint saved") as stopped:
        train(config, dataset=synthetic(), out=tmp_path / "cut.json", log=quiet, check=False, callbacks=(StopAt(8),))
    resumed = resume(stopped.value.checkpoint, dataset=synthetic(), log=quiet)
    assert same_params(resumed.network, by_step.network)
    assert [h["step"] for h in resumed.history] == [6, 12, 18, 20]
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in by_step.history]


def test_every_optimizer_option_reaches_the_optimizer() -> None:
    cases: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"type": "adam", "eps": 1e-7, "betas": [0.8, 0.9]}, {"type": "Adam", "eps": 1e-7, "betas": [0.8, 0.9]}),
        ({"type": "rmsprop", "alpha": 0.9, "centered": True, "momentum": 0.5}, {"alpha": 0.9, "centered": True}),
        ({"type": "sgd", "momentum": 0.9, "dampening": 0.1}, {"momentum": 0.9, "dampening": 0.1}),
        ({"type": "adagrad", "lr_decay": 0.01, "initial_accumulator_value": 0.1, "eps": 1e-9}, {"lr_decay": 0.01}),
    ]
    for given, expected in cases:
        settings = optimizer_settings(given)
        config = TrainConfig(**{**SMALL, **settings, "lr_schedule": "constant", "epochs": 1})
        described = train(config, dataset=synthetic(), log=quiet, check=False).metadata["training"]["optimizer"]
        for key, value in {**expected, **{k: v for k, v in given.items() if k != "type"}}.items():
            assert described[key] == (list(value) if isinstance(value, (list, tuple)) else value), (given, key)
    with pytest.raises(ConfigError, match=r"SGD has unknown options \['eps'\]"):
        TrainConfig(optimizer="sgd", optimizer_options={"eps": 1e-7})
    with pytest.raises(ConfigError, match="eps must be > 0"):
        TrainConfig(optimizer_options={"eps": 0.0})
    with pytest.raises(ConfigError, match="have settings of their own"):
        TrainConfig(optimizer_options={"lr": 0.1})
    schedule = optimizer_settings({"schedule": {"type": "step", "step_epochs": 2, "gamma": 0.5}})
    assert schedule == {"lr_schedule": "step", "lr_step": 2, "lr_gamma": 0.5}


def test_the_command_line_takes_an_optimizer_object_and_the_old_lr_decay(
    capsys: pytest.CaptureFixture[str],
) -> None:
    given = '{"type": "rmsprop", "alpha": 0.95, "schedule": {"type": "inverse_time", "decay": 0.01}}'
    assert main(["train", "--recipe", "small", "--optimizer", given, "--lr", "0.003", "--show"]) == 0
    lines = capsys.readouterr().out.splitlines()
    settings = {line.split()[0]: line.split(None, 1)[1] for line in lines if line.strip().startswith("--")}
    assert settings["--optimizer"] == "rmsprop  (given)" and settings["--lr"] == "0.003  (given)"
    assert settings["--lr-schedule"] == "inverse_time" and settings["--lr-time-decay"] == "0.01"
    assert any(json.dumps({"alpha": 0.95}) in line for line in lines)
    assert " network: dense(32), relu" in lines
    assert main(["train", "--recipe", "small", "--lr-schedule", "inverse_time", "--lr-decay", "0.2", "--show"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert next(line for line in shown if "--lr-time-decay" in line).split()[1] == "0.2"
    assert main(["train", "--optimizer", '{"type": "sgd", "eps": 1}', "--show"]) == 1
    assert "SGD has unknown options ['eps']" in capsys.readouterr().err


def test_a_resume_refuses_the_old_lr_decay_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--resume", str(tmp_path / "c.checkpoint.json"), "--lr-decay", "0.1"]) == 1
    assert "drop --lr-decay" in capsys.readouterr().err


def test_one_narrowing_for_train_and_check() -> None:
    big = mlp([784, 800, 800, 10], activation="tanh", dropout=0.2)
    copy, what = checked_copy(big)
    assert copy == mlp([784, CHECK_WIDTH, CHECK_WIDTH, 10], activation="tanh", dropout=0.2)
    assert what == "784-64-64-10 (the layer types of 784-800-800-10, narrowed)"
    small = mlp([784, 32, 10])
    assert checked_copy(small) == (plan(small).description, "784-32-10")
    cnn = notation.parse("conv(16, 5), relu, maxpool(2), flatten, dense(128), relu, dense(10)", input_shape=(1, 28, 28))
    copy, what = checked_copy(cnn)
    layers = copy["layers"]
    assert [layer["type"] for layer in layers] == [layer["type"] for layer in cnn["layers"]]
    assert layers[0]["out_channels"] == CHECK_CHANNELS and layers[4]["out_features"] == CHECK_CHANNELS
    assert layers[6]["out_features"] == 10 and plan(copy).input_shape == (1, 8, 8)
    assert what.startswith("input(1x8x8), conv(4, 5)")
