"""Classification metrics and their text tables: accuracy, the confusion matrix, precision and recall.

``confusion[t][p]`` counts the samples of true class ``t`` predicted as ``p``; precision of class k is
``confusion[k][k] / (column k's sum)`` (of the samples predicted k, how many are k), recall is
``confusion[k][k] / (row k's sum)`` (of the samples that are k, how many were found). A class never
predicted (or absent) has precision (or recall) NaN, shown as ``-``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scratchnet.core.errors import ShapeError
from scratchnet.core.lazy import lazy_module, numpy_loaded

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    IntArray = npt.NDArray[np.int64]
else:
    np = lazy_module("numpy", globals(), "np")


def confusion_matrix(labels: Any, predictions: Any, classes: int) -> IntArray:
    """The ``classes x classes`` matrix of counts: row = true class, column = predicted class."""
    true = np.asarray(labels, dtype=np.int64).ravel()
    predicted = np.asarray(predictions, dtype=np.int64).ravel()
    if true.shape != predicted.shape:
        raise ShapeError(f"{true.size} labels but {predicted.size} predictions")
    for name, values in (("label", true), ("prediction", predicted)):
        if values.size and (values.min() < 0 or values.max() >= classes):
            raise ShapeError(f"a {name} is outside 0..{classes - 1}")
    counts: IntArray = np.bincount(true * classes + predicted, minlength=classes * classes).astype(np.int64)
    return counts.reshape(classes, classes)


def accuracy(labels: Any, predictions: Any) -> float:
    """The fraction of predictions equal to their labels (NaN for no samples)."""
    true = np.asarray(labels).ravel()
    predicted = np.asarray(predictions).ravel()
    if true.shape != predicted.shape:
        raise ShapeError(f"{true.size} labels but {predicted.size} predictions")
    return float(np.mean(true == predicted)) if true.size else math.nan


def confusion_counts(labels: Sequence[int], predictions: Sequence[int], classes: int) -> list[list[int]]:
    """:func:`confusion_matrix` without NumPy (the loops backend), as a list of rows."""
    if len(labels) != len(predictions):
        raise ShapeError(f"{len(labels)} labels but {len(predictions)} predictions")
    for name, values in (("label", labels), ("prediction", predictions)):
        if any(not 0 <= value < classes for value in values):
            raise ShapeError(f"a {name} is outside 0..{classes - 1}")
    counts = [[0] * classes for _ in range(classes)]
    for true, predicted in zip(labels, predictions):
        counts[true][predicted] += 1
    return counts


@dataclass(frozen=True)
class ClassReport:
    """Accuracy, per-class precision, recall and support, and the confusion matrix they come from (an
    array, or without NumPy a list of rows); each figure is a count, or one count divided by another."""

    confusion: IntArray | list[list[int]]
    class_names: tuple[str, ...]

    def rows(self) -> list[list[int]]:
        """The confusion matrix as a list of rows of ints."""
        if isinstance(self.confusion, list):
            return self.confusion
        rows: list[list[int]] = self.confusion.tolist()
        return rows

    @property
    def total(self) -> int:
        return sum(map(sum, self.rows()))

    @property
    def correct(self) -> int:
        """The samples predicted as their own class: the trace."""
        return sum(row[k] for k, row in enumerate(self.rows()))

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else math.nan

    def precision(self) -> list[float]:
        rows = self.rows()
        predicted = [sum(column) for column in zip(*rows)]
        return [rows[k][k] / n if n else math.nan for k, n in enumerate(predicted)]

    def recall(self) -> list[float]:
        rows = self.rows()
        return [rows[k][k] / n if n else math.nan for k, n in enumerate(self.support())]

    def support(self) -> list[int]:
        return [sum(row) for row in self.rows()]


def class_report(labels: Any, predictions: Any, class_names: Sequence[str]) -> ClassReport:
    """The report of ``predictions`` against ``labels`` (arrays or lists; without NumPy, the lists the loops
    backend gives and a ByteArray's ``tolist()``)."""
    if not numpy_loaded():
        listed = labels.tolist() if hasattr(labels, "tolist") else list(labels)
        return ClassReport(confusion_counts(listed, list(predictions), len(class_names)), tuple(class_names))
    return ClassReport(confusion_matrix(labels, predictions, len(class_names)), tuple(class_names))


def percent(value: float, digits: int = 2) -> str:
    """0.98765 -> '98.77%'; NaN -> '-'."""
    return "-" if math.isnan(value) else f"{100.0 * value:.{digits}f}%"


def per_class_table(report: ClassReport) -> str:
    """One row per class: name, precision, recall, support."""
    width = max([len("class")] + [len(name) for name in report.class_names])
    lines = [f"{'class':<{width}}  {'precision':>9}  {'recall':>8}  {'support':>7}"]
    for name, p, r, n in zip(report.class_names, report.precision(), report.recall(), report.support()):
        lines.append(f"{name:<{width}}  {percent(p):>9}  {percent(r):>8}  {n:>7}")
    return "\n".join(lines)


def confusion_table(report: ClassReport) -> str:
    """The confusion matrix with row and column headers: rows are true classes, columns predictions.

    Columns are headed by class index (names would make the table too wide); rows give index and name.
    """
    matrix = report.rows()
    k = len(report.class_names)
    largest = max((value for row in matrix for value in row), default=None)
    cell = max(len(str(largest)) if largest is not None else 1, len(str(k - 1)), 3)
    row_head = max(len(f"{i} {name}") for i, name in enumerate(report.class_names))
    corner = "true \\ predicted"
    row_head = max(row_head, len(corner))
    lines = [f"{corner:<{row_head}} " + " ".join(f"{j:>{cell}}" for j in range(k))]
    for i, name in enumerate(report.class_names):
        label = f"{i} {name}" if name != str(i) else str(i)
        lines.append(f"{label:<{row_head}} " + " ".join(f"{int(v):>{cell}}" for v in matrix[i]))
    return "\n".join(lines)
