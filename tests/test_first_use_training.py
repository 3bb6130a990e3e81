"""Issue 15, item 10: the NaN guard names the setting at fault, and a resume may change it.

A run that diverges names the setting out of range (the weight decay, when it is the cause, not the
learning rate) and the resume command that changes it; resuming with ``--lr`` or ``--weight-decay``
goes on from the last good checkpoint with the optimizer's state, and the history records the change.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from test_train import SMALL, quiet, same_params, synthetic

from scratchnet.cli import main
from scratchnet.core.errors import ConfigError, TrainingError
from scratchnet.io.model import load_model
from scratchnet.training.divergence import diagnose
from scratchnet.training.train import TrainConfig, checkpoint_path_for, resume, train

PLAIN = {**SMALL, "optimizer": "sgd", "lr": 0.1, "lr_schedule": "constant", "dropout": 0.0, "augment": 0}


def config(**changes: Any) -> TrainConfig:
    return TrainConfig(**{**PLAIN, **changes})


def diverge(tmp_path: Path, **changes: Any) -> str:
    with pytest.raises(TrainingError) as caught:
        train(config(**changes), dataset=synthetic(), out=tmp_path / "m.json", log=quiet, check=False)
    return str(caught.value)


def test_weight_decay_out_of_range_is_named_not_the_learning_rate(tmp_path: Path) -> None:
    message = diverge(tmp_path, weight_decay=1000.0)
    checkpoint = checkpoint_path_for(tmp_path / "m.json")
    assert "the weight decay 1000 is out of range" in message
    assert "1 - lr x weight decay = 1 - 0.1 x 1000 = -99" in message
    assert "learning rate" not in message
    assert message.endswith(f"continue it with scratchnet train --resume {checkpoint} --weight-decay 0.1")


def test_a_learning_rate_out_of_range_is_named(tmp_path: Path) -> None:
    message = diverge(tmp_path, lr=1e30)
    assert "the learning rate 1e+30 is out of range for sgd (stable up to about 1)" in message
    assert message.endswith("--lr 0.1")


@pytest.mark.parametrize(
    "settings, cause",
    [
        ({"optimizer": "adamw", "lr": 0.01, "weight_decay": 200.0}, "the weight decay 200 is out of range"),
        (
            {"optimizer": "adam", "lr": 0.001, "weight_decay": 5.0},
            "the weight decay 5 is out of range: adam adds weight decay x weight",
        ),
        ({"optimizer": "adam", "lr": 0.5}, "the learning rate 0.5 is out of range for adam"),
        ({"optimizer": "adam", "lr": 0.01}, "the learning rate 0.01 may be too high"),
        ({"optimizer": "sgd", "lr": 0.1, "weight_decay": 5.0}, "the learning rate 0.1 may be too high"),
    ],
)
def test_each_setting_is_blamed_only_out_of_its_range(settings: dict[str, Any], cause: str) -> None:
    assert diagnose(config(**settings)).cause.startswith(cause)


def test_a_resume_with_a_new_learning_rate_goes_on_and_the_history_records_it(tmp_path: Path) -> None:
    message = diverge(tmp_path, lr=1e30)
    checkpoint = checkpoint_path_for(tmp_path / "m.json")
    assert "last good checkpoint (after epoch 0)" in message
    lines: list[str] = []
    resumed = resume(checkpoint, dataset=synthetic(), log=lines.append, overrides={"lr": 0.1})
    assert lines[0] == f"resuming {checkpoint} at epoch 1/2, step 0/10, lr 0.1 (was 1e+30)"
    fresh = train(config(), dataset=synthetic(), out=tmp_path / "fresh.json", log=quiet, check=False)
    assert same_params(fresh.network, resumed.network)  # from the initial state, lr 0.1 is a fresh run at 0.1
    history = load_model(tmp_path / "m.json").metadata["training"]["history"]
    assert history[0]["changed"] == [{"setting": "lr", "from": 1e30, "to": 0.1, "epoch": 1, "step": 0}]
    assert "changed" not in history[1]
    assert load_model(tmp_path / "m.json").metadata["training"]["config"]["lr"] == 0.1


def test_the_suggested_weight_decay_finishes_the_run(tmp_path: Path) -> None:
    message = diverge(tmp_path, weight_decay=1e4)  # diverges in the first epoch: the initial state is good
    assert "last good checkpoint (after epoch 0)" in message
    value = float(re.findall(r"--weight-decay (\S+)$", message)[0])
    checkpoint = checkpoint_path_for(tmp_path / "m.json")
    result = resume(checkpoint, dataset=synthetic(), log=quiet, overrides={"weight_decay": value})
    assert result.test_accuracy > 0.5
    assert result.history[0]["changed"][0]["setting"] == "weight_decay"


def test_a_resume_changes_only_the_learning_rate_and_the_weight_decay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    diverge(tmp_path, lr=1e30)
    checkpoint = checkpoint_path_for(tmp_path / "m.json")
    with pytest.raises(ConfigError, match="a resume can change lr and weight_decay only, not epochs"):
        resume(checkpoint, dataset=synthetic(), log=quiet, overrides={"epochs": 3})
    with pytest.raises(ConfigError, match=r"lr \(the learning rate\) must be > 0, got -1.0"):
        resume(checkpoint, dataset=synthetic(), log=quiet, overrides={"lr": -1.0})
    assert main(["train", "--resume", str(checkpoint), "--epochs", "3", "--lr", "0.1"]) == 1
    err = capsys.readouterr().err
    assert "(only --lr and --weight-decay may change); drop --epochs" in err and err.count("\n") == 1
