"""One neuron: a weighted sum of its inputs plus a bias (spec/math.md, section 2)."""

from __future__ import annotations

from collections.abc import Sequence

NonzeroInputs = list[tuple[int, float]]
"""A sample's inputs without their zeros, as ``(i, x_i)`` pairs: see :func:`nonzero`."""


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

    def forward(self, inputs: NonzeroInputs) -> float:
        """z = sum_i w_i x_i + b  (eq. 2.1), given the sample's nonzero inputs (see :func:`nonzero`):
        a zero x_i adds nothing to the sum."""
        weights = self.weights
        return sum((weights[i] * x for i, x in inputs), 0.0) + self.bias

    def zero_grad(self) -> None:
        """Forget the gradients of the previous backward pass."""
        self.grad_weights = [0.0] * len(self.weights)
        self.grad_bias = 0.0

    def backward(self, inputs: NonzeroInputs, delta: float, grad_inputs: list[float] | None) -> None:
        """Add one sample's share of the gradients, given delta = dL/dz for that sample (eq. 2.2).

        dL/dw_i += delta * x_i;  dL/db += delta;  dL/dx_i += delta * w_i (added into ``grad_inputs``,
        unless it is None: nobody needs dL/dx of the data itself). ``inputs`` are the sample's
        nonzero inputs as ``(i, x_i)`` pairs (see :func:`nonzero`): a zero input adds nothing to dL/dw_i.
        """
        if delta == 0.0:  # e.g. a ReLU that did not fire: this sample adds nothing
            return
        grad_weights = self.grad_weights
        for i, x in inputs:
            grad_weights[i] += delta * x
        self.grad_bias += delta
        if grad_inputs is not None:
            grad_inputs[:] = [g + delta * w for g, w in zip(grad_inputs, self.weights)]


def nonzero(inputs: Sequence[float]) -> NonzeroInputs:
    """The ``(i, x_i)`` pairs with x_i != 0. Most pixels of a digit are 0, and so are the outputs of
    ReLUs that did not fire: their terms w_i * x_i (eq. 2.1) and delta * x_i (eq. 2.2) are 0, and a
    loop over the nonzero pairs skips them (a 784-pixel MNIST digit has about 150)."""
    return [(i, x) for i, x in enumerate(inputs) if x != 0.0]
