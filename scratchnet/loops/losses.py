"""Loss functions: a number for how wrong a batch of outputs is, and its gradient (spec/math.md, section 5).

Every loss takes integer class labels. ``CrossEntropy`` and ``BinaryCrossEntropy`` read the logits z
that enter the network's final ``Softmax`` or ``Sigmoid`` (the layer registry's ``fused_loss``), which keeps them
finite for any logits and gives the simple fused gradients (eq. 5.3, 5.6). ``MeanSquaredError``
reads the network's output a.
"""

from __future__ import annotations

import math
from typing import Any

from scratchnet.core.loss_options import label_smoothing_of
from scratchnet.loops.activations import log_sum_exp
from scratchnet.loops.tensor import Batch, is_sequence_batch


def targets(labels: list[int], classes: int) -> Batch:
    """t = one-hot(y) for two or more outputs; t = [y] for a single (binary) output (eq. 5.1)."""
    if classes == 1:
        return [[float(y)] for y in labels]
    return [[1.0 if k == y else 0.0 for k in range(classes)] for y in labels]


def smoothed_targets(label: int, classes: int, label_smoothing: float) -> list[float]:
    """q = (1 - eps) one-hot(y) + eps / K, the target a label-smoothed cross-entropy trains towards (eq. 5.7)."""
    spread = label_smoothing / classes
    return [(1.0 - label_smoothing) + spread if k == label else spread for k in range(classes)]


class CrossEntropy:
    """L = (1/B) sum_n (log sum_k e^z[n][k] - z[n][y_n]), the mean of -log p[n][y_n] (eq. 5.2).

    For sequences, logits ``(N, T, K)`` and targets ``(N, T)``: the mean over the positions whose
    target is not ``ignore_index`` (eq. 16.3, 16.4), as PyTorch's nn.CrossEntropyLoss.
    ``label_smoothing`` eps in [0, 1] trains towards ``(1 - eps) one-hot(y) + eps / K`` instead of
    one-hot(y), as PyTorch's ``label_smoothing`` (eq. 5.7, 5.8, 16.5); with eps = 0 the code of
    eq. 5.2-5.3 and 16.3-16.4 runs as it is.
    """

    def __init__(self, ignore_index: int = -100, label_smoothing: float = 0.0) -> None:
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing_of(label_smoothing)

    def value(self, logits: Batch, labels: list[Any], output_layer: Any = None) -> float:
        """``output_layer``: the network's final Softmax, whose forward pass kept log sum_k e^z[n][k]
        of each row (eq. 5.2); without it they are computed here."""
        if is_sequence_batch(logits):
            if self.label_smoothing == 0.0:
                return self.sequence_value(logits, labels, output_layer)
            return self.smoothed_value(*positions(logits, labels, output_layer))
        if self.label_smoothing != 0.0 or self.ignore_index in labels:
            return self.smoothed_value(*positions(logits, labels, output_layer))
        log_sums = None if output_layer is None else output_layer.log_sum_exp
        if log_sums is None:
            log_sums = [log_sum_exp(z) for z in logits]
        total: float = sum(lse - z[y] for lse, z, y in zip(log_sums, logits, labels))
        return total / len(logits)

    def gradient(self, logits: Batch, probabilities: Batch, labels: list[Any]) -> Batch:
        """dL/dz = (p - one-hot(y)) / B, the fused softmax + cross-entropy gradient (eq. 5.3);
        ``probabilities`` are the softmax outputs the forward pass computed from ``logits``."""
        if is_sequence_batch(logits):
            if self.label_smoothing == 0.0:
                return self.sequence_gradient(probabilities, labels)
            rows = self.smoothed_gradient([p for sample in probabilities for p in sample], flat(labels))
            length = len(probabilities[0])
            return [rows[n : n + length] for n in range(0, len(rows), length)]
        if self.label_smoothing != 0.0 or self.ignore_index in labels:
            return self.smoothed_gradient(probabilities, labels)
        batch = len(logits)
        return [
            [(p - t) / batch for p, t in zip(p_row, t_row)]
            for p_row, t_row in zip(probabilities, targets(labels, len(logits[0])))
        ]

    def smoothed_value(self, logits: Batch, log_sums: list[float], labels: list[int]) -> float:
        """L = (1/M) sum over the counted rows of sum_k q[k] (logsumexp(z) - z[k]), q of eq. 5.7,
        written as (1 - eps)(logsumexp(z) - z[y]) + (eps/K) sum_k (logsumexp(z) - z[k]): a sum of
        terms >= 0, as PyTorch computes it (eq. 5.7, 16.5). A row is a sample (2-D) or a position."""
        eps, total, counted = self.label_smoothing, 0.0, 0
        for z, lse, y in zip(logits, log_sums, labels):
            if y != self.ignore_index:
                spread = sum(lse - z_k for z_k in z)
                total += (1.0 - eps) * (lse - z[y]) + (eps / len(z)) * spread
                counted += 1
        return total / counted if counted else 0.0

    def smoothed_gradient(self, probabilities: Batch, labels: list[int]) -> Batch:
        """dL/dz = (p - q) / M at a counted row, 0 at an ignored one (eq. 5.8, 16.5)."""
        counted = sum(y != self.ignore_index for y in labels)
        grads = []
        for p, y in zip(probabilities, labels):
            if y == self.ignore_index:
                grads.append([0.0] * len(p))
            else:
                q = smoothed_targets(y, len(p), self.label_smoothing)
                grads.append([(p_k - q_k) / counted for p_k, q_k in zip(p, q)])
        return grads

    def sequence_value(self, logits: Batch, labels: list[list[int]], output_layer: Any = None) -> float:
        """L = (1/M) sum over counted (n, t) of (log sum_k e^z[n][t][k] - z[n][t][y]) (eq. 16.3),
        M the number of counted positions; 0 when none is counted (PyTorch gives NaN)."""
        log_sums = None if output_layer is None else output_layer.log_sum_exp
        if log_sums is None:
            log_sums = [[log_sum_exp(z) for z in sample] for sample in logits]
        total, counted = 0.0, 0
        for z_sample, lse_sample, y_sample in zip(logits, log_sums, labels):
            for z, lse, y in zip(z_sample, lse_sample, y_sample):
                if y != self.ignore_index:
                    total += lse - z[y]
                    counted += 1
        return total / counted if counted else 0.0

    def sequence_gradient(self, probabilities: Batch, labels: list[list[int]]) -> Batch:
        """dL/dz[n][t] = (p[n][t] - one-hot(y[n][t])) / M at a counted position, 0 at an ignored one (eq. 16.4)."""
        counted = sum(y != self.ignore_index for row in labels for y in row)
        grads = []
        for p_sample, y_sample in zip(probabilities, labels):
            rows = []
            for p, y in zip(p_sample, y_sample):
                if y == self.ignore_index:
                    rows.append([0.0] * len(p))
                else:
                    rows.append([(p_k - (1.0 if k == y else 0.0)) / counted for k, p_k in enumerate(p)])
            grads.append(rows)
        return grads

    def describe(self) -> dict[str, Any]:
        description: dict[str, Any] = {"type": "CrossEntropy"}
        if self.ignore_index != -100:  # PyTorch's default is not written down
            description["ignore_index"] = self.ignore_index
        if self.label_smoothing != 0.0:  # nor is 0, so older descriptions stay as they were
            description["label_smoothing"] = self.label_smoothing
        return description


def positions(logits: Batch, labels: list[Any], output_layer: Any) -> tuple[Batch, list[float], list[int]]:
    """The rows of scores, their log sum_k e^z[k] and their targets: the samples of a 2-D batch, the
    N * T positions of a sequence batch; the log-sums are the output layer's when it kept them."""
    log_sums = None if output_layer is None else output_layer.log_sum_exp
    if not is_sequence_batch(logits):
        return logits, list(log_sums) if log_sums is not None else [log_sum_exp(z) for z in logits], list(labels)
    rows = [z for sample in logits for z in sample]
    sums = flat(log_sums) if log_sums is not None else [log_sum_exp(z) for z in rows]
    return rows, sums, flat(labels)


def flat(nested: Any) -> list[Any]:
    """The items of a list of lists, in order."""
    return [item for row in nested for item in row]


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
