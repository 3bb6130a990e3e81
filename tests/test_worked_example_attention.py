"""The attention example worked out by hand in spec/math.md, section 21, in both backends.

Two tokens, one head, dim 2. The expected numbers are written out from the hand computation (with
math.exp for the softmax), not produced by scratchnet.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from scratchnet import loops, vectorized

W_Q = [[1.0, 0.0], [0.0, 1.0]]
W_K = [[1.0, 0.0], [0.0, 1.0]]
W_V = [[1.0, 0.0], [0.0, 2.0]]
W_OUT = [[1.0, 0.0], [0.0, 1.0]]
X = [[1.0, 0.0], [0.0, 1.0]]  # x_1, x_2
GRAD_Y = [[0.0, 0.0], [1.0, 0.0]]  # dL/dy: L = y_2[0]

# Hand computation, as in spec/math.md section 21: q_t = k_t = x_t, v_1 = [1, 0], v_2 = [0, 2].
C = 1 / math.sqrt(2)  # 1 / sqrt(d), d = 2
E = math.exp(C)  # e^(s_22 - s_21), s_21 = q_2 . k_1 / sqrt 2 = 0, s_22 = 1 / sqrt 2
A21, A22 = 1 / (1 + E), E / (1 + E)
Y = [[1.0, 0.0], [A21, 2 * A22]]  # y_1 = v_1 (a_11 = 1); y_2 = a_21 v_1 + a_22 v_2
DS = A21 * A22  # dL/ds_21 = a_21 (1 - a_21) = a_21 a_22; dL/ds_22 = -a_21 a_22
GRAD_X = [[A21, C * DS], [C * DS + A22, -2 * C * DS]]
GRAD_IN_PROJ = [  # rows: W_q, then W_k, then W_v
    [0.0, C * DS],
    [0.0, -C * DS],
    [0.0, 0.0],
    [C * DS, -C * DS],
    [A21, A22],
    [0.0, 0.0],
]
GRAD_OUT = [[A21, 2 * A22], [0.0, 0.0]]


@pytest.mark.parametrize("module", [loops, vectorized], ids=["loops", "vectorized"])
def test_worked_attention_example(module: Any) -> None:
    layer = module.CausalSelfAttention(2, 1, bias=False)
    layer.set_params({"in_proj_weight": W_Q + W_K + W_V, "out_proj.weight": W_OUT})

    def as_input(value: Any) -> Any:
        return value if module is loops else np.array(value)

    y = np.asarray(layer.forward(as_input([X])))[0]
    assert y.ravel().tolist() == pytest.approx([v for row in Y for v in row], rel=1e-15)
    # The numbers printed in the spec, to the digits printed there.
    assert pytest.approx(0.330238, abs=5e-7) == A21 and pytest.approx(1.339523, abs=5e-7) == 2 * A22
    assert pytest.approx(0.156399, abs=5e-7) == C * DS
    weights = np.asarray(layer.attention_weights)[0, 0]
    assert weights.ravel().tolist() == pytest.approx([1.0, 0.0, A21, A22], rel=1e-15)
    grad_x = np.asarray(layer.backward(as_input([GRAD_Y])))[0]
    assert grad_x.ravel().tolist() == pytest.approx([v for row in GRAD_X for v in row], rel=1e-14, abs=1e-16)
    grads = {name: np.asarray(value).tolist() for name, value in layer.grads().items()}
    assert sorted(grads) == ["in_proj_weight", "out_proj.weight"]
    for row, expected in zip(grads["in_proj_weight"], GRAD_IN_PROJ):
        assert row == pytest.approx(expected, rel=1e-14, abs=1e-16)
    for row, expected in zip(grads["out_proj.weight"], GRAD_OUT):
        assert row == pytest.approx(expected, rel=1e-15)
