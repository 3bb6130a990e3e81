"""L2 and L1 penalties, dropout and the initializers: both backends agree after 5 optimizer steps, each
matches its equation worked by hand, and invalid settings are refused (spec/math.md, sections 7 and 10)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_optimizers import BACKENDS, architectures, assert_backends_agree, optimizer_specs

from scratchnet import loops, vectorized
from scratchnet.builders import build_network
from scratchnet.checks.crosscheck import flat_floats
from scratchnet.core.architecture import mlp
from scratchnet.core.errors import ConfigError
from scratchnet.core.init import INITIALIZERS

PENALTIES = [1e-3, 0.01, 0.1]


# ---- cross-checks: loops against vectorized, 5 steps of any optimizer ----
# End to end and derandomized, with the settings people use: see the note in test_optimizers.py.


@pytest.mark.parametrize("penalty", ["l2", "l1"])
@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    data=st.data(),
    strength=st.sampled_from(PENALTIES),
    spec=optimizer_specs(),
    batch=st.integers(1, 8),
    seed=st.integers(0, 2**32),
)
def test_penalty_agrees_across_backends(
    penalty: str, data: st.DataObject, strength: float, spec: dict[str, Any], batch: int, seed: int
) -> None:
    l2, l1 = (strength, 0.0) if penalty == "l2" else (0.0, strength)
    assert_backends_agree(data.draw(architectures(l2=l2, l1=l1)), spec, batch, seed)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    data=st.data(),
    rate=st.sampled_from([0.1, 0.3, 0.5]),
    spec=optimizer_specs(),
    batch=st.integers(1, 8),
    seed=st.integers(0, 2**32),
)
def test_dropout_agrees_across_backends(
    data: st.DataObject, rate: float, spec: dict[str, Any], batch: int, seed: int
) -> None:
    description = data.draw(architectures(min_dense=2, dropout=rate))
    assert any(layer["type"] == "Dropout" for layer in description["layers"])
    assert_backends_agree(description, spec, batch, seed)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(data=st.data(), spec=optimizer_specs(), batch=st.integers(1, 8), seed=st.integers(0, 2**32))
def test_all_regularizers_together_agree_across_backends(
    data: st.DataObject, spec: dict[str, Any], batch: int, seed: int
) -> None:
    assert_backends_agree(data.draw(architectures(min_dense=2, dropout=0.3, l2=0.01, l1=0.01)), spec, batch, seed)


@pytest.mark.parametrize("init", INITIALIZERS)
@settings(max_examples=5, deadline=None, derandomize=True)
@given(data=st.data(), spec=optimizer_specs(), batch=st.integers(1, 8), seed=st.integers(0, 2**32))
def test_every_initializer_agrees_across_backends(
    init: str, data: st.DataObject, spec: dict[str, Any], batch: int, seed: int
) -> None:
    description = data.draw(architectures())
    for layer in description["layers"]:
        if layer["type"] == "Dense":
            layer["init"] = init
    assert_backends_agree(description, spec, batch, seed)


# ---- the penalties, by hand (eq. 7.1, 7.2) ----

WEIGHT = [[0.5, -1.0, 0.0], [2.0, 0.25, -0.75]]
BIAS = [0.3, -0.6]
INPUTS = [[1.0, 2.0, -1.0], [0.5, -0.5, 3.0]]
LABELS = [0, 1]


def loss_and_grads(backend: str, l2: float, l1: float) -> tuple[float, dict[str, list[float]]]:
    net = build_network(mlp([3, 2], loss="mse", l2=l2, l1=l1), backend=backend)
    net.set_params({"0.weight": WEIGHT, "0.bias": BIAS})
    loss = net.loss(net.forward(INPUTS, training=True), LABELS)
    net.backward()
    return float(loss), {name: flat_floats(grad) for name, grad in net.grads().items()}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("l2,l1", [(0.1, 0.0), (0.0, 0.2), (0.3, 0.05)])
def test_penalties_match_their_equations(backend: str, l2: float, l1: float) -> None:
    plain_loss, plain = loss_and_grads(backend, 0.0, 0.0)
    loss, grads = loss_and_grads(backend, l2, l1)
    weights = [w for row in WEIGHT for w in row]
    # L += l2/2 * sum W^2 + l1 * sum |W|: weights only, biases are not penalised
    assert loss - plain_loss == pytest.approx(l2 / 2 * (0.25 + 1.0 + 4.0 + 0.0625 + 0.5625) + l1 * 4.5, rel=1e-12)
    sign = [1.0, -1.0, 0.0, 1.0, 1.0, -1.0]  # sign(0) = 0
    for w, s, g, g0 in zip(weights, sign, grads["0.weight"], plain["0.weight"]):
        assert g - g0 == pytest.approx(l2 * w + l1 * s, rel=1e-12, abs=1e-15)
    assert grads["0.bias"] == plain["0.bias"]


# ---- dropout, by hand (eq. 7.3) ----


@pytest.mark.parametrize("rate", [0.0, 0.25, 0.8])
def test_dropout_is_inverted_and_shared_by_both_backends(rate: float) -> None:
    inputs = [[float(n * 10 + i + 1) for i in range(10)] for n in range(40)]
    loops_layer, vector_layer = loops.Dropout(rate, seed=11), vectorized.Dropout(rate, seed=11)
    for _ in range(2):  # two training passes: two different masks, the same in both backends
        kept = loops_layer.forward(inputs, training=True)
        assert np.array_equal(vector_layer.forward(np.array(inputs), training=True), np.array(kept))
        for row, out in zip(inputs, kept):
            for x, y in zip(row, out):
                assert y == 0.0 or y == pytest.approx(x / (1.0 - rate), rel=1e-15)
        dropped = sum(y == 0.0 for out in kept for y in out) / 400
        assert abs(dropped - rate) < 0.1
        grad = [[1.0] * 10 for _ in inputs]  # dL/dx = dL/da * mask
        mask = [[0.0 if y == 0.0 else 1.0 / (1.0 - rate) for y in out] for out in kept]
        assert loops_layer.backward(grad) == mask
        assert np.array_equal(vector_layer.backward(np.array(grad)), np.array(mask))
    assert loops_layer.forward(inputs) == inputs  # the identity at inference
    assert np.array_equal(vector_layer.forward(np.array(inputs)), np.array(inputs))


# ---- initializers (eq. 10.5-10.10) ----


@pytest.mark.parametrize("init", INITIALIZERS)
def test_initializers_are_identical_in_both_backends_and_recorded(init: str) -> None:
    description = mlp([30, 40, 3], init=init)
    nets = {backend: build_network(description, backend=backend, seed=4) for backend in BACKENDS}
    for name, value in nets["loops"].params().items():
        assert flat_floats(nets["vectorized"].params()[name]) == flat_floats(value), name
    for net in nets.values():
        dense = [layer for layer in net.describe()["layers"] if layer["type"] == "Dense"]
        assert [layer["init"] for layer in dense] == [init, init]
    rebuilt = build_network(nets["loops"].describe(), backend="vectorized", seed=4)
    assert flat_floats(rebuilt.params()["0.weight"]) == flat_floats(nets["loops"].params()["0.weight"])


@pytest.mark.parametrize(
    "init,low,high,std",
    [
        ("he_normal", None, None, math.sqrt(2.0 / 30)),
        ("glorot_normal", None, None, math.sqrt(2.0 / 70)),
        ("he_uniform", -math.sqrt(6.0 / 30), math.sqrt(6.0 / 30), math.sqrt(6.0 / 30) / math.sqrt(3.0)),
        ("glorot_uniform", -math.sqrt(6.0 / 70), math.sqrt(6.0 / 70), math.sqrt(6.0 / 70) / math.sqrt(3.0)),
        ("uniform", -0.5, 0.5, 1.0 / math.sqrt(12.0)),
        ("zeros", 0.0, 0.0, 0.0),
    ],
)
def test_initializers_have_their_distributions(init: str, low: float | None, high: float | None, std: float) -> None:
    weights = flat_floats(build_network(mlp([30, 40, 3], init=init), backend="vectorized", seed=8).params()["0.weight"])
    mean = sum(weights) / len(weights)
    spread = math.sqrt(sum((w - mean) ** 2 for w in weights) / len(weights))
    assert abs(mean) <= 4 * std / math.sqrt(len(weights)) + 1e-15
    assert spread == pytest.approx(std, rel=0.1, abs=1e-15)
    if low is not None and high is not None:
        assert low <= min(weights) and max(weights) <= high


@pytest.mark.parametrize("backend", BACKENDS)
def test_biases_start_at_zero_except_for_the_classic_uniform_scheme(backend: str) -> None:
    for init in INITIALIZERS:
        bias = flat_floats(build_network(mlp([3, 50, 2], init=init), backend=backend, seed=2).params()["0.bias"])
        if init == "uniform":
            assert all(-0.5 <= b < 0.5 for b in bias) and len(set(bias)) > 1
        else:
            assert bias == [0.0] * 50


# ---- invalid settings ----


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, math.nan, math.inf])
def test_dropout_rate_outside_0_1_is_refused(backend: str, rate: float) -> None:
    module: Any = loops if backend == "loops" else vectorized
    with pytest.raises(ConfigError, match=r"dropout rate must be in \[0, 1\)"):
        module.Dropout(rate)
    description = mlp([3, 4, 2], dropout=0.5)
    description["layers"][2]["rate"] = rate
    with pytest.raises(ConfigError, match="dropout rate"):
        build_network(description, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("l2,l1", [(-0.1, 0.0), (0.0, -1e-3), (math.nan, 0.0)])
def test_negative_penalties_are_refused(backend: str, l2: float, l1: float) -> None:
    with pytest.raises(ConfigError, match="must be"):
        build_network(mlp([3, 2], l2=l2, l1=l1), backend=backend)
    module: Any = loops if backend == "loops" else vectorized
    with pytest.raises(ConfigError, match="penalties must be finite numbers >= 0"):
        module.Network([module.Dense(3, 2), module.Softmax()], module.CrossEntropy(), l2=l2, l1=l1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unknown_initializer_is_refused_with_the_known_ones(backend: str) -> None:
    with pytest.raises(ConfigError, match="unknown initializer 'orthogonal'; choose one of he_normal, he_uniform"):
        build_network(mlp([3, 2], init="orthogonal"), backend=backend)
