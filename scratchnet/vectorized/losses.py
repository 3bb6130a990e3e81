"""Loss functions on whole batches (spec/math.md, section 5); see scratchnet/loops/losses.py."""

from __future__ import annotations

from typing import Any

import numpy as np

from scratchnet.core.loss_options import label_smoothing_of
from scratchnet.vectorized.activations import log_sum_exp
from scratchnet.vectorized.tensor import Array, Labels


def targets(labels: Labels, classes: int, dtype: np.dtype[Any]) -> Array:
    """t = one-hot(y) for two or more outputs; t = [y] for a single (binary) output (eq. 5.1)."""
    if classes == 1:
        return labels.astype(dtype)[:, None]
    t = np.zeros((labels.shape[0], classes), dtype)
    t[np.arange(labels.shape[0]), labels] = 1.0
    return t


def smoothed_targets(labels: Labels, classes: int, label_smoothing: float, dtype: np.dtype[Any]) -> Array:
    """q = (1 - eps) one-hot(y) + eps / K, one row per label (eq. 5.7)."""
    spread = label_smoothing / classes
    q = np.full((labels.shape[0], classes), spread, dtype)
    q[np.arange(labels.shape[0]), labels] = (1.0 - label_smoothing) + spread
    return q


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

    def value(self, logits: Array, labels: Labels, output_layer: Any = None) -> float:
        """``output_layer``: the network's final Softmax, whose forward pass kept log sum_k e^z[n][k]
        of each row (eq. 5.2); without it they are computed here."""
        if self.smoothed(logits, labels):
            return self.smoothed_value(logits, labels, output_layer)
        if logits.ndim == 3:
            return self.sequence_value(logits, labels, output_layer)
        log_sums = None if output_layer is None else output_layer.log_sum_exp
        if log_sums is None:
            log_sums = log_sum_exp(logits)
        picked = logits[np.arange(logits.shape[0]), labels]
        return float((log_sums - picked).sum()) / len(logits)

    def gradient(self, logits: Array, probabilities: Array, labels: Labels) -> Array:
        """dL/dz = (p - one-hot(y)) / B, the fused softmax + cross-entropy gradient (eq. 5.3);
        ``probabilities`` are the softmax outputs the forward pass computed from ``logits``."""
        if self.smoothed(logits, labels):
            return self.smoothed_gradient(probabilities, labels)
        if logits.ndim == 3:
            return self.sequence_gradient(probabilities, labels)
        grad = probabilities.copy()
        grad[np.arange(len(labels)), labels] -= 1.0  # p - one-hot(y): only the label's column changes
        grad /= logits.shape[0]
        return grad

    def smoothed(self, logits: Array, labels: Labels) -> bool:
        """Whether eq. 5.7-5.8 / 16.5 apply: label smoothing, or a 2-D batch with an ignored row
        (a sequence batch without smoothing keeps eq. 16.3-16.4, a plain 2-D one eq. 5.2-5.3)."""
        if self.label_smoothing != 0.0:
            return True
        return logits.ndim == 2 and bool(np.any(np.asarray(labels) == self.ignore_index))

    def smoothed_value(self, logits: Array, labels: Labels, output_layer: Any = None) -> float:
        """L = (1/M) sum over the counted rows of (1 - eps)(logsumexp(z) - z[y]) + (eps/K) sum_k
        (logsumexp(z) - z[k]), a sum of terms >= 0 as PyTorch computes it (eq. 5.7, 16.5); a row is
        a sample (2-D) or a position (N, T, K); 0 when no row is counted."""
        classes, eps = logits.shape[-1], self.label_smoothing
        log_sums = None if output_layer is None else output_layer.log_sum_exp
        if log_sums is None:
            log_sums = log_sum_exp(logits)
        flat = np.asarray(labels).ravel()
        rows = np.flatnonzero(flat != self.ignore_index)
        if not len(rows):
            return 0.0
        z = logits.reshape(-1, classes)[rows]
        lse = log_sums.ravel()[rows]
        nll = lse - z[np.arange(len(rows)), flat[rows]]
        spread = (lse[:, None] - z).sum(axis=1)
        return float(((1.0 - eps) * nll + (eps / classes) * spread).sum()) / len(rows)

    def smoothed_gradient(self, probabilities: Array, labels: Labels) -> Array:
        """dL/dz = (p - q) / M at a counted row, 0 at an ignored one (eq. 5.8, 16.5)."""
        classes = probabilities.shape[-1]
        flat = np.asarray(labels).ravel()
        rows = np.flatnonzero(flat != self.ignore_index)
        grad = np.zeros((flat.size, classes), probabilities.dtype)
        if len(rows):
            q = smoothed_targets(flat[rows], classes, self.label_smoothing, probabilities.dtype)
            grad[rows] = (probabilities.reshape(-1, classes)[rows] - q) / len(rows)
        return grad.reshape(probabilities.shape)

    def sequence_value(self, logits: Array, labels: Labels, output_layer: Any = None) -> float:
        """L = (1/M) sum over counted (n, t) of (log sum_k e^z[n][t][k] - z[n][t][y]) (eq. 16.3),
        M the number of counted positions; 0 when none is counted (PyTorch gives NaN)."""
        log_sums = None if output_layer is None else output_layer.log_sum_exp
        if log_sums is None:
            log_sums = log_sum_exp(logits)
        counted = labels.ravel() != self.ignore_index
        rows = np.flatnonzero(counted)
        picked = logits.reshape(-1, logits.shape[2])[rows, labels.ravel()[rows]]
        return float((log_sums.ravel()[rows] - picked).sum()) / len(rows) if len(rows) else 0.0

    def sequence_gradient(self, probabilities: Array, labels: Labels) -> Array:
        """dL/dz[n][t] = (p[n][t] - one-hot(y[n][t])) / M at a counted position, 0 at an ignored one (eq. 16.4)."""
        classes = probabilities.shape[2]
        flat = labels.ravel()
        rows = np.flatnonzero(flat != self.ignore_index)
        grad = np.zeros((flat.size, classes), probabilities.dtype)
        grad[rows] = probabilities.reshape(-1, classes)[rows]
        grad[rows, flat[rows]] -= 1.0
        if len(rows):
            grad /= len(rows)
        return grad.reshape(probabilities.shape)

    def describe(self) -> dict[str, Any]:
        description: dict[str, Any] = {"type": "CrossEntropy"}
        if self.ignore_index != -100:  # PyTorch's default is not written down
            description["ignore_index"] = self.ignore_index
        if self.label_smoothing != 0.0:  # nor is 0, so older descriptions stay as they were
            description["label_smoothing"] = self.label_smoothing
        return description


class MeanSquaredError:
    """L = (1/(B K)) sum_n sum_k (a[n][k] - t[n][k])^2, the mean over every output (eq. 5.4)."""

    def value(self, outputs: Array, labels: Labels, output_layer: Any = None) -> float:
        """``output_layer`` is not needed: the interface is the same for every loss."""
        return float(np.mean((outputs - targets(labels, outputs.shape[1], outputs.dtype)) ** 2))

    def gradient(self, inputs: Array, outputs: Array, labels: Labels) -> Array:
        """dL/da = 2 (a - t) / (B K) (eq. 5.4); this loss reads the outputs themselves."""
        return 2.0 * (outputs - targets(labels, outputs.shape[1], outputs.dtype)) / outputs.size

    def describe(self) -> dict[str, Any]:
        return {"type": "MeanSquaredError"}


class BinaryCrossEntropy:
    """L = (1/(B K)) sum (max(z, 0) - z t + log(1 + e^-|z|)), the mean binary cross-entropy of
    a = sigmoid(z), computed from the logits (eq. 5.5)."""

    def value(self, logits: Array, labels: Labels, output_layer: Any = None) -> float:
        """``output_layer`` is not needed: the interface is the same for every loss."""
        t = targets(labels, logits.shape[1], logits.dtype)
        return float(np.mean(np.maximum(logits, 0.0) - logits * t + np.log1p(np.exp(-np.abs(logits)))))

    def gradient(self, logits: Array, outputs: Array, labels: Labels) -> Array:
        """dL/dz = (sigmoid(z) - t) / (B K), the fused sigmoid + cross-entropy gradient (eq. 5.6);
        ``outputs`` are the sigmoid(z) the forward pass computed."""
        grad: Array = (outputs - targets(labels, logits.shape[1], logits.dtype)) / logits.size
        return grad

    def describe(self) -> dict[str, Any]:
        return {"type": "BinaryCrossEntropy"}
