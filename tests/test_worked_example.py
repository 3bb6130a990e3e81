"""The tiny 2-2-2 network worked out by hand in spec/math.md, section 11, in both backends.

The expected numbers are written out from the hand computation (with math.exp and math.log for the
transcendental parts), not produced by scratchnet.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from scratchnet.builders import build_network
from scratchnet.core.architecture import mlp

W1 = [[0.1, 0.2], [-0.3, 0.4]]
B1 = [0.0, 0.1]
W2 = [[0.5, -0.6], [0.7, 0.8]]
B2 = [0.0, 0.0]

# Hand computation, as in spec/math.md section 11.
Z1 = [0.5, 0.6]
Z2 = [-0.11, 0.83]
E = math.exp(-0.94)
P = [E / (1 + E), 1 / (1 + E)]
LOSS = math.log(1 + E)
DELTA2 = [P[0], P[1] - 1]
GRAD_W2 = [[DELTA2[0] * 0.5, DELTA2[0] * 0.6], [DELTA2[1] * 0.5, DELTA2[1] * 0.6]]
DELTA1 = [DELTA2[0] * 0.5 + DELTA2[1] * 0.7, DELTA2[0] * -0.6 + DELTA2[1] * 0.8]
GRAD_W1 = [[DELTA1[0] * 1, DELTA1[0] * 2], [DELTA1[1] * 1, DELTA1[1] * 2]]


def as_lists(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value


@pytest.mark.parametrize("backend", ["loops", "vectorized"])
def test_worked_example(backend: str) -> None:
    net: Any = build_network(mlp([2, 2, 2]), backend=backend, dtype="float64")  # a backend's own Network
    net.set_params({"0.weight": W1, "0.bias": B1, "2.weight": W2, "2.bias": B2})
    out = net.forward([[1.0, 2.0]])
    assert as_lists(out)[0] == pytest.approx(P, rel=1e-14)
    assert as_lists(net.layers[0].forward([[1.0, 2.0]]))[0] == pytest.approx(Z1, rel=1e-14)
    out = net.forward([[1.0, 2.0]])
    assert as_lists(net.loss_inputs)[0] == pytest.approx(Z2, rel=1e-13)
    assert net.loss(out, [1]) == pytest.approx(LOSS, rel=1e-13)
    # The numbers printed in the spec, to the digits printed there.
    assert P[0] == pytest.approx(0.280900, abs=5e-7) and pytest.approx(0.329755, abs=5e-7) == LOSS
    net.backward()
    grads = {name: as_lists(value) for name, value in net.grads().items()}
    assert grads["2.bias"] == pytest.approx(DELTA2, rel=1e-13)
    for row, expected in zip(grads["2.weight"], GRAD_W2):
        assert row == pytest.approx(expected, rel=1e-13)
    assert grads["0.bias"] == pytest.approx(DELTA1, rel=1e-13)
    for row, expected in zip(grads["0.weight"], GRAD_W1):
        assert row == pytest.approx(expected, rel=1e-13)
    assert pytest.approx([-0.056180, -0.393260], abs=5e-7) == DELTA1

    optimizer = __import__(f"scratchnet.{backend}", fromlist=["SGD"]).SGD(lr=0.5)
    optimizer.step(net)
    assert as_lists(net.params()["2.bias"]) == pytest.approx([-0.5 * DELTA2[0], -0.5 * DELTA2[1]], rel=1e-13)
    assert as_lists(net.params()["0.weight"])[1][1] == pytest.approx(0.4 - 0.5 * GRAD_W1[1][1], rel=1e-13)
