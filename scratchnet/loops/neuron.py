"""One neuron: a weighted sum of its inputs plus a bias (spec/math.md, section 2)."""

from __future__ import annotations

from collections.abc import Sequence


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
        return sum(w * x for w, x in zip(self.weights, inputs)) + self.bias

    def zero_grad(self) -> None:
        """Forget the gradients of the previous backward pass."""
        self.grad_weights = [0.0] * len(self.weights)
        self.grad_bias = 0.0

    def backward(self, inputs: Sequence[float], delta: float, grad_inputs: list[float]) -> None:
        """Add one sample's share of the gradients, given delta = dL/dz for that sample (eq. 2.2).

        dL/dw_i += delta * x_i;  dL/db += delta;  dL/dx_i += delta * w_i (added into ``grad_inputs``).
        """
        self.grad_weights = [g + delta * x for g, x in zip(self.grad_weights, inputs)]
        self.grad_bias += delta
        grad_inputs[:] = [g + delta * w for g, w in zip(grad_inputs, self.weights)]
