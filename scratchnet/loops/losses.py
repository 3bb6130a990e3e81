"""Loss functions: a number for how wrong a batch of outputs is, and its gradient (spec/math.md, section 5).

Every loss takes integer class labels. ``CrossEntropy`` and ``BinaryCrossEntropy`` read the logits z
that enter the network's final ``Softmax`` or ``Sigmoid`` (the layer registry's ``fused_loss``), which keeps them
finite for any logits and gives the simple fused gradients (eq. 5.3, 5.6). ``MeanSquaredError``
reads the network's output a.
"""

from __future__ import annotations

import math
from typing import Any

from scratchnet.loops.activations import log_sum_exp
from scratchnet.loops.tensor import Batch


def targets(labels: list[int], classes: int) -> Batch:
    """t = one-hot(y) for two or more outputs; t = [y] for a single (binary) output (eq. 5.1)."""
    if classes == 1:
        return [[float(y)] for y in labels]
    return [[1.0 if k == y else 0.0 for k in range(classes)] for y in labels]


class CrossEntropy:
    """L = (1/B) sum_n (log sum_k e^z[n][k] - z[n][y_n]), the mean of -log p[n][y_n] (eq. 5.2)."""

    def value(self, logits: Batch, labels: list[int], output_layer: Any = None) -> float:
        """``output_layer``: the network's final Softmax, whose forward pass kept log sum_k e^z[n][k]
        of each row (eq. 5.2); without it they are computed here."""
        log_sums = None if output_layer is None else output_layer.log_sum_exp
        if log_sums is None:
            log_sums = [log_sum_exp(z) for z in logits]
        total: float = sum(lse - z[y] for lse, z, y in zip(log_sums, logits, labels))
        return total / len(logits)

    def gradient(self, logits: Batch, probabilities: Batch, labels: list[int]) -> Batch:
        """dL/dz = (p - one-hot(y)) / B, the fused softmax + cross-entropy gradient (eq. 5.3);
        ``probabilities`` are the softmax outputs the forward pass computed from ``logits``."""
        batch = len(logits)
        return [
            [(p - t) / batch for p, t in zip(p_row, t_row)]
            for p_row, t_row in zip(probabilities, targets(labels, len(logits[0])))
        ]

    def describe(self) -> dict[str, Any]:
        return {"type": "CrossEntropy"}


class MeanSquaredError:
    """L = (1/(B K)) sum_n sum_k (a[n][k] - t[n][k])^2, the mean over every output (eq. 5.4)."""

    def value(self, outputs: Batch, labels: list[int], output_layer: Any = None) -> float:
        """``output_layer`` is not needed: the interface is the same for every loss."""
        count = len(outputs) * len(outputs[0])
        total: float = sum(
            (a - t) ** 2
            for a_row, t_row in zip(outputs, targets(labels, len(outputs[0])))
            for a, t in zip(a_row, t_row)
        )
        return total / count

    def gradient(self, inputs: Batch, outputs: Batch, labels: list[int]) -> Batch:
        """dL/da = 2 (a - t) / (B K) (eq. 5.4); this loss reads the outputs themselves."""
        count = len(outputs) * len(outputs[0])
        return [
            [2.0 * (a - t) / count for a, t in zip(a_row, t_row)]
            for a_row, t_row in zip(outputs, targets(labels, len(outputs[0])))
        ]

    def describe(self) -> dict[str, Any]:
        return {"type": "MeanSquaredError"}


class BinaryCrossEntropy:
    """L = (1/(B K)) sum (max(z, 0) - z t + log(1 + e^-|z|)), which equals the mean of
    -(t log a + (1 - t) log(1 - a)) for a = sigmoid(z), computed from the logits (eq. 5.5)."""

    def value(self, logits: Batch, labels: list[int], output_layer: Any = None) -> float:
        """``output_layer`` is not needed: the interface is the same for every loss."""
        count = len(logits) * len(logits[0])
        total: float = sum(
            max(z, 0.0) - z * t + math.log1p(math.exp(-abs(z)))
            for z_row, t_row in zip(logits, targets(labels, len(logits[0])))
            for z, t in zip(z_row, t_row)
        )
        return total / count

    def gradient(self, logits: Batch, outputs: Batch, labels: list[int]) -> Batch:
        """dL/dz = (sigmoid(z) - t) / (B K), the fused sigmoid + cross-entropy gradient (eq. 5.6);
        ``outputs`` are the sigmoid(z) the forward pass computed."""
        count = len(logits) * len(logits[0])
        return [
            [(a - t) / count for a, t in zip(a_row, t_row)]
            for a_row, t_row in zip(outputs, targets(labels, len(logits[0])))
        ]

    def describe(self) -> dict[str, Any]:
        return {"type": "BinaryCrossEntropy"}
