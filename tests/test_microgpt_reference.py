"""tools/microgpt_reference.py: its gradients equal finite differences, its forward a hand-written NumPy
forward (the whole document at once under a causal mask), and its loss, gradients and Adam steps PyTorch's."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tool_modules import tool

ref = tool("microgpt_reference")
TINY = ref.Config(vocab_size=5, n_embd=4, n_head=2, n_layer=2, block_size=4)
BOUNDARY = 4
TOKENS = [BOUNDARY, 0, 3, 1, 2, BOUNDARY]  # a document longer than the context: 4 positions counted


def weights(seed: int = 1, std: float = 0.5) -> dict[str, list[list[float]]]:
    drawn: dict[str, list[list[float]]] = ref.init_weights(TINY, seed, std)
    return drawn  # a large std, so that ReLU cuts and attention is not uniform


def loss_of(w: dict[str, list[list[float]]], tokens: list[int] = TOKENS, config: Any = TINY) -> float:
    return float(ref.document_loss(ref.as_params(w), tokens, config).data)


def test_gradients_equal_finite_differences() -> None:
    config = ref.Config(vocab_size=5, n_embd=4, n_head=2, n_layer=1, block_size=4)  # 184 weights
    tokens = [BOUNDARY, 0, 3, BOUNDARY]
    w = ref.init_weights(config, 1, 0.5)
    params = ref.as_params(w)
    ref.document_loss(params, tokens, config).backward()
    h, worst = 1e-6, 0.0
    for name, rows in w.items():
        for r, row in enumerate(rows):
            for c in range(len(row)):
                saved = row[c]
                row[c] = saved + h
                up = loss_of(w, tokens, config)
                row[c] = saved - h
                down = loss_of(w, tokens, config)
                row[c] = saved
                numeric = (up - down) / (2 * h)
                analytic = params[name][r][c].grad
                assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8), (name, r, c)
                worst = max(worst, abs(analytic))
    assert worst > 1e-2  # the gradients are not all zero


def numpy_forward(w: dict[str, Any], tokens: list[int], config: Any) -> tuple[np.ndarray, float]:
    """The same GPT written as matrices over the whole document, a causal mask instead of a cache."""
    W = {name: np.array(rows, dtype=np.float64) for name, rows in w.items()}
    n = min(config.block_size, len(tokens) - 1)
    inputs, targets = tokens[:n], tokens[1 : n + 1]

    def rms(x: np.ndarray) -> np.ndarray:
        scaled: np.ndarray = x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + 1e-5)
        return scaled

    x = rms(W["wte"][inputs] + W["wpe"][:n])
    d, heads = config.n_embd, config.n_head
    hd = d // heads
    mask = np.triu(np.ones((n, n), dtype=bool), k=1)
    for layer in range(config.n_layer):
        p = {k: W[f"h{layer}.{k}"] for k in ("wq", "wk", "wv", "wo", "fc1", "fc2")}
        h = rms(x)
        q, k, v = h @ p["wq"].T, h @ p["wk"].T, h @ p["wv"].T
        out = np.zeros_like(x)
        for s in range(0, d, hd):
            scores = q[:, s : s + hd] @ k[:, s : s + hd].T / math.sqrt(hd)
            scores[mask] = -np.inf
            a = np.exp(scores - scores.max(axis=1, keepdims=True))
            a /= a.sum(axis=1, keepdims=True)
            out[:, s : s + hd] = a @ v[:, s : s + hd]
        x = x + out @ p["wo"].T
        x = x + np.maximum(rms(x) @ p["fc1"].T, 0.0) @ p["fc2"].T
    logits = x @ W["lm_head"].T
    top = logits.max(axis=1, keepdims=True)
    log_probs = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
    return logits, float(-log_probs[np.arange(n), targets].mean())


def test_forward_equals_a_numpy_forward() -> None:
    w = weights(seed=3)
    logits = [[z.data for z in row] for row in ref.document_logits(ref.as_params(w), TOKENS, TINY)]
    expected, loss = numpy_forward(w, TOKENS, TINY)
    np.testing.assert_allclose(np.array(logits), expected, rtol=1e-12, atol=1e-12)
    assert loss_of(w) == pytest.approx(loss, rel=1e-12)
    short = [BOUNDARY, 2, BOUNDARY]  # fewer positions than the context
    assert float(ref.document_loss(ref.as_params(w), short, TINY).data) == pytest.approx(
        numpy_forward(w, short, TINY)[1], rel=1e-12
    )


def torch_model(w: dict[str, Any], torch: Any) -> dict[str, Any]:
    return {name: torch.tensor(rows, dtype=torch.float64, requires_grad=True) for name, rows in w.items()}


def torch_loss(T: dict[str, Any], tokens: list[int], config: Any, torch: Any) -> Any:
    F = torch.nn.functional
    n = min(config.block_size, len(tokens) - 1)
    x = T["wte"][tokens[:n]] + T["wpe"][:n]
    x = F.rms_norm(x, (config.n_embd,), eps=1e-5)
    hd = config.n_embd // config.n_head
    for layer in range(config.n_layer):
        p = {k: T[f"h{layer}.{k}"] for k in ("wq", "wk", "wv", "wo", "fc1", "fc2")}
        h = F.rms_norm(x, (config.n_embd,), eps=1e-5)
        q, k, v = (F.linear(h, p[name]).view(n, config.n_head, hd).transpose(0, 1) for name in ("wq", "wk", "wv"))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(0, 1).reshape(n, config.n_embd)
        x = x + F.linear(out, p["wo"])
        x = x + F.linear(F.relu(F.linear(F.rms_norm(x, (config.n_embd,), eps=1e-5), p["fc1"])), p["fc2"])
    return F.cross_entropy(F.linear(x, T["lm_head"]), torch.tensor(tokens[1 : n + 1]))


def test_loss_and_gradients_equal_pytorch() -> None:
    torch = pytest.importorskip("torch")
    w = weights(seed=5)
    params = ref.as_params(w)
    loss = ref.document_loss(params, TOKENS, TINY)
    loss.backward()
    T = torch_model(w, torch)
    expected = torch_loss(T, TOKENS, TINY, torch)
    expected.backward()
    assert loss.data == pytest.approx(expected.item(), rel=1e-12)
    for name, tensor in T.items():
        grads = np.array([[p.grad for p in row] for row in params[name]])
        np.testing.assert_allclose(grads, tensor.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def test_training_equals_pytorch_adam_with_linear_decay() -> None:
    torch = pytest.importorskip("torch")
    w = weights(seed=7, std=0.08)
    documents = [[0, 3, 1], [2], [1, 1, 0, 3, 2]]
    steps = 5
    losses = ref.train(w, documents, BOUNDARY, steps, TINY)
    T = torch_model(w, torch)
    optimizer = torch.optim.Adam(T.values(), lr=0.01, betas=(0.85, 0.99), eps=1e-8)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / steps)
    expected = []
    for step in range(steps):
        optimizer.zero_grad()
        loss = torch_loss(T, [BOUNDARY, *documents[step % 3], BOUNDARY], TINY, torch)
        loss.backward()
        optimizer.step()
        schedule.step()
        expected.append(loss.item())
    np.testing.assert_allclose(losses, expected, rtol=1e-10)
    assert losses[-1] < losses[0]


def test_the_command_prints_time_per_step_and_mean_loss(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = tmp_path / "names.txt"
    names.write_text("emma\nava\n\nbob\n")
    assert ref.main(["--data", str(names), "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 steps in" in out and "ms a step" in out and "mean loss of the last 2 steps" in out
    loss = float(out.split("steps: ")[-1])
    assert 0.5 * math.log(6) < loss < 2 * math.log(6)  # near chance: 5 letters and the boundary
