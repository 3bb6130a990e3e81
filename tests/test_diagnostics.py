"""Training diagnostics (issue 28, item 4): the statistics checked by hand on tiny networks in both
backends, the warnings, the unchanged model, and ``plot diagnostics``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from subprocesses import run_scratchnet
from test_train import SMALL, quiet, same_params, synthetic

from scratchnet.builders import build_network, build_optimizer
from scratchnet.core import notation
from scratchnet.training.checkpoint import RunState
from scratchnet.training.config import TrainConfig
from scratchnet.training.diagnostics import Diagnostics, samples_of
from scratchnet.training.loop import Loop
from scratchnet.training.task import Classification
from scratchnet.training.train import train

BACKENDS = ("loops", "vectorized")
RNG = np.random.default_rng(28)
INPUTS = RNG.normal(size=(8, 4))
LABELS = [0, 1, 2, 0, 1, 2, 0, 1]


class FixedBatches:
    """The same batch at every step."""

    steps = 1

    def __init__(self, inputs: Any, labels: list[int]) -> None:
        self.inputs, self.labels = inputs, labels

    def batch(self, epoch: int, step: int) -> tuple[Any, Any, int]:
        return self.inputs.tolist(), self.labels, len(self.labels)


def tiny_loop(
    layers: str, backend: str, inputs: Any, diagnostics: Diagnostics, lr: float = 0.1, epochs: int = 1
) -> Loop:
    architecture = notation.parse(layers, input_shape=(inputs.shape[1],))
    network = build_network(architecture, backend=backend, dtype="float64", seed=5)
    optimizer = build_optimizer({"type": "sgd", "lr": lr}, backend)
    batches = FixedBatches(inputs, LABELS)
    return Loop(network, optimizer, Classification(), batches, epochs, RunState(), (diagnostics,))


def arrays(network: Any) -> dict[str, Any]:
    return {name: np.array(value, dtype=np.float64) for name, value in network.params().items()}


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_sgd_step_by_hand(backend: str) -> None:
    """Activations, gradient spread and the update ratio of one SGD step, computed here from the
    weights with NumPy: the ratio is log10(std(lr * g) / std(w)), w after the step (a large rate, so
    that w before the step would give another ratio: -1.122, not -1.116)."""
    lr = 0.5
    watch = Diagnostics(every=1)
    loop = tiny_loop("dense(6), relu, dense(3)", backend, INPUTS, watch, lr=lr)
    p = arrays(loop.network)
    loop.run()
    (record,) = loop.state.history
    (sample,) = record["diagnostics"]

    x, y = INPUTS, np.eye(3)[LABELS]
    z1 = x @ p["0.weight"].T + p["0.bias"]
    h = np.maximum(z1, 0.0)
    logits = h @ p["2.weight"].T + p["2.bias"]
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    d_logits = (probabilities - y) / len(x)  # dL/dlogits of the mean cross-entropy
    g2 = d_logits.T @ h
    d_h = (d_logits @ p["2.weight"]) * (z1 > 0)
    g1 = d_h.T @ x
    grads = {"0.weight": g1, "0.bias": d_h.sum(axis=0), "2.weight": g2, "2.bias": d_logits.sum(axis=0)}

    assert sample["step"] == 1 and sample["lr"] == lr
    dense, relu, out = sample["layers"]
    assert (dense["layer"], dense["type"], relu["type"], out["type"]) == (0, "Dense", "ReLU", "Dense")
    assert dense["mean"] == pytest.approx(z1.mean(), rel=1e-3) and dense["std"] == pytest.approx(z1.std(), rel=1e-3)
    assert relu["std"] == pytest.approx(h.std(), rel=1e-3)
    assert relu["saturated"] == pytest.approx(np.mean(np.all(h == 0.0, axis=0)), abs=1e-4)
    assert out["std"] == pytest.approx(logits.std(), rel=1e-3)
    assert "saturated" not in dense
    assert set(sample["grad_std"]) == set(grads)
    for name, g in grads.items():
        assert sample["grad_std"][name] == pytest.approx(g.std(), rel=1e-3), name
    assert set(sample["update_ratio"]) == {"0.weight", "2.weight"}  # weights only, not biases
    for name in ("0.weight", "2.weight"):
        after = p[name] - lr * grads[name]
        expected = math.log10(np.std(lr * grads[name]) / np.std(after))
        assert sample["update_ratio"][name] == pytest.approx(expected, abs=6e-4), name  # 4 significant digits
        assert np.allclose(arrays(loop.network)[name], after)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_dead_relu_layer_is_found_and_warned_about_once(backend: str) -> None:
    warnings: list[str] = []
    watch = Diagnostics(every=1, warn=warnings.append)
    loop = tiny_loop("dense(6), relu, dense(3)", backend, INPUTS, watch, epochs=7)
    loop.network.set_params({**arrays(loop.network), "0.bias": [-100.0] * 6})  # every unit below 0 for any input
    loop.run()
    samples = samples_of(loop.state.history)
    assert [s["step"] for s in samples] == list(range(1, 8))
    assert all(s["layers"][1]["saturated"] == 1.0 for s in samples)
    assert all(s["grad_std"]["0.weight"] == 0.0 for s in samples)  # nothing passes back through it
    assert all(s["update_ratio"]["0.weight"] is None for s in samples)  # log10(0): no number for JSON
    dead = [w for w in warnings if "mostly dead" in w]
    assert dead == ["layer 1 (ReLU) is mostly dead: 100% of its units output 0 for every sample of the batch (step 1)"]
    # No gradient reaches 2.weight either (its inputs are the dead layer's zeros): only the biases learn.
    assert [w for w in warnings if "update-to-data ratio" in w] == [
        f"layer {k} ({k}.weight): update-to-data ratio 0 (the median of steps 1..5) is below the sane band "
        "1e-4..1e-2 (about 1e-3 is the rule of thumb): raise the learning rate"
        for k in (0, 2)
    ]
    assert len(warnings) == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_tanh_saturates_on_inputs_scaled_up(backend: str) -> None:
    for scale, saturated in ((0.01, False), (1000.0, True)):
        warnings: list[str] = []
        inputs = INPUTS * scale
        loop = tiny_loop("dense(6), tanh, dense(3)", backend, inputs, Diagnostics(every=1, warn=warnings.append))
        p = arrays(loop.network)
        loop.run()
        (sample,) = samples_of(loop.state.history)
        a = np.tanh(inputs @ p["0.weight"].T + p["0.bias"])
        tanh = sample["layers"][1]
        assert tanh["type"] == "Tanh"
        assert tanh["saturated"] == pytest.approx(np.mean(np.abs(a) > 0.97), abs=1e-4)
        assert tanh["std"] == pytest.approx(a.std(), rel=1e-3)
        assert (tanh["saturated"] > 0.9) is saturated
        mostly = [w for w in warnings if "mostly saturated" in w]
        assert len(mostly) == (1 if saturated else 0)
        if saturated:
            assert mostly[0].startswith("layer 1 (Tanh) is mostly saturated: ")
            assert "of its outputs are beyond ±0.97" in mostly[0]


def test_a_ratio_in_the_band_is_not_warned_about_and_samples_come_every_n_steps() -> None:
    warnings: list[str] = []
    loop = tiny_loop("dense(6), relu, dense(3)", "vectorized", INPUTS, Diagnostics(3, warnings.append), 1e-3, 12)
    loop.run()
    samples = samples_of(loop.state.history)
    assert [s["step"] for s in samples] == [1, 4, 7, 10]
    assert [len(r["diagnostics"]) for r in loop.state.history] == [1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]
    assert all(-4 < s["update_ratio"]["0.weight"] < -2 for s in samples)
    assert warnings == []


def cnn_config(backend: str) -> TrainConfig:
    layers = "conv(3, 3), batchnorm, relu, maxpool(2), flatten, dense(8), tanh, dropout(0.25)"
    return TrainConfig(**{**SMALL, "layers": layers, "dropout": 0.0, "backend": backend, "dtype": "float64"})  # type: ignore[arg-type]


LOOPS_SMALL = {**SMALL, "backend": "loops", "hidden": (4,), "limit": 48, "epochs": 1, "validation": 16}


@pytest.mark.parametrize(
    "config, steps",
    [
        (TrainConfig(**SMALL), 20),  # type: ignore[arg-type]
        (cnn_config("vectorized"), 20),
        (TrainConfig(**LOOPS_SMALL), 2),  # type: ignore[arg-type]
    ],
    ids=["mlp", "cnn", "loops"],
)
def test_diagnostics_do_not_change_the_trained_model(config: TrainConfig, steps: int) -> None:
    """Dropout masks, batch-norm statistics, shifts and Adam's state: the same model bit for bit."""
    data = synthetic()
    plain = train(config, dataset=data, log=quiet, check=False)
    watch = Diagnostics(every=1, warn=quiet)
    watched = train(config, dataset=data, log=quiet, check=False, callbacks=(watch,))
    assert same_params(plain.network, watched.network)
    assert [h["loss"] for h in plain.history] == [h["loss"] for h in watched.history]
    assert [s["step"] for s in samples_of(watched.history)] == list(range(1, steps + 1))
    assert all("forward" not in vars(layer) for layer in watched.network.layers)  # the wrappers are gone


MNIST_RUN = ("--hidden", "32", "--limit", "500", "--validation", "100", "--epochs", "1", "--batch-size", "50")


def test_train_diagnostics_keeps_the_model_and_records_into_the_file(data_dir: Path, tmp_path: Path) -> None:
    env = {"SCRATCHNET_DATA_DIR": str(data_dir)}
    plain = run_scratchnet("train", *MNIST_RUN, "--no-check", "--out", str(tmp_path / "plain.json"), env=env)
    assert plain.returncode == 0, plain.stderr
    watched = run_scratchnet(
        "train", *MNIST_RUN, "--no-check", "--diagnostics", "3", "--out", str(tmp_path / "d.json"), env=env
    )
    assert watched.returncode == 0, watched.stderr
    a, b = np.load(tmp_path / "plain.npz"), np.load(tmp_path / "d.npz")
    assert sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)
    history = json.loads((tmp_path / "d.json").read_text())["metadata"]["training"]["history"]
    assert [s["step"] for s in samples_of(history)] == [1, 4, 7, 10]
    assert "diagnostics" not in json.loads((tmp_path / "plain.json").read_text())["metadata"]["training"]["history"][0]
    for line in watched.stderr.splitlines():  # warnings, if any, one line each, naming a layer
        assert line.startswith("scratchnet train: warning: layer "), line

    drawn = run_scratchnet("plot", "diagnostics", str(tmp_path / "d.json"), "--out", str(tmp_path / "d.png"))
    assert drawn.returncode == 0, drawn.stderr
    assert drawn.stdout.strip() == f"wrote {tmp_path / 'd.png'} (1200x800 px)"
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    refused = run_scratchnet("plot", "diagnostics", str(tmp_path / "plain.json"), "--out", str(tmp_path / "p.png"))
    assert refused.returncode == 1 and not (tmp_path / "p.png").exists()
    assert refused.stderr.strip().splitlines() == [
        f"scratchnet plot: error: {tmp_path / 'plain.json'} has no diagnostics in its history: "
        "train it with scratchnet train --diagnostics"
    ]


def test_a_resumed_run_goes_on_sampling_and_ends_with_the_same_model(tmp_path: Path) -> None:
    """Interrupted at step 15 of 20 (epoch 2, after its 5th step): the checkpoint keeps the history up
    to its last record, so samples 11..15 are lost; the resumed run samples from step 16 on."""
    from test_train import interrupt_at

    from scratchnet.training.train import TrainingInterrupted, checkpoint_path_for, resume

    data, config = synthetic(), TrainConfig(**SMALL)  # type: ignore[arg-type]
    whole = train(config, dataset=data, log=quiet, check=False, callbacks=(Diagnostics(1),))
    with pytest.raises(TrainingInterrupted):
        train(
            config,
            dataset=data,
            out=tmp_path / "b.json",
            log=quiet,
            check=False,
            hook=interrupt_at(1, 4),
            callbacks=(Diagnostics(1),),
        )
    resumed = resume(checkpoint_path_for(tmp_path / "b.json"), dataset=data, log=quiet, callbacks=(Diagnostics(1),))
    assert same_params(whole.network, resumed.network)
    assert [s["step"] for s in samples_of(whole.history)] == list(range(1, 21))
    assert [s["step"] for s in samples_of(resumed.history)] == [*range(1, 11), *range(16, 21)]
    assert samples_of(resumed.history)[-1] == samples_of(whole.history)[-1]


def test_a_long_run_samples_less_often_to_keep_the_model_file_small(monkeypatch: pytest.MonkeyPatch) -> None:
    import scratchnet.training.diagnostics as diagnostics

    monkeypatch.setattr(diagnostics, "BUDGET", 2000)  # bytes: a few samples of this network
    warnings: list[str] = []
    loop = tiny_loop("dense(6), relu, dense(3)", "vectorized", INPUTS, Diagnostics(1, warnings.append), 1e-3, 12)
    loop.run()
    samples = samples_of(loop.state.history)
    size = len(json.dumps(samples[0]))
    every = math.ceil(11 * size / 2000)
    assert every > 1 and [s["step"] for s in samples] == [1, *range(every + 1, 13, every)]
    assert warnings == [
        f"diagnostics every 1 steps would take 0 MiB of the model file over the 11 steps left; "
        f"recording every {every} steps instead"
    ]
    assert sum(len(json.dumps(s)) for s in samples[1:]) <= 2000


def test_a_paused_loop_goes_on_sampling_when_run_again() -> None:
    from test_training_loop import StopAt

    watch = Diagnostics(2)
    loop = tiny_loop("dense(6), tanh, dense(3)", "loops", INPUTS, watch, epochs=9)
    loop.callbacks = (watch, StopAt(4))
    assert loop.run() is False and loop.global_step == 4
    assert all("forward" not in vars(layer) for layer in loop.network.layers)  # put back while paused
    assert loop.run() is True
    assert [s["step"] for s in samples_of(loop.state.history)] == [1, 3, 5, 7, 9]
    assert all([e["type"] for e in s["layers"]] == ["Dense", "Tanh", "Dense"] for s in samples_of(loop.state.history))
