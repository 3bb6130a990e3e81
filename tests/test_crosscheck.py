"""The loops reference and the vectorized backend compute the same thing (float64, relative 1e-12)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import architectures

from scratchnet.checks.crosscheck import CROSS_TOLERANCE, Comparison, cross_check
from scratchnet.core.architecture import mlp

LARGEST_SEEN: dict[str, float | str] = {}  # reported at the end of the run by conftest.pytest_terminal_summary


def record(comparisons: list[Comparison]) -> None:
    for c in comparisons:
        if c.max_rel > float(LARGEST_SEEN.get("value", -1.0)):
            LARGEST_SEEN.update(value=c.max_rel, tensor=c.name)


def failures(comparisons: list[Comparison]) -> str:
    return "; ".join(f"{c.name}: max abs {c.max_abs:.3e}, max rel {c.max_rel:.3e}" for c in comparisons if not c.passed)


@settings(max_examples=150, deadline=None)
@given(description=architectures(), batch=st.integers(1, 8), seed=st.integers(0, 2**32))
def test_backends_agree_on_forward_loss_gradients_and_sgd_steps(
    description: dict[str, Any], batch: int, seed: int
) -> None:
    comparisons = cross_check(description, batch=batch, seed=seed, steps=3, lr=0.1)
    record(comparisons)
    names = {c.name for c in comparisons}
    assert {"forward", "loss"} <= names
    assert any(name.startswith("grad ") for name in names) and any(name.startswith("after 3 steps") for name in names)
    assert all(c.passed for c in comparisons), failures(comparisons)
    assert max(c.max_rel for c in comparisons) <= CROSS_TOLERANCE


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "sigmoid", "tanh", "identity"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "bce"])
def test_every_activation_with_every_loss(activation: str, loss: str) -> None:
    description = mlp([5, 7, 6, 3], activation=activation, loss=loss, output="sigmoid")
    comparisons = cross_check(description, batch=5, seed=11)
    record(comparisons)
    assert all(c.passed for c in comparisons), failures(comparisons)


def test_the_cross_check_catches_a_bias_gradient_summed_over_every_axis(monkeypatch: pytest.MonkeyPatch) -> None:
    """The classic bug (summing the bias gradient over all axes) must not slip through."""
    import numpy as np

    from scratchnet.vectorized.layers import Dense

    original = Dense.backward

    def buggy(self: Dense, grad_outputs: Any, need_input_grad: bool = True) -> Any:
        result = original(self, grad_outputs, need_input_grad)
        self.grad_bias[:] = np.sum(grad_outputs)
        return result

    monkeypatch.setattr(Dense, "backward", buggy)
    comparisons = cross_check(mlp([4, 5, 3]), batch=4, seed=3)
    failed = {c.name for c in comparisons if not c.passed}
    assert "grad 0.bias" in failed and "grad 2.bias" in failed


@pytest.mark.parametrize("backend", ["loops", "vectorized"])
def test_cross_entropy_from_the_softmax_log_sums_equals_the_loss_from_the_logits(backend: str) -> None:
    """The network's loss reuses the Softmax's log-sum-exp; the loss on its own computes it from the
    logits. Both equal the hand-computed value, also for logits whose probabilities underflow."""
    import math

    from scratchnet.builders import build_network
    from scratchnet.core.architecture import mlp

    net: Any = build_network(mlp([2, 3]), backend=backend, dtype="float64", seed=0)  # a backend's own Network
    net.set_params({"0.weight": [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], "0.bias": [0.0, 0.0, 0.0]})
    inputs, labels = [[1.0, 2.0], [-800.0, 0.0]], [0, 0]  # the second sample's p_0 is e^-800: 0.0
    outputs = net.forward(inputs)
    expected = (math.log(math.e + math.e**2 + 1.0) - 1.0 + (0.0 + math.log(2.0) + 800.0)) / 2
    assert net.loss(outputs, labels) == pytest.approx(expected, rel=1e-14)
    assert net.loss_function.value(net.loss_inputs, net.labels) == pytest.approx(expected, rel=1e-14)
