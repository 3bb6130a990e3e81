"""Convolutional networks: the loops reference and the vectorized backend agree (float64, relative
1e-12) on forward, loss, every gradient, the batch-norm running statistics and the parameters after
three steps of every optimizer; the pre-training check covers them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import OPTIMIZER_SPECS, cnn_architectures
from test_crosscheck import failures, record

from scratchnet.builders import build_optimizer
from scratchnet.checks.crosscheck import CROSS_TOLERANCE, cross_check, full_check
from scratchnet.core import notation
from scratchnet.core.architecture import plan

# Batch norm over a handful of values is ill-conditioned: with two values per channel its outputs
# are -1 and +1 whatever the inputs, and the gradient divides by a standard deviation that rounding
# dominates, so the backends' different summation orders show at 1e-11. The property test gives every
# BatchNorm layer at least this many values per channel (the batch times the positions).
BATCH_NORM_VALUES = 6


def batch_norm_values(description: dict[str, Any], batch: int) -> int:
    """The fewest values any BatchNorm layer normalizes per channel in a batch of ``batch``."""
    checked = plan(description)
    counts = [
        batch * (shape[1] * shape[2] if len(shape) == 3 else 1)
        for layer, shape in zip(checked.description["layers"], checked.input_shapes)
        if layer["type"] == "BatchNorm"
    ]
    return min(counts, default=batch * BATCH_NORM_VALUES)


@settings(max_examples=200, deadline=None)
@given(
    description=cnn_architectures(),
    batch=st.integers(1, 4),
    seed=st.integers(0, 2**32),
    spec=st.sampled_from(OPTIMIZER_SPECS),
)
def test_backends_agree_on_random_cnns_with_every_optimizer(
    description: dict[str, Any], batch: int, seed: int, spec: dict[str, Any]
) -> None:
    assume(batch_norm_values(description, 4) >= BATCH_NORM_VALUES)
    while batch_norm_values(description, batch) < BATCH_NORM_VALUES:
        batch += 1
    comparisons = cross_check(
        description,
        batch=batch,
        seed=seed,
        steps=3,
        make_optimizers=lambda: (build_optimizer(spec, "loops"), build_optimizer(spec, "vectorized")),
    )
    record(comparisons)
    names = {c.name for c in comparisons}
    running = [name for name in names if "running_" in name]
    if any(layer["type"] == "BatchNorm" for layer in description["layers"]):
        assert running, "the running statistics are compared"
    assert all(c.passed for c in comparisons), f"{notation.notation(description)}: {failures(comparisons)}"
    assert max(c.max_rel for c in comparisons) <= CROSS_TOLERANCE


@pytest.mark.parametrize(
    "text",
    [
        "input(1x8x8), conv(3, 3, padding=1), batchnorm, relu, maxpool(2), flatten, dense(4)",
        "input(2x7x9), conv(2, 2x3, stride=2), tanh, avgpool(2, stride=1), flatten, dense(3)",
        "input(1x6x6), conv(2, 3), sigmoid, conv(3, 2, padding=2, stride=3), flatten, dense(8), batchnorm, "
        "relu, dense(2)",
    ],
)
def test_finite_differences_agree_with_backprop_in_both_backends(text: str) -> None:
    report = full_check(notation.parse(text), batch=3, seed=5, max_per_tensor=0)
    assert report.passed, [c for group in report.gradients.values() for c in group if not c.passed]
    assert set(report.gradients) == {"loops", "vectorized"}


def test_the_cross_check_catches_a_wrong_convolution_gradient(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dL/dW off by a tenth of a percent must not slip through."""
    from scratchnet.vectorized.convolution import Conv2D

    original = Conv2D.backward

    def buggy(self: Conv2D, grad_outputs: Any, need_input_grad: bool = True) -> Any:
        result = original(self, grad_outputs, need_input_grad)
        self.grad_weight[...] *= 0.999
        return result

    monkeypatch.setattr(Conv2D, "backward", buggy)
    description = notation.parse("input(1x5x5), conv(2, 3), relu, flatten, dense(3)")
    failed = {c.name for c in cross_check(description, batch=2, seed=1) if not c.passed}
    assert "grad 0.weight" in failed
