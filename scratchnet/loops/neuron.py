"""One neuron: a weighted sum of its inputs plus a bias (spec/math.md, section 2)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import mul

try:  # Python 3.12+: the weighted sum itself, in C
    from math import sumprod  # type: ignore[attr-defined,unused-ignore]
except ImportError:  # Python 3.11

    def sumprod(p: Iterable[float], q: Iterable[float]) -> float:
        """sum_i p_i * q_i."""
        return float(sum(map(mul, p, q)))


class Neuron:
    """A neuron with ``weights`` (one per input) and a ``bias``.

    ``grad_weights`` and ``grad_bias`` hold dL/dw and dL/db, summed over the samples of the last
    backward pass.
    """

    def __init__(self, weights: list[float], bias: float) -> None:
        self.weights = weights
        self.bias = bias
        self.grad_weights = [0.0] * len(weights)
        self.grad_bias = 0.0

    def forward(self, inputs: Sequence[float]) -> float:
        """z = sum_i w_i x_i + b  (eq. 2.1)."""
        return float(sumprod(self.weights, inputs)) + self.bias

    def zero_grad(self) -> None:
        """Forget the gradients of the previous backward pass."""
        self.grad_weights = [0.0] * len(self.weights)
        self.grad_bias = 0.0

    def backward(self, inputs: Sequence[float], delta: float, grad_inputs: list[float] | None) -> None:
        """Add one sample's share of the gradients, given delta = dL/dz for that sample (eq. 2.2).

        dL/dw_i += delta * x_i;  dL/db += delta;  dL/dx_i += delta * w_i (added into ``grad_inputs``,
        unless it is None: nobody needs dL/dx of the data itself).
        """
        if delta == 0.0:  # e.g. a ReLU that did not fire: this sample adds nothing
            return
        self.grad_weights = [g + delta * x for g, x in zip(self.grad_weights, inputs)]
        self.grad_bias += delta
        if grad_inputs is not None:
            grad_inputs[:] = [g + delta * w for g, w in zip(grad_inputs, self.weights)]
