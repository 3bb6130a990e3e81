"""Gradient clipping by global norm (spec/math.md eq. 8.15): both backends against each other and against
PyTorch's clip_grad_norm_ followed by AdamW, and reachable through --optimizer JSON."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from scratchnet.builders import build_network, build_optimizer
from scratchnet.core import notation
from scratchnet.core.errors import ConfigError
from scratchnet.training.config import TrainConfig, optimizer_settings, optimizer_spec

INPUTS = [[0.5, -1.0, 2.0, 0.25], [1.5, 0.5, -0.5, -2.0], [-1.0, 1.0, 1.0, 0.0]]
LABELS = [0, 2, 1]
SPEC = {"type": "AdamW", "lr": 0.05, "weight_decay": 0.1, "betas": [0.9, 0.99], "max_grad_norm": 0.1}


def trained(backend: str, spec: dict[str, Any], steps: int = 3) -> dict[str, Any]:
    architecture = notation.parse("input(4), dense(5), tanh, dense(3)")
    network = build_network(architecture, backend=backend, dtype="float64", seed=7)
    optimizer = build_optimizer(spec, backend)
    first = {name: np.array(value, dtype=np.float64) for name, value in network.params().items()}
    for _ in range(steps):
        network.loss(network.forward(INPUTS, training=True), LABELS)
        network.backward()
        optimizer.step(network)
    return {"first": first, "last": {k: np.array(v, dtype=np.float64) for k, v in network.params().items()}}


def test_both_backends_clip_alike_and_clipping_changes_the_step() -> None:
    loops, vectorized = trained("loops", SPEC), trained("vectorized", SPEC)
    unclipped = trained("vectorized", {k: v for k, v in SPEC.items() if k != "max_grad_norm"})
    for name, value in loops["last"].items():
        np.testing.assert_allclose(vectorized["last"][name], value, rtol=1e-12, atol=1e-14, err_msg=name)
    assert any(not np.allclose(unclipped["last"][n], v) for n, v in vectorized["last"].items())


def test_clipping_matches_pytorch() -> None:
    torch = pytest.importorskip("torch")
    ours = trained("vectorized", SPEC)
    first = {name: torch.tensor(value, requires_grad=True) for name, value in ours["first"].items()}
    names = sorted(first)
    w1, b1, w2, b2 = (first[n] for n in ("0.weight", "0.bias", "2.weight", "2.bias"))
    optimizer = torch.optim.AdamW([first[n] for n in names], lr=0.05, weight_decay=0.1, betas=(0.9, 0.99))
    x, y = torch.tensor(INPUTS, dtype=torch.float64), torch.tensor(LABELS)
    for _ in range(3):
        optimizer.zero_grad()
        logits = torch.tanh(x @ w1.T + b1) @ w2.T + b2
        torch.nn.functional.cross_entropy(logits, y).backward()
        torch.nn.utils.clip_grad_norm_([first[n] for n in names], 0.1)
        optimizer.step()
    for name in names:
        np.testing.assert_allclose(ours["last"][name], first[name].detach().numpy(), rtol=1e-10, atol=1e-12)


def test_the_optimizer_json_reaches_clipping_and_it_is_recorded() -> None:
    config = TrainConfig(**optimizer_settings({"type": "adamw", "max_grad_norm": 1.0}))
    spec = optimizer_spec(config, 10)
    assert spec["max_grad_norm"] == 1.0
    optimizer = build_optimizer(spec, "loops")
    assert optimizer.describe()["max_grad_norm"] == 1.0
    assert build_optimizer(optimizer.describe(), "vectorized").max_grad_norm == 1.0
    assert "max_grad_norm" not in build_optimizer({"type": "Adam"}, "loops").describe()
    with pytest.raises(ConfigError, match="max_grad_norm must be > 0"):
        TrainConfig(**optimizer_settings({"type": "adam", "max_grad_norm": 0}))


DECAY = {"type": "AdamW", "lr": 0.05, "weight_decay": 0.5, "decay_matrices_only": True, "max_grad_norm": 1.0}


def test_weight_decay_on_matrices_only_matches_pytorchs_parameter_groups() -> None:
    loops, vectorized = trained("loops", DECAY), trained("vectorized", DECAY)
    for name, value in loops["last"].items():
        np.testing.assert_allclose(vectorized["last"][name], value, rtol=1e-12, atol=1e-14, err_msg=name)
    torch = pytest.importorskip("torch")
    first = {name: torch.tensor(value, requires_grad=True) for name, value in vectorized["first"].items()}
    w1, b1, w2, b2 = (first[n] for n in ("0.weight", "0.bias", "2.weight", "2.bias"))
    groups = [{"params": [w1, w2], "weight_decay": 0.5}, {"params": [b1, b2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=0.05)
    x, y = torch.tensor(INPUTS, dtype=torch.float64), torch.tensor(LABELS)
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(torch.tanh(x @ w1.T + b1) @ w2.T + b2, y).backward()
        torch.nn.utils.clip_grad_norm_([w1, b1, w2, b2], 1.0)
        optimizer.step()
    for name, tensor in first.items():
        np.testing.assert_allclose(vectorized["last"][name], tensor.detach().numpy(), rtol=1e-10, atol=1e-12)
    everywhere = trained("vectorized", {**DECAY, "decay_matrices_only": False})
    assert not np.allclose(everywhere["last"]["0.bias"], vectorized["last"]["0.bias"])
    assert build_optimizer(DECAY, "loops").describe()["decay_matrices_only"] is True
