"""Training a language model through the one loop: the NextToken task, ``train --data FILE.txt``, an exact
resume, and ``evaluate`` against an independent scoring of the network's forward (issue 27 items 2, 4)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from subprocesses import run_scratchnet

from scratchnet.io.model import load_model
from scratchnet.training.config import TrainConfig
from scratchnet.training.loop import Callback, Loop
from scratchnet.training.text_train import TextSettings, resume_text, train_text
from scratchnet.training.train import TrainingInterrupted

SMALL_GPT = (
    "embedding(16), positions(16), residual(rmsnorm, attention(4)), residual(rmsnorm, dense(32), relu, dense(16)), "
    "rmsnorm"
)
NUMBER = r"([0-9.]+)"


@pytest.fixture
def names(data_dir: Path, tmp_path: Path) -> Path:
    """200 names (lines 201-400 of names.txt: the held-out 20 use only letters the other 180 have)."""
    lines = (data_dir / "names" / "names.txt").read_text().splitlines()[200:400]
    path = tmp_path / "names.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def shakespeare(data_dir: Path, tmp_path: Path) -> Path:
    """The first 20 kB of Tiny Shakespeare."""
    path = tmp_path / "shakespeare.txt"
    path.write_bytes((data_dir / "tinyshakespeare" / "input.txt").read_bytes()[:20000])
    return path


def quiet(line: str) -> None:
    pass


def test_the_loss_falls_on_names_and_the_record_carries_the_validation_loss(names: Path, tmp_path: Path) -> None:
    config = TrainConfig(data=str(names), layers=SMALL_GPT, batch_size=8, epochs=3, lr=0.01, validation=0)
    result = train_text(config, TextSettings(eval_every=5), out=tmp_path / "m.json", check=False, log=quiet)
    losses = [record["loss"] for record in result.history]
    assert losses[-1] < losses[0] - 0.5  # from about ln 27 = 3.3 towards 2.3
    validation = [record["validation_loss"] for record in result.history]
    assert validation[-1] < validation[0]
    assert result.history[-1]["step"] == 3 * math.ceil(180 / 8)  # 180 training names, 23 steps an epoch
    metadata = load_model(tmp_path / "m.json").metadata
    assert metadata["vocabulary"] == {"unit": "character", "characters": "abcdefghijklmnopqrstuvwxyz", "boundary": True}
    assert metadata["source"]["size"] == names.stat().st_size
    assert metadata["source"]["split"] == {
        "layout": "documents",
        "unit": "documents",
        "train": 180,
        "held_out": 20,
        "seed": 3407,
    }


class StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, loop: Loop, loss: float) -> None:
        if loop.global_step == self.step:
            loop.request_stop()


@pytest.mark.parametrize("text", ["names", "shakespeare"])
def test_a_resumed_run_ends_with_exactly_the_uninterrupted_model(text: str, request: Any, tmp_path: Path) -> None:
    path = request.getfixturevalue(text)
    config = TrainConfig(data=str(path), layers=SMALL_GPT, batch_size=4, lr=0.01, validation=0)
    settings = TextSettings(steps=10, context=16, eval_every=4)
    whole = train_text(config, settings, out=tmp_path / "whole.json", check=False, log=quiet)
    with pytest.raises(TrainingInterrupted) as stop:
        train_text(config, settings, out=tmp_path / "cut.json", check=False, log=quiet, callbacks=(StopAt(6),))
    resumed = resume_text(stop.value.checkpoint, log=quiet)
    for name, value in whole.network.params().items():
        np.testing.assert_array_equal(resumed.network.params()[name], value, err_msg=name)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in whole.history]


def independent_loss(model: Path, text: str) -> float:
    """The mean of -ln p(next character) over every held-out position of running text, in consecutive
    blocks of the context, from the network's forward, one block at a time."""
    loaded = load_model(model)
    characters = loaded.metadata["vocabulary"]["characters"]
    ids = [characters.index(c) for c in text]
    held = ids[int(len(ids) * 0.9) :]
    context = loaded.architecture["input_shape"][0]
    total, count = 0.0, 0
    for start in range(0, len(held) - 1, context):
        block = held[start : min(start + context, len(held) - 1) + 1]
        probabilities = np.asarray(loaded.network.forward([block[:-1]]), dtype=np.float64)[0]
        total -= sum(math.log(probabilities[t, target]) for t, target in enumerate(block[1:]))
        count += len(block) - 1
    assert count == len(held) - 1
    return total / count


def test_train_then_evaluate_running_text_on_the_command_line(shakespeare: Path, tmp_path: Path) -> None:
    out = tmp_path / "shake.json"
    trained = run_scratchnet(
        "train", "--data", str(shakespeare), "--layers", SMALL_GPT, "--steps", "8", "--context", "16",
        "--batch-size", "4", "--no-check", "--out", str(out),
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "running (detected: line 1 has a space inside)" in trained.stdout.splitlines()[0]
    # a progress line's epoch counts passes over the 18,000 training characters: 8 steps of 4 blocks of 16
    assert "step 8 (epoch 0.0284)  loss" in trained.stdout, trained.stdout
    evaluated = run_scratchnet("evaluate", str(out))
    assert evaluated.returncode == 0, evaluated.stderr
    found = re.search(
        rf"loss {NUMBER} nats/char \({NUMBER} bits/char, perplexity {NUMBER}\) over ([0-9,]+)", evaluated.stdout
    )
    assert found is not None, evaluated.stdout
    nats, bits, perplexity = (float(found.group(i)) for i in (1, 2, 3))
    assert int(found.group(4).replace(",", "")) == 2000 - 1
    assert bits == pytest.approx(nats / math.log(2), abs=1e-4)
    assert perplexity == pytest.approx(math.exp(nats), abs=0.01)
    expected = independent_loss(out, shakespeare.read_text())
    assert nats == pytest.approx(expected, abs=1e-4)
    again = run_scratchnet("evaluate", str(out), "--backend", "loops")
    assert found.group(0) in again.stdout


def test_evaluate_documents_counts_every_character_and_each_end_token(names: Path, tmp_path: Path) -> None:
    out = tmp_path / "names.json"
    trained = run_scratchnet(
        "train", "--data", str(names), "--layers", SMALL_GPT, "--steps", "5", "--batch-size", "8", "--no-check",
        "--out", str(out),
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    other = tmp_path / "other.txt"
    other.write_text("emma\nava\n")
    evaluated = run_scratchnet("evaluate", str(out), "--data", str(other))
    found = re.search(rf"loss {NUMBER} nats/char .* over ([0-9,]+) positions", evaluated.stdout)
    assert found is not None, evaluated.stdout + evaluated.stderr
    assert int(found.group(2)) == 4 + 1 + 3 + 1
    loaded = load_model(out)
    boundary = 26
    total = 0.0
    for name in ("emma", "ava"):
        ids = [ord(c) - ord("a") for c in name]
        probabilities = np.asarray(loaded.network.forward([[boundary, *ids]]), dtype=np.float64)[0]
        total -= sum(math.log(probabilities[t, target]) for t, target in enumerate([*ids, boundary]))
    assert float(found.group(1)) == pytest.approx(total / 9, abs=1e-4)


def test_the_recorded_text_is_read_again_only_while_its_hash_matches(names: Path, tmp_path: Path) -> None:
    out = tmp_path / "names.json"
    assert (
        run_scratchnet(
            "train", "--data", str(names), "--layers", SMALL_GPT, "--steps", "2", "--no-check", "--out", str(out)
        ).returncode
        == 0
    )
    text = names.read_bytes()
    names.write_bytes(text.replace(b"a", b"e", 1))  # the same size, another hash
    evaluated = run_scratchnet("evaluate", str(out))
    assert evaluated.returncode != 0
    assert "not the text the model was trained on" in evaluated.stderr
    assert len(evaluated.stderr.strip().splitlines()) == 1


def test_a_language_model_trains_in_the_loops_backend(names: Path) -> None:
    config = TrainConfig(data=str(names), layers=SMALL_GPT, batch_size=1, lr=0.01, backend="loops", validation=0)
    result = train_text(config, TextSettings(steps=4, eval_every=2), check=False, log=quiet)
    assert all(math.isfinite(record["loss"]) for record in result.history)
    assert math.isfinite(result.validation_accuracy)  # the held-out loss


def test_the_command_line_resumes_a_text_checkpoint_exactly(names: Path, tmp_path: Path) -> None:
    config = TrainConfig(data=str(names), layers=SMALL_GPT, batch_size=4, lr=0.01, validation=0)
    settings = TextSettings(steps=6, eval_every=2)
    whole = train_text(config, settings, out=tmp_path / "whole.json", check=False, log=quiet)
    with pytest.raises(TrainingInterrupted) as stop:
        train_text(config, settings, out=tmp_path / "cut.json", check=False, log=quiet, callbacks=(StopAt(3),))
    refused = run_scratchnet("train", "--resume", str(stop.value.checkpoint), "--steps", "9")
    assert refused.returncode != 0 and "drop --steps" in refused.stderr
    resumed = run_scratchnet("train", "--resume", str(stop.value.checkpoint))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout and "at step 3 of 6" in resumed.stdout
    final = load_model(tmp_path / "cut.json").network.params()
    for name, value in whole.network.params().items():
        np.testing.assert_array_equal(final[name], value, err_msg=name)
