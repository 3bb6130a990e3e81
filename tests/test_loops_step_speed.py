"""The loops backend's faster step (issue 27, microgpt target): Dense sums every input of rows with few
zeros and skips the zeros of mostly-zero rows, and both give the plain sums of eq. 2.1-2.2 / 3.1-3.4;
tools/bench_loops_step.py builds microgpt's model and times a step."""

from __future__ import annotations

import random
from typing import Any

import pytest
from tool_modules import tool

from scratchnet.loops.layers import Dense, mostly_zeros


def by_hand(weights: list[list[float]], bias: list[float], xs: list[list[float]], deltas: list[list[float]]) -> Any:
    """z = W x + b, dL/dW = sum_n delta_n x_n^T, dL/db = sum_n delta_n, dL/dx_n = W^T delta_n, written
    as plain index loops."""
    outs, ins = len(weights), len(weights[0])
    z = [[sum(weights[j][i] * x[i] for i in range(ins)) + bias[j] for j in range(outs)] for x in xs]
    grad_w = [[sum(d[j] * x[i] for x, d in zip(xs, deltas)) for i in range(ins)] for j in range(outs)]
    grad_b = [sum(d[j] for d in deltas) for j in range(outs)]
    grad_x = [[sum(d[j] * weights[j][i] for j in range(outs)) for i in range(ins)] for d in deltas]
    return z, grad_w, grad_b, grad_x


def close(got: Any, expected: Any) -> bool:
    """Nested lists of one shape whose numbers agree to 1e-12."""
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(map(close, got, expected))
    return bool(got == pytest.approx(expected, rel=1e-12, abs=1e-12))


@pytest.mark.parametrize("zero_share", [0.0, 0.5, 0.9])
def test_dense_gives_the_plain_sums_whether_it_skips_zeros_or_not(zero_share: float) -> None:
    draw = random.Random(7)
    layer = Dense(12, 5, seed=3)
    weights, bias = layer.params()["weight"], [draw.uniform(-1, 1) for _ in range(5)]
    layer.set_params({"weight": weights, "bias": bias})
    xs = [[0.0 if draw.random() < zero_share else draw.gauss(0, 1) for _ in range(12)] for _ in range(6)]
    deltas = [[draw.gauss(0, 1) if j != 2 else 0.0 for j in range(5)] for _ in range(6)]  # neuron 2 never fired
    z, grad_w, grad_b, grad_x = by_hand(weights, bias, xs, deltas)
    assert close(layer.forward(xs), z)
    assert close(layer.backward(deltas), grad_x)
    grads = layer.grads()
    assert close(grads["weight"], grad_w)
    assert close(grads["bias"], grad_b)


def test_dense_on_sequences_without_biases_gives_the_plain_sums() -> None:
    draw = random.Random(11)
    layer = Dense(4, 3, bias=False, seed=1)
    weights = layer.params()["weight"]
    sequence = [[[draw.gauss(0, 1) for _ in range(4)] for _ in range(5)]]
    deltas = [[[draw.gauss(0, 1) for _ in range(3)] for _ in range(5)]]
    z, grad_w, _, grad_x = by_hand(weights, [0.0] * 3, sequence[0], deltas[0])
    assert close(layer.forward(sequence)[0], z)
    assert close(layer.backward(deltas)[0], grad_x)
    assert list(layer.grads()) == ["weight"]
    assert close(layer.grads()["weight"], grad_w)


def test_mostly_zeros_means_at_least_three_in_four() -> None:
    assert mostly_zeros([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 2.0]])
    assert not mostly_zeros([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 2.0]])
    assert not mostly_zeros([[1.0, 2.0], [3.0, 4.0]])


def test_the_bench_builds_microgpts_model_and_times_its_steps(capsys: pytest.CaptureFixture[str]) -> None:
    bench = tool("bench_loops_step")
    network: Any = bench.build_network(bench.microgpt_description(27), backend="loops")
    shapes = {name: (len(v), len(v[0]) if isinstance(v[0], list) else 0) for name, v in network.params().items()}
    # microgpt's 4,192 parameters: wte 27x16, wpe 16x16, q k v o 16x16 each, fc1 64x16, fc2 16x64, lm_head 27x16
    assert sum(rows * max(columns, 1) for rows, columns in shapes.values()) == 4192
    assert not [name for name in shapes if name.endswith("bias")]
    assert bench.main(["--configs", "microgpt", "--steps", "2", "--warmup", "0", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "CPU time (time.process_time), not wall time" in out
    line = next(row for row in out.splitlines() if row.startswith("microgpt"))
    assert "CPU ms/step" in line and "2 steps" in line
    first_losses = float(line.rsplit("mean loss", 1)[1])
    assert 3.0 < first_losses < 3.6  # near ln 27 = 3.30: N(0, 0.08) weights predict almost uniformly
