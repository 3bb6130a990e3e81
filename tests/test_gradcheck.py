"""Backpropagation agrees with central finite differences, in both backends, for every element."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import architectures

from scratchnet.builders import build_network
from scratchnet.checks.crosscheck import gradient_check, random_batch, shape_of_description


@settings(max_examples=60, deadline=None)
@given(
    description=architectures(dropout=False),
    batch=st.integers(1, 6),
    seed=st.integers(0, 2**32),
    backend=st.sampled_from(["loops", "vectorized"]),
)
def test_gradients_match_central_differences(description: dict[str, Any], batch: int, seed: int, backend: str) -> None:
    net = build_network(description, backend=backend, dtype="float64", seed=seed)
    in_features, classes = shape_of_description(description)
    inputs, labels = random_batch(in_features, classes, batch, seed)
    comparisons = gradient_check(net, inputs, labels)
    assert comparisons, "every architecture here has parameters"
    bad = [c for c in comparisons if not c.passed]
    assert not bad, "; ".join(f"{c.name}: max abs {c.max_abs:.3e}, rel {c.max_rel:.3e}" for c in bad)


def test_a_wrong_gradient_fails_the_finite_difference_check() -> None:
    """The check can fail: halve one gradient and it must notice."""
    from scratchnet.core.architecture import mlp
    from scratchnet.loops.layers import Dense

    net = build_network(mlp([3, 4, 2]), backend="loops", seed=1)
    inputs, labels = random_batch(3, 2, 4, 1)
    original = Dense.backward

    def halved(self: Dense, grad_outputs: Any, need_input_grad: bool = True) -> Any:
        result = original(self, grad_outputs, need_input_grad)
        for neuron in self.neurons:
            neuron.grad_bias *= 0.5
        return result

    Dense.backward = halved  # type: ignore[method-assign]
    try:
        comparisons = gradient_check(net, inputs, labels)
    finally:
        Dense.backward = original  # type: ignore[method-assign]
    assert {c.name for c in comparisons if not c.passed} == {"grad 0.bias", "grad 2.bias"}


def test_a_neuron_skips_zero_inputs_and_keeps_their_gradient_at_zero() -> None:
    """Hand-computed eq. 2.1 and 2.2 for a sample whose inputs are mostly 0, as a digit's pixels are."""
    from scratchnet.loops.neuron import Neuron, nonzero

    neuron = Neuron([0.5, -1.0, 2.0, 4.0], 0.25)
    inputs = [0.0, 3.0, 0.0, -0.5]
    assert nonzero(inputs) == [(1, 3.0), (3, -0.5)]
    assert neuron.forward(nonzero(inputs)) == -1.0 * 3.0 + 4.0 * -0.5 + 0.25  # -4.75
    assert neuron.forward(nonzero([0.0, -0.0, 0.0, 0.0])) == 0.25  # no nonzero input: z = b
    assert nonzero([float("nan"), 0.0])[0][0] == 0  # NaN is not zero: it still reaches z and the loss checks
    grad_inputs = [1.0, 1.0, 1.0, 1.0]
    neuron.backward(nonzero(inputs), 2.0, grad_inputs)
    neuron.backward(nonzero([1.0, 0.0, 0.0, 0.0]), -1.0, None)
    assert neuron.grad_weights == [-1.0, 6.0, 0.0, -1.0]  # 2*x + (-1)*x' per input
    assert neuron.grad_bias == 1.0
    assert grad_inputs == [2.0, -1.0, 5.0, 9.0]  # 1 + 2*w


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32), backend=st.sampled_from(["loops", "vectorized"]))
def test_gradients_match_central_differences_on_inputs_that_are_mostly_zero(seed: int, backend: str) -> None:
    """Zero inputs are skipped in the loops backward pass: their gradients must still be right."""
    from scratchnet.core.architecture import mlp

    net = build_network(mlp([9, 5, 3]), backend=backend, dtype="float64", seed=seed)
    inputs, labels = random_batch(9, 3, 4, seed)
    sparse = [[x if (n + i) % 3 == 0 else 0.0 for i, x in enumerate(row)] for n, row in enumerate(inputs)]
    bad = [c for c in gradient_check(net, sparse, labels) if not c.passed]
    assert not bad, "; ".join(f"{c.name}: max abs {c.max_abs:.3e}, rel {c.max_rel:.3e}" for c in bad)
